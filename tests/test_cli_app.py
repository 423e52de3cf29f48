"""The ``bustapi`` command with an application, as a user runs it from a shell:
finding the app (``--app``, ``BUSTAPI_APP``, ``app.py``/``wsgi.py``, factories),
the app's own commands in its context, ``routes``, ``shell``, ``run``, and one
clear line when the app cannot be found or loaded."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Optional

import pytest
from conftest import http_request, start_server, stop_process
from test_cli_errors import assert_one_clear_line as one_clear_line

BUSTAPI_SCRIPT = str(Path(sys.executable).with_name("bustapi"))

# An app with a custom command reading its config, a blueprint with a command group,
# a teardown that reports, and a few routes for `routes`.
APP = textwrap.dedent(
    """
    import click
    from bustapi import BustAPI, Blueprint, current_app, g

    def build(greeting="hello"):
        app = BustAPI(__name__)
        app.config["GREETING"] = greeting

        @app.route("/")
        def index():
            return {"greeting": current_app.config["GREETING"]}

        @app.route("/items/<int:item_id>", methods=["GET", "POST"])
        def item(item_id):
            return "item"

        @app.cli.command("greet")
        @click.argument("name")
        @click.option("--shout", is_flag=True)
        def greet(name, shout):
            \"\"\"Greets NAME with the configured greeting.\"\"\"
            g.who = name
            text = f"{current_app.config['GREETING']}, {name} (debug={current_app.debug})"
            click.echo(text.upper() if shout else text)

        @app.teardown_appcontext
        def report(exc):
            if "who" in g:
                click.echo(f"teardown after greeting {g.who}")

        users = Blueprint("users", __name__, url_prefix="/users")

        @users.route("/<name>")
        def show(name):
            return name

        @users.cli.command("create")
        @click.argument("name")
        def create(name):
            click.echo(f"created {name} in {current_app.name}")

        app.register_blueprint(users)
        return app
    """
)


def bustapi(
    *args: str,
    cwd: Path,
    env: Optional[dict[str, str]] = None,
    script: bool = False,
    stdin: Optional[str] = None,
) -> subprocess.CompletedProcess[str]:
    """Runs ``python -m bustapi ARGS`` (or the ``bustapi`` script) in ``cwd`` with a
    clean environment: no BUSTAPI_* variable but those in ``env``."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("BUSTAPI_")}
    full_env.update(env or {})
    argv = [BUSTAPI_SCRIPT] if script else [sys.executable, "-m", "bustapi"]
    return subprocess.run(
        [*argv, *args],
        cwd=cwd,
        env=full_env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, (result.stdout, result.stderr)
    return result.stdout


# -- finding the app --------------------------------------------------------------------


@pytest.mark.parametrize("script", [False, True], ids=["python -m bustapi", "bustapi script"])
def test_app_option_runs_a_custom_command_in_the_app_context(tmp_path: Path, script: bool) -> None:
    (tmp_path / "webapp.py").write_text(APP + "app = build()\n")
    out = ok(bustapi("--app", "webapp", "greet", "Ada", cwd=tmp_path, script=script))
    assert out.splitlines() == ["hello, Ada (debug=False)", "teardown after greeting Ada"]
    out = ok(bustapi("-A", "webapp:app", "greet", "--shout", "Bo", cwd=tmp_path, script=script))
    assert out.splitlines()[0] == "HELLO, BO (DEBUG=FALSE)"


def test_bustapi_app_environment_variable(tmp_path: Path) -> None:
    (tmp_path / "webapp.py").write_text(APP + "app = build()\n")
    out = ok(bustapi("greet", "Ada", cwd=tmp_path, env={"BUSTAPI_APP": "webapp:app"}))
    assert out.startswith("hello, Ada")


@pytest.mark.parametrize("filename", ["app.py", "wsgi.py"])
def test_app_py_and_wsgi_py_are_found_in_the_current_folder(tmp_path: Path, filename: str) -> None:
    (tmp_path / filename).write_text(APP + f"app = build({filename!r})\n")
    assert ok(bustapi("greet", "Ada", cwd=tmp_path)).startswith(f"{filename}, Ada")


def test_wsgi_py_wins_over_app_py(tmp_path: Path) -> None:
    # Flask's order: wsgi.py is the deployment entry point when both exist.
    (tmp_path / "app.py").write_text(APP + "app = build('app.py')\n")
    (tmp_path / "wsgi.py").write_text(APP + "app = build('wsgi.py')\n")
    assert ok(bustapi("greet", "Ada", cwd=tmp_path)).startswith("wsgi.py, Ada")


def test_factory_create_app_is_called(tmp_path: Path) -> None:
    (tmp_path / "webapp.py").write_text(APP + "def create_app():\n    return build('factory')\n")
    assert ok(bustapi("--app", "webapp", "greet", "Ada", cwd=tmp_path)).startswith("factory, Ada")
    # ... and discovered in app.py too.
    (tmp_path / "app.py").write_text(APP + "def create_app():\n    return build('found')\n")
    assert ok(bustapi("greet", "Ada", cwd=tmp_path)).startswith("found, Ada")


def test_factory_with_literal_arguments(tmp_path: Path) -> None:
    (tmp_path / "webapp.py").write_text(
        APP + "def create_app(greeting, punct='!'):\n    return build(greeting + punct)\n"
    )
    out = ok(bustapi("--app", 'webapp:create_app("hey", punct="?")', "greet", "Ada", cwd=tmp_path))
    assert out.startswith("hey?, Ada")


def test_path_to_a_file_in_a_package(tmp_path: Path) -> None:
    # src/shop/web.py inside package `shop`: imported as shop.web with src/ on the path,
    # so the module's relative imports work.
    pkg = tmp_path / "src" / "shop"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "settings.py").write_text("GREETING = 'from the package'\n")
    (pkg / "web.py").write_text(APP + "from .settings import GREETING\napp = build(GREETING)\n")
    out = ok(bustapi("--app", "src/shop/web.py", "greet", "Ada", cwd=tmp_path))
    assert out.startswith("from the package, Ada")


