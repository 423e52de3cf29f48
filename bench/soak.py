"""Soak test (not in CI): minutes of mixed load against one BustAPI server.

    python bench/soak.py                  # 5 minutes, 32 client threads
    SOAK_SECONDS=60 python bench/soak.py  # shorter
    SOAK_WRITE=1 python bench/soak.py     # also append the figures to BENCHMARKS.md

Mix: JSON views, small static files, Range probes and 1 MiB ranges on a large
file, whole downloads, clients that vanish mid-download, conditional requests,
HEAD, and send_file ranges. Pass criteria: zero 5xx, zero unexpected connection
errors, and flat memory (RSS at the end within 20 % + 10 MiB of the RSS after
warm-up) and descriptors back at their starting count. Writes bench/out/soak.md
(and, with SOAK_WRITE=1, appends it to BENCHMARKS.md).
"""

from __future__ import annotations

import http.client
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SECONDS = float(os.environ.get("SOAK_SECONDS", "300"))
THREADS = int(os.environ.get("SOAK_THREADS", "32"))
PORT = int(os.environ.get("SOAK_PORT", "18101"))
BIG = 64 * 1024 * 1024


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


class Stats:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.kinds: Counter[str] = Counter()
        self.statuses: Counter[int] = Counter()
        self.errors: Counter[str] = Counter()
        self.bytes = 0

    def record(self, kind: str, status: int, n: int) -> None:
        with self.lock:
            self.kinds[kind] += 1
            self.statuses[status] += 1
            self.bytes += n

    def error(self, kind: str, e: BaseException) -> None:
        with self.lock:
            self.errors[f"{kind}: {type(e).__name__}"] += 1


def request(kind: str, method: str, path: str, headers: dict[str, str], stats: Stats) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=30)
    try:
        conn.request(method, path, headers=headers)
        r = conn.getresponse()
        body = r.read()
        stats.record(kind, r.status, len(body))
    except (OSError, http.client.HTTPException) as e:
        stats.error(kind, e)
    finally:
        conn.close()


def vanish(stats: Stats) -> None:
    """Starts a whole download, reads a little, and resets the connection."""
    try:
        s = socket.create_connection(("127.0.0.1", PORT), timeout=30)
        s.sendall(b"GET /static/big.bin HTTP/1.1\r\nHost: soak\r\n\r\n")
        s.recv(65536)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()
        stats.record("vanish", 200, 0)
    except OSError as e:
        stats.error("vanish", e)


def client(stop: float, stats: Stats, etag: str, seed: int) -> None:
    rng = random.Random(seed)
    while time.monotonic() < stop:
        pick = rng.random()
        start = rng.randrange(0, BIG - 1024 * 1024)
        if pick < 0.25:
            request("view", "GET", "/hello", {}, stats)
        elif pick < 0.40:
            request("small", "GET", "/static/style.css", {}, stats)
        elif pick < 0.55:
            request("probe", "GET", "/static/big.bin", {"Range": "bytes=0-1"}, stats)
        elif pick < 0.70:
            rng_hdr = {"Range": f"bytes={start}-{start + 1024 * 1024 - 1}"}
            request("range_1mib", "GET", "/static/big.bin", rng_hdr, stats)
        elif pick < 0.78:
            request(
                "send_file_range",
                "GET",
                "/video/big",
                {"Range": f"bytes={start}-{start + 65535}"},
                stats,
            )
        elif pick < 0.84:
            request("conditional", "GET", "/static/big.bin", {"If-None-Match": etag}, stats)
        elif pick < 0.90:
            request("head", "HEAD", "/static/big.bin", {}, stats)
        elif pick < 0.97:
            vanish(stats)
        else:
            request("whole", "GET", "/static/big.bin", {}, stats)


