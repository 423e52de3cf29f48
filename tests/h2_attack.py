"""HTTP/2 attack clients (python ``h2``) and a process-memory probe, shared by
``tests/test_h2_attacks.py`` and ``bench/h2_stall.py``.

Every loop here is bounded in count and time, and only ever talks to loopback.
"""

from __future__ import annotations

import socket
import ssl
import time
from typing import Optional

import h2.config
import h2.connection
import h2.events
import h2.settings


def rss_kib(pid: int) -> int:
    """Resident set size of process ``pid`` in KiB (``VmRSS`` in /proc)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


def settled_rss_kib(pid: int, seconds: float = 15, quiet_for: float = 1.0) -> int:
    """RSS once it has stopped moving (within 1 MiB for ``quiet_for`` seconds),
    or the last reading after ``seconds``."""
    deadline = time.monotonic() + seconds
    last = rss_kib(pid)
    still_since = time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = rss_kib(pid)
        if abs(now - last) > 1024:
            last, still_since = now, time.monotonic()
        elif time.monotonic() - still_since >= quiet_for:
            return now
    return rss_kib(pid)


def h2_socket(
    port: int, tls: Optional[ssl.SSLContext] = None, timeout: float = 10
) -> socket.socket:
    """A connected socket speaking HTTP/2: h2c with prior knowledge, or TLS with
    ALPN ``h2`` when ``tls`` is given."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    if tls is None:
        return sock
    wrapped = tls.wrap_socket(sock, server_hostname="127.0.0.1")
    assert wrapped.selected_alpn_protocol() == "h2", "HTTP/2 was not negotiated by ALPN"
    return wrapped


def client(initial_window: Optional[int] = None) -> h2.connection.H2Connection:
    """A client-side connection whose preface is queued; ``initial_window``
    replaces the 65,535-byte default stream window (0: the server may send no
    DATA until a WINDOW_UPDATE, which a stalling client never sends)."""
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    if initial_window is not None:
        conn.local_settings = h2.settings.Settings(
            client=True,
            initial_values={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: initial_window},
        )
    conn.initiate_connection()
    return conn


def request_headers(path: str) -> list[tuple[str, str]]:
    return [(":method", "GET"), (":scheme", "http"), (":authority", "localhost"), (":path", path)]


class Stalled:
    """One connection with ``streams`` GETs of ``path`` whose stream window is
    zero: the server answers each with a head, then can send no body byte."""

    def __init__(
        self,
        port: int,
        path: str,
        streams: int,
        tls: Optional[ssl.SSLContext] = None,
        timeout: float = 20,
    ) -> None:
        self.sock = h2_socket(port, tls, timeout)
        self.conn = client(initial_window=0)
        self.sock.sendall(self.conn.data_to_send())
        for _ in range(streams):
            self.conn.send_headers(
                self.conn.get_next_available_stream_id(), request_headers(path), end_stream=True
            )
        self.sock.sendall(self.conn.data_to_send())
        self.heads = 0
        deadline = time.monotonic() + timeout
        while self.heads < streams and time.monotonic() < deadline:
            data = self.sock.recv(65536)
            if not data:
                break
            for event in self.conn.receive_data(data):
                if isinstance(event, h2.events.ResponseReceived):
                    self.heads += 1
            self.sock.sendall(self.conn.data_to_send())

    def close(self) -> None:
        self.sock.close()


def get(
    port: int, path: str, tls: Optional[ssl.SSLContext] = None, timeout: float = 20
) -> tuple[int, bytes]:
    """One ordinary HTTP/2 GET, read to the end: ``(status, body)``."""
    with h2_socket(port, tls, timeout) as sock:
        conn = client()
        stream = conn.get_next_available_stream_id()
        conn.send_headers(stream, request_headers(path), end_stream=True)
        sock.sendall(conn.data_to_send())
        status, body = 0, bytearray()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            data = sock.recv(65536)
            if not data:
                raise AssertionError("the server closed the connection mid-response")
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.ResponseReceived):
                    status = int(dict(event.headers)[b":status"])
                elif isinstance(event, h2.events.DataReceived):
                    body += event.data
                    conn.acknowledge_received_data(event.flow_controlled_length, stream)
                elif isinstance(event, h2.events.StreamEnded):
                    return status, bytes(body)
                elif isinstance(event, h2.events.StreamReset):
                    raise AssertionError(f"stream reset: {event.error_code}")
            sock.sendall(conn.data_to_send())
        raise AssertionError("the response did not finish in time")
