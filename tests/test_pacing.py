"""Bandwidth pacing (issue 14): ``rate`` / ``rate_after`` on ``send_file`` and
``add_static`` (nginx's ``limit_rate`` / ``limit_rate_after``) and ``rate="auto"``
for MP4, on the zero-copy path, the copy path, HTTP/2 and TLS.

Every paced download of the module starts at once (a module fixture, one thread
each), so the module costs one paced download's time, about 8 s; the tests then
check each one's outcome. Bounds are wide (behavioural, not benchmarks): pacing
must make a download take about as long as its rate says, never much less.
"""

from __future__ import annotations

import http.client
import random
import shutil
import socket
import ssl
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pytest
from bustapi import BustAPI, _core, send_file
from bustapi.testing import LiveServer
from conftest import Result, h2_exchange

REPO = Path(__file__).resolve().parents[1]
DEMO_VIDEO = REPO / "python" / "bustapi" / "demo" / "static" / "video.mp4"

MB = 1_000_000
SIZE = 10 * MB
RATE = 1 * MB
AFTER = 2 * MB
EXPECTED_S = (SIZE - AFTER) / RATE  # 8 s: the first 2 MB are free, then 1 MB/s
CONTENT = random.Random(1414).randbytes(SIZE)


@dataclass
class Run:
    seconds: float
    result: Result