def main() -> int:
    # The app serves its static folder at /<folder name>: call it "static".
    fixtures = Path(tempfile.mkdtemp(prefix="bustapi-soak-")) / "static"
    fixtures.mkdir()
    (fixtures / "style.css").write_text("body { margin: 0 }\n" * 20)
    with open(fixtures / "big.bin", "wb") as f:
        f.write(os.urandom(BIG))
    os.link(fixtures / "big.bin", fixtures / "big.mp4")
    env = dict(os.environ, BENCH_STATIC=str(fixtures))
    server = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "apps" / "bustapi_app.py"), "--port", str(PORT)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", PORT), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("server did not start") from None
                time.sleep(0.1)
        conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=10)
        conn.request("HEAD", "/static/big.bin")
        etag = conn.getresponse().getheader("ETag") or '"none"'
        conn.close()

        stats = Stats()
        warm = time.monotonic() + min(10.0, SECONDS / 5)
        for t in [threading.Thread(target=client, args=(warm, stats, etag, -i)) for i in range(8)]:
            t.start()
            t.join()
        time.sleep(1)
        rss_start, fds_start = rss_kib(server.pid), fds(server.pid)
        samples: list[tuple[float, int, int]] = []
        stop = time.monotonic() + SECONDS
        workers = [
            threading.Thread(target=client, args=(stop, stats, etag, i), daemon=True)
            for i in range(THREADS)
        ]
        t0 = time.monotonic()
        for w in workers:
            w.start()
        while any(w.is_alive() for w in workers):
            samples.append((time.monotonic() - t0, rss_kib(server.pid), fds(server.pid)))
            time.sleep(5)
        time.sleep(2)  # let vanished connections finish closing
        rss_end, fds_end = rss_kib(server.pid), fds(server.pid)
        alive = server.poll() is None
    finally:
        server.terminate()
        _, err = server.communicate(timeout=30)

    total = sum(stats.kinds.values())
    five_xx = sum(n for s, n in stats.statuses.items() if s >= 500)
    rss_values = [r for _, r, _ in samples]
    flat = rss_end <= rss_start * 1.2 + 10 * 1024
    unexpected = sum(n for s, n in stats.statuses.items() if s not in (200, 206, 304))
    ok = (
        alive
        and five_xx == 0
        and unexpected == 0
        and not stats.errors
        and flat
        and fds_end <= fds_start + 2
    )
    lines = [
        "## Soak test",
        "",
        f"`python bench/soak.py` — {SECONDS:.0f} s, {THREADS} client threads, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        "",
        f"- requests: {total:,} ({total / SECONDS:,.0f}/s), {stats.bytes / 1e9:.1f} GB received",
        f"- mix: {', '.join(f'{k} {v:,}' for k, v in sorted(stats.kinds.items()))}",
        f"- statuses: {', '.join(f'{k}: {v:,}' for k, v in sorted(stats.statuses.items()))}",
        f"- 5xx: **{five_xx}**; connection errors: **{sum(stats.errors.values())}** "
        f"{dict(stats.errors) if stats.errors else ''}",
        f"- server RSS: {rss_start / 1024:.1f} MiB after warm-up, "
        f"median {statistics.median(rss_values) / 1024:.1f} MiB, "
        f"max {max(rss_values) / 1024:.1f} MiB, "
        f"{rss_end / 1024:.1f} MiB at the end ({'flat' if flat else 'GREW'})",
        f"- open descriptors: {fds_start} after warm-up, {fds_end} at the end",
        f"- server alive at the end: {alive}; result: **{'PASS' if ok else 'FAIL'}**",
        "",
    ]
    out = ROOT / "bench" / "out"
    out.mkdir(exist_ok=True)
    (out / "soak.md").write_text("\n".join(lines))
    if os.environ.get("SOAK_WRITE") == "1":  # add the figures to BENCHMARKS.md
        with (ROOT / "BENCHMARKS.md").open("a") as f:
            f.write("\n" + "\n".join(lines))
    print("\n".join(lines))
    if err.strip():
        print("server stderr (last lines):", *err.strip().splitlines()[-5:], sep="\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
