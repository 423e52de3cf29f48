"""Shared fixtures: real servers on ephemeral ports, and one client interface for
both real sockets and the in-process test client."""

from __future__ import annotations

import datetime as dt
import http.client
import ipaddress
import json as _json
import re
import resource
import signal
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, BinaryIO, Callable, Optional, Union

import pytest
from bustapi import BustAPI
from bustapi.testing import LiveServer


@dataclass
class Result:
    status: int
    headers: dict[str, str]  # lower-case names; repeated fields joined with ", "
    body: bytes

    @property
    def json(self) -> Any:
        return _json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode()


def http_request(
    port: int,
    method: str,
    path: str,
    headers: Optional[dict[str, str]] = None,
    body: Optional[bytes] = None,
    host: str = "127.0.0.1",
    timeout: float = 30,
) -> Result:
    """One request over a fresh TCP connection, with no client-side rewriting."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        for k, v in (headers or {}).items():
            conn.putheader(k, v)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        resp = conn.getresponse()
        data = resp.read()
        hdrs: dict[str, str] = {}
        for k, v in resp.getheaders():
            k = k.lower()
            hdrs[k] = f"{hdrs[k]}, {v}" if k in hdrs else v
        return Result(resp.status, hdrs, data)
    finally:
        conn.close()


def raw_exchange(port: int, payload: bytes, timeout: float = 10) -> bytes:
    """Writes raw bytes and reads until the server closes (or the timeout)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(payload)
        chunks = []
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
        except socket.timeout:
            pass
        return b"".join(chunks)


def read_response(stream: BinaryIO, method: str = "GET") -> Result:
    """Reads exactly one HTTP/1.x response from a buffered socket file (``sock.makefile("rb")``):
    the head, then a body framed by Content-Length or chunked coding, and not one byte more,
    so responses pipelined back to back parse exactly or fail loudly."""
    status_line = stream.readline()
    assert status_line, "the connection closed where a response should start"
    m = re.fullmatch(rb"HTTP/1\.[01] (\d{3}) [^\r\n]*\r\n", status_line)
    assert m, f"not a status line: {status_line[:200]!r}"
    status = int(m.group(1))
    headers: dict[str, str] = {}
    while (line := stream.readline()) != b"\r\n":
        name, colon, value = line.partition(b":")
        assert colon and line.endswith(b"\r\n"), f"bad header line: {line[:200]!r}"
        k, v = name.decode().lower(), value.strip().decode("latin-1")
        headers[k] = f"{headers[k]}, {v}" if k in headers else v
    if method == "HEAD" or status in (204, 304) or status < 200:
        return Result(status, headers, b"")
    if "transfer-encoding" in headers:
        assert headers["transfer-encoding"] == "chunked" and "content-length" not in headers
        chunks = []
        while size := int(stream.readline().split(b";")[0], 16):
            chunks.append(read_exactly(stream, size))
            assert stream.read(2) == b"\r\n", "chunk not followed by CRLF"
        while stream.readline() != b"\r\n":  # trailers
            pass
        return Result(status, headers, b"".join(chunks))
    return Result(status, headers, read_exactly(stream, int(headers["content-length"])))


def read_exactly(stream: BinaryIO, n: int) -> bytes:
    data = stream.read(n)
    assert len(data) == n, f"the connection closed after {len(data)} of {n} body bytes"
    return data


def assert_same_bytes(got: bytes, want: bytes, what: str = "body") -> None:
    """``got == want`` without pytest printing megabytes of diff on failure."""
    if got != want:
        diffs = (i for i, (a, b) in enumerate(zip(got, want)) if a != b)
        at = next(diffs, min(len(got), len(want)))
        raise AssertionError(
            f"{what}: got {len(got)} bytes, expected {len(want)}; first difference at {at}"
        )


def parse_multipart(r: Result) -> list[tuple[str, str, bytes]]:
    """The parts of a multipart/byteranges body as ``(content-type, content-range, bytes)``."""
    m = re.fullmatch(r"multipart/byteranges; boundary=(\S+)", r.headers["content-type"])
    assert m, r.headers["content-type"]
    boundary = m.group(1).encode()
    assert int(r.headers["content-length"]) == len(r.body)
    parts = []
    chunks = r.body.split(b"--" + boundary)
    assert chunks[-1] == b"--\r\n", "no closing delimiter"
    for chunk in chunks[1:-1]:
        head, _, body = chunk.partition(b"\r\n\r\n")
        fields = dict(
            line.split(": ", 1) for line in head.decode().strip("\r\n").split("\r\n") if line
        )
        assert body.endswith(b"\r\n")
        parts.append((fields["Content-Type"], fields["Content-Range"], body[:-2]))
    return parts


