"""The nginx site of docs/deployment.md, run by a real nginx in front of BustAPI.

nginx is not a test dependency: without an ``nginx`` binary this module is skipped (the
one optional check of the suite; CI has no nginx, Debian's ``nginx-light`` package is
enough to run it). The documented block is used as written, with only the addresses,
the certificate and the log paths replaced: it must pass ``nginx -t``, then serve
BustAPI over TLS with HTTP/2, pass ranges and the X-Forwarded-* headers, stream
without buffering, and refuse bodies over ``client_max_body_size``.
"""

from __future__ import annotations

import getpass
import http.client
import json
import re
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from bustapi import BustAPI, StreamingResponse, request
from bustapi.testing import LiveServer
from conftest import h2_exchange
from test_docs import read_blocks

DEPLOYMENT = Path(__file__).resolve().parents[1] / "docs" / "deployment.md"
NGINX = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
pytestmark = pytest.mark.skipif(NGINX is None, reason="nginx is not installed (optional)")

BIG = bytes(range(256)) * 16384  # 4 MiB


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def documented_site() -> str:
    (block,) = [b for b in read_blocks(DEPLOYMENT) if b.info == "nginx"]
    return block.code


def substitute(text: str, pattern: str, replacement: str) -> str:
    """``re.sub`` that insists the documented block still has what the test replaces."""
    new, count = re.subn(pattern, replacement, text, flags=re.M)
    assert count, f"docs/deployment.md's nginx block no longer matches {pattern!r}"
    return new


@pytest.fixture(scope="module")
def nginx_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Work folder with the certificate made by the docs' own ```sh setup step."""
    d = tmp_path_factory.mktemp("nginx")
    (setup,) = [b for b in read_blocks(DEPLOYMENT) if b.info == "sh setup"]
    subprocess.run(["bash", "-eu", "-c", setup.code], cwd=d, check=True, capture_output=True)
    return d


def write_config(d: Path, app_port: int, http_port: int, https_port: int) -> Path:
    site = documented_site()
    site = substitute(site, r"server 127\.0\.0\.1:5000;", f"server 127.0.0.1:{app_port};")
    site = substitute(site, r"^\s*listen \[::\].*\n", "")  # the test host may lack IPv6
    site = substitute(site, r"listen 80;", f"listen 127.0.0.1:{http_port};")
    site = substitute(site, r"listen 443 ssl", f"listen 127.0.0.1:{https_port} ssl")
    site = substitute(site, r"ssl_certificate\s+\S+;", f"ssl_certificate {d}/cert.pem;")
    site = substitute(site, r"ssl_certificate_key\s+\S+;", f"ssl_certificate_key {d}/key.pem;")
    site = substitute(site, r"/var/log/nginx/", f"{d}/")
    (d / "site.conf").write_text(site)
    # The parts a distribution's /etc/nginx/nginx.conf provides, pointed into the folder
    # (`user` matters only when the test runs as root: workers then stay root too).
    conf = d / "nginx.conf"
    conf.write_text(
        f"""daemon off;
user {getpass.getuser()};
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 256; }}
http {{
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    include {d}/site.conf;
}}
"""
    )
    return conf


def nginx_argv(d: Path, conf: Path, *extra: str) -> list[str]:
    assert NGINX is not None
    # -e: the start-up error log, before the configuration names one (nginx >= 1.19.5).
    return [NGINX, "-e", str(d / "startup.log"), "-p", str(d), "-c", str(conf), *extra]


class Proxied:
    """BustAPI behind nginx: the ports and a way to release the streaming view."""

    def __init__(self, http_port: int, https_port: int, release: threading.Event):
        self.http_port, self.https_port, self.release = http_port, https_port, release

    def https(self) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection("127.0.0.1", self.https_port, context=tls(), timeout=30)


