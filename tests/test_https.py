"""HTTPS on rustls with HTTP/2 by ALPN: ranges and conditionals as over plain HTTP."""

from __future__ import annotations

import http.client
import socket
import ssl
from pathlib import Path
from typing import Any, Callable

import pytest
from bustapi import BustAPI, FileResponse, request, send_file

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

    return int(serve(app, ssl_context=(str(cert[0]), str(cert[1]))).port)


def client_context(cert: tuple[Path, Path], alpn: list[str]) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(cert[0]))
    ctx.set_alpn_protocols(alpn)
    return ctx


def h2_get(
    port: int, ctx: ssl.SSLContext, path: str, headers: dict[str, str]
) -> tuple[dict[bytes, bytes], bytes]:
    import h2.config
    import h2.connection
    import h2.events

    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            assert s.selected_alpn_protocol() == "h2", "HTTP/2 was not negotiated by ALPN"
            conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
            conn.initiate_connection()
            sid = conn.get_next_available_stream_id()
            conn.send_headers(
                sid,
                [
                    (":method", "GET"),
                    (":path", path),
                    (":scheme", "https"),
                    (":authority", "127.0.0.1"),
                    *headers.items(),
                ],  # fmt: skip
                end_stream=True,
            )
            s.sendall(conn.data_to_send())
            resp: dict[bytes, bytes] = {}
            body, done = b"", False
            while not done:
                data = s.recv(65536)
                assert data, "connection closed mid-response"
                for event in conn.receive_data(data):
                    if isinstance(event, h2.events.ResponseReceived):
                        resp = dict(event.headers)
                    elif isinstance(event, h2.events.DataReceived):
                        body += event.data
                        conn.acknowledge_received_data(event.flow_controlled_length, sid)
                    elif isinstance(event, h2.events.StreamEnded):
                        done = True
                s.sendall(conn.data_to_send())
            return resp, body


@pytest.mark.parametrize("path", ["/static/data.bin", "/file"])
def test_http2_over_tls_serves_ranges(port: int, cert: tuple[Path, Path], path: str) -> None:
    ctx = client_context(cert, ["h2", "http/1.1"])
    resp, body = h2_get(port, ctx, path, {"range": "bytes=100-299"})
    assert resp[b":status"] == b"206"
    assert resp[b"content-range"] == f"bytes 100-299/{len(DATA)}".encode()
    assert body == DATA[100:300]
    full, body = h2_get(port, ctx, path, {})
    assert full[b":status"] == b"200" and body == DATA
    resp, body = h2_get(port, ctx, path, {"if-none-match": full[b"etag"].decode()})
    assert resp[b":status"] == b"304" and body == b""
    resp, _ = h2_get(port, ctx, path, {"range": "bytes=999999-"})
    assert resp[b":status"] == b"416"


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
