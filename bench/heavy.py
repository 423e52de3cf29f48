"""Workloads 6 and 7, which wrk cannot drive: one client downloading 2 GiB, and
10,000 concurrent clients each pulling a video slowly. BustAPI and nginx, same
files, same pinning as bench.py; appends its section to BENCHMARKS.md.

    bench/.venv/bin/python bench/heavy.py          # run.sh calls it after bench.py

6. ``download_2gib``: ``curl -o /dev/null`` (C, pinned to its own core, not the
   bottleneck) fetches a 2 GiB file; interleaved rounds, median MB/s.
7. ``slow_10k``: an asyncio client opens 10,000 connections, each asking for the
   video and then reading 4 KiB per second. Once all are streaming, the server's
   resident memory (whole process tree) and CPU share are sampled for 10 s, and
   every connection must have received bytes in that window (none starved).
"""

from __future__ import annotations

import asyncio
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

import bench as h  # the harness: fixtures, servers, start/stop, RSS

TWO_GIB = 2 * 1024 * 1024 * 1024
CLIENTS = int(os.environ.get("BENCH_SLOW_CLIENTS", "10000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))


def big_file(static: Path) -> Path:
    path = static / "big-2g.bin"
    if not path.exists() or path.stat().st_size != TWO_GIB:
        block = os.urandom(64 * 1024 * 1024)
        with path.open("wb") as f:
            for _ in range(TWO_GIB // len(block)):
                f.write(block)
        os.chmod(path, 0o644)
    return path


def download_mb_s(srv: h.Server, s: h.Settings) -> float:
    out = subprocess.run(
        [
            "taskset",
            "-c",
            s.wrk_cpus,
            "curl",
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{speed_download}",
            srv.url("/static/big-2g.bin"),
        ],  # fmt: skip
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    return float(out.stdout) / 1e6


def cpu_seconds(srv: h.Server) -> float:
    assert srv.proc is not None
    total = 0
    for pid in h.process_tree(srv.proc.pid):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
            total += int(fields[11]) + int(fields[12])  # utime + stime
        except OSError:
            pass
    return total / os.sysconf("SC_CLK_TCK")


async def slow_clients(srv: h.Server) -> dict[str, float]:
    received = [0] * CLIENTS
    started = asyncio.Event()
    stop = asyncio.Event()
    opened = 0

    async def one(i: int) -> None:
        nonlocal opened
        reader, writer = await asyncio.open_connection(h.HOST, srv.port, limit=8192)
        writer.write(b"GET /static/video.mp4 HTTP/1.1\r\nHost: bench\r\n\r\n")
        await writer.drain()
        opened += 1
        if opened == CLIENTS:
            started.set()
        while not stop.is_set():
            data = await reader.read(4096)
            if not data:
                break
            received[i] += len(data)
            await asyncio.sleep(1)
        writer.close()

    tasks = []
    for i in range(CLIENTS):
        tasks.append(asyncio.create_task(one(i)))
        if i % 500 == 499:
            await asyncio.sleep(0.2)  # let the listen backlog drain
    await asyncio.wait_for(started.wait(), 120)
    await asyncio.sleep(5)  # everyone streaming
    before = list(received)
    cpu0, t0 = cpu_seconds(srv), time.monotonic()
    rss = []
    for _ in range(10):
        await asyncio.sleep(1)
        rss.append(h.rss_kib(srv))
    cpu = (cpu_seconds(srv) - cpu0) / (time.monotonic() - t0)
    starved = sum(1 for a, b in zip(before, received) if b <= a)
    stop.set()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return {"rss_mib": max(rss) / 1024, "cpu": cpu * 100, "starved": starved}


def main() -> int:
    s = h.Settings()
    fx = h.make_fixtures(s.workdir)
    big_file(fx.static)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    servers = [srv for srv in h.make_servers(s, fx) if srv.name in ("bustapi", "nginx")]
    logs = s.workdir / "logs"
    logs.mkdir(exist_ok=True)
    speeds: dict[str, list[float]] = {srv.name: [] for srv in servers}
    slow: dict[str, Optional[dict[str, float]]] = {}
    try:
        for srv in servers:
            h.start(srv, logs, fx)
            h.wait_ready(srv)
            if srv.failure:
                raise SystemExit(f"{srv.label}: {srv.failure}")
        for _ in range(ROUNDS):
            for srv in servers:
                speeds[srv.name].append(download_mb_s(srv, s))
        for srv in servers:
            enough = hard >= CLIENTS + 100
            slow[srv.name] = asyncio.run(slow_clients(srv)) if enough else None
            time.sleep(3)
    finally:
        for srv in servers:
            h.stop(srv)

    label = {srv.name: srv.label for srv in servers}
    med = {k: statistics.median(v) for k, v in speeds.items()}
    lines = [
        "",
        "## Large download and 10,000 slow clients (`bench/heavy.py`)",
        "",
        f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; servers pinned as above,"
        " the client on the other core.",
        "",
        "### `download_2gib`: one client, a 2 GiB file (`curl -o /dev/null`)",
        "",
        "| server | MB/s (median) | ratio to nginx | rounds |",
        "|---|---:|---:|---|",
    ]
    for name, values in speeds.items():
        rounds = ", ".join(f"{v:,.0f}" for v in values)
        lines.append(
            f"| {label[name]} | {med[name]:,.0f} | {med[name] / med['nginx']:.2f}× | {rounds} |"
        )
    lines += [
        "",
        f"### `slow_10k`: {CLIENTS:,} connections each reading the video at 4 KiB/s",
        "",
        "| server | peak RSS (MiB) | CPU (% of one core) | starved connections |",
        "|---|---:|---:|---:|",
    ]
    for name, r in slow.items():
        if r is None:
            lines.append(f"| {label[name]} | skipped: open-files limit below {CLIENTS} | | |")
        else:
            lines.append(
                f"| {label[name]} | {r['rss_mib']:.1f} | {r['cpu']:.1f} | {int(r['starved'])} |"
            )
    section = "\n".join(lines) + "\n"
    print(section)
    target = h.ROOT / "BENCHMARKS.md" if os.environ.get("BENCH_WRITE", "1") == "1" else None
    if target is not None and target.exists():
        with target.open("a") as f:
            f.write(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