def test_blueprint_command_group(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(APP + "app = build()\n")
    assert ok(bustapi("users", "create", "bob", cwd=tmp_path)) == "created bob in app\n"


def test_global_debug_flag_reaches_the_app(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(APP + "app = build()\n")
    assert "(debug=True)" in ok(bustapi("--debug", "greet", "Ada", cwd=tmp_path))
    assert "(debug=True)" in ok(bustapi("greet", "Ada", cwd=tmp_path, env={"BUSTAPI_DEBUG": "1"}))
    # --no-debug wins over the environment and over the app's own config.
    (tmp_path / "app.py").write_text(APP + "app = build()\napp.debug = True\n")
    assert "(debug=False)" in ok(
        bustapi("--no-debug", "greet", "Ada", cwd=tmp_path, env={"BUSTAPI_DEBUG": "1"})
    )


def test_help_lists_the_app_commands(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(APP + "app = build()\n")
    out = ok(bustapi("--help", cwd=tmp_path))
    commands = out.split("Commands:")[1]
    for name in ("greet", "users", "routes", "run", "serve", "shell", "demo"):
        assert re.search(rf"^  {name}\b", commands, re.M), (name, out)
    assert "Greets NAME with the configured greeting." in commands


def test_env_file_is_loaded_when_python_dotenv_is_installed(tmp_path: Path) -> None:
    pytest.importorskip("dotenv")
    (tmp_path / "webapp.py").write_text(APP + "import os\napp = build(os.environ['GREETING'])\n")
    (tmp_path / ".env").write_text("BUSTAPI_APP=webapp\nGREETING=from .env\n")
    assert ok(bustapi("greet", "Ada", cwd=tmp_path)).startswith("from .env, Ada")
    # The real environment wins over the file; --env-file wins over .env.
    out = ok(bustapi("greet", "Ada", cwd=tmp_path, env={"GREETING": "from the shell"}))
    assert out.startswith("from the shell, Ada")
    (tmp_path / "other.env").write_text("GREETING=from other.env\n")
    out = ok(bustapi("--env-file", "other.env", "greet", "Ada", cwd=tmp_path))
    assert out.startswith("from other.env, Ada")
    # BUSTAPI_SKIP_DOTENV turns it off: no app is found then.
    result = bustapi("greet", "Ada", cwd=tmp_path, env={"BUSTAPI_SKIP_DOTENV": "1"})
    one_clear_line(result, "no BustAPI application found")


# -- routes -----------------------------------------------------------------------------


def test_routes_lists_rules_endpoints_and_methods(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(APP + "app = build()\n")
    out = ok(bustapi("routes", cwd=tmp_path))
    assert out.splitlines() == [
        "Endpoint    Methods    Rule",
        "----------  ---------  -----------------------",
        "index       GET        /",
        "item        GET, POST  /items/<int:item_id>",
        "static      GET        /static/<path:filename>",
        "users.show  GET        /users/<name>",
    ]
    by_rule = ok(bustapi("routes", "--sort", "rule", "--all-methods", cwd=tmp_path))
    rows = [line.split() for line in by_rule.splitlines()[2:]]
    assert [row[-1] for row in rows] == sorted(row[-1] for row in rows)
    assert "GET, HEAD, OPTIONS, POST" in by_rule  # as flask routes --all-methods


def test_routes_of_an_app_without_routes(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(
        "from bustapi import BustAPI\napp = BustAPI(__name__, static_folder=None)\n"
    )
    assert ok(bustapi("routes", cwd=tmp_path)) == "No routes were registered.\n"


def test_an_unguarded_app_run_does_not_block_a_command(tmp_path: Path) -> None:
    # Many scripts end in a bare app.run(); importing them must not start a server.
    (tmp_path / "app.py").write_text(APP + "app = build()\napp.run()\n")
    result = bustapi("routes", cwd=tmp_path)
    assert "index" in ok(result)
    assert "Ignoring a call to 'app.run()'" in result.stderr


# -- shell ------------------------------------------------------------------------------


def test_shell_has_the_app_context_and_shell_context(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(
        APP
        + "app = build('sh')\n"
        + "@app.shell_context_processor\ndef extra():\n    return {'answer': 42}\n"
    )
    code = "print(app.name, answer, g, current_app.config['GREETING'])\n"
    startup = tmp_path / "startup.py"
    startup.write_text("from bustapi import current_app\n")
    result = bustapi("shell", cwd=tmp_path, stdin=code, env={"PYTHONSTARTUP": str(startup)})
    assert "app 42 <bustapi.g of 'app'> sh" in ok(result)
    assert "App: app" in result.stderr  # the banner


# -- run --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, env",
    [
        (["--app", "webapp", "run"], {}),
        (["run"], {"BUSTAPI_APP": "webapp:create_app('run')"}),
        (["run", "webapp:app"], {}),
    ],
    ids=["--app", "BUSTAPI_APP", "positional"],
)
def test_run_serves_the_app(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], env: dict[str, str]
) -> None:
    (tmp_path / "webapp.py").write_text(
        APP + "app = build('run')\ndef create_app(greeting):\n    return build(greeting)\n"
    )
    for name in [k for k in os.environ if k.startswith("BUSTAPI_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    proc, port, _ = start_server([sys.executable, "-m", "bustapi", *args, "--port", "0"], tmp_path)
    try:
        assert http_request(port, "GET", "/").json == {"greeting": "run"}
    finally:
        stop_process(proc)


def test_run_finds_app_py(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(APP + "app = build('found')\napp.run(port=1)\n")
    proc, port, _ = start_server([BUSTAPI_SCRIPT, "run", "--port", "0"], tmp_path)
    try:
        assert http_request(port, "GET", "/").json == {"greeting": "found"}
    finally:
        stop_process(proc)


def test_debug_run_reloads_and_sigterm_stops_the_child_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # In debug mode `run` reloads by default: the server is a child of the reloader,
    # and it must see debug mode and go away when the reloader is told to stop.
    (tmp_path / "app.py").write_text(
        "from bustapi import BustAPI, current_app\n"
        "app = BustAPI(__name__)\n"
        "@app.route('/')\n"
        "def index():\n"
        "    return {'debug': current_app.debug}\n"
    )
    monkeypatch.delenv("BUSTAPI_DEBUG", raising=False)
    monkeypatch.delenv("BUSTAPI_APP", raising=False)
    proc, port, _ = start_server(
        [sys.executable, "-m", "bustapi", "--debug", "run", "--port", "0"], tmp_path
    )
    try:
        assert http_request(port, "GET", "/").json == {"debug": True}
        children = subprocess.run(
            ["pgrep", "-P", str(proc.pid)], capture_output=True, text=True
        ).stdout.split()
        assert len(children) == 1, "the server should run in a reloader child"
    finally:
        stop_process(proc)
    assert proc.returncode == 0
    with pytest.raises(OSError):
        http_request(port, "GET", "/", timeout=5)


# -- errors: one clear line, non-zero exit ---------------------------------------------


def test_no_app_found(tmp_path: Path) -> None:
    words = ["greet", "no BustAPI application found", "--app", "BUSTAPI_APP", "app.py"]
    one_clear_line(bustapi("greet", cwd=tmp_path), *words)
    one_clear_line(bustapi("routes", cwd=tmp_path), "no BustAPI application found")


def test_import_error_inside_the_app(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("import os\nimport not_installed_anywhere\n")
    one_clear_line(
        bustapi("greet", cwd=tmp_path),
        "greet",
        "ModuleNotFoundError",
        "not_installed_anywhere",
        "app.py, line 2",
    )


def test_exception_in_the_factory(tmp_path: Path) -> None:
    (tmp_path / "webapp.py").write_text(
        "def create_app():\n    raise RuntimeError('database unreachable')\n"
    )
    one_clear_line(
        bustapi("--app", "webapp", "routes", cwd=tmp_path),
        "create_app",
        "RuntimeError: database unreachable",
        "webapp.py, line 2",
    )


@pytest.mark.parametrize(
    "app_arg, source, words",
    [
        ("nosuchmodule", "", ["no module named 'nosuchmodule'"]),
        ("webapp:nothere", "x = 1\n", ["webapp", "nothere"]),
        ("webapp:x", "x = 1\n", ["'webapp:x'", "not a BustAPI application"]),
        ("webapp:create_app(", "", ["create_app("]),
        ("webapp:create_app(open('f'))", "def create_app(f): pass\n", ["literals"]),
        ("webapp", "x = 1\n", ["no BustAPI application or factory", "webapp"]),
        (
            "webapp",
            "from bustapi import BustAPI\na = BustAPI('a')\nb = BustAPI('b')\n",
            ["several BustAPI applications", "webapp:name"],
        ),
        ("webapp", "def create_app(x): pass\n", ["factory 'webapp:create_app'", "arguments"]),
    ],
)
def test_bad_app_argument(tmp_path: Path, app_arg: str, source: str, words: list[str]) -> None:
    (tmp_path / "webapp.py").write_text(source)
    one_clear_line(bustapi("--app", app_arg, "routes", cwd=tmp_path), *words)


def test_a_broken_app_does_not_break_builtin_commands(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("raise RuntimeError('broken')\n")
    env = {"BUSTAPI_APP": "app"}
    for args in (["serve", "--help"], ["run", "--help"], ["demo", "--help"]):
        assert "Usage:" in ok(bustapi(*args, cwd=tmp_path, env=env))
    # The top-level help still lists the built-in commands, and says in one line
    # why the app's are missing.
    result = bustapi("--help", cwd=tmp_path, env=env)
    assert "serve" in ok(result).split("Commands:")[1]
    assert result.stderr.strip().splitlines() == [
        "Error: importing 'app' failed: RuntimeError: broken (app.py, line 1)"
    ]


def test_help_in_an_empty_folder_is_quiet(tmp_path: Path) -> None:
    result = bustapi("--help", cwd=tmp_path)
    assert "run" in ok(result) and result.stderr == ""
