"""Benchmark driver: BustAPI against Python peers and nginx, side by side in one run.

Run it through ``bench/run.sh`` (which installs wrk, nginx and the bench venv first).
Steps: make fixtures outside the repo, start every server on loopback (each pinned to
the same CPUs), check once that each answers each workload correctly, then measure with
wrk (h2load for the HTTP/2 workloads) in interleaved rounds (A B C, B C A, ...), and
write medians and ratios to
``BENCHMARKS.md`` and ``bench/ratios.png``. Raw numbers go to ``bench/out/results.json``.

A workload is one row in ``WORKLOADS``; a server is one entry in ``make_servers``. A
server runs a workload when it has the feature the workload needs. Workloads that are
not implemented yet carry a ``todo`` and are listed, not run.

Settings come from the environment: see the top of ``bench/run.sh``.
"""

from __future__ import annotations

import contextlib
import datetime
import http.client
import ipaddress
import json
import os
import platform
import re
import shlex
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Callable, Optional

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
VENV_BIN = Path(sys.executable).parent
HOST = "127.0.0.1"
MIB = 1024 * 1024
HELLO = {"message": "Hello, world!"}


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def env_list(name: str) -> Optional[list[str]]:
    value = os.environ.get(name, "").strip()
    return [v.strip() for v in value.split(",") if v.strip()] or None


@dataclass(frozen=True)
class Settings:
    duration: int = env_int("BENCH_DURATION", 5)
    # Five: on this shared VM single rounds spread by 10-20 %, and with three the
    # median of a goal whose margin is smaller flipped between full runs.
    rounds: int = env_int("BENCH_ROUNDS", 5)
    warmup: int = env_int("BENCH_WARMUP", 2)
    retries: int = env_int("BENCH_RETRIES", 2)
    retry_budget: int = env_int("BENCH_RETRY_BUDGET", 60)  # seconds of re-runs in total
    idle_wait: int = env_int("BENCH_IDLE_WAIT", 60)
    max_other: float = float(os.environ.get("BENCH_MAX_OTHER", "0.10"))
    server_cpus: str = os.environ.get("BENCH_SERVER_CPUS", "0")
    wrk_cpus: str = os.environ.get("BENCH_WRK_CPUS", "1")
    port_base: int = env_int("BENCH_PORT_BASE", 18001)
    workdir: Path = Path(os.environ.get("BENCH_FIXTURES", "/tmp/bustapi-bench"))
    only_workloads: Optional[list[str]] = field(default_factory=lambda: env_list("BENCH_WORKLOADS"))
    only_servers: Optional[list[str]] = field(default_factory=lambda: env_list("BENCH_SERVERS"))

    @property
    def wrk_threads(self) -> int:
        return len(cpu_list(self.wrk_cpus))

    @property
    def partial(self) -> bool:
        return bool(self.only_workloads or self.only_servers)


def cpu_list(spec: str) -> list[int]:
    """Expands a taskset-style list such as ``0,2-3``."""
    cpus: list[int] = []
    for part in spec.split(","):
        lo, _, hi = part.partition("-")
        cpus.extend(range(int(lo), int(hi or lo) + 1))
    return cpus


# --- fixtures ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Fixtures:
    static: Path  # served at /static by every server; /video/<id> sends <id>.mp4 from here
    css: Path
    one_mib: Path
    video: Path
    video_kind: str
    sparse: Optional[Path]
    cert: Path  # self-signed certificate for 127.0.0.1 (PEM), for the TLS workloads
    key: Path

    def read(self, path: Path, start: int = 0, length: Optional[int] = None) -> bytes:
        with path.open("rb") as f:
            f.seek(start)
            return f.read() if length is None else f.read(length)


CSS = b"""body { font: 16px/1.5 system-ui, sans-serif; margin: 0 auto; max-width: 40rem; }
h1 { color: #b1361e; }
video { width: 100%; }
"""


def make_fixtures(workdir: Path) -> Fixtures:
    """Creates (once) the files every server serves; never inside the repository."""
    if ROOT in workdir.resolve().parents or workdir.resolve() == ROOT:
        sys.exit(f"fixtures must live outside the repository, not in {workdir}")
    static = workdir / "static"
    static.mkdir(parents=True, exist_ok=True)
    os.chmod(workdir, 0o755)
    os.chmod(static, 0o755)
    css = static / "style.css"
    if not css.exists() or css.read_bytes() != CSS:
        css.write_bytes(CSS)
    one_mib = static / "1mib.bin"
    if not one_mib.exists() or one_mib.stat().st_size != MIB:
        one_mib.write_bytes(os.urandom(MIB))
    video = static / "video.mp4"
    kind_file = workdir / "video.kind"
    if not video.exists() or not kind_file.exists():
        kind_file.write_text(make_video(video))
    sparse = static / "sparse-5g.bin"
    try:
        if not sparse.exists() or sparse.stat().st_size != 5 * 1024 * MIB:
            with sparse.open("wb") as f:
                f.truncate(5 * 1024 * MIB)
    except OSError as e:
        print(f"no sparse 5 GiB file ({e}); the large-download workload will need one")
        sparse = None
    for path in static.iterdir():
        os.chmod(path, 0o644)  # nginx workers may run as another user
    cert, key = self_signed_cert(workdir / "tls")
    return Fixtures(static, css, one_mib, video, kind_file.read_text().strip(), sparse, cert, key)


def self_signed_cert(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its EC key (PEM), made the way the tests make
    theirs; kept for reuse while it has more than a week to run. Clients in the bench
    do not verify it (wrk, h2load and curl -k never do; verify() turns it off)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    cert_pem, key_pem = directory / "cert.pem", directory / "key.pem"
    now = datetime.datetime.now(datetime.timezone.utc)
    if cert_pem.exists() and key_pem.exists():
        existing = x509.load_pem_x509_certificate(cert_pem.read_bytes())
        if existing.not_valid_after_utc - now > datetime.timedelta(days=7):
            return cert_pem, key_pem
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o755)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=90))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(HOST))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_pem.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    # nginx reads the key as root before dropping privileges; the bench's own servers
    # run as this user. Loopback-only throwaway key, so plain permissions are fine.
    os.chmod(cert_pem, 0o644)
    os.chmod(key_pem, 0o644)
    return cert_pem, key_pem


def make_video(path: Path) -> str:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg:
        tmp = path.with_suffix(".tmp.mp4")
        cmd = [
            ffmpeg,
            *"-hide_banner -loglevel error -y".split(),
            *"-f lavfi -i testsrc2=size=1280x720:rate=30".split(),
            *"-f lavfi -i sine=frequency=440:sample_rate=48000".split(),
            *"-t 20 -c:v libx264 -preset veryfast -b:v 6M -pix_fmt yuv420p".split(),
            *"-c:a aac -movflags +faststart".split(),
            str(tmp),
        ]
        print("making a 20 s 720p H.264 MP4 with ffmpeg ...", flush=True)
        if subprocess.run(cmd).returncode == 0 and tmp.stat().st_size > 2 * MIB:
            tmp.rename(path)
            return "real H.264/AAC MP4 (ffmpeg testsrc2, 20 s, 1280x720)"
        tmp.unlink(missing_ok=True)
        print("ffmpeg failed; falling back to random bytes")
    path.write_bytes(os.urandom(20 * MIB))
    return "20 MiB of random bytes named video.mp4 (no ffmpeg with libx264)"


# --- servers ----------------------------------------------------------------------------

HELLO_VIEW = "hello"  # GET /hello through a Python view
STATIC = "static"  # GET /static/<file> from the static folder
SEND_FILE = "send_file"  # GET /video/<id> through a view returning send_file / FileResponse
PAGE = "page"  # GET /page: session cookie, Jinja template, url_for (Flask-style apps only)
UPLOAD = "upload"  # POST /upload: a multipart file saved by the view (Flask-style apps only)
SIGNED = "signed"  # GET /signed/<file>?expires=..&signature=..: a signed static mount (BustAPI)
TLS_STATIC = "tls_static"  # GET /static/<file> over HTTPS (HTTP/1.1, and HTTP/2 by ALPN)


