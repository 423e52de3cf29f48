"""Server CPU time per request for `GET /hello`, BustAPI against its Python peers.

bench.py's ratios are rates, and on this shared VM a rate moves with everyone's load
(rounds of one server spread by 10-20 %). The CPU time a server spends per request moves
much less, and it says where a ratio's ceiling is: a server whose CPU per request is
half its peer's serves twice its rate on one core. Same servers, apps, pinning and wrk
as bench.py (server on BENCH_SERVER_CPUS, wrk on BENCH_WRK_CPUS, 64 connections),
interleaved rounds; CPU is user + system of the server's whole process tree, from /proc.
System time is mostly the kernel's loopback TCP path, which every server pays alike.

    bench/.venv/bin/python bench/cpu_per_request.py
    BENCH_SERVERS=bustapi,granian BENCH_ROUNDS=3 bench/.venv/bin/python bench/cpu_per_request.py
"""

from __future__ import annotations

import statistics
import subprocess

from heavy import cpu_times, start_all

import bench as h  # the harness: fixtures, servers, start/stop

PEERS = ("bustapi", "granian", "robyn", "uvicorn")


def measure(srv: h.Server, s: h.Settings) -> tuple[float, float, float]:
    """``(requests per second, user and system CPU µs per request)`` over one wrk run."""
    before = cpu_times(srv)
    out = subprocess.run(
        [*f"taskset -c {s.wrk_cpus} wrk -t 1 -c 64 -d {s.duration}".split(), srv.url("/hello")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    after = cpu_times(srv)
    requests = int(out.split(" requests in ")[0].split()[-1])
    rate = float(out.split("Requests/sec:")[1].split()[0])
    user, system = ((a - b) / requests * 1e6 for a, b in zip(after, before))
    return rate, user, system


def main() -> None:
    s = h.Settings()
    fx = h.make_fixtures(s.workdir)
    names = s.only_servers or list(PEERS)
    servers = [srv for srv in h.make_servers(s, fx) if srv.name in names]
    results: dict[str, list[tuple[float, float, float]]] = {srv.name: [] for srv in servers}
    try:
        start_all(servers, s, fx)
        for srv in servers:
            measure(srv, s)  # warm-up
        for r, order in h.rotations(servers, s.rounds):
            for srv in order:
                results[srv.name].append(measure(srv, s))
                rate, user, system = results[srv.name][-1]
                print(
                    f"round {r + 1} {srv.name:10} {rate:9,.0f} req/s  CPU µs/req:"
                    f" {user + system:5.1f} (user {user:5.1f}, system {system:5.1f})",
                    flush=True,
                )
    finally:
        for srv in servers:
            h.stop(srv)
    print()
    for srv in servers:
        runs = results[srv.name]
        rate = statistics.median(x for x, _, _ in runs)
        total = statistics.median(u + y for _, u, y in runs)
        user = statistics.median(u for _, u, _ in runs)
        system = statistics.median(y for _, _, y in runs)
        print(
            f"median  {srv.label:22} {rate:9,.0f} req/s  CPU µs/req: {total:5.1f}"
            f" (user {user:5.1f}, system {system:5.1f})"
        )


if __name__ == "__main__":
    main()
