"""The workloads wrk cannot drive: one client downloading 2 GiB, 10,000 clients each
pulling a video slowly, and 10,000 idle keep-alive connections. Same files, same
pinning as bench.py; appends its section to BENCHMARKS.md (with BENCH_WRITE=1, the
default) and always writes it to bench/out/heavy.md.

    bench/.venv/bin/python bench/heavy.py          # run.sh calls it after bench.py
    BENCH_WORKLOADS=idle_10k BENCH_SERVERS=bustapi,nginx bench/.venv/bin/python bench/heavy.py

- ``download_2gib``: one client fetches a 2 GiB file, pinned to the client core, read
  two ways: ``curl -o /dev/null`` and a raw socket (``recv_into`` one preallocated
  4 MiB buffer, so the reader does no per-byte work); interleaved rounds, median MB/s.
  BustAPI (sendfile and copy paths), nginx and Robyn.
- ``slow_10k``: an asyncio client opens 10,000 connections, each asking for the video
  and then reading 4 KiB per second. Once all are streaming, the server's resident
  memory (whole process tree) and CPU share are sampled for 10 s, and every connection
  must have received bytes in that window (none starved). BustAPI and nginx.
- ``idle_10k``: each server is restarted (a clean baseline), answers one request, and
  its resident memory is sampled; then 10,000 keep-alive connections each GET the small
  static file, read the whole answer (checked: 200 and the exact length) and stay open,
  idle. Once all are idle the memory is sampled again: reported in total and per
  connection above the baseline, with how many connections the server kept open.
  BustAPI, nginx and Robyn.

``BENCH_SLOW_CLIENTS`` / ``BENCH_IDLE_CLIENTS`` change the 10,000; ``BENCH_SERVERS`` and
``BENCH_WORKLOADS`` (``download_2gib``, ``slow_10k``, ``idle_10k`` or ``heavy``) pick subsets.
``heavy.py raw PORT...`` runs only the raw reader of ``download_2gib`` against servers
already listening on those ports (an A/B of two builds against nginx, say).
"""

from __future__ import annotations

import asyncio
import os
import resource
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

from conn_memory import slow_readers

import bench as h  # the harness: fixtures, servers, start/stop, RSS

TWO_GIB = 2 * 1024 * 1024 * 1024
SLOW_CLIENTS = h.env_int("BENCH_SLOW_CLIENTS", 10000)
IDLE_CLIENTS = h.env_int("BENCH_IDLE_CLIENTS", 10000)
ROUNDS = h.env_int("BENCH_ROUNDS", 3)
SERVERS = {
    "download_2gib": ("bustapi", "bustapi_copy", "nginx", "robyn"),
    "slow_10k": ("bustapi", "nginx"),
    "idle_10k": ("bustapi", "nginx", "robyn"),
}
BIG = "/static/big-2g.bin"


def big_file(static: Path) -> Path:
    path = static / "big-2g.bin"
    if not path.exists() or path.stat().st_size != TWO_GIB:
        block = os.urandom(64 * 1024 * 1024)
        with path.open("wb") as f:
            for _ in range(TWO_GIB // len(block)):
                f.write(block)
        os.chmod(path, 0o644)
    return path


# --- download_2gib ----------------------------------------------------------------------


def curl_mb_s(srv: h.Server, s: h.Settings) -> float:
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
            "%{http_code} %{size_download} %{speed_download}",
            srv.url(BIG),
        ],  # fmt: skip
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    status, size, speed = out.stdout.split()
    if status != "200" or int(size) != TWO_GIB:
        raise SystemExit(f"{srv.label}: curl got {status}, {size} bytes of {TWO_GIB}")
    return float(speed) / 1e6


def raw_mb_s(srv: h.Server, s: h.Settings) -> float:
    """One GET of the big file over a plain socket, read on the client CPUs."""
    speed, _ = raw_read(srv.port, s.wrk_cpus, srv.label)
    return speed


def raw_read(port: int, cpus: str, label: str) -> tuple[float, int]:
    """``(MB/s, recv calls)`` of one GET of the big file, the body read with
    ``recv_into`` a preallocated buffer (no allocation or copy per read), on
    ``cpus``; timed from sending the request to the last byte, as curl times it."""
    buf = bytearray(4 * 1024 * 1024)
    view = memoryview(buf)
    affinity = os.sched_getaffinity(0)
    os.sched_setaffinity(0, h.cpu_list(cpus))
    reads = 0
    try:
        with socket.create_connection((h.HOST, port), timeout=60) as sock:
            t0 = time.perf_counter()
            sock.sendall(f"GET {BIG} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n".encode())
            head = b""
            while b"\r\n\r\n" not in head:
                n = sock.recv_into(view)
                if n == 0:
                    raise SystemExit(f"{label}: connection closed in the headers")
                head += bytes(view[:n])
            head, _, first = head.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            length = next(
                int(v) for k, _, v in (ln.partition(":") for ln in lines[1:])
                if k.strip().lower() == "content-length"
            )  # fmt: skip
            if lines[0].split()[1] != "200" or length != TWO_GIB:
                raise SystemExit(f"{label}: raw client got {lines[0]!r}, {length} bytes")
            got = len(first)
            while got < length:
                n = sock.recv_into(view)
                if n == 0:
                    break
                got += n
                reads += 1
            elapsed = time.perf_counter() - t0
    finally:
        os.sched_setaffinity(0, affinity)
    if got != length:
        raise SystemExit(f"{label}: raw client read {got} of {length} bytes")
    return length / elapsed / 1e6, reads