@dataclass
class Server:
    name: str
    label: str
    port: int
    argv: list[str]
    features: frozenset[str]
    cwd: Path = BENCH / "apps"
    note: str = ""
    proc: Optional[subprocess.Popen] = None
    log: Optional[Path] = None
    failure: str = ""
    rss_peak_kib: int = 0
    scheme: str = "http"
    # Robyn shuts down on SIGINT (Ctrl-C) but keeps serving after SIGTERM.
    stop_signal: int = signal.SIGTERM

    def url(self, path: str) -> str:
        return f"{self.scheme}://{HOST}:{self.port}{path}"


def make_servers(s: Settings, fx: Fixtures) -> list[Server]:
    """Every server on its own loopback port; the apps live in ``bench/apps``."""
    port = s.port_base
    bin_ = VENV_BIN
    nginx_conf = write_nginx_conf(s.workdir / "nginx", fx.static, port + 4)
    nginx_tls_conf = write_nginx_conf(
        s.workdir / "nginx-tls", fx.static, port + 8, tls=(fx.cert, fx.key)
    )
    python_app = {HELLO_VIEW, STATIC, SEND_FILE}
    flask_style = python_app | {PAGE, UPLOAD}
    bustapi_app = [str(bin_ / "python"), str(BENCH / "apps" / "bustapi_app.py"), "--host", HOST]
    servers = [
        Server(
            "bustapi",
            "BustAPI",
            port,
            [*bustapi_app, "--port", str(port)],
            frozenset(flask_style | {SIGNED}),
            note="app.run(workers=1); defaults: IO threads = usable CPUs (1 here), 16 view threads",
        ),
        Server(
            "granian",
            "Granian + Starlette",
            port + 1,
            [
                str(bin_ / "granian"),
                *f"--interface asgi --workers 1 --host {HOST} --port {port + 1}".split(),
                "starlette_app:app",
            ],
            frozenset(python_app),
            note="1 worker, default runtime threads, event loop auto (uvloop)",
        ),
        Server(
            "uvicorn",
            "uvicorn + Starlette",
            port + 2,
            [
                str(bin_ / "uvicorn"),
                "starlette_app:app",
                *f"--host {HOST} --port {port + 2} --workers 1".split(),
                *"--no-access-log --log-level warning".split(),
            ],
            frozenset(python_app),
            note="uvicorn[standard]: uvloop + httptools; access log off",
        ),
        Server(
            "gunicorn",
            "gunicorn gthread + Flask",
            port + 3,
            [
                str(bin_ / "gunicorn"),
                *f"-k gthread --workers 1 --threads 8 -b {HOST}:{port + 3}".split(),
                *"--log-level warning flask_app:app".split(),
            ],
            frozenset(flask_style),
            note="1 worker, 8 threads",
        ),
        Server(
            "nginx",
            "nginx",
            port + 4,
            [nginx_binary(), "-p", str(nginx_conf.parent), "-c", str(nginx_conf), "-e", "stderr"],
            frozenset({STATIC, SEND_FILE}),
            note="worker_processes 1, sendfile on; /video/<id> is an alias to <id>.mp4",
        ),
        Server(
            "robyn",
            "Robyn",
            port + 5,
            [
                str(bin_ / "python"),
                str(BENCH / "apps" / "robyn_app.py"),
                *f"--host {HOST} --port {port + 5}".split(),
                *"--processes 1 --workers 1 --log-level WARNING --disable-openapi".split(),
            ],
            # No SEND_FILE: Robyn's serve_file (its FileResponse) ignores Range and
            # always answers 200 with the whole file; its static folder (actix-files)
            # does answer ranges.
            frozenset({HELLO_VIEW, STATIC}),
            note="--processes 1 --workers 1; /static is serve_directory (actix-files)",
            stop_signal=signal.SIGINT,
        ),
        Server(
            "bustapi_copy",
            "BustAPI, sendfile=False",
            port + 6,
            [*bustapi_app, "--port", str(port + 6), "--no-sendfile"],
            frozenset({STATIC, SEND_FILE}),
            note="the same app with app.run(sendfile=False): file bodies copied through "
            "user space, the path TLS and HTTP/2 always take",
        ),
        Server(
            "bustapi_tls",
            "BustAPI HTTPS",
            port + 7,
            [*bustapi_app, "--port", str(port + 7), "--tls", str(fx.cert), str(fx.key)],
            frozenset({TLS_STATIC}),
            note="app.run(ssl_context=(cert, key)): rustls, HTTP/2 or HTTP/1.1 by ALPN",
            scheme="https",
        ),
        Server(
            "nginx_tls",
            "nginx HTTPS",
            port + 8,
            [
                nginx_binary(),
                *["-p", str(nginx_tls_conf.parent), "-c", str(nginx_tls_conf), "-e", "stderr"],
            ],
            frozenset({TLS_STATIC}),
            note="worker_processes 1, ssl_protocols TLSv1.3, listen ... ssl http2",
            scheme="https",
        ),
    ]
    for srv in servers:
        srv.argv = ["taskset", "-c", s.server_cpus, *srv.argv]
    if s.only_servers:
        unknown = set(s.only_servers) - {srv.name for srv in servers}
        if unknown:
            sys.exit(f"unknown servers in BENCH_SERVERS: {', '.join(sorted(unknown))}")
        servers = [srv for srv in servers if srv.name in s.only_servers]
    return servers


def nginx_binary() -> str:
    return shutil.which("nginx") or "/usr/sbin/nginx"