def tls(alpn: list[str] | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE  # the docs' self-signed cert
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx


def make_app(static: Path, release: threading.Event) -> BustAPI:
    app = BustAPI(static_folder=str(static))

    @app.route("/forwarded")
    def forwarded() -> dict[str, Any]:
        names = ["X-Real-IP", "X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host"]
        return {name: request.headers.get(name) for name in names}

    @app.route("/stream")
    def stream() -> StreamingResponse:
        def chunks() -> Iterator[bytes]:
            yield b"first;"
            release.wait(60)  # until the client has seen the first chunk
            yield b"rest"

        return StreamingResponse(chunks(), media_type="text/plain")

    return app


@pytest.fixture(scope="module")
def proxied(nginx_dir: Path) -> Iterator[Proxied]:
    static = nginx_dir / "static"
    static.mkdir()
    (static / "big.bin").write_bytes(BIG)
    release = threading.Event()
    with LiveServer(make_app(static, release)) as server:
        http_port, https_port = free_port(), free_port()
        conf = write_config(nginx_dir, server.port, http_port, https_port)
        proc = subprocess.Popen(nginx_argv(nginx_dir, conf), stderr=subprocess.PIPE)
        try:
            wait_for_port(https_port, proc, nginx_dir)
            yield Proxied(http_port, https_port, release)
        finally:
            release.set()
            proc.terminate()  # SIGTERM: nginx's fast shutdown
            proc.wait(15)


def wait_for_port(port: int, proc: subprocess.Popen[bytes], d: Path) -> None:
    for _ in range(200):
        assert proc.poll() is None, (d / "error.log").read_text(errors="replace")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            threading.Event().wait(0.05)
    raise AssertionError(f"nginx did not listen on {port}")


def test_documented_block_passes_nginx_t(nginx_dir: Path) -> None:
    conf = write_config(nginx_dir, free_port(), free_port(), free_port())
    proc = subprocess.run(nginx_argv(nginx_dir, conf, "-t"), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "test is successful" in proc.stderr


def test_ranges_and_whole_files_through_https(proxied: Proxied) -> None:
    conn = proxied.https()
    try:
        conn.request("GET", "/static/big.bin", headers={"Range": "bytes=1000000-1999999"})
        r = conn.getresponse()
        assert r.status == 206 and r.read() == BIG[1000000:2000000]
        assert r.getheader("Content-Range") == f"bytes 1000000-1999999/{len(BIG)}"
        conn.request("GET", "/static/big.bin")  # same keep-alive connection
        r = conn.getresponse()
        assert r.status == 200 and r.read() == BIG
    finally:
        conn.close()


def test_http2_is_negotiated(proxied: Proxied) -> None:
    with socket.create_connection(("127.0.0.1", proxied.https_port), timeout=10) as raw:
        with tls(["h2", "http/1.1"]).wrap_socket(raw, server_hostname="127.0.0.1") as s:
            assert s.selected_alpn_protocol() == "h2", "HTTP/2 was not negotiated by ALPN"
            (r,) = h2_exchange(s, [("GET", "/static/big.bin", {"range": "bytes=-100"})], "https")
    assert r.status == 206 and r.body == BIG[-100:]


def test_forwarded_headers_reach_the_app(proxied: Proxied) -> None:
    conn = proxied.https()
    try:
        conn.request("GET", "/forwarded", headers={"Host": "example.com"})
        r = conn.getresponse()
        assert r.status == 200
        assert json.loads(r.read()) == {
            "X-Real-IP": "127.0.0.1",
            "X-Forwarded-For": "127.0.0.1",
            "X-Forwarded-Proto": "https",
            "X-Forwarded-Host": "example.com",
        }
    finally:
        conn.close()


def test_responses_are_streamed_not_buffered(proxied: Proxied) -> None:
    # The view sends its second chunk only once the client has received the first: a
    # proxy that buffered the response would hold the first chunk back for good.
    with socket.create_connection(("127.0.0.1", proxied.https_port), timeout=20) as raw:
        with tls().wrap_socket(raw) as s:
            s.sendall(b"GET /stream HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n")
            received = b""
            while b"first;" not in received:
                chunk = s.recv(65536)
                assert chunk, received
                received += chunk
            proxied.release.set()
            while chunk:
                chunk = s.recv(65536)
                received += chunk
    assert received.startswith(b"HTTP/1.1 200") and b"rest" in received


def test_http_redirects_and_oversized_bodies_are_refused(proxied: Proxied) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", proxied.http_port, timeout=30)
    try:
        conn.request("GET", "/static/big.bin?x=1", headers={"Host": "example.com"})
        r = conn.getresponse()
        r.read()
        assert r.status == 301
        assert r.getheader("Location") == "https://example.com/static/big.bin?x=1"
    finally:
        conn.close()
    # A declared body over client_max_body_size (16m) is refused from the head alone.
    with socket.create_connection(("127.0.0.1", proxied.https_port), timeout=20) as raw:
        with tls().wrap_socket(raw) as s:
            s.sendall(
                b"POST /forwarded HTTP/1.1\r\nHost: example.com\r\nContent-Length: 17000000\r\n\r\n"
            )
            assert s.recv(65536).startswith(b"HTTP/1.1 413")
