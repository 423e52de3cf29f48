"""Why the zero-copy path and the copy path win where they do (issue 13).

For ranges of the static video from 16 KiB to 16 MiB, measures BustAPI's sendfile path
(``bustapi``), its copy path (``bustapi_copy``, ``run(sendfile=False)``) and nginx
(sendfile on, tcp_nopush) with wrk, 16 connections, interleaved rounds; for each run it
records requests/s and the CPU time the server and wrk spent per request (from /proc
and getrusage), so a result can be read as "who was the bottleneck, and what did each
side pay per byte". Prints a Markdown table; bench/analysis.md quotes it.

    bench/.venv/bin/python bench/file_paths.py            # after bench/run.sh built the venv
    FILE_PATHS_SIZES=1048576,16777216 BENCH_ROUNDS=2 bench/.venv/bin/python bench/file_paths.py
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import heavy

import bench as h

SIZES = [int(x) for x in os.environ.get("FILE_PATHS_SIZES", "").split(",") if x] or [
    16 << 10,
    64 << 10,
    256 << 10,
    1 << 20,
    4 << 20,
    16 << 20,
]
SERVERS = ("nginx", "bustapi", "bustapi_copy")


def run_one(s: h.Settings, srv: h.Server, size: int, lua: Path) -> tuple[float, float, float]:
    """req/s, server CPU µs per request, wrk CPU µs per request."""
    before_srv = heavy.cpu_seconds(srv)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(
        [
            "taskset",
            "-c",
            s.wrk_cpus,
            "wrk",
            "-t1",
            "-c16",
            f"-d{s.duration}",
            "-s",
            str(lua),
            srv.url("/static/video.mp4"),
        ],  # fmt: skip
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    server_cpu = heavy.cpu_seconds(srv) - before_srv
    wrk_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    run = h.parse_wrk(out)
    requests = max(run.requests, 1)
    return run.rps, server_cpu * 1e6 / requests, wrk_cpu * 1e6 / requests


def main() -> int:
    s = h.Settings()
    fx = h.make_fixtures(s.workdir)
    servers = [srv for srv in h.make_servers(s, fx) if srv.name in SERVERS]
    logs = Path(tempfile.mkdtemp(prefix="file-paths-"))
    results: dict[tuple[str, int], list[tuple[float, float, float]]] = {}
    try:
        for srv in servers:
            h.start(srv, logs, fx)
        for srv in servers:
            h.wait_ready(srv)
            if srv.failure:
                sys.exit(f"{srv.name}: {srv.failure}")
        for size in SIZES:
            lua = logs / f"r{size}.lua"
            lua.write_text(f'wrk.headers["Range"] = "bytes=0-{size - 1}"\n')
            for rnd in range(s.rounds):
                order = servers[rnd % len(servers) :] + servers[: rnd % len(servers)]
                for srv in order:
                    r = run_one(s, srv, size, lua)
                    results.setdefault((srv.name, size), []).append(r)
                    print(
                        f"  {size:>9} B round {rnd + 1} {srv.name:<13} {r[0]:9,.0f} req/s "
                        f"server {r[1]:8.1f} µs/req  wrk {r[2]:8.1f} µs/req",
                        flush=True,
                    )
    finally:
        for srv in servers:
            h.stop(srv)
    lines = [
        "",
        "## Zero-copy path, copy path and nginx by range size (`bench/file_paths.py`)",
        "",
        f"wrk, 16 connections, `Range: bytes=0-(size-1)` of the static video; median of "
        f"{s.rounds} interleaved rounds of {s.duration} s. CPU per request: the server's process "
        "tree (from /proc) and wrk (getrusage), so each row says who was the bottleneck and "
        "what each side paid. bench/analysis.md reads it.",
        "",
        "| range | server | req/s | MB/s | server CPU µs/req | wrk CPU µs/req | ÷ nginx req/s |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for size in SIZES:
        base = statistics.median(r[0] for r in results[("nginx", size)])
        for name in SERVERS:
            runs = results[(name, size)]
            rps = statistics.median(r[0] for r in runs)
            srv_us = statistics.median(r[1] for r in runs)
            wrk_us = statistics.median(r[2] for r in runs)
            lines.append(
                f"| {size >> 10} KiB | {name} | {rps:,.0f} | {rps * size / 1e6:,.0f} | "
                f"{srv_us:,.1f} | {wrk_us:,.1f} | {rps / base:.2f}× |"
            )
    section = "\n".join(lines) + "\n"
    print(section)
    h.publish_section(s, "file_paths", section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
