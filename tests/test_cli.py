"""``python -m bustapi serve`` and ``python -m bustapi run``, as a user starts them."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest
from conftest import http_request, start_server, stop_process


def start(args: list[str], cwd: Path, stderr: IO[str]) -> tuple[subprocess.Popen[str], int]:
    proc, port, _ = start_server([sys.executable, "-m", "bustapi", *args], cwd, stderr)
    return proc, port


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "share"
    (root / "videos").mkdir(parents=True)
    (root / "site").mkdir()
    (root / "videos" / "clip.mp4").write_bytes(bytes(range(256)) * 40)
    (root / "site" / "index.html").write_text("<h1>site</h1>")
    (root / "notes <b>.txt").write_text("hello")
    (root / ".hidden").write_text("secret")
    return root


@pytest.fixture
def served(folder: Path, tmp_path: Path) -> Iterator[tuple[int, Path]]:
    log = tmp_path / "stderr.log"
    with open(log, "w") as err:
        proc, port = start(["serve", str(folder), "--port", "0"], tmp_path, err)
    try:
        yield port, log
    finally:
        stop_process(proc)


def test_serve_lists_directories(served: tuple[int, Path]) -> None:
    port, _ = served
    r = http_request(port, "GET", "/")
    assert r.status == 200 and r.headers["content-type"] == "text/html; charset=utf-8"
    html = r.text
    assert 'href="videos/"' in html and 'href="site/"' in html
    assert 'href="notes%20%3Cb%3E.txt">notes &lt;b&gt;.txt</a>' in html
    assert ".hidden" not in html
    listing = http_request(port, "GET", "/videos/").text
    assert "clip.mp4" in listing and "10.0 KiB" in listing and "GMT" in listing
    assert http_request(port, "GET", "/videos").status == 308


def test_serve_ranges_index_and_hidden(served: tuple[int, Path]) -> None:
    port, _ = served
    r = http_request(port, "GET", "/videos/clip.mp4", {"Range": "bytes=256-511"})
    assert r.status == 206 and r.body == bytes(range(256))
    assert r.headers["content-type"] == "video/mp4"
    assert http_request(port, "GET", "/site/").body == b"<h1>site</h1>"
    assert http_request(port, "GET", "/.hidden").status == 404
    assert http_request(port, "GET", "/../etc/passwd").status in (400, 404)


def test_serve_writes_an_access_log(served: tuple[int, Path]) -> None:
    port, log = served
    http_request(port, "GET", "/videos/clip.mp4", {"Range": "bytes=0-99"})
    http_request(port, "HEAD", "/site/")
    deadline = time.monotonic() + 5
    pattern = r'127\.0\.0\.1 "GET /videos/clip\.mp4 HTTP/1\.1" 206 100 bytes=0-99 [\d.]+ms'
    while not re.search(pattern, log.read_text()):
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.05)
    assert re.search(r'"HEAD /site/ HTTP/1\.1" 200 0 - [\d.]+ms', log.read_text())


APP = textwrap.dedent(
    """
    from bustapi import BustAPI

    app = BustAPI(__name__)

    @app.route("/")
    def index():
        return {"version": VERSION}

    VERSION = 1
    """
)


def test_run_module_app(tmp_path: Path) -> None:
    (tmp_path / "myapp.py").write_text(APP)
    with open(tmp_path / "err.log", "w") as err:
        proc, port = start(["run", "myapp:app", "--port", "0"], tmp_path, err)
    try:
        assert http_request(port, "GET", "/").json == {"version": 1}
    finally:
        stop_process(proc)
    assert proc.returncode == 0


def test_run_with_reload_restarts_on_change(tmp_path: Path) -> None:
    (tmp_path / "myapp.py").write_text(APP)
    port = _free_port()
    with open(tmp_path / "err.log", "w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bustapi", "run", "myapp:app", "--reload", "--port", str(port)],
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    try:
        assert _wait_json(port, {"version": 1})
        time.sleep(0.1)
        (tmp_path / "myapp.py").write_text(APP.replace("VERSION = 1", "VERSION = 2"))
        os.utime(tmp_path / "myapp.py", (time.time() + 5, time.time() + 5))
        assert _wait_json(port, {"version": 2}), "the app was not reloaded after the change"
    finally:
        stop_process(proc, signal.SIGINT)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_json(port: int, expected: object) -> bool:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if http_request(port, "GET", "/", timeout=2).json == expected:
                return True
        except (OSError, ValueError):
            pass
        time.sleep(0.1)
    return False
