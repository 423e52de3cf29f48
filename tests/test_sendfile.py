"""The zero-copy path really carries file bodies.

sendfile(2)'s byte counter (``bustapi._core.sendfile_bytes``) must move by exactly
the file bytes of each response sent on plain HTTP/1.x, and not at all with
``sendfile=False``. Without this, a server that quietly fell back to copying (or
sent placeholder zeros) would pass every other file test.
"""

from __future__ import annotations

import ctypes
import os
import random
import socket
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import pytest
from bustapi import BustAPI, FileResponse, _core, send_file
from conftest import Result, http_request
from test_files import parse_multipart

needs_sendfile = pytest.mark.skipif(
    not _core.sendfile_available, reason="sendfile(2) is used on Linux only"
)

SIZE = 3 * 1024 * 1024 + 17  # well above the static cache's inline size
CONTENT = random.Random(10).randbytes(SIZE)
MULTI = "bytes=0-9,2097152-3145727,-5"
MULTI_PARTS = [CONTENT[:10], CONTENT[2097152:3145728], CONTENT[-5:]]


@pytest.fixture
def app(tmp_path: Path) -> BustAPI:
    static = tmp_path / "static"
    static.mkdir()
    (static / "v.bin").write_bytes(CONTENT)
    app = BustAPI(static_folder=str(static))

    @app.route("/dl")
    def download() -> FileResponse:
        return send_file(str(static / "v.bin"))

    return app


@pytest.fixture
def sent() -> Iterator[Callable[[], int]]:
    """``sent()``: sendfile bytes since the test started."""
    start = _core.sendfile_bytes()
    yield lambda: _core.sendfile_bytes() - start


def get(port: int, path: str, method: str = "GET", **headers: str) -> Result:
    return http_request(port, method, path, headers)


@needs_sendfile
def test_a_static_range_goes_through_sendfile(
    app: BustAPI, serve: Callable[..., Any], sent: Callable[[], int]
) -> None:
    port = serve(app).port
    r = get(port, "/static/v.bin", Range="bytes=100000-1500000")
    assert r.status == 206 and r.body == CONTENT[100000:1500001]
    assert sent() == len(r.body)
    # Below the sendfile threshold the body rides in the head's writev instead.
    r = get(port, "/static/v.bin", Range="bytes=0-1")
    assert r.status == 206 and r.body == CONTENT[:2]
    assert sent() == 1400001


@needs_sendfile
def test_send_file_goes_through_sendfile(
    app: BustAPI, serve: Callable[..., Any], sent: Callable[[], int]
) -> None:
    port = serve(app).port
    r = get(port, "/dl")
    assert r.status == 200 and r.body == CONTENT
    r = get(port, "/dl", Range="bytes=-1100000")
    assert r.status == 206 and r.body == CONTENT[-1100000:]
    assert sent() == SIZE + 1100000


@needs_sendfile
def test_bodies_up_to_one_mib_go_through_the_bounce_buffer(
    app: BustAPI, serve: Callable[..., Any], sent: Callable[[], int]
) -> None:
    """128 KiB-1 MiB bodies are written from the IO thread's bounce buffer, in
    one writev with their head (cheaper than splicing page by page,
    bench/file_paths.py), smaller and larger ones with sendfile; pipelined on
    one connection, every byte in place."""
    port = serve(app).port
    bounced = _core.bounce_bytes()
    requests = [
        ("GET", "/static/v.bin", "bytes=0-262143"),  # 256 KiB: bounced
        ("GET", "/dl", "bytes=1048576-2097151"),  # exactly 1 MiB: bounced
        ("GET", "/static/v.bin", "bytes=0-1048576"),  # 1 MiB + 1: sendfile
        ("GET", "/dl", "bytes=-70000"),  # 70 KB: sendfile
    ]
    payload = b"".join(
        f"{m} {p} HTTP/1.1\r\nHost: x\r\nRange: {r}\r\n\r\n".encode() for m, p, r in requests
    )
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(
            payload + b"GET /static/v.bin HTTP/1.1\r\nHost: x\r\nRange: bytes=0-1\r\n"
            b"Connection: close\r\n\r\n"
        )
        data = b""
        while chunk := sock.recv(1 << 20):
            data += chunk
    want = [CONTENT[:262144], CONTENT[1048576:2097152], CONTENT[:1048577], CONTENT[-70000:],
            CONTENT[:2]]  # fmt: skip
    for body in want:
        head, sep, data = data.partition(b"\r\n\r\n")
        assert sep and head.startswith(b"HTTP/1.1 206"), head[:200]
        assert data[: len(body)] == body
        data = data[len(body) :]
    assert data == b""
    assert _core.bounce_bytes() - bounced == 262144 + 1048576
    assert sent() == 1048577 + 70000


@needs_sendfile
def test_multipart_byteranges_go_through_sendfile(
    app: BustAPI, serve: Callable[..., Any], sent: Callable[[], int]
) -> None:
    port = serve(app).port
    for path in ("/static/v.bin", "/dl"):
        r = get(port, path, Range=MULTI)
        assert r.status == 206
        assert [body for _, _, body in parse_multipart(r)] == MULTI_PARTS
    # Only the file bytes: part headers and boundaries are written normally.
    assert sent() == 2 * sum(map(len, MULTI_PARTS))