def write_nginx_conf(
    directory: Path, static: Path, port: int, tls: Optional[tuple[Path, Path]] = None
) -> Path:
    """nginx's config; with ``tls`` (cert, key) it serves HTTPS only, TLS 1.3, with
    HTTP/2 offered by ALPN (nginx 1.22 spells it ``listen ... ssl http2``)."""
    (directory / "tmp").mkdir(parents=True, exist_ok=True)
    mime = Path("/etc/nginx/mime.types")
    types = (
        f"include {mime};"
        if mime.exists()
        else ("types { text/css css; video/mp4 mp4; application/octet-stream bin; }")
    )
    tmp = directory / "tmp"
    conf = directory / "nginx.conf"
    listen = f"listen {HOST}:{port};"
    if tls:
        listen = (
            f"listen {HOST}:{port} ssl http2;\n"
            f"        ssl_certificate {tls[0]};\n"
            f"        ssl_certificate_key {tls[1]};\n"
            "        ssl_protocols TLSv1.3;"
        )
    conf.write_text(f"""# written by bench/bench.py
worker_processes 1;
daemon off;
pid {directory}/nginx.pid;
error_log stderr warn;
events {{ worker_connections 16384; }}
http {{
    {types}
    default_type application/octet-stream;
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server {{
        {listen}
        location /static/ {{ alias {static}/; }}
        location ~ ^/video/([^/]+)$ {{
            default_type video/mp4;
            alias {static}/$1.mp4;
        }}
    }}
}}
""")
    return conf


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def start(srv: Server, logs: Path, fx: Fixtures) -> None:
    if not port_is_free(srv.port):
        srv.failure = f"port {srv.port} is busy (a server left over from another run?)"
        return
    srv.log = logs / f"{srv.name}.log"
    env = {**os.environ, "BENCH_STATIC": str(fx.static), "PYTHONUNBUFFERED": "1"}
    with srv.log.open("wb") as out:
        srv.proc = subprocess.Popen(
            srv.argv,
            cwd=srv.cwd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait_ready(srv: Server, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if srv.proc is None or srv.proc.poll() is not None:
            srv.failure = f"exited at startup; log: {tail(srv.log)}"
            return
        try:
            with socket.create_connection((HOST, srv.port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    srv.failure = f"not listening after {timeout:.0f} s; log: {tail(srv.log)}"


def tail(path: Optional[Path], lines: int = 5) -> str:
    if path is None or not path.exists():
        return "(no log)"
    text = path.read_text(errors="replace").strip().splitlines()[-lines:]
    return " | ".join(text) or "(empty log)"


def stop(srv: Server) -> None:
    proc = srv.proc
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, srv.stop_signal)  # its own session: only what we started
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)
    except ProcessLookupError:
        pass


def publish_section(s: Settings, name: str, section: str) -> None:
    """Writes a script's section to ``bench/out/<name>.md`` and, in a full run (or with
    ``BENCH_WRITE=1``), appends it to BENCHMARKS.md, as bench.py does for its own."""
    out_dir = BENCH / "out"
    out_dir.mkdir(exist_ok=True)
    (out_dir / f"{name}.md").write_text(section)
    target = ROOT / "BENCHMARKS.md"
    if os.environ.get("BENCH_WRITE", "0" if s.partial else "1") == "1" and target.exists():
        with target.open("a") as f:
            f.write(section)


def process_tree(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rpartition(")")[2].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        p = todo.pop()
        tree.append(p)
        todo.extend(children.get(p, []))
    return tree


def rss_kib(srv: Server) -> int:
    """Resident memory of the server's whole process tree (master + workers)."""
    if srv.proc is None:
        return 0
    total = 0
    for pid in process_tree(srv.proc.pid):
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


class CpuMeter:
    """How much CPU *other* processes used while we measured.

    The machine's busy time (``/proc/stat``) minus the CPU of our servers' process trees,
    of wrk and of this driver. On a shared 2-core box a fuzzer or a compiler running
    beside the benchmark halves what the servers get; this makes that visible.
    """

    def __init__(self, servers: list[Server], retry_budget: float = 0.0) -> None:
        self.servers = servers
        self.tick = os.sysconf("SC_CLK_TCK")
        self.retry_budget = retry_budget  # seconds of wrk re-runs left for the whole run

    @staticmethod
    def machine() -> tuple[int, int]:
        """(busy, total) ticks. Busy is user + nice + system + steal: irq and softirq are
        left out because our own loopback traffic shows up there, charged to no process."""
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        user, nice, system, idle, iowait, irq, softirq, steal = fields[:8]
        busy = user + nice + system + steal
        return busy, busy + idle + iowait + irq + softirq

    def ours(self) -> float:
        """CPU seconds used so far by our servers, wrk (reaped children) and us."""
        ticks = 0
        for srv in self.servers:
            if srv.proc is None:
                continue
            for pid in process_tree(srv.proc.pid):
                try:
                    stat = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
                except OSError:
                    continue
                ticks += int(stat[11]) + int(stat[12])  # utime, stime
        t = os.times()
        own = t.user + t.system + t.children_user + t.children_system
        return ticks / self.tick + own

    def snapshot(self) -> tuple[int, int, float]:
        return (*self.machine(), self.ours())

    def other_share(self, before: tuple[int, int, float], after: tuple[int, int, float]) -> float:
        """Share (0-1) of the machine's total CPU capacity used by other processes."""
        busy = (after[0] - before[0]) / self.tick
        total = (after[1] - before[1]) / self.tick
        ours = after[2] - before[2]
        return max(0.0, busy - ours) / total if total > 0 else 0.0

    def idle_share(self, seconds: float = 2.0) -> float:
        before = self.snapshot()
        time.sleep(seconds)
        return self.other_share(before, self.snapshot())


def wait_for_quiet(meter: CpuMeter, limit: float, patience: int) -> float:
    """Waits up to ``patience`` s for other processes to use less than ``limit`` of the CPU."""
    deadline = time.monotonic() + patience
    while True:
        share = meter.idle_share()
        if share <= limit or time.monotonic() >= deadline:
            return share
        print(
            f"machine busy: other processes use {share:.0%} of the CPU ({busiest()}); waiting ...",
            flush=True,
        )
        time.sleep(8)


def busiest(n: int = 3, seconds: float = 1.0) -> str:
    """The ``n`` processes that used the most CPU over the next ``seconds``."""

    def cpu_times() -> dict[int, tuple[str, int]]:
        times = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    stat = (entry / "stat").read_text()
                except OSError:
                    continue
                name = stat[stat.index("(") + 1 : stat.rindex(")")]
                fields = stat.rpartition(")")[2].split()
                times[int(entry.name)] = (name, int(fields[11]) + int(fields[12]))
        return times

    before = cpu_times()
    time.sleep(seconds)
    after = cpu_times()
    tick = os.sysconf("SC_CLK_TCK") * seconds
    used = sorted(
        ((t - before.get(pid, (name, t))[1], name) for pid, (name, t) in after.items()),
        reverse=True,
    )
    return ", ".join(f"{name} {ticks / tick:.0%}" for ticks, name in used[:n] if ticks > 0)


# --- workloads --------------------------------------------------------------------------


@dataclass(frozen=True)
class Expected:
    status: int
    body: Optional[bytes] = None  # exact bytes, or None for a JSON check
    json: Optional[dict] = None
    content_range: Optional[str] = None


@dataclass(frozen=True)
class Workload:
    key: str
    title: str
    feature: str
    path: str
    connections: int
    baseline: str
    headers: tuple[tuple[str, str], ...] = ()
    expect: Optional[Callable[[Fixtures], Expected]] = None
    todo: str = ""
    # A workload wrk cannot drive: one timed run of its own client (see upload_run).
    client: Optional[Callable[[Settings, Server, Fixtures], Run]] = None
    method: str = "GET"
    # The load generator: "wrk" (HTTP/1.1, plain or TLS) or "h2load" (HTTP/2 over TLS).
    tool: str = "wrk"
    # The BustAPI server the summary compares with the baseline (its TLS twin for TLS).
    subject: str = "bustapi"


def expect_range(path: Callable[[Fixtures], Path], start: int, length: int):
    def expect(fx: Fixtures) -> Expected:
        p = path(fx)
        size = p.stat().st_size
        body = fx.read(p, start, length)
        end = start + length - 1
        return Expected(206, body=body, content_range=f"bytes {start}-{end}/{size}")

    return expect


def video(fx: Fixtures) -> Path:
    return fx.video


def session_cookie() -> str:
    """A Flask session cookie for ``{"user_id": 1, "name": "Ada"}``, signed with the
    apps' shared key by Flask itself: BustAPI reads Flask's cookie format, so the one
    cookie logs in to both."""
    sys.path.insert(0, str(BENCH / "apps"))
    try:
        from flask_app import app as flask_app
    finally:
        sys.path.pop(0)
    serializer = flask_app.session_interface.get_signing_serializer(flask_app)
    return "session=" + serializer.dumps({"user_id": 1, "name": "Ada"})


def expect_page(fx: Fixtures) -> Expected:
    """The page the template renders, built here with Jinja2 directly (same template,
    url_for spelled out), so both frameworks must produce exactly these bytes."""
    import jinja2

    sys.path.insert(0, str(BENCH / "apps"))
    try:
        from flask_app import ITEMS
    finally:
        sys.path.pop(0)
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(BENCH / "apps" / "templates"), autoescape=True
    )
    html = env.get_template("page.html").render(
        title="Library",
        items=ITEMS,
        session={"name": "Ada"},
        url_for=lambda endpoint, item_id: f"/item/{item_id}",
    )
    return Expected(200, body=html.encode())


def upload_run(size: int) -> Callable[[Settings, Server, Fixtures], Run]:
    """One multipart upload of ``size`` generated bytes (Content-Length framed), timed
    from the first byte sent to the answer, with the server's RSS sampled meanwhile.
    The client holds one 1 MiB block and runs on the wrk CPUs."""

    def run(s: Settings, srv: Server, fx: Fixtures) -> Run:
        import threading

        boundary = "BenchUploadBoundary"
        prefix = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="f"; filename="big.bin"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        suffix = f"\r\n--{boundary}--\r\n".encode()
        block = os.urandom(MIB)

        def body() -> Iterator[bytes]:
            yield prefix
            for i in range(0, size, MIB):
                yield block[: min(MIB, size - i)]
            yield suffix

        before = rss_kib(srv)
        peak = [before]
        done = threading.Event()

        def sample() -> None:
            while not done.wait(0.05):
                peak[0] = max(peak[0], rss_kib(srv))

        sampler = threading.Thread(target=sample, daemon=True)
        affinity = os.sched_getaffinity(0)
        os.sched_setaffinity(0, cpu_list(s.wrk_cpus))
        sampler.start()
        conn = http.client.HTTPConnection(HOST, srv.port, timeout=600)
        t0 = time.perf_counter()
        try:
            headers = {
                "Content-Type": f"multipart/form-data; boundary={boundary}",
                "Content-Length": str(len(prefix) + size + len(suffix)),
            }
            conn.request("POST", "/upload", body=body(), headers=headers)
            resp = conn.getresponse()
            answer = resp.read()
            elapsed = time.perf_counter() - t0
        finally:
            conn.close()
            done.set()
            sampler.join()
            os.sched_setaffinity(0, affinity)
            for saved in (s.workdir / "uploads").glob("*.bin"):
                saved.unlink()
        ok = resp.status == 200 and json.loads(answer or b"{}").get("size") == size
        detail = f"{resp.status} {answer[:80]!r}"
        return Run(
            rps=1 / elapsed,
            bytes_per_s=size / elapsed,
            requests=1,
            p99_ms=elapsed * 1000,
            non_2xx=0 if ok else 1,
            socket_errors=0,
            output=detail,
            rss_growth_kib=max(0, peak[0] - before),
        )

    return run


ONE_MIB_RANGE = f"bytes={MIB}-{2 * MIB - 1}"
# A URL signed for the bench app's SIGNING_KEYS, good until 2100: signatures are
# deterministic, so it is a constant. Recompute after a change of the format with
# _core.UrlSigner([b"bench-signing-key"]).sign("/signed/video.mp4", 4102444800).
SIGNED_VIDEO = (
    "/signed/video.mp4?expires=4102444800&signature=4Dyj5ldhHEbXYIYbkZOZssD01OXAkWWRMmoTwCX176g"
)

WORKLOADS: list[Workload] = [
    Workload(
        key="hello",
        title="GET /hello, JSON from a Python view",
        feature=HELLO_VIEW,
        path="/hello",
        connections=64,
        baseline="granian",
        expect=lambda fx: Expected(200, json=HELLO),
    ),
    Workload(
        key="logged_in_page",
        title="GET /page: session cookie, a Jinja template with 20 rows and url_for each",
        feature=PAGE,
        path="/page",
        connections=64,
        baseline="gunicorn",
        headers=(("Cookie", session_cookie()),),
        expect=expect_page,
    ),
    Workload(
        key="static_small",
        title="GET a small static file (style.css)",
        feature=STATIC,
        path="/static/style.css",
        connections=64,
        baseline="nginx",
        expect=lambda fx: Expected(200, body=fx.read(fx.css)),
    ),
    Workload(
        key="range_probe",
        title="Range: bytes=0-1 on the static video",
        feature=STATIC,
        path="/static/video.mp4",
        connections=64,
        baseline="nginx",
        headers=(("Range", "bytes=0-1"),),
        expect=expect_range(video, 0, 2),
    ),
    Workload(
        key="range_1mib_static",
        title=f"Range: {ONE_MIB_RANGE} (1 MiB) on the static video",
        feature=STATIC,
        path="/static/video.mp4",
        connections=16,
        baseline="nginx",
        headers=(("Range", ONE_MIB_RANGE),),
        expect=expect_range(video, MIB, MIB),
    ),
    Workload(
        key="range_1mib_signed",
        title=f"Range: {ONE_MIB_RANGE} (1 MiB) on the static video through a signed URL",
        feature=SIGNED,
        path=SIGNED_VIDEO,
        connections=16,
        baseline="nginx",  # no peer has it; compare with range_1mib_static's BustAPI row
        headers=(("Range", ONE_MIB_RANGE),),
        expect=expect_range(video, MIB, MIB),
    ),
    Workload(
        key="range_1mib_send_file",
        title=f"Range: {ONE_MIB_RANGE} (1 MiB) via send_file /video/video",
        feature=SEND_FILE,
        path="/video/video",
        connections=16,
        baseline="nginx",
        headers=(("Range", ONE_MIB_RANGE),),
        expect=expect_range(video, MIB, MIB),
    ),
    Workload(
        key="upload_1gib",
        title="1 GiB multipart upload over loopback, saved by the view",
        feature=UPLOAD,
        path="/upload",
        connections=1,
        baseline="gunicorn",
        client=upload_run(1 << 30),
        method="POST",
    ),
    *(
        Workload(
            key=f"{proto}_{key}",
            title=f"HTTPS, {label}: {title}",
            feature=TLS_STATIC,
            path=path,
            connections=connections,
            baseline="nginx_tls",
            subject="bustapi_tls",
            headers=headers,
            expect=expect,
            tool=tool,
        )
        for proto, label, tool in (("tls", "HTTP/1.1", "wrk"), ("h2", "HTTP/2", "h2load"))
        for key, title, path, connections, headers, expect in (
            (
                "static_small",
                "a small static file (style.css)",
                "/static/style.css",
                64,
                (),
                lambda fx: Expected(200, body=fx.read(fx.css)),
            ),
            (
                "range_1mib",
                f"Range: {ONE_MIB_RANGE} (1 MiB) on the static video",
                "/static/video.mp4",
                16,
                (("Range", ONE_MIB_RANGE),),
                expect_range(video, MIB, MIB),
            ),
        )
    ),
]

# Workloads wrk cannot drive, with scripts of their own that run.sh calls: the tus
# upload (tus_upload.py), one 2 GiB download, 10,000 slow readers and 10,000 idle
# keep-alive connections (heavy.py).
HEAVY_WORKLOADS = ("download_2gib", "slow_10k", "idle_10k")
OWN_CLIENT_WORKLOADS = {"tus_upload", *HEAVY_WORKLOADS}
# Names that select several workloads in BENCH_WORKLOADS.
GROUPS = {
    "tls": [wl.key for wl in WORKLOADS if wl.feature == TLS_STATIC],
    "heavy": list(HEAVY_WORKLOADS),
}


def selected_workloads(s: Settings) -> Optional[list[str]]:
    """BENCH_WORKLOADS with group names (``tls``, ``heavy``) expanded; None = all."""
    if not s.only_workloads:
        return None
    return [key for name in s.only_workloads for key in GROUPS.get(name, [name])]


# --- verification -----------------------------------------------------------------------


@dataclass
class Check:
    ok: bool
    detail: str
    headers: dict[str, str]


@dataclass
class Answer:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes
    protocol: str  # "HTTP/1.1" or "HTTP/2"


def fetch(srv: Server, wl: Workload) -> Answer:
    """One GET as the workload's load generator would send it: HTTP/1.1 with
    http.client (TLS unverified for HTTPS), HTTP/2 with ``curl --http2`` (Python's
    standard library has no HTTP/2 client)."""
    if wl.tool == "h2load":
        return fetch_h2(srv, wl)
    conn: http.client.HTTPConnection
    if srv.scheme == "https":
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        conn = http.client.HTTPSConnection(HOST, srv.port, timeout=30, context=context)
    else:
        conn = http.client.HTTPConnection(HOST, srv.port, timeout=30)
    try:
        conn.request("GET", wl.path, headers=dict(wl.headers))
        resp = conn.getresponse()
        body = resp.read()
    finally:
        conn.close()
    headers = {k.lower(): v for k, v in resp.getheaders()}
    return Answer(resp.status, headers, body, "HTTP/1.1")


def fetch_h2(srv: Server, wl: Workload) -> Answer:
    with tempfile.TemporaryDirectory(prefix="bench-h2-") as tmpdir:
        tmp = Path(tmpdir)
        argv = ["curl", "-sS", "-k", "--http2", "-o", str(tmp / "body"), "-D", str(tmp / "head")]
        argv += ["-w", "%{http_version}", "--max-time", "30"]
        for k, v in wl.headers:
            argv += ["-H", f"{k}: {v}"]
        done = subprocess.run([*argv, srv.url(wl.path)], capture_output=True, text=True)
        if done.returncode != 0:
            raise OSError(f"curl exit {done.returncode}: {done.stderr.strip()}")
        lines = (tmp / "head").read_text(errors="replace").strip().splitlines()
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        version = done.stdout.strip()
        return Answer(status, headers, (tmp / "body").read_bytes(), f"HTTP/{version}")


def verify(srv: Server, wl: Workload, fx: Fixtures) -> Check:
    """One request, checked in full, so a server that answers wrongly cannot 'win'."""
    assert wl.expect is not None
    want = wl.expect(fx)
    try:
        resp = fetch(srv, wl)
    except (OSError, http.client.HTTPException, ValueError, IndexError) as e:
        return Check(False, f"request failed: {e!r}", {})
    headers, body = resp.headers, resp.body
    shown = {
        k: headers[k]
        for k in (
            "content-type",
            "content-length",
            "content-range",
            "accept-ranges",
            "etag",
            "last-modified",
        )
        if k in headers
    }
    problems = []
    if resp.status != want.status:
        problems.append(f"status {resp.status}, want {want.status}")
    if want.json is not None:
        try:
            if json.loads(body) != want.json:
                problems.append(f"body {body[:80]!r}")
        except ValueError:
            problems.append(f"body is not JSON: {body[:80]!r}")
    if want.body is not None and body != want.body:
        problems.append(
            f"body length {len(body)}, want {len(want.body)}"
            + ("" if len(body) != len(want.body) else " (bytes differ)")
        )
    if "content-length" in headers and headers["content-length"] != str(len(body)):
        problems.append(f"Content-Length {headers['content-length']} != {len(body)} bytes read")
    if want.content_range and headers.get("content-range") != want.content_range:
        problems.append(
            f"Content-Range {headers.get('content-range')!r}, want {want.content_range!r}"
        )
    if wl.tool == "h2load" and resp.protocol != "HTTP/2":
        problems.append(f"answered over {resp.protocol}, not HTTP/2")
    detail = "; ".join(problems) or f"{resp.status}, {len(body)} bytes, {resp.protocol}"
    return Check(not problems, detail, shown)


# --- measuring --------------------------------------------------------------------------


@dataclass
class Run:
    rps: float
    bytes_per_s: float
    requests: int
    p99_ms: float
    non_2xx: int
    socket_errors: int
    output: str
    other: float = 0.0  # share of the machine's CPU other processes used during the run
    attempts: int = 1
    rss_growth_kib: int = 0  # peak server RSS during the run over its RSS before (uploads)


UNITS = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}
TIME_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def parse_wrk(out: str) -> Run:
    def find(pattern: str, default: str = "0") -> str:
        m = re.search(pattern, out)
        return m.group(1) if m else default

    rps = float(find(r"Requests/sec:\s+([\d.]+)"))
    m = re.search(r"Transfer/sec:\s+([\d.]+)(\w+)", out)
    bps = float(m.group(1)) * UNITS.get(m.group(2), 1) if m else 0.0
    m = re.search(r"\n\s+99%\s+([\d.]+)(us|ms|s|m)\b", out)
    p99 = float(m.group(1)) * TIME_UNITS[m.group(2)] if m else float("nan")
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = sum(int(g) for g in m.groups()) if m else 0
    return Run(
        rps,
        bps,
        int(find(r"(\d+) requests in")),
        p99,
        int(find(r"Non-2xx or 3xx responses: (\d+)")),
        errors,
        out,
    )


def lua_script(wl: Workload, directory: Path) -> Optional[Path]:
    if not wl.headers:
        return None
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{wl.key}.lua"
    lines = ["-- written by bench/bench.py", 'wrk.method = "GET"']
    lines += [f'wrk.headers["{k}"] = "{v}"' for k, v in wl.headers]
    path.write_text("\n".join(lines) + "\n")
    return path


H2_STREAMS = env_int("BENCH_H2_STREAMS", 1)


def parse_h2load(out: str) -> Run:
    """h2load's summary: req/s and bytes/s from ``finished in``, status classes and
    failures from ``requests:``/``status codes:``. It reports no percentiles, so p99 is
    NaN; a 206 counts as 2xx. A summary it did not print counts as an error."""
    m = re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s, ([\d.]+)(\w+)/s", out)
    rps, bps = (float(m.group(1)), float(m.group(2)) * UNITS.get(m.group(3), 1)) if m else (0, 0)
    m = re.search(
        r"requests: \d+ total, \d+ started, (\d+) done, \d+ succeeded, \d+ failed, "
        r"(\d+) errored, (\d+) timeout",
        out,
    )
    done, errored, timeouts = (int(g) for g in m.groups()) if m else (0, 1, 0)
    # Status classes count every response whose headers arrived, including those still
    # streaming when the time was up, so they can exceed "done": count the non-2xx ones.
    m = re.search(r"status codes: \d+ 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
    non_2xx = sum(int(g) for g in m.groups()) if m else 1
    return Run(rps, bps, done, float("nan"), non_2xx, errored + timeouts, out)


def load_argv(s: Settings, wl: Workload, srv: Server, seconds: int, script: Optional[Path]):
    """The load generator's command, pinned to the client CPUs: wrk, or h2load with
    ``-c`` connections of ``BENCH_H2_STREAMS`` concurrent streams each."""
    if wl.tool == "h2load":
        argv = [
            *f"taskset -c {s.wrk_cpus} h2load -t {s.wrk_threads} -c {wl.connections}".split(),
            # -N: a connection with no activity for 10 s is closed and counted as
            # errored, instead of h2load waiting for it forever.
            *f"-m {H2_STREAMS} -D {seconds} -N 10s".split(),
        ]
        for k, v in wl.headers:
            argv += ["-H", f"{k.lower()}: {v}"]
        return [*argv, srv.url(wl.path)]
    argv = [
        *f"taskset -c {s.wrk_cpus} wrk -t {s.wrk_threads} -c {wl.connections}".split(),
        *f"-d {seconds}s --timeout 10s --latency".split(),
    ]
    if script:
        argv += ["-s", str(script)]
    return [*argv, srv.url(wl.path)]


def run_load(argv: list[str], seconds: int) -> Run:
    tool = "h2load" if "h2load" in argv else "wrk"
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    except subprocess.TimeoutExpired as e:
        # Counted as a failed run (a socket error), not a crash of the whole benchmark.
        partial = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else ""
        print(f"  {tool} did not finish within {seconds + 60} s: {partial[-300:]!r}", flush=True)
        return Run(0, 0, 0, float("nan"), 0, 1, partial)
    if done.returncode != 0:
        error = (done.stdout + done.stderr).strip().replace("\n", " | ")
        print(f"  {tool} failed ({done.returncode}): {error[-300:]}", flush=True)
        return Run(0, 0, 0, float("nan"), 0, 1, done.stdout + done.stderr)
    return parse_h2load(done.stdout) if tool == "h2load" else parse_wrk(done.stdout)


def run_quietly(s: Settings, meter: CpuMeter, argv: list[str]) -> Run:
    """Runs wrk; if other processes took more than ``s.max_other`` of the CPU meanwhile,
    runs it again (up to ``s.retries`` times) and keeps the least disturbed run."""
    best: Optional[Run] = None
    for attempt in range(1, s.retries + 2):
        before = meter.snapshot()
        run = run_load(argv, s.duration)
        run.other = meter.other_share(before, meter.snapshot())
        run.attempts = attempt
        if best is None or run.other < best.other:
            best = run
        if run.other <= s.max_other or meter.retry_budget < s.duration:
            break
        meter.retry_budget -= s.duration
        time.sleep(1)
    assert best is not None
    best.attempts = attempt
    return best


def rotations(items: list[Server], rounds: int) -> Iterator[tuple[int, list[Server]]]:
    """Round r starts at item r: A B C, B C A, C A B, so no server always goes first."""
    for r in range(rounds):
        k = r % len(items) if items else 0
        yield r, items[k:] + items[:k]


@dataclass
class Result:
    workload: Workload
    server: Server
    check: Optional[Check] = None
    runs: list[Run] = field(default_factory=list)
    command: str = ""

    @property
    def measured(self) -> bool:
        return bool(self.runs)

    def median(self, attr: str) -> float:
        return statistics.median(getattr(r, attr) for r in self.runs)


def measure(
    s: Settings, wl: Workload, servers: list[Server], fx: Fixtures, meter: CpuMeter
) -> tuple[list[Result], float]:
    """Verifies, warms up and measures one workload; returns the results and the share
    of the machine's CPU that other processes used meanwhile."""
    results = []
    ready = []
    for srv in servers:
        res = Result(wl, srv)
        results.append(res)
        if srv.failure:
            res.check = Check(False, f"server not running: {srv.failure}", {})
        elif wl.client is not None:
            # The client checks each answer itself; this first run is also the warm-up.
            first = wl.client(s, srv, fx)
            res.check = Check(first.non_2xx == 0, first.output, {})
        else:
            res.check = verify(srv, wl, fx)
        mark = "ok  " if res.check.ok else "FAIL"
        print(f"  verify {mark} {srv.name:12} {res.check.detail}", flush=True)
        if res.check.ok:
            ready.append(res)
    script = lua_script(wl, s.workdir / "lua")
    for res in ready:
        if wl.client is not None:
            res.command = f"bench.py's own client ({wl.client.__qualname__.split('.')[0]})"
            continue
        res.command = shlex.join(load_argv(s, wl, res.server, s.duration, script))
        if s.warmup > 0:
            run_load(load_argv(s, wl, res.server, s.warmup, script), s.warmup)
    by_server = {res.server.name: res for res in ready}
    before = meter.snapshot()
    for r, order in rotations([res.server for res in ready], s.rounds):
        for srv in order:
            if wl.client is not None:
                before_run = meter.snapshot()
                run = wl.client(s, srv, fx)
                run.other = meter.other_share(before_run, meter.snapshot())
            else:
                run = run_quietly(s, meter, load_argv(s, wl, srv, s.duration, script))
            by_server[srv.name].runs.append(run)
            srv.rss_peak_kib = max(srv.rss_peak_kib, rss_kib(srv))
            flag = f"  other CPU {run.other:.0%}" if run.other > 0.02 else ""
            if run.attempts > 1:
                flag += f" (best of {run.attempts} tries)"
            if run.non_2xx or run.socket_errors:
                flag += f"  (non-2xx {run.non_2xx}, socket errors {run.socket_errors})"
            if wl.client is not None:
                flag += f"  RSS growth {run.rss_growth_kib / 1024:.1f} MiB"
            print(
                f"  round {r + 1}/{s.rounds} {srv.name:12} {fmt_rps(run.rps):>10} req/s "
                f"{run.bytes_per_s / MIB:>9.1f} MiB/s{flag}",
                flush=True,
            )
            if srv.proc is not None and srv.proc.poll() is not None:
                srv.failure = f"died during {wl.key}; log: {tail(srv.log)}"
    other = meter.other_share(before, meter.snapshot())
    if other > 0.05:
        print(f"  warning: other processes used {other:.0%} of the CPU during this workload")
    return results, other


# --- reporting --------------------------------------------------------------------------


def ratio(res: Result, results: list[Result]) -> Optional[float]:
    base = next((r for r in results if r.server.name == res.workload.baseline), None)
    if not (res.measured and base and base.measured and base.median("rps") > 0):
        return None
    return res.median("rps") / base.median("rps")


def cmd_output(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return "not found"
    text = (done.stdout + done.stderr).strip().splitlines()
    return text[0].strip() if text else "unknown"


def pkg_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine_info() -> dict[str, str]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem = next(
        (
            ln.split()[1]
            for ln in Path("/proc/meminfo").read_text().splitlines()
            if ln.startswith("MemTotal:")
        ),
        "0",
    )
    debian = Path("/etc/debian_version")
    return {
        "nproc": cmd_output(["nproc"]),
        "CPU": cpu,
        "kernel": platform.release(),
        "memory": f"{int(mem) // 1024} MiB",
        "OS": "Debian " + debian.read_text().strip() if debian.exists() else platform.platform(),
        "Python": platform.python_version(),
    }


def versions() -> dict[str, str]:
    wrk = cmd_output(["wrk", "-v"]).split(" Copyright")[0]
    return {
        "BustAPI": pkg_version("bustapi") + " (release wheel built from this tree by run.sh)",
        "Granian": pkg_version("granian"),
        "Starlette": pkg_version("starlette"),
        "uvicorn": pkg_version("uvicorn"),
        "uvloop": pkg_version("uvloop"),
        "httptools": pkg_version("httptools"),
        "Flask": pkg_version("flask"),
        "Werkzeug": pkg_version("werkzeug"),
        "gunicorn": pkg_version("gunicorn"),
        "Robyn": pkg_version("robyn"),
        "nginx": cmd_output([nginx_binary(), "-v"]).replace("nginx version: ", ""),
        "OpenSSL (nginx, wrk)": cmd_output(["openssl", "version"]),
        "wrk": wrk,
        "h2load": cmd_output(["h2load", "--version"]),
        "curl": cmd_output(["curl", "--version"]),
        "ffmpeg": cmd_output(["ffmpeg", "-version"]) if shutil.which("ffmpeg") else "absent",
    }


def fmt_rps(value: float) -> str:
    """Requests/s; a workload of single long requests (an upload) gets decimals."""
    return f"{value:,.0f}" if value >= 10 else f"{value:.3g}"


def fmt_ms(value: float) -> str:
    return "n/a" if value != value else f"{value:.2f} ms"  # NaN: h2load has no p99


def fmt_ratio(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{value:.2f}×"


def disturbed(res: Optional[Result], limit: float) -> int:
    """How many of the result's runs had other processes above ``limit`` of the CPU."""
    return sum(r.other > limit for r in res.runs) if res else 0


def results_table(results: list[Result], limit: float) -> list[str]:
    wl = results[0].workload
    base = next((r for r in results if r.server.name == wl.baseline), None)
    flagged = False
    lines = [
        f"### `{wl.key}`: {wl.title}",
        "",
        f"`{wl.method} {wl.path}`, {wl.connections} connections; "
        f"ratio = req/s ÷ {wl.baseline}'s req/s.",
        "",
        "| server | req/s (median) | MiB/s (median) | ratio to "
        f"{wl.baseline} | p99 latency | rounds (req/s) | notes |",
        "|---|---:|---:|---:|---:|---|---|",
    ]
    ordered = sorted(results, key=lambda r: -r.median("rps") if r.measured else 1)
    for res in ordered:
        if not res.measured:
            detail = res.check.detail if res.check else "not run"
            lines.append(f"| {res.server.label} | — | — | — | — | — | **FAILED**: {md(detail)} |")
            continue
        errs = sum(r.non_2xx for r in res.runs), sum(r.socket_errors for r in res.runs)
        note = f"non-2xx {errs[0]}, socket errors {errs[1]}" if any(errs) else ""
        growth = max(r.rss_growth_kib for r in res.runs)
        if growth:
            note = "; ".join(filter(None, [note, f"server RSS growth ≤ {growth / 1024:.1f} MiB"]))
        rounds = ", ".join(
            fmt_rps(r.rps) + (f" ({r.other:.0%} other)" if r.other > 0.02 else "") for r in res.runs
        )
        mark = ""
        if disturbed(res, limit) or disturbed(base, limit):
            mark, flagged = " ⚠", True
        lines.append(
            f"| {res.server.label} | {fmt_rps(res.median('rps'))} | "
            f"{res.median('bytes_per_s') / MIB:,.1f} | "
            f"{fmt_ratio(ratio(res, results))}{mark} | {fmt_ms(res.median('p99_ms'))} | "
            f"{rounds} | {note} |"
        )
    if flagged:
        lines += [
            "",
            f"⚠ this server or the baseline had runs in which other processes took more than "
            f"{limit:.0%} of the CPU (shown per run); that ratio is less certain.",
        ]
    return lines


def summary_table(all_results: dict[str, list[Result]], limit: float) -> list[str]:
    """One row per workload: BustAPI (its TLS twin for TLS) against the baseline."""
    lines = [
        "| workload | BustAPI req/s | baseline | baseline req/s | BustAPI ÷ baseline |",
        "|---|---:|---|---:|---:|",
    ]
    for key, results in all_results.items():
        wl = results[0].workload
        bust = next((r for r in results if r.server.name == wl.subject), None)
        base = next((r for r in results if r.server.name == wl.baseline), None)

        def rps(res: Optional[Result]) -> str:
            if res is None:
                return "not run"
            return fmt_rps(res.median("rps")) if res.measured else "**FAILED**"

        value = ratio(bust, results) if bust else None
        mark = " ⚠" if disturbed(bust, limit) or disturbed(base, limit) else ""
        label = base.server.label if base else wl.baseline
        lines.append(
            f"| `{key}` | {rps(bust)} | {label} | {rps(base)} | {fmt_ratio(value)}{mark} |"
        )
    return lines


def md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def headline(all_results: dict[str, list[Result]], limit: float) -> str:
    hello = all_results.get("hello")
    if not hello:
        return "The `/hello` workload was not run."
    bust = next((r for r in hello if r.server.name == "bustapi"), None)
    value = ratio(bust, hello) if bust else None
    if value is None:
        return "`/hello`: BustAPI or Granian did not produce a measurement (see below)."
    verdict = "meets" if value >= 2.0 else "does **not** meet"
    granian = next((r for r in hello if r.server.name == "granian"), None)
    robyn = next((r for r in hello if r.server.name == "robyn"), None)
    caveat = ""
    if disturbed(bust, limit) or disturbed(granian, limit) or disturbed(robyn, limit):
        caveat = " (⚠ some of these runs were disturbed by other processes; see below)"
    against_robyn = ""
    if robyn is not None and robyn.measured and robyn.median("rps") > 0:
        r = bust.median("rps") / robyn.median("rps")
        against_robyn = (
            f"; **{r:.2f}× Robyn**, which "
            + ("meets" if r >= 3.0 else "does **not** meet")
            + " the ≥ 3× target"
        )
    return (
        f"`GET /hello` (JSON through a Python view, 64 connections): BustAPI "
        f"{bust.median('rps'):,.0f} req/s = **{value:.2f}× Granian + Starlette**; "
        f"{verdict} the ≥ 2× target (issue 13){against_robyn}{caveat}."
    )


@dataclass
class RunInfo:
    started: str
    elapsed: float = 0.0
    other_before: float = 0.0  # share of CPU other processes used just before the run
    busiest: str = ""
    other_load: dict[str, float] = field(default_factory=dict)  # per workload, while measuring


def write_markdown(
    target: Path,
    s: Settings,
    fx: Fixtures,
    servers: list[Server],
    all_results: dict[str, list[Result]],
    todos: list[Workload],
    chart: Optional[Path],
    info: RunInfo,
) -> str:
    m = machine_info()
    v = versions()
    out = [
        "# Benchmarks",
        "",
        "<!-- Generated by bench/bench.py (via bench/run.sh). Do not edit by hand. -->",
        "",
        "Run everything (installs wrk and nginx from apt and a venv in `bench/.venv`, builds",
        "BustAPI in release mode, makes fixtures in `/tmp/bustapi-bench`, measures, and rewrites",
        "this file and `bench/ratios.png`):",
        "",
        "```sh",
        "bench/run.sh",
        "# knobs (defaults shown):",
        "#   BENCH_DURATION=5 BENCH_ROUNDS=5 BENCH_WARMUP=2 BENCH_SERVER_CPUS=0 BENCH_WRK_CPUS=1",
        "#   BENCH_IDLE_WAIT=60 BENCH_MAX_OTHER=0.10 BENCH_RETRIES=2 BENCH_RETRY_BUDGET=60",
        "#   BENCH_H2_STREAMS=1 BENCH_SLOW_CLIENTS=10000 BENCH_IDLE_CLIENTS=10000",
        "# subsets (written to bench/out/ unless BENCH_WRITE=1; groups: tls, heavy):",
        "#   BENCH_WORKLOADS=hello,static_small BENCH_SERVERS=bustapi,granian,robyn",
        "```",
        "",
        "## Headline",
        "",
        headline(all_results, s.max_other),
        "",
        *summary_table(all_results, s.max_other),
        "",
        "These are loopback numbers on a small machine: the load generator (wrk) shares the",
        f"{m['nproc']}-core box with the servers. Read them as ratios between servers measured",
        "side by side in one run, not as absolute capacity.",
        "",
        "## Results",
        "",
        f"Run started {info.started}, took {info.elapsed / 60:.1f} min. Each cell is the "
        f"median of {s.rounds} interleaved wrk runs of {s.duration} s (after a {s.warmup} s "
        "warmup per server); p99 is the median of the runs' p99.",
        "",
        quiet_note(info),
        "",
    ]
    if chart:
        out += [f"![ratios]({os.path.relpath(chart, target.parent)})", ""]
    for key, results in all_results.items():
        out += results_table(results, s.max_other)
        other = info.other_load.get(key, 0.0)
        out += [
            "",
            f"Averaged over this workload (re-runs included), other processes used "
            f"{other:.0%} of the machine's CPU.",
            "",
        ]
    out += [
        "### Memory",
        "",
        "Peak resident memory of each server's process tree, sampled after every wrk run:",
        "",
    ]
    out += [
        f"- {srv.label}: {srv.rss_peak_kib / 1024:.0f} MiB" for srv in servers if srv.rss_peak_kib
    ]
    out += ["", "### Not run yet", ""]
    out += [f"- `{wl.key}` ({wl.title}): TODO: {wl.todo}" for wl in todos] or ["- nothing"]
    out += ["", "## Machine", ""]
    out += [f"- {k}: {val}" for k, val in m.items()]
    out += ["", "## Versions", ""]
    out += [f"- {k}: {val}" for k, val in v.items()]
    out += [
        "",
        "## Method",
        "",
        f"- Everything on loopback (`{HOST}`), one port per server, all servers up at once.",
        f"- Same cores for every server: each is started under `taskset -c {s.server_cpus}` "
        "with one worker/process (`workers=1` for BustAPI, Granian, uvicorn and gunicorn; "
        "`worker_processes 1` for nginx). Thread pools inside that worker keep their defaults, "
        "so a server with more threads gets no more CPU than one with fewer.",
        f"- wrk runs under `taskset -c {s.wrk_cpus}` with {s.wrk_threads} thread(s), so the "
        "load generator and the server do not steal each other's core.",
        "- Interleaved: for each workload, every server gets a warmup, then round *r* runs the "
        "servers in rotated order (A B C, B C A, …), so drift (thermal, page cache, noisy "
        "neighbours) spreads across servers instead of landing on one.",
        "- Verified first: before measuring, one request per server and workload is checked in "
        "full (status, exact body bytes or JSON, Content-Length, Content-Range). A server that "
        "fails is reported as FAILED and not measured. wrk's own non-2xx and socket-error "
        "counts are shown in the notes.",
        f"- Guarded against a shared machine: the driver measures how much CPU *other* "
        f"processes use (`/proc/stat` busy time minus our servers', wrk's and its own). It "
        f"waits up to {s.idle_wait} s for a quiet machine before starting, "
        f"and re-runs any wrk run during which others took more than {s.max_other:.0%} of the "
        f"CPU (up to {s.retries} retries per run and {s.retry_budget} s of re-runs in all, "
        "keeping the least disturbed run). Rounds list that share when it exceeded 2%.",
        "- Range headers are sent by a wrk Lua script that sets `wrk.headers` (no per-request "
        "Lua, so the generator stays cheap).",
        f"- Fixtures live in `{s.workdir}` (outside the repo): `static/style.css` "
        f"({fx.css.stat().st_size} B), `static/1mib.bin` (1 MiB random), `static/video.mp4` "
        f"({fx.video.stat().st_size / MIB:.1f} MiB: {fx.video_kind})"
        + (", `static/sparse-5g.bin` (5 GiB sparse)" if fx.sparse else "")
        + ".",
        "- The page cache is warm: these measure the servers, not the disk.",
        "",
        "### Servers (exact commands)",
        "",
    ]
    for srv in servers:
        out += [f"- **{srv.label}** ({srv.note}):", f"  `{' '.join(srv.argv)}`"]
    out += [
        "",
        "Apps: `bench/apps/bustapi_app.py` (also with `--no-sendfile`, and `--tls` for HTTPS), "
        "`bench/apps/starlette_app.py` (Granian and uvicorn), `bench/apps/flask_app.py`, "
        "`bench/apps/robyn_app.py` (its `/video/<id>` is `serve_file`, which ignores Range, "
        "so Robyn sits out the send_file workload). Each serves `/hello`, `/static/…` from "
        "the fixture folder "
        "and `/video/<id>` through its framework's `send_file`/`FileResponse`. nginx serves "
        "the same files with `alias`, so the URL layout matches; its `/video/<id>` is a plain "
        f"alias, the native reference for the send_file route. nginx config: "
        f"`{s.workdir}/nginx/nginx.conf` (`sendfile on`, `tcp_nopush on`, `access_log off`).",
        "",
        "HTTPS workloads (`tls_*` with wrk over HTTP/1.1, `h2_*` with h2load over HTTP/2 "
        "by ALPN) run BustAPI with `ssl_context=(cert, key)` and a second nginx with "
        f"`listen … ssl http2; ssl_protocols TLSv1.3;` (`{s.workdir}/nginx-tls/nginx.conf`), "
        f"both with a self-signed certificate for {HOST} made in `{s.workdir}/tls`. h2load "
        f"opens the same number of connections as wrk would, with {H2_STREAMS} concurrent "
        "stream(s) each (`BENCH_H2_STREAMS`); it reports no percentiles (p99 n/a). HTTP/2 "
        "answers are verified with `curl --http2`, which must report HTTP/2.",
        "",
        "### Load generator commands",
        "",
        "Shown with the first measured server's port; every server gets the same command "
        "with its own port.",
        "",
    ]
    for results in all_results.values():
        cmd = next((r.command for r in results if r.command), "")
        if cmd:
            out += [f"- `{results[0].workload.key}`: `{cmd}`"]
    out += [
        "",
        "### Responses as verified",
        "",
        "| workload | server | result | headers |",
        "|---|---|---|---|",
    ]
    for results in all_results.values():
        for res in results:
            if res.check is None:
                continue
            hdrs = ", ".join(f"{k}: {val}" for k, val in res.check.headers.items())
            ok = "ok" if res.check.ok else "**FAIL**"
            out.append(
                f"| {res.workload.key} | {res.server.label} | {ok}: "
                f"{md(res.check.detail)} | {md(hdrs)} |"
            )
    out.append("")
    return "\n".join(out)


def quiet_note(info: RunInfo) -> str:
    worst = max(info.other_load.values(), default=0.0)
    if info.other_before <= 0.05 and worst <= 0.05:
        return (
            "The machine was quiet: other processes used at most "
            f"{max(info.other_before, worst):.0%} of its CPU during the run."
        )
    before = f"{info.other_before:.0%} of the CPU before the run"
    if info.busiest:
        before += f" ({info.busiest})"
    return (
        f"**The machine was shared**: other processes used {before} and up to {worst:.0%} "
        "of it over a workload (the share is given per workload and per disturbed run). "
        "Disturbed runs were re-run within the retry budget and interleaving spreads what "
        "remains across servers, but treat small differences as noise."
    )


def write_chart(all_results: dict[str, list[Result]], path: Path) -> Optional[Path]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not available: no chart")
        return None
    workloads = list(all_results)
    names: list[str] = []
    for results in all_results.values():
        for res in results:
            if res.server.label not in names:
                names.append(res.server.label)
    fig, ax = plt.subplots(figsize=(11, 5))
    width = 0.8 / max(1, len(names))
    for i, name in enumerate(names):
        xs, ys = [], []
        for j, key in enumerate(workloads):
            res = next((r for r in all_results[key] if r.server.label == name), None)
            value = ratio(res, all_results[key]) if res else None
            if value is not None:
                xs.append(j + (i - (len(names) - 1) / 2) * width)
                ys.append(value)
        bars = ax.bar(xs, ys, width, label=name)
        ax.bar_label(bars, fmt="%.2f", fontsize=7)
    ax.axhline(1.0, color="grey", linewidth=0.8)
    if "hello" in workloads:
        j = workloads.index("hello")
        ax.hlines(
            2.0,
            j - 0.45,
            j + 0.45,
            colors="black",
            linestyles="dashed",
            linewidth=1,
            label="/hello target: 2× Granian",
        )
    ax.set_xticks(range(len(workloads)))
    ax.set_xticklabels(
        [f"{k}\n(vs {all_results[k][0].workload.baseline})" for k in workloads], fontsize=8
    )
    ax.set_ylabel("req/s ratio to baseline (higher is better)")
    ax.set_title("BustAPI and peers, median req/s relative to the workload's baseline")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def print_summary(all_results: dict[str, list[Result]]) -> None:
    print("\nSummary (median req/s, ratio to baseline):")
    for key, results in all_results.items():
        print(f"  {key} (baseline {results[0].workload.baseline}):")
        for res in results:
            if res.measured:
                print(
                    f"    {res.server.name:12} {fmt_rps(res.median('rps')):>10} req/s "
                    f"{res.median('bytes_per_s') / MIB:>9.1f} MiB/s "
                    f"{fmt_ratio(ratio(res, results)):>7}"
                )
            else:
                detail = res.check.detail if res.check else "not run"
                print(f"    {res.server.name:12} FAILED: {detail}")


def main() -> int:
    s = Settings()
    for tool in ("wrk", "taskset", "h2load", "curl"):
        if not shutil.which(tool):
            sys.exit(f"{tool} not found: run bench/run.sh, which installs it")
    known = {wl.key for wl in WORKLOADS} | OWN_CLIENT_WORKLOADS
    only = selected_workloads(s)
    if only and set(only) - known:
        sys.exit(f"unknown workloads: {', '.join(sorted(set(only) - known))}")
    selected = [wl for wl in WORKLOADS if not only or wl.key in only]
    if not selected:
        return 0  # only workloads that run.sh starts with their own scripts
    todos = [wl for wl in selected if wl.todo]
    runnable = [wl for wl in selected if not wl.todo]

    started = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    t0 = time.monotonic()
    fx = make_fixtures(s.workdir)
    print(f"fixtures in {fx.static}; video: {fx.video_kind}", flush=True)
    # Only the servers some selected workload runs on: a TLS-only run starts two.
    servers = [
        srv for srv in make_servers(s, fx) if any(wl.feature in srv.features for wl in runnable)
    ]
    logs = s.workdir / "logs"
    logs.mkdir(parents=True, exist_ok=True)

    def on_signal(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    all_results: dict[str, list[Result]] = {}
    meter = CpuMeter(servers, s.retry_budget)
    info = RunInfo(started=started)
    try:
        info.other_before = wait_for_quiet(meter, 0.05, s.idle_wait)
        if info.other_before > 0.05:
            info.busiest = busiest()
            print(
                f"warning: starting anyway; other processes use {info.other_before:.0%} "
                f"of the CPU ({info.busiest})",
                flush=True,
            )
        for srv in servers:
            start(srv, logs, fx)
        for srv in servers:
            if not srv.failure:
                wait_ready(srv)
            state = f"FAILED: {srv.failure}" if srv.failure else f"up on :{srv.port}"
            print(f"{srv.name:12} {state}", flush=True)
        for wl in runnable:
            runners = [srv for srv in servers if wl.feature in srv.features]
            print(f"\n[{wl.key}] {wl.title}, {wl.connections} connections", flush=True)
            all_results[wl.key], info.other_load[wl.key] = measure(s, wl, runners, fx, meter)
        for wl in todos:
            print(f"\n[{wl.key}] TODO, skipped: {wl.todo}")
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        for srv in servers:
            stop(srv)
    info.elapsed = time.monotonic() - t0

    print_summary(all_results)
    out_dir = BENCH / "out"
    out_dir.mkdir(exist_ok=True)
    raw = {
        key: [
            {
                "server": r.server.name,
                "check": r.check.detail if r.check else None,
                "runs": [{k: v for k, v in vars(run).items() if k != "output"} for run in r.runs],
                "rss_peak_kib": r.server.rss_peak_kib,
            }
            for r in results
        ]
        for key, results in all_results.items()
    }
    (out_dir / "results.json").write_text(json.dumps(raw, indent=2))
    for srv in servers:
        print(f"  peak RSS {srv.name:12} {srv.rss_peak_kib / 1024:.0f} MiB")

    write = os.environ.get("BENCH_WRITE", "1" if not s.partial else "0") == "1"
    if os.environ.get("BENCH_NO_WRITE") == "1":
        write = False
    target = ROOT / "BENCHMARKS.md" if write else out_dir / "BENCHMARKS.md"
    chart = write_chart(all_results, (BENCH if write else out_dir) / "ratios.png")
    target.write_text(write_markdown(target, s, fx, servers, all_results, todos, chart, info))
    print(
        f"\nwrote {target.relative_to(ROOT)}" + (f" and {chart.relative_to(ROOT)}" if chart else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
