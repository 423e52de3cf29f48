"""Streamed responses: sync and async generators, back-pressure, close() on disconnect."""

from __future__ import annotations

import asyncio
import inspect
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any, Callable

import pytest
from bustapi import BustAPI, StreamingResponse, request
from conftest import http_request

CHUNK = b"x" * 65536


class Probe:
    def __init__(self) -> None:
        self.produced = 0
        self.closed = threading.Event()
        self.gen: Any = None


@pytest.fixture
def probe() -> Probe:
    return Probe()


@pytest.fixture
def port(probe: Probe, serve: Callable[..., Any]) -> int:
    app = BustAPI(static_folder=None)

    @app.route("/gen")
    def gen() -> Iterator[str]:
        def numbers() -> Iterator[str]:
            for i in range(5):
                yield f"line {i} of {request.path}\n"

        return numbers()

    @app.route("/async")
    def agen() -> StreamingResponse:
        async def ticks() -> AsyncIterator[bytes]:
            for i in range(3):
                await asyncio.sleep(0.01)
                yield f"tick {i}\n".encode()

        return StreamingResponse(ticks(), media_type="text/plain", headers={"X-Stream": "1"})

    @app.route("/endless")
    def endless() -> StreamingResponse:
        def forever() -> Iterator[bytes]:
            try:
                while True:
                    probe.produced += 1
                    yield CHUNK
            finally:
                probe.closed.set()

        probe.gen = forever()
        return StreamingResponse(probe.gen, media_type="application/octet-stream")

    @app.route("/broken")
    def broken() -> StreamingResponse:
        def fails() -> Iterator[bytes]:
            yield b"first\n"
            raise RuntimeError("generator failed")

        return StreamingResponse(fails())

    return int(serve(app).port)


def test_sync_generator_is_chunked_with_request_context(port: int) -> None:
    r = http_request(port, "GET", "/gen")
    assert r.status == 200
    assert r.headers["transfer-encoding"] == "chunked"
    assert "content-length" not in r.headers
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    assert r.body == b"".join(f"line {i} of /gen\n".encode() for i in range(5))


def test_async_generator(port: int) -> None:
    r = http_request(port, "GET", "/async")
    assert r.status == 200 and r.headers["x-stream"] == "1"
    assert r.headers["content-type"] == "text/plain; charset=utf-8"
    assert r.body == b"tick 0\ntick 1\ntick 2\n"


def test_head_never_starts_the_generator(port: int, probe: Probe) -> None:
    r = http_request(port, "HEAD", "/endless")
    assert r.status == 200 and r.body == b""
    deadline = time.monotonic() + 5
    while inspect.getgeneratorstate(probe.gen) != inspect.GEN_CLOSED:
        assert time.monotonic() < deadline, "the unused generator was not closed"
        time.sleep(0.01)
    assert probe.produced == 0


def test_back_pressure_and_close_on_disconnect(port: int, probe: Probe) -> None:
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET /endless HTTP/1.1\r\nHost: x\r\n\r\n")
    s.recv(65536)
    time.sleep(1.0)  # stop reading: the server must stop producing
    stalled_at = probe.produced
    time.sleep(1.0)
    assert probe.produced == stalled_at, (
        "the generator kept running for a client that reads nothing"
    )
    # Only what fits in socket buffers was produced, not an unbounded amount.
    assert stalled_at * len(CHUNK) < 64 * 1024 * 1024
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    s.close()
    assert probe.closed.wait(10), "close() was not called after the client went away"


def test_generator_error_cuts_the_stream(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET /broken HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 200")
    assert b"first\n" in data
    assert not data.endswith(b"0\r\n\r\n"), "a failed stream must not look complete"
    assert http_request(port, "GET", "/gen").status == 200


def test_streaming_response_type_errors() -> None:
    with pytest.raises(TypeError):
        StreamingResponse(b"not an iterator")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        StreamingResponse(42)  # type: ignore[arg-type]
