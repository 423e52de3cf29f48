"""Large file bodies taken over from hyper (crates/bustapi-server/src/owed.rs).

On plain HTTP/1 with sendfile, an unpaced body above 1 MiB is accepted by the
connection's sendfile sink as soon as hyper writes its placeholder frames: hyper sees
the body end, and the bytes the client has not taken yet are *owed* and sent without
hyper's buffers (what 10,000 slow video readers need). ``_core.taken_over_bytes()``
moves by a body's length once hyper has handed all of it over. Whatever the client
does meanwhile (reads slowly, pipelines, stops reading, the file shrinks, the server
stops) it gets the exact bytes, in order, or a cut: never zeros, never a reordering.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import socket
import ssl
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import pytest
from bustapi import BustAPI, _core, send_file
from conftest import (
    allow_open_files,
    assert_same_bytes,
    closed_within,
    read_response,
    start_server,
    stop_process,
)
from h2_attack import settled_rss_kib

pytestmark = pytest.mark.skipif(
    not _core.sendfile_available, reason="sendfile(2) is used on Linux only"
)

# Far more than loopback's socket buffers hold, so most of it is owed.
SIZE = 24 * 1024 * 1024 + 4321
CONTENT = random.Random(13).randbytes(SIZE)
SMALL = b"small and in order\n"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    static = tmp_path / "static"
    static.mkdir()
    (static / "big.bin").write_bytes(CONTENT)
    (static / "small.txt").write_bytes(SMALL)
    return tmp_path


@pytest.fixture
def app(root: Path) -> BustAPI:
    app = BustAPI(static_folder=str(root / "static"))

    @app.route("/dl")
    def download() -> Any:
        return send_file(str(root / "static" / "big.bin"))

    @app.route("/paced")
    def paced() -> Any:
        # Fast enough to finish quickly; paced bodies keep hyper's path.
        return send_file(str(root / "static" / "big.bin"), rate=200_000_000)

    return app


@pytest.fixture
def taken_over() -> Iterator[Callable[[], int]]:
    """``taken_over()``: bytes taken over from hyper since the test started."""
    start = _core.taken_over_bytes()
    yield lambda: _core.taken_over_bytes() - start


def slow_socket(port: int) -> socket.socket:
    """A client with a small receive buffer that reads nothing until told."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    s.settimeout(30)
    s.connect(("127.0.0.1", port))
    return s