def raw_only(ports: list[int], s: h.Settings, static: Path) -> None:
    """The raw reader alone against servers already running on ``ports`` (two
    builds of BustAPI and nginx, say), in interleaved rounds from a warm cache.

        bench/.venv/bin/python bench/heavy.py raw 18906 18907 18005
    """
    path = big_file(static)
    speeds: dict[int, list[float]] = {port: [] for port in ports}
    for r in range(ROUNDS):
        for port in ports[r % len(ports) :] + ports[: r % len(ports)]:
            warm(path)
            speed, reads = raw_read(port, s.wrk_cpus, f":{port}")
            speeds[port].append(speed)
            kib = TWO_GIB / max(reads, 1) / 1024
            print(f"  round {r + 1}/{ROUNDS} :{port} {speed:,.0f} MB/s, {kib:.0f} KiB per read")
    for port, runs in speeds.items():
        print(f"median :{port} {statistics.median(runs):,.0f} MB/s")


def warm(path: Path) -> None:
    """Reads the file once, so the next download is served from the page cache.

    Without it, a download that found the file (partly) evicted measured the disk,
    and warmed the cache for whichever server came next: curl read it at 0.69 GB/s
    right after ``posix_fadvise(DONTNEED)``, 1.4–2.2 GB/s warm, and the first curl
    round of the full run of 032e409 read 650 MB/s (110 MB/s in one subset run)."""
    buf = bytearray(4 * 1024 * 1024)
    with path.open("rb", buffering=0) as f:
        while f.readinto(buf):
            pass


def downloads(
    servers: list[h.Server], s: h.Settings, path: Path
) -> dict[str, dict[str, list[float]]]:
    """Interleaved rounds; in each, every server is read by curl and by the raw client,
    each time from a warm page cache."""
    speeds: dict[str, dict[str, list[float]]] = {
        srv.name: {"curl": [], "raw": []} for srv in servers
    }
    for r in range(ROUNDS):
        for srv in servers[r % len(servers) :] + servers[: r % len(servers)]:
            warm(path)
            speeds[srv.name]["curl"].append(curl_mb_s(srv, s))
            warm(path)
            speeds[srv.name]["raw"].append(raw_mb_s(srv, s))
            print(
                f"  round {r + 1}/{ROUNDS} {srv.name:12} curl "
                f"{speeds[srv.name]['curl'][-1]:,.0f} MB/s, raw socket "
                f"{speeds[srv.name]['raw'][-1]:,.0f} MB/s",
                flush=True,
            )
    return speeds


# --- slow_10k ---------------------------------------------------------------------------


def cpu_times(srv: h.Server) -> tuple[float, float]:
    """User and system CPU seconds of the server's whole process tree so far."""
    assert srv.proc is not None
    user = system = 0
    for pid in h.process_tree(srv.proc.pid):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        user, system = user + int(fields[11]), system + int(fields[12])  # utime, stime
    tick = os.sysconf("SC_CLK_TCK")
    return user / tick, system / tick


def cpu_seconds(srv: h.Server) -> float:
    return sum(cpu_times(srv))


def start_all(servers: list[h.Server], s: h.Settings, fx: h.Fixtures) -> Path:
    """Starts each server and waits until it listens; exits if one cannot. Returns
    the directory of their logs (for restarts)."""
    logs = s.workdir / "logs"
    logs.mkdir(exist_ok=True)
    for srv in servers:
        h.start(srv, logs, fx)
        h.wait_ready(srv)
        if srv.failure:
            raise SystemExit(f"{srv.label}: {srv.failure}")
    return logs


async def slow_clients(srv: h.Server) -> dict[str, float]:
    rss: list[int] = []
    t0 = cpu0 = 0.0

    async def sample() -> None:
        nonlocal t0, cpu0
        if not rss:  # the CPU is counted over the sampling window only
            cpu0, t0 = cpu_seconds(srv), time.monotonic()
        rss.append(h.rss_kib(srv))

    starved = await slow_readers(
        h.HOST, srv.port, "/static/video.mp4", SLOW_CLIENTS, hold=5, sample=sample
    )
    cpu = (cpu_seconds(srv) - cpu0) / (time.monotonic() - t0)
    return {"rss_mib": max(rss) / 1024, "cpu": cpu * 100, "starved": starved}


