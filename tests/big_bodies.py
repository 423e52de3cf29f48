"""Multi-MiB file bodies for every transport: one app, one list of requests and one
check, so pipelined HTTP/1.1, h2c and TLS (HTTP/1.1 and HTTP/2) are held to the same
bytes. Ranges cross the 256 KiB read chunks and the 1 MiB sendfile calls."""

from __future__ import annotations

import random
import socket
from pathlib import Path

from bustapi import BustAPI, FileResponse, send_file
from conftest import Result, file_slices, read_response

MIB = 1024 * 1024
BIG = random.Random(31337).randbytes(3 * MIB + 4321)
N = len(BIG)

# (method, path, headers, the inclusive byte spans the answer must carry)
REQUESTS: list[tuple[str, str, dict[str, str], list[tuple[int, int]]]] = [
    ("GET", "/static/big.bin", {}, [(0, N - 1)]),
    ("GET", "/static/big.bin", {"range": "bytes=1048000-3146000"}, [(1048000, 3146000)]),
    ("GET", "/file", {"range": "bytes=0-99,1048570-2097160,-5"},
     [(0, 99), (1048570, 2097160), (N - 5, N - 1)]),
    ("HEAD", "/static/big.bin", {"range": "bytes=1048000-3146000"}, [(1048000, 3146000)]),
    ("GET", "/file", {}, [(0, N - 1)]),
    ("GET", "/static/big.bin", {"range": "bytes=0-5,2097150-"}, [(0, 5), (2097150, N - 1)]),
    ("GET", "/file", {"range": f"bytes=-{N - MIB + 1}"}, [(MIB - 1, N - 1)]),
    ("GET", "/tail", {}, []),  # a small answer last: the stream is still in step
]  # fmt: skip


def make_app(root: Path) -> BustAPI:
    static = root / "static"
    static.mkdir()
    (static / "big.bin").write_bytes(BIG)
    app = BustAPI(static_folder=str(static))

    @app.route("/file")
    def file() -> FileResponse:
        return send_file(str(static / "big.bin"))

    @app.route("/tail")
    def tail() -> str:
        return "end"

    return app


def check(results: list[Result]) -> None:
    assert len(results) == len(REQUESTS)
    for (method, path, headers, spans), r in zip(REQUESTS, results):
        what = f"{method} {path} {headers}"
        if path == "/tail":
            assert (r.status, r.body) == (200, b"end"), what
            continue
        assert r.status == (206 if "range" in headers else 200), what
        if method == "HEAD":
            ((start, end),) = spans
            assert r.body == b"", what
            assert r.headers["content-range"] == f"bytes {start}-{end}/{N}", what
            assert r.headers["content-length"] == str(end - start + 1), what
        else:
            assert file_slices(r, BIG) == spans, what


def http1_pipelined(sock: socket.socket) -> list[Result]:
    """Writes every request at once on one connection, the last with
    ``Connection: close``, then parses the answers back to back, exactly: a byte too
    many or too few breaks the next parse or the final end-of-stream check."""
    payload = b""
    for i, (method, path, headers, _) in enumerate(REQUESTS):
        fields = dict(headers, host="x")
        if i == len(REQUESTS) - 1:
            fields["connection"] = "close"
        head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fields.items())
        payload += head.encode() + b"\r\n"
    sock.sendall(payload)
    stream = sock.makefile("rb")
    results = [read_response(stream, method) for method, _, _, _ in REQUESTS]
    assert stream.read() == b"", "bytes after the last response"
    return results