def wait_for(condition: Callable[[], bool], seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


def get(path: str, *extra: str) -> bytes:
    lines = [f"GET {path} HTTP/1.1", "Host: x", *extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def test_a_slow_reader_gets_the_exact_file_after_takeover(
    app: BustAPI, serve: Callable[..., Any], taken_over: Callable[[], int]
) -> None:
    port = serve(app).port
    sent = _core.sendfile_bytes()
    with slow_socket(port) as s:
        s.sendall(get("/static/big.bin"))
        # hyper has handed the whole body over while the client has read nothing.
        wait_for(lambda: taken_over() >= SIZE)
        r = read_response(s.makefile("rb"))
    assert r.status == 200
    assert hashlib.sha256(r.body).digest() == hashlib.sha256(CONTENT).digest()
    assert taken_over() == SIZE
    assert _core.sendfile_bytes() - sent >= SIZE


def test_pipelined_responses_after_a_taken_over_one_come_in_order(
    app: BustAPI, serve: Callable[..., Any], taken_over: Callable[[], int]
) -> None:
    """The head of the next response waits for the owed bytes; the last response,
    itself taken over, is owed in full before the connection closes (Connection:
    close)."""
    port = serve(app).port
    with slow_socket(port) as s:
        s.sendall(
            get("/static/big.bin")
            + get("/static/small.txt")
            + get("/dl", "Range: bytes=1000-3000999")
            + get("/static/big.bin", "Connection: close")
        )
        stream = s.makefile("rb")
        wait_for(lambda: taken_over() >= SIZE)
        time.sleep(0.5)  # let the pipelined requests reach the server's queue
        bodies = [read_response(stream) for _ in range(4)]
        assert stream.read() == b"", "nothing after the last response"
    assert [r.status for r in bodies] == [200, 200, 206, 200]
    assert_same_bytes(bodies[0].body, CONTENT)
    assert bodies[1].body == SMALL
    assert_same_bytes(bodies[2].body, CONTENT[1000:3001000])
    assert_same_bytes(bodies[3].body, CONTENT)
    assert taken_over() == 2 * SIZE + 3000000


def test_a_reader_that_stops_is_cut_by_the_write_timeout(
    app: BustAPI, serve: Callable[..., Any], taken_over: Callable[[], int]
) -> None:
    port = serve(app, write_timeout=1.0).port
    with slow_socket(port) as s:
        s.sendall(get("/static/big.bin"))
        wait_for(lambda: taken_over() >= SIZE)
        time.sleep(3)  # reads nothing for longer than the write timeout
        received = 0
        s.settimeout(10)
        try:
            while chunk := s.recv(1 << 20):
                received += len(chunk)
        except ConnectionResetError:
            pass
    assert received < SIZE, "the stalled client got everything: no write timeout"
    # The server is fine and its connection slot free.
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(get("/static/small.txt"))
        assert read_response(s.makefile("rb")).body == SMALL


def test_a_file_that_shrinks_while_owed_is_cut_never_zero_filled(
    root: Path, app: BustAPI, serve: Callable[..., Any], taken_over: Callable[[], int]
) -> None:
    path = root / "static" / "big.bin"
    port = serve(app).port
    keep = 16 * 1024 * 1024  # beyond what the kernel can hold in flight
    with slow_socket(port) as s:
        s.sendall(get("/dl"))
        wait_for(lambda: taken_over() >= SIZE)
        os.truncate(path, keep)
        data = b""
        try:
            while chunk := s.recv(1 << 20):
                data += chunk
        except ConnectionResetError:
            pass
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and f"content-length: {SIZE}".encode() in head
    assert len(body) == keep, "what the file still had, then a cut"
    assert_same_bytes(body, CONTENT[:keep])


def test_head_304_and_416_are_unaffected(
    app: BustAPI, serve: Callable[..., Any], taken_over: Callable[[], int]
) -> None:
    port = serve(app).port
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        stream = s.makefile("rb")
        s.sendall(b"HEAD /static/big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        head = read_response(stream, "HEAD")
        assert head.status == 200 and head.headers["content-length"] == str(SIZE)
        s.sendall(get("/static/big.bin", f"If-None-Match: {head.headers['etag']}"))
        assert read_response(stream).status == 304
        s.sendall(get("/static/big.bin", f"Range: bytes={SIZE}-"))
        assert read_response(stream).status == 416
        assert taken_over() == 0
        s.sendall(get("/static/big.bin"))
        assert_same_bytes(read_response(stream).body, CONTENT)
    assert taken_over() == SIZE


def test_paced_and_small_bodies_keep_hyper_s_path(
    app: BustAPI, serve: Callable[..., Any], taken_over: Callable[[], int]
) -> None:
    port = serve(app).port
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        stream = s.makefile("rb")
        s.sendall(get("/paced"))
        assert_same_bytes(read_response(stream).body, CONTENT)
        # 1 MiB: the bounce buffer's range; multipart: framing between ranges.
        s.sendall(get("/dl", "Range: bytes=0-1048575"))
        assert_same_bytes(read_response(stream).body, CONTENT[:1048576])
        s.sendall(get("/dl", "Range: bytes=0-2999999,4000000-6999999"))
        assert read_response(stream).status == 206
    assert taken_over() == 0


def test_tls_keeps_hyper_s_path(
    root: Path, cert: tuple[Path, Path], serve: Callable[..., Any], taken_over: Callable[[], int]
) -> None:
    app = BustAPI(static_folder=str(root / "static"))
    port = serve(app, ssl_context=(str(cert[0]), str(cert[1]))).port
    ctx = ssl.create_default_context(cafile=str(cert[0]))
    with socket.create_connection(("127.0.0.1", port), timeout=30) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            s.sendall(get("/static/big.bin"))
            assert_same_bytes(read_response(s.makefile("rb")).body, CONTENT)
    assert taken_over() == 0


SERVER = textwrap.dedent(
    """
    import sys
    from bustapi import BustAPI
    app = BustAPI(static_folder=sys.argv[1], static_url_path="/static")
    app.run(port=0, workers=1, shutdown_timeout=60)
    """
)


def test_graceful_shutdown_lets_owed_bytes_finish(root: Path) -> None:
    script = root / "server.py"
    script.write_text(SERVER)
    proc, port, _ = start_server(
        [sys.executable, str(script), str(root / "static")], stderr=subprocess.DEVNULL
    )
    try:
        with slow_socket(port) as s:
            s.sendall(get("/static/big.bin"))
            stream = s.makefile("rb")
            assert stream.readline().startswith(b"HTTP/1.1 200")
            time.sleep(2)  # hyper long done with it: the rest is owed
            proc.send_signal(signal.SIGTERM)
            time.sleep(0.5)
            assert proc.poll() is None, "the server quit with bytes still owed"
            while stream.readline() != b"\r\n":
                pass
            assert_same_bytes(stream.read(SIZE), CONTENT)
            assert closed_within(s, 10)
        assert proc.wait(20) == 0
    finally:
        stop_process(proc, signal.SIGKILL)


def test_slow_readers_hold_little_memory(tmp_path: Path) -> None:
    """1,000 clients each reading a 256 MiB file slowly (small receive buffers, a
    few KiB at a time). With hyper's connection alive for each response this debug
    build held ~18 KiB per reader (bench/notes/idle13.md); with the bodies owed
    it is a few KiB. Every reader keeps getting bytes (none starved)."""
    n = 1000
    allow_open_files(n)
    static = tmp_path / "static"
    static.mkdir()
    with open(static / "video.bin", "wb") as f:
        f.truncate(256 * 1024 * 1024)
    (static / "small.txt").write_bytes(SMALL)
    script = tmp_path / "server.py"
    script.write_text(SERVER)
    proc, port, _ = start_server(
        [sys.executable, str(script), str(static)], stderr=subprocess.DEVNULL
    )
    conns: list[socket.socket] = []
    try:
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(get("/static/small.txt"))
            assert read_response(s.makefile("rb")).body == SMALL
        base = settled_rss_kib(proc.pid)
        for _ in range(n):
            s = slow_socket(port)
            conns.append(s)
            s.sendall(get("/static/video.bin"))
            assert s.recv(4096).startswith(b"HTTP/1.1 200")
        time.sleep(3)
        for s in conns:  # a few KiB each, as a 4 KiB/s reader would
            assert s.recv(4096)
        grown = settled_rss_kib(proc.pid) - base
        assert grown < 8 * 1024, f"{n} slow readers grew RSS by {grown} KiB"
        for s in conns:  # none starved
            assert s.recv(4096)
    finally:
        for s in conns:
            s.close()
        stop_process(proc)
