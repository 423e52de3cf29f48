"""Timeouts and limits that keep hostile or broken clients from pinning the server."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import Any, Callable

import pytest
from bustapi import BustAPI
from conftest import closed_within, http_request


@pytest.fixture
def app(tmp_path: Path) -> BustAPI:
    static = tmp_path / "static"
    static.mkdir()
    (static / "big.bin").write_bytes(os.urandom(32 * 1024 * 1024))
    app = BustAPI(static_folder=str(static))

    @app.route("/hello")
    def hello() -> str:
        return "hi"

    return app


def test_slowloris_head_is_cut_by_header_timeout(app: BustAPI, serve: Callable[..., Any]) -> None:
    port = serve(app, header_read_timeout=1.0).port
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        assert closed_within(s, 10), "a request head that never completes kept the connection"
    assert http_request(port, "GET", "/hello").status == 200


def test_idle_keep_alive_connection_is_closed(app: BustAPI, serve: Callable[..., Any]) -> None:
    port = serve(app, header_read_timeout=1.0).port
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        s.settimeout(5)
        assert s.recv(4096).startswith(b"HTTP/1.1 200")
        assert closed_within(s, 10), "an idle keep-alive connection was kept forever"


def test_stalled_reader_is_disconnected(app: BustAPI, serve: Callable[..., Any]) -> None:
    port = serve(app, write_timeout=1.0).port
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"GET /static/big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(3)  # never read while the server tries to write 32 MiB
        # What the kernel had already buffered still arrives; then the stream ends.
        received, ended = 0, False
        s.settimeout(10)
        try:
            while chunk := s.recv(1 << 20):
                received += len(chunk)
            ended = True
        except ConnectionResetError:
            ended = True
        except socket.timeout:
            pass
        assert ended, "the connection was neither finished nor closed"
        assert received < 32 * 1024 * 1024, "the stalled client got everything: no write timeout"
    assert http_request(port, "GET", "/hello").status == 200


def test_connections_beyond_the_limit_wait(app: BustAPI, serve: Callable[..., Any]) -> None:
    port = serve(app, max_connections=2).port
    held = [socket.create_connection(("127.0.0.1", port)) for _ in range(2)]
    for s in held:
        s.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        s.settimeout(5)
        assert s.recv(4096).startswith(b"HTTP/1.1 200")
    waiting = socket.create_connection(("127.0.0.1", port))
    waiting.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
    waiting.settimeout(0.5)
    with pytest.raises(socket.timeout):
        waiting.recv(4096)  # queued in the backlog, not served, not refused
    held[0].close()
    waiting.settimeout(10)
    assert waiting.recv(4096).startswith(b"HTTP/1.1 200")
    for s in [waiting, *held[1:]]:
        s.close()
