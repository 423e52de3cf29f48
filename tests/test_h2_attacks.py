"""HTTP/2 resource attacks against a server process: stalled flow-control
windows, rapid reset, CONTINUATION flood and SETTINGS flood. Each must leave
the server's memory bounded and a normal client served."""

from __future__ import annotations

import socket
import ssl
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Optional

import h2.settings
import hpack
import hyperframe.frame
import pytest
from conftest import start_server, stop_process
from h2_attack import Stalled, client, get, h2_socket, request_headers, rss_kib, settled_rss_kib

BIG = 64 << 20  # far past the in-memory cache: every stream reads the file

APP = textwrap.dedent(
    """
    from bustapi import BustAPI
    app = BustAPI(static_folder={static!r})

    @app.route("/hello")
    def hello():
        return "hi"

    app.run(port=0, io_threads=2{tls})
    """
)


class Server:
    def __init__(self, proc: subprocess.Popen[str], port: int, tls: Optional[ssl.SSLContext]):
        self.proc, self.port, self.tls = proc, port, tls


@pytest.fixture(params=["h2c", "tls"])
def server(
    request: pytest.FixtureRequest, tmp_path: Path, cert: tuple[Path, Path]
) -> Iterator[Server]:
    """A server process (its own RSS to measure) with a large sparse file."""
    static = tmp_path / "static"
    static.mkdir()
    with open(static / "video.mp4", "wb") as f:
        f.truncate(BIG)
    tls, option = None, ""
    if request.param == "tls":
        option = f", ssl_context=({str(cert[0])!r}, {str(cert[1])!r})"
        tls = ssl.create_default_context(cafile=str(cert[0]))
        tls.set_alpn_protocols(["h2"])
    script = tmp_path / "app.py"
    script.write_text(APP.format(static=str(static), tls=option))
    proc, port, _ = start_server([sys.executable, str(script)], stderr=subprocess.DEVNULL)
    try:
        yield Server(proc, port, tls)
    finally:
        stop_process(proc)


def normal_client_is_served(server: Server) -> None:
    status, body = get(server.port, "/hello", server.tls)
    assert (status, body) == (200, b"hi")
    status, body = get(server.port, "/static/video.mp4", server.tls)
    assert status == 200 and len(body) == BIG


def test_stalled_streams_hold_little_memory_and_give_it_back(server: Server) -> None:
    """1,000 streams on 10 connections ask for a large file and never open their
    window. Before the fix each pinned two 256 KiB read chunks (~500 MiB in all)
    and glibc kept the memory afterwards."""
    normal_client_is_served(server)
    base = settled_rss_kib(server.proc.pid)
    attackers = [Stalled(server.port, "/static/video.mp4", 100, server.tls) for _ in range(10)]
    try:
        assert sum(a.heads for a in attackers) == 1000, "every stream got its response head"
        grown = settled_rss_kib(server.proc.pid) - base
        # ~21 KiB per stream measured (a 16 KiB chunk plus stream state).
        assert grown < 100 * 1024, f"RSS grew by {grown // 1024} MiB under 1,000 stalled streams"
        normal_client_is_served(server)
    finally:
        for a in attackers:
            a.close()
    deadline = time.monotonic() + 20
    while rss_kib(server.proc.pid) > base + 8 * 1024 and time.monotonic() < deadline:
        time.sleep(0.2)
    after = rss_kib(server.proc.pid)
    assert after <= base + 8 * 1024, f"RSS {after // 1024} MiB did not return to {base // 1024}"
    normal_client_is_served(server)


def frames(data: bytes) -> Iterator[tuple[int, bytes]]:
    """(type, payload) of each whole HTTP/2 frame in ``data``."""
    while len(data) >= 9:
        length = int.from_bytes(data[:3], "big")
        if len(data) < 9 + length:
            return
        yield data[3], data[9 : 9 + length]
        data = data[9 + length :]


