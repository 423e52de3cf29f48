"""What one connection costs the server in resident memory, idle or reading slowly.

    python bench/conn_memory.py --mode idle -n 10000     # starts its own server
    python bench/conn_memory.py --mode slow -n 2000 --python bench/.venv/bin/python
    python bench/conn_memory.py --mode idle -n 2000 --wrap "heaptrack -o /tmp/ht"
    python bench/conn_memory.py --mode idle --url http://127.0.0.1:8000/static/a.txt --pid 1234

``idle``: every connection does one keep-alive GET of a small static file, reads the whole
response, then stays open and silent. ``slow``: every connection asks for a large file and
reads 4 KiB a second (as ``bench/heavy.py``'s ``slow_10k``). Once all are open, the server's
resident memory (/proc/PID/status VmRSS, the whole process tree) is sampled and printed with
the cost per connection above the baseline measured before the first connection. In idle
mode every connection then sends a second request, so a server that dropped idle
connections shows up as failures; in slow mode a connection that received nothing in the
sampling window counts as starved.

Without ``--url``/``--pid`` it serves a temporary static folder (a 13-byte file and a 256 MiB
sparse one) from ``--python`` (default: this interpreter) with ``app.run``: one process, the
engine's default threads. Only the RSS is a result; it is not a throughput benchmark.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Awaitable, Callable, Optional
from urllib.parse import urlsplit

SERVER = """
import sys
from bustapi import BustAPI
app = BustAPI(static_folder=sys.argv[1], static_url_path="/static")
app.run(host="127.0.0.1", port=int(sys.argv[2]), workers=1)
"""


def tree(pid: int) -> list[int]:
    """``pid`` and its descendants (a --wrap tool's server; bench.py's walk needs its
    whole harness imported, Flask included)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rpartition(")")[2].split()[1])
            except OSError:
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def rss_kib(pid: int) -> int:
    total = 0
    for p in tree(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def settled_rss(pid: int, seconds: float = 2.0) -> int:
    """RSS once it stops moving (the engine trims freed memory about once a second)."""
    last, stable_since = rss_kib(pid), time.monotonic()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        time.sleep(0.25)
        now = rss_kib(pid)
        if abs(now - last) > 256:
            last, stable_since = now, time.monotonic()
        elif time.monotonic() - stable_since >= seconds:
            return now
    return last


async def read_response(reader: asyncio.StreamReader) -> int:
    """Reads one response with a Content-Length body; returns the status."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    await reader.readexactly(length)
    return status


async def idle(host: str, port: int, target: str, n: int, pid: int, hold: float) -> dict:
    request = f"GET {target} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    conns: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    failed = 0
    for i in range(n):
        try:
            reader, writer = await asyncio.open_connection(host, port, limit=4096)
            writer.write(request)
            if await read_response(reader) != 200:
                failed += 1
            conns.append((reader, writer))
        except (OSError, asyncio.IncompleteReadError):
            failed += 1
        if i % 500 == 499:
            await asyncio.sleep(0)
    await asyncio.sleep(hold)
    rss = await asyncio.to_thread(settled_rss, pid)
    second_failed = 0
    for reader, writer in conns:  # every idle connection must still be served
        try:
            writer.write(request)
            if await read_response(reader) != 200:
                second_failed += 1
        except (OSError, asyncio.IncompleteReadError):
            second_failed += 1
    for _, writer in conns:
        writer.close()
    return {"rss": rss, "failed": failed, "second_failed": second_failed}


async def slow_readers(
    host: str, port: int, target: str, n: int, hold: float, sample: Callable[[], Awaitable[None]]
) -> int:
    """Opens ``n`` connections that each GET ``target`` and read 4 KiB a second; once all
    are open and ``hold`` seconds have passed, awaits ``sample()`` once a second for ten
    seconds, then closes them all. Returns how many received nothing while sampled
    (starved). ``bench/heavy.py``'s ``slow_10k`` runs the same readers."""
    request = f"GET {target} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    received = [0] * n
    opened = 0
    all_open = asyncio.Event()
    stop = asyncio.Event()

    async def one(i: int) -> None:
        nonlocal opened
        reader, writer = await asyncio.open_connection(host, port, limit=8192)
        writer.write(request)
        await writer.drain()
        opened += 1
        if opened == n:
            all_open.set()
        while not stop.is_set():
            data = await reader.read(4096)
            if not data:
                break
            received[i] += len(data)
            await asyncio.sleep(1)
        writer.close()

    tasks = []
    for i in range(n):
        tasks.append(asyncio.create_task(one(i)))
        if i % 500 == 499:
            await asyncio.sleep(0.2)  # let the listen backlog drain
    await asyncio.wait_for(all_open.wait(), 120)
    await asyncio.sleep(hold)
    before = list(received)
    for _ in range(10):
        await asyncio.sleep(1)
        await sample()
    starved = sum(1 for a, b in zip(before, received) if b <= a)
    stop.set()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return starved


async def slow(host: str, port: int, target: str, n: int, pid: int, hold: float) -> dict:
    samples: list[int] = []

    async def sample() -> None:
        samples.append(await asyncio.to_thread(rss_kib, pid))

    starved = await slow_readers(host, port, target, n, hold, sample)
    return {"rss": max(samples), "starved": starved}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_listening(port: int, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("server did not start")


def stop_server(proc: subprocess.Popen) -> None:
    """SIGTERM to the server itself, so a --wrap tool (heaptrack) outlives it and
    finishes its output; then the whole group, if anything is left."""
    for p in tree(proc.pid):
        try:
            if b"server.py" in Path(f"/proc/{p}/cmdline").read_bytes():
                os.kill(p, signal.SIGTERM)
        except OSError:
            pass
    try:
        proc.wait(120)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mode", choices=("idle", "slow"), default="idle")
    ap.add_argument("-n", type=int, default=10_000, help="connections")
    ap.add_argument("--url", help="an already running server's file (default: start one)")
    ap.add_argument("--pid", type=int, help="that server's process id")
    ap.add_argument("--python", default=sys.executable, help="interpreter with bustapi")
    ap.add_argument("--wrap", default="", help="command prefix for the server, e.g. heaptrack")
    ap.add_argument("--hold", type=float, default=5.0, help="seconds before sampling")
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < args.n + 100:
        raise SystemExit(f"open-files limit {hard} is below {args.n} connections")

    proc: Optional[subprocess.Popen] = None
    tmp = tempfile.TemporaryDirectory(prefix="conn-memory-")
    try:
        if args.url:
            if args.pid is None:
                raise SystemExit("--url needs --pid")
            pid, url = args.pid, args.url
        else:
            static = Path(tmp.name)
            (static / "small.txt").write_bytes(b"hello, world\n")
            with (static / "big.bin").open("wb") as f:
                f.truncate(256 * 1024 * 1024)
            (static / "server.py").write_text(SERVER)  # a file: heaptrack records argv
            port = free_port()
            cmd = shlex.split(args.wrap) + [
                args.python,
                str(static / "server.py"),
                str(static),
                str(port),
            ]
            # Its own session, so the whole group (a --wrap tool and the server) is stopped.
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, start_new_session=True)
            wait_listening(port, proc)
            name = "small.txt" if args.mode == "idle" else "big.bin"
            url = f"http://127.0.0.1:{port}/static/{name}"
            pid = proc.pid
        parts = urlsplit(url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        # One request first so lazily built state (caches, the runtime) is in the baseline.
        with socket.create_connection((host, port)) as s:
            s.sendall(
                f"HEAD {parts.path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
            )
            while s.recv(4096):
                pass
        base = settled_rss(pid)
        run = idle if args.mode == "idle" else slow
        r = asyncio.run(run(host, port, parts.path, args.n, pid, args.hold))
        per = (r["rss"] - base) / args.n
        print(
            f"mode={args.mode} n={args.n} baseline={base / 1024:.1f} MiB "
            f"rss={r['rss'] / 1024:.1f} MiB per_connection={per:.2f} KiB "
            + " ".join(f"{k}={v}" for k, v in r.items() if k != "rss")
        )
        if proc is not None:
            time.sleep(1)
            print(f"after close: {settled_rss(pid) / 1024:.1f} MiB")
    finally:
        if proc is not None:
            stop_server(proc)
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
