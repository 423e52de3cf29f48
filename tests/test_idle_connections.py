"""Keep-alive connections across their idle phase (crates/bustapi-server/src/idle.rs).

An HTTP/1.1 connection that has been quiet for a while (``QUIET``, 1 s, checked once a
period) gives its hyper state back and its task ends: the socket is parked in the lot
(crates/bustapi-server/src/lot.rs) until the client sends again. Everything a client can
do with a connection must keep working across that: later and pipelined requests, a
request split over the boundary, the head timeout, closing it, graceful shutdown; and the
point of it, the memory, is measured.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any, Callable

import pytest
from bustapi import BustAPI, request
from conftest import allow_open_files, closed_within, read_response, start_server, stop_process
from h2_attack import rss_kib, settled_rss_kib

# Long enough for a connection to be quiet for two whole QUIET periods: idle for sure.
IDLE = 3.0


@pytest.fixture
def app() -> BustAPI:
    app = BustAPI(static_folder=None)

    @app.route("/item/<int:n>")
    def item(n: int) -> dict[str, int]:
        return {"n": n}

    @app.route("/echo", methods=["POST"])
    def echo() -> bytes:
        return request.get_data()

    @app.route("/peer")
    def peer() -> str:
        return f"{request.remote_addr}"

    return app


def get(n: int) -> bytes:
    return b"GET /item/%d HTTP/1.1\r\nHost: x\r\n\r\n" % n


def test_keep_alive_requests_after_idle_phases_incl_pipelined(
    app: BustAPI, serve: Callable[..., Any]
) -> None:
    port = serve(app).port
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        stream = s.makefile("rb")
        s.sendall(get(1))
        assert read_response(stream).json == {"n": 1}
        time.sleep(IDLE)
        s.sendall(get(2))
        assert read_response(stream).json == {"n": 2}
        time.sleep(IDLE)
        # Pipelined: three requests in one write, answered in order.
        s.sendall(
            get(3) + get(4) + b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
        )
        assert read_response(stream).json == {"n": 3}
        assert read_response(stream).json == {"n": 4}
        r = read_response(stream)
        assert (r.status, r.body) == (200, b"hello")


def test_a_request_split_across_the_idle_phase(app: BustAPI, serve: Callable[..., Any]) -> None:
    """The part of the next request hyper had already read when the connection went
    quiet is carried over, and a body that arrives after the phase is read."""
    port = serve(app).port
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        stream = s.makefile("rb")
        s.sendall(get(1) + b"GET /item/2 HTTP/1.1\r\nHo")
        assert read_response(stream).json == {"n": 1}
        time.sleep(IDLE)
        s.sendall(b"st: x\r\n\r\n")
        assert read_response(stream).json == {"n": 2}
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhello")
        time.sleep(IDLE)
        s.sendall(b"world")
        r = read_response(stream)
        assert (r.status, r.body) == (200, b"helloworld")


def test_first_byte_p_is_not_taken_for_http2(app: BustAPI, serve: Callable[..., Any]) -> None:
    """A first segment of only ``P`` could still be the HTTP/2 preface; the rest
    of an HTTP/1.1 POST then arrives and is served."""
    port = serve(app).port
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"P")
        time.sleep(0.3)
        s.sendall(b"OST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nok")
        r = read_response(s.makefile("rb"))
        assert (r.status, r.body) == (200, b"ok")


def test_slowloris_after_an_idle_phase_is_cut(app: BustAPI, serve: Callable[..., Any]) -> None:
    """A head trickled in after the connection went idle is still bounded by the
    head timeout: no phase change restarts the clock for it."""
    port = serve(app, header_read_timeout=3.0).port
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        stream = s.makefile("rb")
        s.sendall(get(1))
        assert read_response(stream).json == {"n": 1}
        time.sleep(2.5)  # idle by now, and still within the timeout
        head = b"GET /item/2 HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200
        cut = False
        for byte in head:  # one byte every 0.25 s: 50 s if never cut
            try:
                s.sendall(bytes([byte]))
            except OSError:
                cut = True
                break
            if closed_within(s, 0.25):
                cut = True
                break
        assert cut, "a trickled head kept the connection open"


def test_the_client_address_survives_the_idle_phase(
    app: BustAPI, serve: Callable[..., Any]
) -> None:
    """A parked connection keeps its peer's address for the requests after it."""
    port = serve(app).port
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        stream = s.makefile("rb")
        peer = b"GET /peer HTTP/1.1\r\nHost: x\r\n\r\n"
        s.sendall(peer)
        assert read_response(stream).body == b"127.0.0.1"
        time.sleep(IDLE)
        s.sendall(peer)
        assert read_response(stream).body == b"127.0.0.1"


