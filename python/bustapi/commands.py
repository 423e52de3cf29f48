"""The built-in commands of ``bustapi`` (and ``python -m bustapi``).

* ``run [APP]``: serves the application (found as :mod:`bustapi.cli` describes).
* ``routes``: lists the app's URL rules, endpoints and methods.
* ``shell``: a Python shell with the app's context and ``make_shell_context()``.
* ``serve [DIR]``: a static file server for a folder, with Range support (video
  seeking works, unlike ``python -m http.server``), directory listings, an access
  log and a live throughput line.
* ``demo``: the video streaming demo.

Every option's help states its default (``tests/test_cli_errors.py`` checks it).
"""

from __future__ import annotations

import code
import os
import signal
import subprocess
import sys
import time
import traceback
from operator import itemgetter
from typing import Any, Callable, Optional

import click

from .cli import AppLoadError, ScriptInfo, get_debug_flag, pass_script_info, with_appcontext
from .globals import _app_ctx, current_app


class HostPort(click.ParamType):
    """``HOST:PORT`` for ``--bind`` (``[::1]:8000`` for IPv6)."""

    name = "HOST:PORT"

    def convert(
        self, value: Any, param: Optional[click.Parameter], ctx: Optional[click.Context]
    ) -> tuple[str, int]:
        if isinstance(value, tuple):
            return value
        host, sep, port = str(value).rpartition(":")
        if not sep or not port.isdigit():
            self.fail(f"needs HOST:PORT, got {value!r}", param, ctx)
        return host.strip("[]") or "127.0.0.1", int(port)


def listen_options(port: int) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--host``, ``--port`` and ``--bind`` (which replaces both)."""

    def decorator(f: Callable[..., Any]) -> Callable[..., Any]:
        f = click.option(
            "--bind",
            type=HostPort(),
            default=None,
            help="Address and port to listen on, instead of --host and --port. (default: not set)",
        )(f)
        f = click.option(
            "--port",
            "-p",
            type=int,
            default=port,
            help=f"Port to listen on; 0 picks a free one. (default: {port})",
        )(f)
        return click.option(
            "--host",
            "-h",
            default="127.0.0.1",
            help="Address to listen on. (default: 127.0.0.1)",
        )(f)

    return decorator


# -- run --------------------------------------------------------------------------------


@click.command("run", short_help="Run the application.")
@click.argument("target", required=False, metavar="[APP]")
@listen_options(5000)
@click.option(
    "--workers",
    type=int,
    default=1,
    help="Processes sharing the port. (default: 1)",
)
@click.option(
    "--reload/--no-reload",
    default=None,
    help="Restart when a .py file under the current folder changes. (default: on in"
    " debug mode, else off)",
)
@click.option(
    "--debug",
    is_flag=True,
    default=False,
    help="Debug mode, as 'bustapi --debug run'. (default: off)",
)
@pass_script_info
def run_command(
    info: ScriptInfo,
    target: Optional[str],
    host: str,
    port: int,
    bind: Optional[tuple[str, int]],
    workers: int,
    reload: Optional[bool],
    debug: bool,
) -> None:
    """Serves the app (from APP, else --app, BUSTAPI_APP, wsgi.py or app.py) until
    Ctrl-C or SIGTERM. APP is 'module', 'module:app', 'module:create_app()' or
    'path/to/file.py:app'."""
    if target:
        info.app_import_path = target
    if debug:
        os.environ["BUSTAPI_DEBUG"] = "1"
    if reload is None:
        reload = get_debug_flag()
    if reload and os.environ.get("BUSTAPI_RUN_MAIN") != "true":
        sys.exit(_run_with_reload())
    host, port = bind or (host, port)
    try:
        app = info.load_app()
    except AppLoadError as e:
        # Starting a server, the traceback that points at the broken line helps most;
        # the summary under it says what failed.
        traceback.print_exception(type(e.original), e.original, e.original.__traceback__)
        e.show()
        sys.exit(e.exit_code)
    app.run(host=host, port=port, workers=workers, debug=debug or None)


def _reloader_argv() -> list[str]:
    """The command line that started this process, to start it again."""
    spec = getattr(sys.modules["__main__"], "__spec__", None)
    if spec is not None and spec.name:  # python -m bustapi ...
        name = spec.name
        if name.endswith(".__main__"):
            name = name[: -len(".__main__")]
        return [sys.executable, "-m", name, *sys.argv[1:]]
    return [sys.executable, *sys.argv]  # the `bustapi` script, or a project's own


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


def _run_with_reload() -> int:
    """Runs this same command in a child process (which serves, seeing
    ``BUSTAPI_RUN_MAIN``) and restarts it when a ``.py`` file changes. The app is
    imported only in the child, so a broken edit is reported and then fixed by the
    next save, as with Flask's reloader."""
    argv = _reloader_argv()
    env = {**os.environ, "BUSTAPI_RUN_MAIN": "true"}
    root = os.getcwd()
    child: Optional[subprocess.Popen[bytes]] = None
    # Ctrl-C must stop the reloader even if a shell started it with SIGINT ignored,
    # and SIGTERM (systemd, kill) must stop the child with it, not orphan it.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        while True:
            seen = _sources(root)
            child = subprocess.Popen(argv, env=env)
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


