"""Shared fixtures: real servers on ephemeral ports, and one client interface for
both real sockets and the in-process test client."""

from __future__ import annotations

import datetime as dt
import http.client
import ipaddress
import json as _json
import re
import signal
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Callable, Optional, Union

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
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    d = tmp_path_factory.mktemp("tls")
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
    cert_pem, key_pem = d / "cert.pem", d / "key.pem"
    cert_pem.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_pem, key_pem


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