def file_slices(r: Result, content: bytes) -> list[tuple[int, int]]:
    """Checks a 200 or 206 response of a file against the file's ``content`` (Content-Length,
    Content-Range and every byte) and returns the inclusive ranges it carried."""
    size = len(content)

    def span(content_range: str) -> tuple[int, int]:
        m = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+)", content_range)
        assert m and int(m.group(3)) == size, content_range
        return int(m.group(1)), int(m.group(2))

    assert int(r.headers["content-length"]) == len(r.body), "Content-Length disagrees with the body"
    if r.status == 200:
        assert_same_bytes(r.body, content)
        return [(0, size - 1)]
    assert r.status == 206, r.status
    if r.headers["content-type"].startswith("multipart/byteranges"):
        spans = []
        for i, (_, content_range, body) in enumerate(parse_multipart(r)):
            start, end = span(content_range)
            assert_same_bytes(body, content[start : end + 1], f"part {i} ({content_range})")
            spans.append((start, end))
        return spans
    start, end = span(r.headers["content-range"])
    assert_same_bytes(r.body, content[start : end + 1], r.headers["content-range"])
    return [(start, end)]


def h2_exchange(
    sock: socket.socket,
    requests: list[tuple[str, str, dict[str, str]]],
    scheme: str = "http",
) -> list[Result]:
    """Sends ``(method, path, headers)`` requests as concurrent streams on one HTTP/2
    connection over ``sock`` (plain for h2c prior knowledge, or TLS after ALPN chose h2),
    honouring flow control with h2's default 64 KiB windows, and returns the responses
    in request order."""
    import h2.config
    import h2.connection
    import h2.events

    # Like real HTTP/2 clients: else Nagle holds a WINDOW_UPDATE until the server's
    # delayed ACK (40 ms), and the server waits on the window meanwhile.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    streams = []
    for method, path, headers in requests:
        sid = conn.get_next_available_stream_id()
        pseudo = [(":method", method), (":path", path), (":scheme", scheme)]
        conn.send_headers(sid, [*pseudo, (":authority", "127.0.0.1"), *headers.items()])
        conn.end_stream(sid)
        streams.append(sid)
    sock.sendall(conn.data_to_send())
    heads: dict[int, list[tuple[bytes, bytes]]] = {}
    bodies: dict[int, list[bytes]] = {sid: [] for sid in streams}
    open_streams = set(streams)
    while open_streams:
        data = sock.recv(65536)
        assert data, f"the connection closed with streams {sorted(open_streams)} unfinished"
        for event in conn.receive_data(data):
            if isinstance(event, h2.events.ResponseReceived):
                heads[event.stream_id] = event.headers
            elif isinstance(event, h2.events.DataReceived):
                bodies[event.stream_id].append(event.data)
                conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.StreamEnded):
                open_streams.discard(event.stream_id)
            elif isinstance(event, (h2.events.StreamReset, h2.events.ConnectionTerminated)):
                raise AssertionError(f"the server ended the exchange: {event}")
        sock.sendall(conn.data_to_send())
    results = []
    for sid in streams:
        fields: dict[str, str] = {}
        for k, v in heads[sid]:
            name, value = k.decode(), v.decode("latin-1")
            fields[name] = f"{fields[name]}, {value}" if name in fields else value
        results.append(Result(int(fields.pop(":status")), fields, b"".join(bodies[sid])))
    return results