def test_parked_connections_the_clients_close_give_their_slots_back(
    app: BustAPI, serve: Callable[..., Any]
) -> None:
    """Three rounds of three connections through ``max_connections=3``: each round
    parks its connections, then the clients close them. A closed connection left in
    the lot would keep its slot, and the next round would wait in the backlog."""
    port = serve(app, max_connections=3).port
    for rnd in range(3):
        conns = []
        for i in range(3):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            conns.append(s)
            s.sendall(get(rnd * 3 + i))
            assert read_response(s.makefile("rb")).json == {"n": rnd * 3 + i}
        time.sleep(IDLE)
        for s in conns:
            s.close()


def test_a_parked_connection_is_closed_at_its_head_deadline(
    app: BustAPI, serve: Callable[..., Any]
) -> None:
    """Idle keep-alive time is bounded by the head timeout from going quiet, and the
    connection closed for it gives its slot back."""
    port = serve(app, header_read_timeout=2.0, max_connections=1).port
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(get(1))
        assert read_response(s.makefile("rb")).json == {"n": 1}
        # Quiet after 1-2 s, closed 2 s later: 4 s, far within 15.
        assert closed_within(s, 15), "an idle connection outlived the head timeout"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(get(2))
        assert read_response(s.makefile("rb")).json == {"n": 2}


def test_idle_connection_does_not_hold_graceful_shutdown(tmp_path: Path) -> None:
    script = tmp_path / "app.py"
    script.write_text(
        textwrap.dedent(
            """
            from bustapi import BustAPI
            app = BustAPI(static_folder=None)

            @app.route("/hello")
            def hello():
                return "hi"

            app.run(port=0, shutdown_timeout=60)
            """
        )
    )
    proc, port, _ = start_server([sys.executable, str(script)])
    try:
        conns = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(20)]
        for s in conns:
            s.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_response(s.makefile("rb")).body == b"hi"
        time.sleep(IDLE)
        proc.send_signal(signal.SIGTERM)
        # Held by the idle connections, it would take the whole 60 s.
        assert proc.wait(20) == 0
        for s in conns:
            assert closed_within(s, 5)
            s.close()
    finally:
        stop_process(proc, signal.SIGKILL)


SERVER = textwrap.dedent(
    """
    import sys
    from bustapi import BustAPI
    app = BustAPI(static_folder=sys.argv[1], static_url_path="/static")
    app.run(port=0, workers=1)
    """
)


def test_idle_connections_hold_little_memory(tmp_path: Path) -> None:
    """3,000 keep-alive connections, each after one static GET, then idle; then each
    asks again and is answered. With hyper's buffers and state kept for every
    connection this debug build grew by ~26 KiB per connection; with a task per idle
    connection ~2.4 KiB; parked in the lot ~0.25 KiB (bench/notes/lean13.md)."""
    n = 3000
    allow_open_files(n)
    (tmp_path / "small.txt").write_bytes(b"hello, world\n")
    script = tmp_path / "server.py"
    script.write_text(SERVER)
    proc, port, _ = start_server(
        [sys.executable, str(script), str(tmp_path)], stderr=subprocess.DEVNULL
    )
    conns: list[socket.socket] = []
    try:
        req = b"GET /static/small.txt HTTP/1.1\r\nHost: x\r\n\r\n"
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(req)
            assert read_response(s.makefile("rb")).body == b"hello, world\n"
        base = settled_rss_kib(proc.pid)
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            conns.append(s)
            s.sendall(req)
            assert read_response(s.makefile("rb")).status == 200
        time.sleep(IDLE)
        grown = settled_rss_kib(proc.pid) - base
        assert grown < n * 5 // 4, f"{n} idle connections grew RSS by {grown} KiB"
        for s in conns:  # every one still served
            s.sendall(req)
            assert read_response(s.makefile("rb")).body == b"hello, world\n"
        assert rss_kib(proc.pid) > 0
    finally:
        for s in conns:
            s.close()
        stop_process(proc)
