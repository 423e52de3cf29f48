"""The real tus client, tuspy, against the engine's tus endpoint: a 256 MiB
upload whose client is killed mid-PATCH and resumes, and one whose server is
killed (SIGKILL) mid-PATCH, restarted, and resumed. Each time the finished
file's SHA-256 must match and on_complete must have run exactly once.

"Mid-PATCH" is made exact, not timed: the client talks to the server through a
small proxy that stops forwarding after a chosen byte (inside the 13th 8 MiB
chunk), so the server holds a partly received PATCH when the kill comes. That
the resumed upload starts at an offset that is no multiple of the chunk size
proves the bytes of the interrupted PATCH were kept."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Optional

import pytest
from bustapi import BustAPI, ResumableUpload
from bustapi.testing import LiveServer
from conftest import start_server, stop_process
from tusclient import client as tus_client
from tusclient.storage.filestorage import FileStorage

SIZE = 256 << 20
CHUNK = 8 << 20
HOLD_AT = (100 << 20) + 12345  # bytes client -> server, inside the 13th chunk


class HoldingProxy:
    """Forwards TCP connections to ``upstream_port``; once ``hold_at`` bytes have
    gone client -> server, it forwards nothing more of that connection (what the
    client still sends is read and dropped) until one side closes it, and then
    closes the other. Later connections are forwarded normally."""

    def __init__(self, upstream_port: int, hold_at: int) -> None:
        self.upstream_port = upstream_port
        self.hold_at: Optional[int] = hold_at
        self.held = threading.Event()
        self._forwarded = 0
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                downstream, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            except OSError:
                downstream.close()
                continue
            for args in ((downstream, upstream, True), (upstream, downstream, False)):
                threading.Thread(target=self._pump, args=args, daemon=True).start()

    def _allowed(self, n: int) -> int:
        with self._lock:
            if self.hold_at is None:
                return n
            allowed = min(n, self.hold_at - self._forwarded)
            self._forwarded += allowed
            if allowed < n:
                self.hold_at = None  # one hold only
            return allowed

    def _pump(self, src: socket.socket, dst: socket.socket, to_server: bool) -> None:
        try:
            while data := src.recv(1 << 18):
                allowed = self._allowed(len(data)) if to_server else len(data)
                dst.sendall(data[:allowed])
                if allowed < len(data):
                    self.held.set()
                    while src.recv(1 << 18):
                        pass
                    break
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    path = tmp_path_factory.mktemp("tuspy") / "movie.mp4"
    digest = hashlib.sha256()
    with path.open("wb") as f:
        for _ in range(SIZE // CHUNK):
            block = os.urandom(CHUNK)
            digest.update(block)
            f.write(block)
    return path, digest.hexdigest()


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def partial_upload(folder: Path) -> Path:
    """The one unfinished upload's data file."""
    (found,) = [p for p in (folder / ".tus").iterdir() if not p.name.endswith((".info", ".tmp"))]
    return found