def mp4_duration(path: Path) -> float:
    """The duration from moov/mvhd, read independently of the engine (the oracle)."""
    data = path.read_bytes()

    def boxes(start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
        while start < end:
            size, kind = struct.unpack(">I4s", data[start : start + 8])
            yield kind, start + 8, start + size
            start += size

    moov = next((s, e) for k, s, e in boxes(0, len(data)) if k == b"moov")
    mvhd = next(s for k, s, _ in boxes(*moov) if k == b"mvhd")
    assert data[mvhd] == 0, "a version-0 mvhd"
    timescale, duration = struct.unpack(">II", data[mvhd + 12 : mvhd + 20])
    return float(duration / timescale)


def make_app(root: Path) -> BustAPI:
    app = BustAPI(__name__, root_path=str(root), static_folder=None)
    app.add_static("/paced", "files", rate=RATE, rate_after=AFTER)
    app.add_static("/fast", "files")
    app.add_static("/auto", "video", rate="auto")

    @app.route("/send/<name>")
    def send(name: str) -> Any:
        return send_file(root / "files" / name, rate=RATE, rate_after=AFTER)

    return app


def timed(fetch: Callable[[], Result]) -> Run:
    started = time.monotonic()
    result = fetch()
    return Run(time.monotonic() - started, result)


def h1_get(port: int, path: str) -> Result:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return Result(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
    finally:
        conn.close()


def h2c_get(port: int, path: str) -> Result:
    with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
        return h2_exchange(s, [("GET", path, {})])[0]


def h2_tls_get(port: int, path: str, cert: tuple[Path, Path]) -> Result:
    ctx = ssl.create_default_context(cafile=str(cert[0]))
    ctx.set_alpn_protocols(["h2"])
    with socket.create_connection(("127.0.0.1", port), timeout=60) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            assert s.selected_alpn_protocol() == "h2"
            return h2_exchange(s, [("GET", path, {})], "https")[0]


@pytest.fixture(scope="module")
def runs(
    tmp_path_factory: pytest.TempPathFactory, cert: tuple[Path, Path]
) -> Iterator[dict[str, Run]]:
    root = tmp_path_factory.mktemp("pacing")
    (root / "files").mkdir()
    (root / "files" / "ten.bin").write_bytes(CONTENT)
    (root / "video").mkdir()
    shutil.copyfile(DEMO_VIDEO, root / "video" / "clip.mp4")
    servers = {
        "sendfile": LiveServer(make_app(root)).start(),
        "copy": LiveServer(make_app(root), sendfile=False).start(),
        "tls": LiveServer(make_app(root), ssl_context=(str(cert[0]), str(cert[1]))).start(),
    }
    port = {name: server.port for name, server in servers.items()}
    fetches: dict[str, Callable[[], Result]] = {
        "static on the zero-copy path": lambda: h1_get(port["sendfile"], "/paced/ten.bin"),
        "send_file on the copy path": lambda: h1_get(port["copy"], "/send/ten.bin"),
        "static over h2c": lambda: h2c_get(port["sendfile"], "/paced/ten.bin"),
        "send_file over h2 and TLS": lambda: h2_tls_get(port["tls"], "/send/ten.bin", cert),
        "auto": lambda: h1_get(port["sendfile"], "/auto/clip.mp4"),
    }
    results: dict[str, Run] = {}
    sent_before = _core.sendfile_bytes()

    def run(name: str) -> None:
        results[name] = timed(fetches[name])

    threads = [threading.Thread(target=run, args=(name,)) for name in fetches]
    for t in threads:
        t.start()
    try:
        # Once the paced downloads are past their free 2 MB, an unpaced one on
        # another connection to the same server must not be held back by them.
        time.sleep(1.0)
        results["unpaced, meanwhile"] = timed(lambda: h1_get(port["sendfile"], "/fast/ten.bin"))
        results["paced still running"] = Run(
            float(sum(t.is_alive() for t in threads)), Result(0, {}, b"")
        )
        for t in threads:
            t.join(60)
        results["sendfile bytes"] = Run(
            float(_core.sendfile_bytes() - sent_before), Result(0, {}, b"")
        )
        for name, r in results.items():
            print(f"pacing: {name}: {r.seconds:.3f}")  # the figures, with -s
        yield results
    finally:
        for server in servers.values():
            server.stop()


PACED = [
    "static on the zero-copy path",
    "send_file on the copy path",
    "static over h2c",
    "send_file over h2 and TLS",
]


@pytest.mark.parametrize("name", PACED)
def test_10_mb_at_1_mb_per_s_after_2_mb_takes_8_s(runs: dict[str, Run], name: str) -> None:
    run = runs[name]
    assert run.result.status == 200
    assert run.result.body == CONTENT, "the paced body is the file, byte for byte"
    assert EXPECTED_S * 0.85 <= run.seconds <= EXPECTED_S * 1.15, (
        f"{name}: {run.seconds:.2f} s, expected {EXPECTED_S} s ± 15 %"
    )


def test_the_paced_download_went_zero_copy(runs: dict[str, Run]) -> None:
    if not _core.sendfile_available:
        pytest.skip("this build has no sendfile path")
    # The unpaced download (10 MB) and the paced static one (10 MB) on the plain
    # HTTP/1.1 server are the sendfile candidates; h2 and TLS copy.
    assert runs["sendfile bytes"].seconds >= 2 * SIZE


def test_a_paced_download_does_not_slow_an_unpaced_one(runs: dict[str, Run]) -> None:
    fast = runs["unpaced, meanwhile"]
    assert fast.result.body == CONTENT
    assert runs["paced still running"].seconds == len(PACED) + 1, "they overlapped"
    # Unpaced, 10 MB over loopback takes a fraction of a second; paced, 8 s.
    assert fast.seconds < EXPECTED_S / 4, f"the unpaced download took {fast.seconds:.2f} s"


def test_auto_paces_an_mp4_near_twice_its_bitrate(runs: dict[str, Run]) -> None:
    run = runs["auto"]
    assert run.result.body == DEMO_VIDEO.read_bytes()
    # At twice the average bitrate, the whole file takes half its duration.
    expected = mp4_duration(DEMO_VIDEO) / 2
    assert expected * 0.8 <= run.seconds <= expected * 1.2, (
        f"{run.seconds:.2f} s, expected about {expected:.2f} s"
    )


def test_auto_does_not_pace_what_is_not_an_mp4(
    tmp_path: Path, serve: Callable[..., LiveServer]
) -> None:
    (tmp_path / "video").mkdir()
    (tmp_path / "video" / "fake.mp4").write_bytes(CONTENT[: 2 * MB])
    app = BustAPI(__name__, root_path=str(tmp_path), static_folder=None)
    app.add_static("/auto", "video", rate="auto")
    run = timed(lambda: h1_get(serve(app).port, "/auto/fake.mp4"))
    assert run.result.body == CONTENT[: 2 * MB]
    assert run.seconds < 2.0


def test_bad_rates_are_refused_where_they_are_given(tmp_path: Path) -> None:
    app = BustAPI(__name__, root_path=str(tmp_path), static_folder=None)
    with pytest.raises(ValueError, match="positive"):
        app.add_static("/a", "x", rate=0)
    with pytest.raises(ValueError, match="auto"):
        app.add_static("/a", "x", rate="fast")
    with pytest.raises(ValueError, match="needs a rate"):
        app.add_static("/a", "x", rate_after=100)
    with pytest.raises(TypeError):
        send_file(tmp_path / "x", rate=True)


def test_paced_responses_hold_no_thread(tmp_path: Path, serve: Callable[..., LiveServer]) -> None:
    """40 responses paced over ~2 s each, in flight at once: the process gains no
    thread per response (a paced body waits on a timer, not in a sleeping thread)."""
    import os
    import selectors

    (tmp_path / "files").mkdir()
    body = CONTENT[:400_000]
    (tmp_path / "files" / "clip.bin").write_bytes(body)
    app = BustAPI(__name__, root_path=str(tmp_path), static_folder=None)
    app.add_static("/slow", "files", rate=200_000)
    port = serve(app).port

    def threads() -> int:
        return len(os.listdir("/proc/self/task"))

    before = threads()
    # Opens the file into the static cache, so the 40 requests do not each open
    # it on the blocking pool (the cache trusts a resolution for a second).
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("HEAD", "/slow/clip.bin")
    assert conn.getresponse().status == 200
    conn.close()
    socks = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(40)]
    sel = selectors.DefaultSelector()
    received: dict[socket.socket, bytearray] = {}
    try:
        for s in socks:
            s.sendall(b"GET /slow/clip.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ)
            received[s] = bytearray()
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:  # read for a second: all 40 are mid-body
            for key, _ in sel.select(0.05):
                sock: Any = key.fileobj
                received[sock] += sock.recv(65536)
        during = threads()
        assert all(0 < len(r) < len(body) for r in received.values()), "all paced, all started"
        open_socks = set(socks)
        while open_socks:
            for key, _ in sel.select(10):
                sock = key.fileobj
                chunk = sock.recv(65536)
                if chunk:
                    received[sock] += chunk
                else:
                    sel.unregister(sock)
                    open_socks.discard(sock)
    finally:
        for s in socks:
            s.close()
    assert all(bytes(r).endswith(body) for r in received.values())
    print(f"pacing: threads gained with 40 paced responses in flight: {during - before}")
    assert during - before <= 4, f"{during - before} threads more with 40 paced responses"