def allow_open_files(n: int) -> None:
    """Lets this process (and the servers it starts) hold ``n`` sockets and some
    spare descriptors, or skips the test where the hard limit is lower."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < n + 200:
        pytest.skip(f"open-files limit {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, n + 200), hard))


def start_server(
    argv: list[str], cwd: Any = None, stderr: Union[int, IO[str]] = subprocess.STDOUT
) -> tuple[subprocess.Popen[str], int, str]:
    """Starts a server process and waits for its start-up line; returns
    ``(process, port, line)``."""
    proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=stderr, text=True)
    assert proc.stdout is not None
    for _ in range(5):
        line = proc.stdout.readline()
        m = re.search(r"https?://127\.0\.0\.1:(\d+)/", line)
        if m:
            return proc, int(m.group(1)), line
    stop_process(proc)
    raise AssertionError("the server printed no start-up line with its URL")


def stop_process(
    proc: subprocess.Popen[Any], sig: int = signal.SIGTERM, timeout: float = 15
) -> None:
    """Asks a process to stop with ``sig``; kills it if it does not within ``timeout``."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def closed_within(sock: socket.socket, seconds: float) -> bool:
    """Whether the server closes ``sock`` (EOF or reset) within ``seconds``;
    whatever it still sends meanwhile is read and dropped."""
    sock.settimeout(seconds)
    try:
        while sock.recv(65536):
            pass
        return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


def self_signed_cert(directory: Path) -> tuple[Path, Path]:
    """Writes a self-signed certificate for 127.0.0.1 and its key (PEM) into
    ``directory``; returns ``(cert, key)``."""

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_pem, key_pem = directory / "cert.pem", directory / "key.pem"
    cert_pem.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_pem, key_pem


class Client:
    """The same calls over a real socket or through ``app.test_client()``."""

    def __init__(self, app: BustAPI, kind: str, port: Optional[int] = None) -> None:
        self.app, self.kind, self.port = app, kind, port

    def open(
        self,
        method: str,
        path: str,
        headers: Optional[dict[str, str]] = None,
        data: Optional[bytes] = None,
        json: Any = None,
    ) -> Result:
        headers = dict(headers or {})
        if json is not None:
            data = _json.dumps(json).encode()
            headers.setdefault("Content-Type", "application/json")
        if self.kind == "socket":
            assert self.port is not None
            return http_request(self.port, method, path, headers, data)
        r = self.app.test_client().open(path, method, headers=headers, data=data)
        hdrs: dict[str, str] = {}
        for k, v in r.headers.items():
            k = k.lower()
            hdrs[k] = f"{hdrs[k]}, {v}" if k in hdrs else v
        return Result(r.status_code, hdrs, r.data)

    def get(self, path: str, **kw: Any) -> Result:
        return self.open("GET", path, **kw)

    def head(self, path: str, **kw: Any) -> Result:
        return self.open("HEAD", path, **kw)

    def post(self, path: str, **kw: Any) -> Result:
        return self.open("POST", path, **kw)


@pytest.fixture(scope="session")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made at test time:
    ``(cert.pem, key.pem)``."""
    return self_signed_cert(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def serve() -> Iterator[Callable[..., LiveServer]]:
    """``serve(app)`` starts ``app`` on an ephemeral port; stopped after the test."""
    servers: list[LiveServer] = []

    def _serve(app: BustAPI, **options: Any) -> LiveServer:
        server = LiveServer(app, **options).start()
        servers.append(server)
        return server

    yield _serve
    for s in servers:
        s.stop()


@pytest.fixture(params=["socket", "test_client"])
def client_for(
    request: pytest.FixtureRequest, serve: Callable[..., LiveServer]
) -> Callable[[BustAPI], Client]:
    """``client_for(app)``: a :class:`Client` of the parametrised kind."""

    def make(app: BustAPI) -> Client:
        if request.param == "socket":
            return Client(app, "socket", serve(app).port)
        return Client(app, "test_client")

    return make


class Framework:
    """Flask or BustAPI behind one interface, so a scenario is written once and
    Flask's answer is the expected one: ``fw.App(__name__)`` is ``Flask`` or
    ``BustAPI``; every other name (``fw.session``, ``fw.url_for``...) comes from
    the framework's package."""

    def __init__(self, name: str) -> None:
        import importlib

        self.name = name
        self.module = importlib.import_module(name)
        self.App: Any = self.module.Flask if name == "flask" else self.module.BustAPI

    def __getattr__(self, name: str) -> Any:
        return getattr(self.module, name)

    def __repr__(self) -> str:
        return self.name


@pytest.fixture(params=["flask", "bustapi"])
def fw(request: pytest.FixtureRequest) -> Framework:
    """The same test against Flask 3.1 (the reference, installed for tests only) and
    against BustAPI."""
    return Framework(request.param)