GOAWAY = 0x7


def read_until_closed(sock: socket.socket, seconds: float) -> tuple[bytes, bool]:
    """Everything the server sends for ``seconds`` and whether it closed."""
    sock.settimeout(seconds)
    got = bytearray()
    try:
        while chunk := sock.recv(65536):
            got += chunk
        return bytes(got), True
    except socket.timeout:
        return bytes(got), False
    except OSError:  # reset, or TLS cut without close_notify
        return bytes(got), True


def goaway_code(data: bytes) -> Optional[int]:
    for kind, payload in frames(data):
        if kind == GOAWAY:
            return int.from_bytes(payload[4:8], "big")
    return None


ENHANCE_YOUR_CALM = 0xB


def test_rapid_reset_is_cut(server: Server) -> None:
    """Streams opened and cancelled at once (CVE-2023-44487) cost the server
    work but no response: past a small number the connection gets GOAWAY."""
    sock = h2_socket(server.port, server.tls)
    conn = client()
    burst = bytearray(conn.data_to_send())
    for _ in range(2000):
        stream = conn.get_next_available_stream_id()
        conn.send_headers(stream, request_headers("/hello"))
        conn.reset_stream(stream)
        burst += conn.data_to_send()
    try:
        sock.sendall(bytes(burst))
    except OSError:
        pass  # cut before the burst was even all sent
    data, closed = read_until_closed(sock, 10)
    sock.close()
    assert goaway_code(data) == ENHANCE_YOUR_CALM, "no GOAWAY(ENHANCE_YOUR_CALM)"
    assert closed, "the connection stayed open"
    normal_client_is_served(server)


def test_continuation_flood_is_cut(server: Server) -> None:
    """A header block that never ends (HEADERS without END_HEADERS, then
    CONTINUATION after CONTINUATION) must not be buffered without bound."""
    sock = h2_socket(server.port, server.tls)
    conn = client()
    sock.sendall(conn.data_to_send())
    encoder = hpack.Encoder()
    head = encoder.encode(request_headers("/hello"))
    filler = encoder.encode([hpack.NeverIndexedHeaderTuple("x-flood", "a" * 1000)], huffman=False)
    sent = 0
    try:
        sock.sendall(hyperframe.frame.HeadersFrame(1, data=head).serialize())
        for _ in range(4096):  # 4 MiB of header block, 64 times the head limit
            sock.sendall(hyperframe.frame.ContinuationFrame(1, data=filler).serialize())
            sent += len(filler)
    except OSError:
        pass  # cut
    data, closed = read_until_closed(sock, 10)
    sock.close()
    assert goaway_code(data) is not None or closed, f"still open after {sent} header bytes"
    assert closed, "the connection stayed open"
    normal_client_is_served(server)


def test_settings_flood_is_pushed_back(server: Server) -> None:
    """SETTINGS frames sent without ever reading the ACKs: the server must stop
    reading (each ACK is written before more frames are read) or cut the
    connection, not queue ACKs in memory for as long as the peer sends."""
    sock = h2_socket(server.port, server.tls, timeout=5)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    conn = client()
    sock.sendall(conn.data_to_send())
    settings = hyperframe.frame.SettingsFrame(
        0, settings={h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 100}
    ).serialize()
    batch = settings * 4096
    limit, sent, stopped = 256 << 20, 0, ""
    base = rss_kib(server.proc.pid)
    while sent < limit:
        try:
            sock.sendall(batch)
        except socket.timeout:
            stopped = "pushed back"
            break
        except OSError:
            stopped = "cut"
            break
        sent += len(batch)
    grown = rss_kib(server.proc.pid) - base
    try:
        assert stopped, f"the server took {sent >> 20} MiB of SETTINGS without pushing back"
        assert grown < 64 * 1024, f"RSS grew by {grown // 1024} MiB"
        normal_client_is_served(server)
    finally:
        sock.close()