def wait_until(what: Callable[[], bool], why: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not what():
        assert time.monotonic() < deadline, f"timed out waiting until {why}"
        time.sleep(0.01)


def mid_chunk(folder: Path) -> bool:
    """Some bytes of the held PATCH are on disk."""
    try:
        size = partial_upload(folder).stat().st_size
    except (OSError, ValueError):
        return False
    return size > 0 and size % CHUNK != 0


CLIENT = """
import sys
from tusclient import client
from tusclient.storage.filestorage import FileStorage

url, path, storage = sys.argv[1:4]
uploader = client.TusClient(url).uploader(
    path, chunk_size=8 << 20, metadata={"filename": "movie.mp4"},
    store_url=True, url_storage=FileStorage(storage), retries=5, retry_delay=0.2,
)
print("start", uploader.offset, flush=True)
uploader.upload()
print("done", uploader.url, flush=True)
"""


def test_the_client_is_killed_mid_upload_and_resumes(
    tmp_path: Path, serve: Callable[..., LiveServer], source: tuple[Path, str]
) -> None:
    path, digest = source
    folder = tmp_path / "incoming"
    calls: list[ResumableUpload] = []
    app = BustAPI(__name__, static_folder=None)
    app.resumable_uploads("/files/", folder, on_complete=calls.append)
    proxy = HoldingProxy(serve(app).port, HOLD_AT)
    script = tmp_path / "client.py"
    script.write_text(CLIENT)
    argv = [
        sys.executable,
        str(script),
        f"http://127.0.0.1:{proxy.port}/files/",
        str(path),
        str(tmp_path / "urls.json"),
    ]
    try:
        first = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
        assert proxy.held.wait(120), "the upload never reached the hold point"
        wait_until(lambda: mid_chunk(folder), "part of the held PATCH is on disk")
        first.kill()  # SIGKILL, mid-PATCH
        first.communicate()
        second = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    finally:
        proxy.close()
    assert second.returncode == 0, second.stderr
    start = int(second.stdout.split()[1])
    assert 96 << 20 < start < HOLD_AT and start % CHUNK != 0, start
    assert len(calls) == 1, calls
    upload = calls[0]
    assert (upload.size, upload.metadata) == (SIZE, {"filename": "movie.mp4"})
    assert second.stdout.split()[-1].endswith(f"/files/{upload.id}")
    assert sha256_of(Path(upload.path)) == digest


SERVER = """
import json, sys
from bustapi import BustAPI

folder, log = sys.argv[1:3]
app = BustAPI(__name__, static_folder=None)

def completed(upload):
    with open(log, "a") as f:
        f.write(json.dumps([upload.id, upload.path, upload.size, upload.metadata]) + "\\n")

app.resumable_uploads("/files/", folder, on_complete=completed)
app.run(port=0)
"""


def test_the_server_is_killed_mid_upload_restarted_and_the_client_resumes(
    tmp_path: Path, source: tuple[Path, str]
) -> None:
    path, digest = source
    folder, log = tmp_path / "incoming", tmp_path / "completed.jsonl"
    script = tmp_path / "server.py"
    script.write_text(SERVER)
    argv = [sys.executable, str(script), str(folder), str(log)]
    server, port, _ = start_server(argv)
    proxy = HoldingProxy(port, HOLD_AT)
    url = f"http://127.0.0.1:{proxy.port}/files/"
    storage = FileStorage(str(tmp_path / "urls.json"))
    failures: list[BaseException] = []

    def upload() -> None:
        uploader = tus_client.TusClient(url).uploader(
            str(path), chunk_size=CHUNK, store_url=True, url_storage=storage,
            metadata={"filename": "movie.mp4"},
        )  # fmt: skip
        try:
            uploader.upload()
        except Exception as e:  # noqa: BLE001 - the failure is the point
            failures.append(e)

    try:
        first = threading.Thread(target=upload)
        first.start()
        assert proxy.held.wait(120), "the upload never reached the hold point"
        wait_until(lambda: mid_chunk(folder), "part of the held PATCH is on disk")
        server.send_signal(signal.SIGKILL)
        server.wait()
        first.join(60)
        assert failures, "the client noticed the server going away"
        on_disk = partial_upload(folder).stat().st_size
        server, port, _ = start_server(argv)
        proxy.upstream_port = port
        resumed = tus_client.TusClient(url).uploader(
            str(path), chunk_size=CHUNK, store_url=True, url_storage=storage,
            metadata={"filename": "movie.mp4"},
        )  # fmt: skip
        assert resumed.offset == on_disk, "the restarted server reports what is on disk"
        assert 96 << 20 < on_disk < HOLD_AT and on_disk % CHUNK != 0, on_disk
        resumed.upload()
    finally:
        proxy.close()
        stop_process(server)
    (line,) = log.read_text().splitlines()
    id, final, size, metadata = json.loads(line)
    assert resumed.url.endswith(f"/files/{id}")
    assert (size, metadata) == (SIZE, {"filename": "movie.mp4"})
    assert Path(final) == folder.resolve() / id
    assert sha256_of(Path(final)) == digest