# --- idle_10k ---------------------------------------------------------------------------


async def fetch_and_hold(
    path: str, want: int, port: int
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Opens a keep-alive connection, reads one whole answer (200, ``want`` bytes of
    body, by Content-Length), and hands back the still open connection."""
    reader, writer = await asyncio.open_connection(h.HOST, port, limit=8192)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode())
    await writer.drain()
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    length = next(
        int(v) for k, _, v in (ln.partition(":") for ln in head[1:])
        if k.strip().lower() == "content-length"
    )  # fmt: skip
    body = await reader.readexactly(length)
    if head[0].split()[1] != "200" or len(body) != want:
        raise ValueError(f"{head[0]!r}, {len(body)} bytes, want 200 and {want}")
    return reader, writer


async def idle_clients(srv: h.Server, fx: h.Fixtures) -> dict[str, float]:
    path, want = "/static/style.css", fx.css.stat().st_size
    reader, writer = await fetch_and_hold(path, want, srv.port)  # first answer: lazy setup
    writer.close()
    await asyncio.sleep(2)
    baseline = h.rss_kib(srv)
    held: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    failed = 0
    t0 = time.monotonic()
    for start in range(0, IDLE_CLIENTS, 500):  # batches, so the listen backlog keeps up
        batch = range(start, min(start + 500, IDLE_CLIENTS))
        done = await asyncio.gather(
            *(fetch_and_hold(path, want, srv.port) for _ in batch), return_exceptions=True
        )
        for item in done:
            if isinstance(item, BaseException):
                failed += 1
            else:
                held.append(item)
    opened_in = time.monotonic() - t0
    await asyncio.sleep(3)  # all idle now; let the server settle
    rss = []
    for _ in range(3):
        rss.append(h.rss_kib(srv))
        await asyncio.sleep(1)
    still_open = sum(1 for r, _ in held if not r.at_eof())
    for _, w in held:
        w.close()
    await asyncio.sleep(1)
    idle = max(rss)
    return {
        "baseline_mib": baseline / 1024,
        "idle_mib": idle / 1024,
        "per_conn_kib": (idle - baseline) / max(1, len(held)),
        "held": len(held),
        "failed": failed,
        "still_open": still_open,
        "opened_in": opened_in,
    }


def emfile_count(srv: h.Server) -> int:
    """How often the server logged running out of descriptors: a streaming connection
    holds a socket and the open file, so 10,000 of them can exceed the open-files limit
    (nginx logs EMFILE; a starved connection here is that, not slowness)."""
    if srv.log is None or not srv.log.exists():
        return 0
    return srv.log.read_text(errors="replace").count("Too many open files")


def restart(srv: h.Server, logs: Path, fx: h.Fixtures) -> None:
    h.stop(srv)
    time.sleep(1)
    h.start(srv, logs, fx)
    h.wait_ready(srv)
    if srv.failure:
        raise SystemExit(f"{srv.label}: {srv.failure}")


# --- report -----------------------------------------------------------------------------


def report(
    label: dict[str, str],
    speeds: dict[str, dict[str, list[float]]],
    slow: dict[str, Optional[dict[str, float]]],
    idle: dict[str, Optional[dict[str, float]]],
) -> str:
    lines = [
        "",
        "## Large download and 10,000 slow or idle clients (`bench/heavy.py`)",
        "",
        f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; servers pinned as above,"
        " the client on the other core.",
    ]
    if speeds:
        med = {k: {c: statistics.median(v) for c, v in d.items()} for k, d in speeds.items()}
        base = med.get("nginx")
        lines += [
            "",
            "### `download_2gib`: one client, a 2 GiB file",
            "",
            "Read by `curl -o /dev/null` and by a raw socket (`recv_into` one preallocated 4 MiB "
            "buffer); ratio = MB/s ÷ nginx's with the same client.",
            "",
            "| server | curl MB/s (median) | ratio | raw socket MB/s (median) | ratio | "
            "rounds (curl / raw) |",
            "|---|---:|---:|---:|---:|---|",
        ]
        for name, d in speeds.items():
            ratio = {
                c: f"{med[name][c] / base[c]:.2f}×" if base else "n/a" for c in ("curl", "raw")
            }
            rounds = "; ".join(f"{c:,.0f} / {r:,.0f}" for c, r in zip(d["curl"], d["raw"]))
            lines.append(
                f"| {label[name]} | {med[name]['curl']:,.0f} | {ratio['curl']} | "
                f"{med[name]['raw']:,.0f} | {ratio['raw']} | {rounds} |"
            )
    if slow:
        lines += [
            "",
            f"### `slow_10k`: {SLOW_CLIENTS:,} connections each reading the video at 4 KiB/s",
            "",
            "| server | peak RSS (MiB) | CPU (% of one core) | starved connections | "
            "'Too many open files' in its log |",
            "|---|---:|---:|---:|---:|",
        ]
        for name, r in slow.items():
            if r is None:
                lines.append(
                    f"| {label[name]} | skipped: open-files limit below {SLOW_CLIENTS} | | |"
                )
            else:
                lines.append(
                    f"| {label[name]} | {r['rss_mib']:.1f} | {r['cpu']:.1f} | "
                    f"{int(r['starved'])} | {int(r['emfile'])} |"
                )
    if idle:
        lines += [
            "",
            f"### `idle_10k`: {IDLE_CLIENTS:,} idle keep-alive connections",
            "",
            "Each connection GETs `style.css`, reads the whole answer and stays open. RSS of "
            "the server's process tree after a restart and one request (baseline), then with "
            "every connection idle.",
            "",
            "| server | baseline RSS (MiB) | RSS, all idle (MiB) | ÷ nginx's | KiB per "
            "connection | ÷ nginx's | connections (held / failed / still open) |",
            "|---|---:|---:|---:|---:|---:|---|",
        ]
        ngx = idle.get("nginx")
        for name, r in idle.items():
            if r is None:
                lines.append(f"| {label[name]} | skipped: open-files limit below {IDLE_CLIENTS} |")
                continue
            total = f"{r['idle_mib'] / ngx['idle_mib']:.1f}×" if ngx else "n/a"
            each = f"{r['per_conn_kib'] / ngx['per_conn_kib']:.1f}×" if ngx else "n/a"
            lines.append(
                f"| {label[name]} | {r['baseline_mib']:.1f} | {r['idle_mib']:.1f} | {total} | "
                f"{r['per_conn_kib']:.2f} | {each} | {int(r['held']):,} / {int(r['failed']):,} "
                f"/ {int(r['still_open']):,} |"
            )
        lines += [
            "",
            "KiB per connection is the growth above the server's own baseline over the "
            "connections held; the issue's goal compares the totals (≤ 2× nginx's RSS).",
        ]
    return "\n".join(lines) + "\n"


def main() -> int:
    s = h.Settings()
    if sys.argv[1:2] == ["raw"]:
        raw_only([int(p) for p in sys.argv[2:]], s, h.make_fixtures(s.workdir).static)
        return 0
    only = h.selected_workloads(s)
    workloads = [w for w in h.HEAVY_WORKLOADS if only is None or w in only]
    if not workloads:
        return 0
    fx = h.make_fixtures(s.workdir)
    if "download_2gib" in workloads:
        big_file(fx.static)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # servers inherit it
    wanted = {name for w in workloads for name in SERVERS[w]}
    servers = [srv for srv in h.make_servers(s, fx) if srv.name in wanted]
    by_name = {srv.name: srv for srv in servers}
    speeds: dict[str, dict[str, list[float]]] = {}
    slow: dict[str, Optional[dict[str, float]]] = {}
    idle: dict[str, Optional[dict[str, float]]] = {}
    try:
        logs = start_all(servers, s, fx)
        if "download_2gib" in workloads:
            print("\n[download_2gib] one client, 2 GiB, curl and a raw socket", flush=True)
            picked = [by_name[n] for n in SERVERS["download_2gib"] if n in by_name]
            speeds = downloads(picked, s, big_file(fx.static))
        if "slow_10k" in workloads:
            print(f"\n[slow_10k] {SLOW_CLIENTS:,} slow readers of the video", flush=True)
            for name in SERVERS["slow_10k"]:
                if name in by_name:
                    enough = hard >= SLOW_CLIENTS + 100
                    before = emfile_count(by_name[name])
                    slow[name] = asyncio.run(slow_clients(by_name[name])) if enough else None
                    if slow[name] is not None:
                        slow[name]["emfile"] = emfile_count(by_name[name]) - before
                    print(f"  {name:12} {slow[name]}", flush=True)
                    time.sleep(3)
        if "idle_10k" in workloads:
            print(f"\n[idle_10k] {IDLE_CLIENTS:,} idle keep-alive connections", flush=True)
            for name in SERVERS["idle_10k"]:
                if name in by_name:
                    srv = by_name[name]
                    if hard < IDLE_CLIENTS + 100:
                        idle[name] = None
                        continue
                    restart(srv, logs, fx)
                    idle[name] = asyncio.run(idle_clients(srv, fx))
                    print(f"  {name:12} {idle[name]}", flush=True)
    finally:
        for srv in servers:
            h.stop(srv)

    section = report({srv.name: srv.label for srv in servers}, speeds, slow, idle)
    print(section)
    h.publish_section(s, "heavy", section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
