"""The HTTP/2 zero-window attack from issue 10, measured (not in CI).

    python bench/h2_stall.py                      # 20 connections x 100 streams
    python bench/h2_stall.py --connections 10 --streams 50

Starts a server process (``app.run``) serving a 256 MiB sparse file, opens
``connections`` h2c connections that each request it on ``streams`` streams with a
stream window of zero (so no body byte can be sent), and prints the server's RSS
before, under the attack, and once the attackers have gone. Loopback only,
bounded in time.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from conftest import http_request, start_server, stop_process  # noqa: E402
from h2_attack import Stalled, settled_rss_kib  # noqa: E402

APP = textwrap.dedent(
    """
    from bustapi import BustAPI
    app = BustAPI(static_folder={static!r})
    app.run(port=0, io_threads=2)
    """
)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--connections", type=int, default=20)
    ap.add_argument("--streams", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=1)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        static = Path(tmp) / "static"
        static.mkdir()
        with open(static / "video.mp4", "wb") as f:
            f.truncate(256 << 20)
        script = Path(tmp) / "app.py"
        script.write_text(APP.format(static=str(static)))
        proc, port, _ = start_server([sys.executable, str(script)], stderr=subprocess.DEVNULL)
        try:
            probe = http_request(port, "GET", "/static/video.mp4", headers={"Range": "bytes=0-9"})
            assert probe.status == 206
            base = settled_rss_kib(proc.pid)
            allocator = os.environ.get("LD_PRELOAD") or "built-in"
            print(f"baseline RSS: {base / 1024:.1f} MiB (allocator: {allocator})")
            for round_ in range(args.rounds):
                started = time.monotonic()
                attackers = [
                    Stalled(port, "/static/video.mp4", args.streams)
                    for _ in range(args.connections)
                ]
                heads = sum(a.heads for a in attackers)
                peak = settled_rss_kib(proc.pid)
                streams = args.connections * args.streams
                grown = peak - base
                print(
                    f"round {round_ + 1}: {heads}/{streams} heads "
                    f"in {time.monotonic() - started:.1f} s; "
                    f"RSS under attack {peak / 1024:.1f} MiB (+{grown / 1024:.1f} MiB, "
                    f"{grown * 1024 / max(streams, 1) / 1024:.1f} KiB per stream)"
                )
                for a in attackers:
                    a.close()
                after = settled_rss_kib(proc.pid, seconds=20, quiet_for=3)
                print(f"round {round_ + 1}: RSS after the attackers left {after / 1024:.1f} MiB")
        finally:
            stop_process(proc)


if __name__ == "__main__":
    main()
