"""HTTPS on rustls with HTTP/2 by ALPN: ranges and conditionals as over plain HTTP."""

from __future__ import annotations

import http.client
import socket
import ssl
from pathlib import Path
from typing import Any, Callable

import big_bodies
import pytest
from bustapi import BustAPI, FileResponse, request, send_file
from conftest import Result, h2_exchange

DATA = bytes(range(256)) * 64


@pytest.fixture
def port(tmp_path: Path, cert: tuple[Path, Path], serve: Callable[..., Any]) -> int:
    static = tmp_path / "static"
    static.mkdir()
    (static / "data.bin").write_bytes(DATA)
    app = BustAPI(static_folder=str(static))

    @app.route("/file")
    def file() -> FileResponse:
        return send_file(str(static / "data.bin"))

    @app.route("/scheme")
    def scheme() -> dict[str, Any]:
        return {"scheme": request.scheme, "secure": request.is_secure}

    @app.post("/upload")
    def upload() -> str:
        return "stored"

    return int(serve(app, ssl_context=(str(cert[0]), str(cert[1])), max_body_size=1024).port)


def client_context(cert: tuple[Path, Path], alpn: list[str]) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(cert[0]))
    ctx.set_alpn_protocols(alpn)
    return ctx


def h2_over_tls(
    port: int, ctx: ssl.SSLContext, requests: list[tuple[str, str, dict[str, str]]]
) -> list[Result]:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            assert s.selected_alpn_protocol() == "h2", "HTTP/2 was not negotiated by ALPN"
            return h2_exchange(s, requests, "https")


def h2_get(port: int, ctx: ssl.SSLContext, path: str, headers: dict[str, str]) -> Result:
    (r,) = h2_over_tls(port, ctx, [("GET", path, headers)])
    return r


@pytest.mark.parametrize("path", ["/static/data.bin", "/file"])
def test_http2_over_tls_serves_ranges(port: int, cert: tuple[Path, Path], path: str) -> None:
    ctx = client_context(cert, ["h2", "http/1.1"])
    r = h2_get(port, ctx, path, {"range": "bytes=100-299"})
    assert r.status == 206
    assert r.headers["content-range"] == f"bytes 100-299/{len(DATA)}"
    assert r.body == DATA[100:300]
    full = h2_get(port, ctx, path, {})
    assert full.status == 200 and full.body == DATA
    r = h2_get(port, ctx, path, {"if-none-match": full.headers["etag"]})
    assert r.status == 304 and r.body == b""
    assert h2_get(port, ctx, path, {"range": "bytes=999999-"}).status == 416


def test_http11_over_tls(port: int, cert: tuple[Path, Path]) -> None:
    ctx = client_context(cert, ["http/1.1"])
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=10)
    conn.request("GET", "/static/data.bin", headers={"Range": "bytes=0-9"})
    r = conn.getresponse()
    assert r.status == 206 and r.read() == DATA[:10]
    conn.request("GET", "/scheme")
    assert r.status == 206
    r = conn.getresponse()
    assert r.read() == b'{"scheme":"https","secure":true}\n'
    conn.close()


@pytest.fixture
def big_port(tmp_path: Path, cert: tuple[Path, Path], serve: Callable[..., Any]) -> int:
    app = big_bodies.make_app(tmp_path)
    return int(serve(app, ssl_context=(str(cert[0]), str(cert[1]))).port)


def test_http11_over_tls_pipelines_multi_mib_bodies(big_port: int, cert: tuple[Path, Path]) -> None:
    ctx = client_context(cert, ["http/1.1"])
    with socket.create_connection(("127.0.0.1", big_port), timeout=30) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            assert s.selected_alpn_protocol() == "http/1.1"
            big_bodies.check(big_bodies.http1_pipelined(s))


def test_http2_over_tls_multi_mib_streams(big_port: int, cert: tuple[Path, Path]) -> None:
    ctx = client_context(cert, ["h2", "http/1.1"])
    requests = [(m, p, h) for m, p, h, _ in big_bodies.REQUESTS]
    big_bodies.check(h2_over_tls(big_port, ctx, requests))


def test_a_body_sent_in_full_past_the_limit_still_gets_its_413_over_tls(
    port: int, cert: tuple[Path, Path]
) -> None:
    """A browser posting a too-large file over HTTPS sends all of it before it
    reads. The engine answers 413 from the head; closing with the client's
    bytes unread would reset the connection under the client's send, so an
    HTTPS connection lingers (reads and drops them) as a plain one does."""
    size = 16 * 1024 * 1024  # past any socket buffers on loopback
    ctx = client_context(cert, ["http/1.1"])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            s.sendall(
                f"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: {size}\r\n\r\n".encode()
            )
            block = b"u" * 65536
            for _ in range(size // len(block)):
                s.sendall(block)  # a ConnectionResetError here is the defect
            head = s.recv(4096)
    assert head.startswith(b"HTTP/1.1 413"), head


def test_plain_http_to_tls_port_is_refused(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            data = s.recv(4096)
        except ConnectionResetError:
            data = b""
    assert not data.startswith(b"HTTP/1.1 200")


def test_bad_certificate_paths_fail_clearly(tmp_path: Path) -> None:
    app = BustAPI(static_folder=None)
    with pytest.raises(ValueError, match="certificate"):
        app._configure(None, {"ssl_context": (str(tmp_path / "nope.pem"), str(tmp_path / "k.pem"))})
