"""HTTP-level behaviour over raw sockets: keep-alive, pipelining, h2c, bad input."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any, Callable

import big_bodies
import pytest
from bustapi import BustAPI
from conftest import h2_exchange, raw_exchange, read_response


@pytest.fixture
def port(serve: Callable[..., Any]) -> int:
    app = BustAPI(static_folder=None)

    @app.route("/hello")
    def hello() -> dict[str, str]:
        return {"message": "Hello, world!"}

    @app.route("/n/<int:n>")
    def n(n: int) -> str:
        return str(n)

    @app.post("/upload")
    def upload() -> str:
        return "ok"

    return int(serve(app, max_body_size=1024).port)


def read_responses(sock: socket.socket, count: int) -> list[bytes]:
    """Reads ``count`` responses that carry Content-Length bodies."""
    buf = b""
    out = []
    while len(out) < count:
        while b"\r\n\r\n" not in buf:
            chunk = sock.recv(65536)
            assert chunk, f"connection closed after {len(out)} responses"
            buf += chunk
        head, _, rest = buf.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        while len(rest) < length:
            chunk = sock.recv(65536)
            assert chunk
            rest += chunk
        out.append(head + b"\r\n\r\n" + rest[:length])
        buf = rest[length:]
    return out


def test_keep_alive_reuses_connection(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        for i in range(3):
            s.sendall(f"GET /n/{i} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            (resp,) = read_responses(s, 1)
            assert resp.startswith(b"HTTP/1.1 200")
            assert resp.endswith(str(i).encode())


def test_pipelining_answers_in_order(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"".join(f"GET /n/{i} HTTP/1.1\r\nHost: x\r\n\r\n".encode() for i in range(5)))
        responses = read_responses(s, 5)
    assert [r.rsplit(b"\r\n\r\n", 1)[1] for r in responses] == [str(i).encode() for i in range(5)]


def test_http10_closes(port: int) -> None:
    out = raw_exchange(port, b"GET /hello HTTP/1.0\r\n\r\n")
    assert out.startswith(b"HTTP/1.0 200") or out.startswith(b"HTTP/1.1 200")
    assert out.endswith(b'{"message":"Hello, world!"}\n')


def test_malformed_request_line_is_400(port: int) -> None:
    out = raw_exchange(port, b"THIS IS NOT HTTP\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 400")


def test_bad_header_is_400(port: int) -> None:
    out = raw_exchange(port, b"GET /hello HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 400")


def test_body_over_limit_is_413_before_reading(port: int) -> None:
    # Declares 10 MB but sends nothing: the answer must come from the header alone.
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n")
        head = s.recv(4096)
    assert head.startswith(b"HTTP/1.1 413")


def test_a_body_sent_in_full_past_the_limit_still_gets_its_413(port: int) -> None:
    """A browser posting a file over the limit sends all of it before it reads.
    The server answers 413 from the head and closes; closing a socket with the
    client's bytes still unread makes the kernel answer them with a reset, and
    the client's send fails before it ever reads the 413. The server must let
    the body drain (and drop it) before closing, as nginx's lingering close does."""
    size = 16 * 1024 * 1024  # past any socket buffers on loopback
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(f"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: {size}\r\n\r\n".encode())
        block = b"u" * 65536
        for _ in range(size // len(block)):
            s.sendall(block)  # a ConnectionResetError here is the defect
        r = read_response(s.makefile("rb"), "POST")
    assert r.status == 413


def test_h2c_prior_knowledge(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        (r,) = h2_exchange(s, [("GET", "/hello", {})])
    assert r.status == 200
    assert r.body == b'{"message":"Hello, world!"}\n'


@pytest.fixture
def big_port(request: pytest.FixtureRequest, tmp_path: Path, serve: Callable[..., Any]) -> int:
    """Serves big_bodies' app; ``sendfile`` from indirect parametrisation, else on."""
    sendfile = getattr(request, "param", True)
    return int(serve(big_bodies.make_app(tmp_path), sendfile=sendfile).port)


@pytest.mark.parametrize("big_port", [True, False], ids=["sendfile", "copy"], indirect=True)
def test_pipelined_multi_mib_responses_parse_exactly(big_port: int) -> None:
    """Whole files, ranges across 1 MiB boundaries and multipart answers, pipelined
    back to back on one keep-alive connection, with sendfile and without."""
    with socket.create_connection(("127.0.0.1", big_port), timeout=30) as s:
        big_bodies.check(big_bodies.http1_pipelined(s))


def test_h2c_multi_mib_streams(big_port: int) -> None:
    """The same requests as concurrent HTTP/2 streams under flow control."""
    with socket.create_connection(("127.0.0.1", big_port), timeout=30) as s:
        requests = [(m, p, h) for m, p, h, _ in big_bodies.REQUESTS]
        big_bodies.check(h2_exchange(s, requests))


def test_oversized_or_overcrowded_head_is_431(port: int) -> None:
    big = b"GET /hello HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (100 * 1024) + b"\r\n\r\n"
    assert raw_exchange(port, big).startswith(b"HTTP/1.1 431")
    many = b"GET /hello HTTP/1.1\r\nHost: x\r\n"
    many += b"".join(b"X-F%d: 1\r\n" % i for i in range(150)) + b"\r\n"
    assert raw_exchange(port, many).startswith(b"HTTP/1.1 431")
    # Just under both limits is served.
    ok = b"GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
    ok += b"".join(b"X-F%d: 1\r\n" % i for i in range(90)) + b"\r\n"
    assert raw_exchange(port, ok).startswith(b"HTTP/1.1 200")