# -- routes, shell ----------------------------------------------------------------------


@click.command("routes", short_help="Show the routes of the app.")
@click.option(
    "--sort",
    "-s",
    type=click.Choice(("endpoint", "methods", "rule", "match")),
    default="endpoint",
    help="Order of the rows; 'match' is the order the rules were added in. (default: endpoint)",
)
@click.option("--all-methods", is_flag=True, help="Show HEAD and OPTIONS too. (default: off)")
@with_appcontext
def routes_command(sort: str, all_methods: bool) -> None:
    """Lists every URL rule of the app with its endpoint and methods."""
    rules = list(current_app.url_map.iter_rules())
    if not rules:
        click.echo("No routes were registered.")
        return
    hidden = set() if all_methods else {"HEAD", "OPTIONS"}
    rows = [[r.endpoint, ", ".join(sorted(r.methods - hidden)), r.rule] for r in rules]
    columns = ["endpoint", "methods", "rule"]
    if sort in columns:
        rows.sort(key=itemgetter(columns.index(sort)))
    rows.insert(0, ["Endpoint", "Methods", "Rule"])
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    rows.insert(1, ["-" * w for w in widths])
    for row in rows:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())


@click.command("shell", short_help="Run a Python shell in the app context.")
@with_appcontext
def shell_command() -> None:
    """An interactive Python shell with the app's context pushed: ``app``, ``g`` and
    whatever the app's ``shell_context_processor`` functions return are defined.
    ``PYTHONSTARTUP`` is run first, as the plain interpreter does."""
    app = _app_ctx().app  # the app itself, not the proxy, for the shell's `app`
    banner = (
        f"Python {sys.version} on {sys.platform}\nApp: {app.name}\nInstance: {app.instance_path}"
    )
    namespace: dict[str, Any] = {}
    startup = os.environ.get("PYTHONSTARTUP")
    if startup and os.path.isfile(startup):
        with open(startup) as f:
            exec(compile(f.read(), startup, "exec"), namespace)
    namespace.update(app.make_shell_context())
    hook = getattr(sys, "__interactivehook__", None)
    if hook is not None and sys.stdin.isatty():
        try:
            import readline
            from rlcompleter import Completer
        except ImportError:
            pass
        else:
            # Complete the shell's own names, not the module's.
            readline.set_completer(Completer(namespace).complete)
        hook()
    code.interact(banner=banner, local=namespace)


# -- serve, demo ------------------------------------------------------------------------


@click.command("serve", short_help="Serve a folder (with Range support) over HTTP.")
@click.argument("directory", default=".", required=False)
@listen_options(8000)
def serve_command(directory: str, host: str, port: int, bind: Optional[tuple[str, int]]) -> None:
    """Serves DIRECTORY (default: the current folder) with directory listings, Range
    and conditional requests, and an access log on stderr."""
    from .app import BustAPI

    root = os.path.abspath(directory)
    if not os.path.isdir(root):
        raise click.ClickException(f"{directory!r} is not a directory")
    app = BustAPI(static_folder=None, root_path=root)
    app.add_static("/", root, listing=True)
    host, port = bind or (host, port)
    click.echo(f" * Serving {root}")
    app.run(host=host, port=port, access_log=True, live_stats=sys.stderr.isatty())


@click.command("demo", short_help="Start the video streaming demo app.")
@listen_options(5000)
def demo_command(host: str, port: int, bind: Optional[tuple[str, int]]) -> None:
    """The video streaming demo: a page with a seekable video."""
    from .demo.app import app

    click.echo(" * BustAPI demo: open the URL below for a playable, seekable video")
    host, port = bind or (host, port)
    # The access log shows the 206 answers the demo page talks about.
    app.run(host=host, port=port, access_log=True)
