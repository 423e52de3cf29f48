"""Command line: ``python -m bustapi demo`` (and the ``bustapi`` script)."""

from __future__ import annotations

import argparse
import sys
from typing import Optional


def _demo(args: argparse.Namespace) -> int:
    from .demo.app import app

    print(" * BustAPI demo: open the URL below for a playable, seekable video", flush=True)
    app.run(host=args.host, port=args.port)
    return 0


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="bustapi", description="BustAPI command line")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="start the video streaming demo app")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=5000)
    demo.set_defaults(func=_demo)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
