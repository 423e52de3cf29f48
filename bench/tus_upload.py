"""Workload ``tus_upload``: one client sends 1 GiB to BustAPI's tus endpoint in
8 MiB PATCHes over one keep-alive connection, on loopback; throughput and the
server's memory growth. Run three times: on disk with the default durability
(``fdatasync`` before each PATCH is acknowledged), on disk with ``fsync=False``
(synced at completion only), and on tmpfs, which leaves the engine's own cost; the
disk's own speed for the same writes is measured too, for reference.

    bench/.venv/bin/python bench/tus_upload.py   # run.sh calls it (BENCH_WORKLOADS=tus_upload)

The client is this process, pinned like wrk (``BENCH_WRK_CPUS``), the server like
every other (``BENCH_SERVER_CPUS``). The client sends the same random 8 MiB block
each time (from memory, ``sendall`` of a memoryview), so the client side costs one
kernel copy per byte; ``BENCH_ROUNDS`` rounds per mode, median reported.
"""

from __future__ import annotations

import os
import re
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Optional

import bench as h  # the harness: settings, fixtures dir, start/stop, RSS

SIZE = 1 << 30
CHUNK = 8 << 20
ROUNDS = h.env_int("BENCH_ROUNDS", 3)


def read_head(stream) -> tuple[int, dict[str, str]]:
    status = int(stream.readline().split()[1])
    headers = {}
    while (line := stream.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    if int(headers.get("content-length", "0")):
        stream.read(int(headers["content-length"]))
    return status, headers


def upload_once(port: int, block: memoryview) -> float:
    """Creates an upload and PATCHes it full; returns the seconds the PATCHes took."""
    with socket.create_connection((h.HOST, port)) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        stream = s.makefile("rb")
        s.sendall(
            f"POST /files/ HTTP/1.1\r\nHost: bench\r\nTus-Resumable: 1.0.0\r\n"
            f"Upload-Length: {SIZE}\r\nContent-Length: 0\r\n\r\n".encode()
        )
        status, headers = read_head(stream)
        assert status == 201, status
        location = headers["location"]
        t0 = time.perf_counter()
        for offset in range(0, SIZE, CHUNK):
            s.sendall(
                f"PATCH {location} HTTP/1.1\r\nHost: bench\r\nTus-Resumable: 1.0.0\r\n"
                "Content-Type: application/offset+octet-stream\r\n"
                f"Upload-Offset: {offset}\r\nContent-Length: {CHUNK}\r\n\r\n".encode()
            )
            s.sendall(block)
            status, headers = read_head(stream)
            assert status == 204 and int(headers["upload-offset"]) == offset + CHUNK, (
                status,
                headers,
            )
        return time.perf_counter() - t0


class RssPeak:
    """Samples the server's resident memory while a round runs."""

    def __init__(self, srv: h.Server) -> None:
        self.srv, self.peak_kib, self._stop = srv, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak_kib = max(self.peak_kib, h.rss_kib(self.srv))

    def __enter__(self) -> RssPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def measure(s: h.Settings, fsync: bool, folder: Path, logs: Path) -> dict[str, object]:
    port = s.port_base + 10
    argv = [
        "taskset", "-c", s.server_cpus, str(h.VENV_BIN / "python"),
        str(h.BENCH / "apps" / "bustapi_tus_app.py"),
        "--host", h.HOST, "--port", str(port), "--folder", str(folder),
        *([] if fsync else ["--no-fsync"]),
    ]  # fmt: skip
    name = "tus-fsync" if fsync else "tus-nofsync"
    srv = h.Server(name, name, port, argv, frozenset())
    srv.log = logs / f"{name}.log"
    with srv.log.open("wb") as out:
        srv.proc = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    h.wait_ready(srv)
    if srv.failure:
        raise SystemExit(f"{name}: {srv.failure}")
    block = memoryview(os.urandom(CHUNK))
    speeds, growth = [], []
    try:
        upload_once(port, block)  # warm-up: page cache, allocator, thread pools
        for _ in range(ROUNDS):
            before = h.rss_kib(srv)
            with RssPeak(srv) as peak:
                seconds = upload_once(port, block)
            speeds.append(SIZE / seconds / 1e9)
            growth.append(max(0, peak.peak_kib - before) / 1024)
    finally:
        h.stop(srv)
    # Finished uploads keep a small record (HEAD answers for them); the data must be gone.
    left = [p for p in folder.rglob("*") if p.is_file() and p.suffix != ".info"]
    assert not left, f"uploads left behind: {left}"
    for record in folder.rglob("*.info"):
        record.unlink()
    return {"speeds": speeds, "rss_growth_mib": max(growth)}


def disk_note(folder: Path) -> str:
    out = subprocess.run(
        ["df", "-T", str(folder)], capture_output=True, text=True, check=False
    ).stdout.splitlines()
    fields = re.split(r"\s+", out[-1]) if out else []
    return f"{fields[1]} on {fields[0]}" if len(fields) > 1 else "unknown filesystem"


def disk_gb_s(folder: Path, block: bytes) -> float:
    """The disk's own speed for the same job: 1 GiB in 8 MiB writes, then fdatasync."""
    path = folder / "disk-probe"
    t0 = time.perf_counter()
    with path.open("wb") as f:
        for _ in range(SIZE // CHUNK):
            f.write(block)
        f.flush()
        os.fdatasync(f.fileno())
    seconds = time.perf_counter() - t0
    path.unlink()
    return SIZE / seconds / 1e9


def main() -> int:
    s = h.Settings()
    if s.only_workloads and "tus_upload" not in s.only_workloads:
        return 0
    os.sched_setaffinity(0, h.cpu_list(s.wrk_cpus))
    disk = s.workdir / "tus"
    memory = Path("/dev/shm/bustapi-bench-tus")
    logs = s.workdir / "logs"
    for d in (disk, memory, logs):
        d.mkdir(parents=True, exist_ok=True)
    modes = [
        (f"{disk_note(disk)}, `fdatasync` before each 204 (default)", disk, True),
        (f"{disk_note(disk)}, `fsync=False` (synced at completion)", disk, False),
        ("tmpfs (`/dev/shm`): the engine without a disk", memory, True),
    ]
    results = {label: measure(s, fsync, folder, logs) for label, folder, fsync in modes}
    reference = disk_gb_s(disk, os.urandom(CHUNK))
    lines = [
        "",
        "## Resumable upload (tus): 1 GiB in 8 MiB PATCHes (`bench/tus_upload.py`)",
        "",
        f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; server pinned to CPU"
        f" {s.server_cpus}, the client (one keep-alive connection) to CPU {s.wrk_cpus}.",
        f" The disk itself, writing 1 GiB in 8 MiB writes then `fdatasync`: {reference:.2f} GB/s.",
        "",
        "| where uploads go | GB/s (median) | rounds | server RSS growth (MiB) |",
        "|---|---:|---|---:|",
    ]
    for label, r in results.items():
        speeds: list[float] = r["speeds"]  # type: ignore[assignment]
        rounds = ", ".join(f"{v:.2f}" for v in speeds)
        lines.append(
            f"| {label} | {statistics.median(speeds):.2f} | {rounds} | {r['rss_growth_mib']:.1f} |"
        )
    section = "\n".join(lines) + "\n"
    print(section)
    target: Optional[Path] = h.ROOT / "BENCHMARKS.md"
    if os.environ.get("BENCH_WRITE", "1") != "1" or not target.exists():
        target = None
    if target is not None:
        with target.open("a") as f:
            f.write(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