def pipelined(port: int, requests: list[tuple[str, str, str]]) -> list[bytes]:
    """Sends ``(method, path, range)`` requests in one write on one connection
    (the last asks to close) and returns the bodies, in order."""
    payload = b""
    for i, (method, path, rng) in enumerate(requests):
        close = "Connection: close\r\n" if i == len(requests) - 1 else ""
        payload += f"{method} {path} HTTP/1.1\r\nHost: x\r\nRange: {rng}\r\n{close}\r\n".encode()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(payload)
        data = b""
        while chunk := s.recv(1 << 20):
            data += chunk
    bodies = []
    for method, _, _ in requests:
        head, sep, data = data.partition(b"\r\n\r\n")
        assert sep and head.startswith(b"HTTP/1.1 206"), head[:200]
        fields = dict(line.lower().split(b": ", 1) for line in head.split(b"\r\n")[1:])
        length = 0 if method == "HEAD" else int(fields[b"content-length"])
        assert len(data) >= length, "connection closed mid-body"
        bodies.append(data[:length])
        data = data[length:]
    assert data == b""
    return bodies


REQUESTS = [
    ("GET", "/static/v.bin", "bytes=1048570-2097160"),
    ("HEAD", "/static/v.bin", "bytes=0-"),  # no body: must not leave a range queued
    ("GET", "/dl", "bytes=0-"),
    ("GET", "/static/v.bin", MULTI),
    ("GET", "/dl", "bytes=100-199"),  # small: copied
]


def check_pipelined(bodies: list[bytes]) -> None:
    assert bodies[0] == CONTENT[1048570:2097161]
    assert bodies[1] == b""
    assert bodies[2] == CONTENT
    assert bodies[3].count(b"--") >= 4 and all(p in bodies[3] for p in MULTI_PARTS)
    assert bodies[4] == CONTENT[100:200]


@needs_sendfile
def test_pipelined_keep_alive_responses_go_through_sendfile(
    app: BustAPI, serve: Callable[..., Any], sent: Callable[[], int]
) -> None:
    port = serve(app).port
    check_pipelined(pipelined(port, REQUESTS))
    assert sent() == (2097161 - 1048570) + SIZE + sum(map(len, MULTI_PARTS))


def test_sendfile_off_carries_no_bytes_by_sendfile(
    app: BustAPI, serve: Callable[..., Any], sent: Callable[[], int]
) -> None:
    port = serve(app, sendfile=False).port
    check_pipelined(pipelined(port, REQUESTS))
    r = get(port, "/dl", Range=MULTI)
    assert [body for _, _, body in parse_multipart(r)] == MULTI_PARTS
    assert get(port, "/static/v.bin").body == CONTENT
    assert sent() == 0


def cachestat_pages(path: Path) -> int | None:
    """Pages of ``path`` in the page cache (cachestat(2), Linux 6.5+), or None."""
    libc = ctypes.CDLL(None, use_errno=True)
    with path.open("rb") as f:
        span = struct.pack("QQ", 0, 0)  # the whole file
        out = ctypes.create_string_buffer(40)
        if libc.syscall(451, f.fileno(), ctypes.c_char_p(span), out, 0) != 0:
            return None
        return int(struct.unpack("5Q", out.raw)[0])


def evict(path: Path) -> bool:
    """Drops ``path``'s clean pages from the page cache; False when it cannot."""
    with path.open("rb") as f:
        os.fsync(f.fileno())
        os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
    return cachestat_pages(path) == 0


@needs_sendfile
def test_a_cold_range_is_read_off_the_io_thread_before_sendfile(
    app: BustAPI, tmp_path: Path, serve: Callable[..., Any], sent: Callable[[], int]
) -> None:
    """sendfile(2) waits for the disk inside the call: a range that is not in the
    page cache is read on the blocking pool first, then sent zero-copy; a cached
    one goes straight out."""
    path = tmp_path / "static" / "v.bin"
    if not evict(path):
        pytest.skip("cannot evict the file from the page cache here (tmpfs, or no cachestat)")
    port = serve(app).port
    warmed = _core.page_cache_warmed_bytes()
    r = get(port, "/static/v.bin", Range="bytes=100000-1500000")
    assert r.status == 206 and r.body == CONTENT[100000:1500001]
    assert sent() == len(r.body)
    # At least the first MiB placeholder's range was read first (the kernel's
    # readahead for that read may already have cached the rest).
    assert _core.page_cache_warmed_bytes() - warmed >= 1 << 20
    # Now cached: no second read, still zero-copy.
    warmed = _core.page_cache_warmed_bytes()
    r = get(port, "/dl", Range="bytes=100000-1500000")
    assert r.body == CONTENT[100000:1500001]
    assert sent() == 2 * len(r.body)
    assert _core.page_cache_warmed_bytes() == warmed
