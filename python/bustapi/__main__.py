"""Command line (``python -m bustapi`` or ``bustapi``).

* ``serve [DIR]``: a static file server for a folder, with Range support (video
  seeking works, unlike ``python -m http.server``), directory listings, an
  access log and a live throughput line.
* ``run module:app``: starts an application without editing it.
* ``demo``: the video streaming demo.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import subprocess
import sys
import time
from typing import Any, Optional


def _host_port(args: argparse.Namespace) -> tuple[str, int]:
    if args.bind:
        host, sep, port = args.bind.rpartition(":")
        if not sep or not port.isdigit():
            raise SystemExit(f"--bind needs HOST:PORT, got {args.bind!r}")
        return host.strip("[]") or "127.0.0.1", int(port)
    return args.host, args.port


def _serve(args: argparse.Namespace) -> int:
    from .app import BustAPI

    directory = os.path.abspath(args.directory)
    if not os.path.isdir(directory):
        print(f"bustapi serve: {args.directory!r} is not a directory", file=sys.stderr)
        return 2
    app = BustAPI(static_folder=None, root_path=directory)
    app.add_static("/", directory, listing=True)
    host, port = _host_port(args)
    print(f" * Serving {directory}", flush=True)
    app.run(host=host, port=port, access_log=True, live_stats=sys.stderr.isatty())
    return 0


def load_app(target: str) -> Any:
    """Imports ``module:attr`` (or ``path/to/file.py:attr``); ``attr`` defaults to ``app``."""
    module_name, _, attr = target.partition(":")
    attr = attr or "app"
    if module_name.endswith(".py") or os.sep in module_name:
        path = os.path.abspath(module_name)
        if not os.path.isfile(path):
            raise SystemExit(f"bustapi run: {module_name!r}: no such file")
        sys.path.insert(0, os.path.dirname(path))
        module_name = os.path.splitext(os.path.basename(path))[0]
    elif os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        # Only the module asked for (or a package on its way) being absent is a
        # mistake on the command line; an import failing *inside* the user's code
        # keeps its traceback, which points at the line to fix.
        if e.name is None or not (module_name + ".").startswith(e.name + "."):
            raise
        raise SystemExit(
            f"bustapi run: no module named {module_name!r} "
            f"(start from the folder that holds it, or give path/to/file.py:app)"
        ) from None
    app: Any = module
    for part in attr.split("."):
        app = getattr(app, part, None)
        if app is None:
            raise SystemExit(f"bustapi run: {module_name!r} has no attribute {attr!r}")
    if callable(app) and not hasattr(app, "run"):
        app = app()  # an application factory
    if not hasattr(app, "run"):
        raise SystemExit(f"bustapi run: {target!r} is not a BustAPI application")
    return app


def _run(args: argparse.Namespace) -> int:
    if args.reload:
        return _run_with_reload(args)
    app = load_app(args.target)
    host, port = _host_port(args)
    app.run(host=host, port=port, workers=args.workers, debug=args.debug)
    return 0


def _sources(root: str) -> dict[str, float]:
    found = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".") and d != "__pycache__"]
        for name in filenames:
            if name.endswith(".py"):
                path = os.path.join(dirpath, name)
                try:
                    found[path] = os.stat(path).st_mtime
                except OSError:
                    pass
    return found


def _run_with_reload(args: argparse.Namespace) -> int:
    """Runs the app in a child process and restarts it when a ``.py`` file changes."""
    argv = [sys.executable, "-m", "bustapi", "run", args.target, "--workers", str(args.workers)]
    host, port = _host_port(args)
    argv += ["--host", host, "--port", str(port)] + (["--debug"] if args.debug else [])
    root = os.getcwd()
    child: Optional[subprocess.Popen[bytes]] = None
    # Ctrl-C must stop the reloader even if a shell started it with SIGINT ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        while True:
            seen = _sources(root)
            child = subprocess.Popen(argv)
            while child.poll() is None:
                time.sleep(0.5)
                if _sources(root) != seen:
                    print(" * Change detected, restarting", flush=True)
                    child.send_signal(signal.SIGTERM)
                    child.wait()
                    break
            else:
                return child.returncode or 0
    except KeyboardInterrupt:
        return 0
    finally:
        if child is not None and child.poll() is None:
            child.send_signal(signal.SIGTERM)
            child.wait()


def _demo(args: argparse.Namespace) -> int:
    from .demo.app import app

    print(" * BustAPI demo: open the URL below for a playable, seekable video", flush=True)
    # The access log shows the 206 answers the demo page talks about.
    app.run(host=args.host, port=args.port, access_log=True)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The ``bustapi`` command line; every option's help states its default."""
    parser = argparse.ArgumentParser(prog="bustapi", description="BustAPI command line")
    sub = parser.add_subparsers(dest="command", required=True)

    def listen_options(p: argparse.ArgumentParser, port: int) -> None:
        p.add_argument(
            "--host", default="127.0.0.1", help="address to listen on (default: %(default)s)"
        )
        p.add_argument(
            "--port",
            type=int,
            default=port,
            help="port to listen on; 0 picks a free one (default: %(default)s)",
        )

    serve = sub.add_parser("serve", help="serve a folder (with Range support) over HTTP")
    serve.add_argument(
        "directory", nargs="?", default=".", help="folder to serve (default: %(default)s)"
    )
    listen_options(serve, 8000)
    serve.add_argument(
        "--bind",
        metavar="HOST:PORT",
        help="address and port to listen on, instead of --host and --port (default: not set)",
    )
    serve.set_defaults(func=_serve)

    run = sub.add_parser("run", help="run an application: module:app")
    run.add_argument("target", help="module:attribute or path/to/file.py:attribute, e.g. myapp:app")
    listen_options(run, 5000)
    run.add_argument(
        "--bind",
        metavar="HOST:PORT",
        help="address and port to listen on, instead of --host and --port (default: not set)",
    )
    run.add_argument(
        "--workers", type=int, default=1, help="processes sharing the port (default: %(default)s)"
    )
    run.add_argument(
        "--reload", action="store_true", help="restart when a .py file changes (default: off)"
    )
    run.add_argument(
        "--debug", action="store_true", help="tracebacks in 500 responses (default: off)"
    )
    run.set_defaults(func=_run)

    demo = sub.add_parser("demo", help="start the video streaming demo app")
    listen_options(demo, 5000)
    demo.set_defaults(func=_demo)
    return parser


def main(argv: Optional[list[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
