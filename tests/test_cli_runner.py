"""``app.cli`` and ``app.test_cli_runner()`` in-process: commands made with
``@app.cli.command``, plain click commands, blueprint groups, the app context and
its teardown around each command, and ``app.logger``."""

from __future__ import annotations

import logging
from typing import Any, Optional

import click
from bustapi import Blueprint, BustAPI, current_app, g, has_app_context
from bustapi.cli import AppGroup, BustAPIGroup, ScriptInfo, with_appcontext
from bustapi.logging import default_handler
from click.testing import CliRunner


def make_app() -> BustAPI:
    app = BustAPI(__name__, static_folder=None)
    app.config["DATABASE"] = "shop.sqlite"
    return app


def test_command_with_and_without_parentheses() -> None:
    app = make_app()

    @app.cli.command()
    @click.argument("name")
    def hello(name: str) -> None:
        click.echo(f"hello {name} from {current_app.config['DATABASE']}")

    @app.cli.command
    def init_db() -> None:
        click.echo(f"initialised {current_app.config['DATABASE']}")

    runner = app.test_cli_runner()
    assert runner.invoke(args=["hello", "Ada"]).output == "hello Ada from shop.sqlite\n"
    # click names a function's command with dashes, as Flask's tutorial relies on.
    assert runner.invoke(args=["init-db"]).output == "initialised shop.sqlite\n"


def test_plain_click_command_added_to_app_cli_sees_current_app() -> None:
    app = make_app()

    @click.command("where")
    def where() -> None:
        click.echo(current_app.config["DATABASE"])

    app.cli.add_command(where)
    result = app.test_cli_runner().invoke(args=["where"])
    assert result.exit_code == 0, result.output
    assert result.output == "shop.sqlite\n"


def test_invoking_a_command_object_directly() -> None:
    app = make_app()

    @app.cli.command("count")
    @click.option("--n", type=int, default=1)
    def count(n: int) -> None:
        click.echo(str(n * 2))

    assert app.test_cli_runner().invoke(count, ["--n", "21"]).output == "42\n"


def test_g_and_teardown_appcontext_around_each_command() -> None:
    app = make_app()
    torn_down: list[tuple[Optional[str], Optional[BaseException]]] = []

    @app.teardown_appcontext
    def close_db(exc: Optional[BaseException]) -> None:
        torn_down.append((g.get("db"), exc))
        click.echo("closed")  # still inside the command's run: the runner captures it

    @app.cli.command("use-db")
    def use_db() -> None:
        assert "db" not in g  # each command has a fresh g
        g.db = "connection"
        click.echo("used")

    runner = app.test_cli_runner()
    assert runner.invoke(args=["use-db"]).output == "used\nclosed\n"
    assert torn_down == [("connection", None)]
    assert runner.invoke(args=["use-db"]).exit_code == 0
    assert len(torn_down) == 2
    assert not has_app_context()


def test_with_appcontext_false_opts_out() -> None:
    app = make_app()
    seen: list[bool] = []

    @app.cli.command("plain", with_appcontext=False)
    def plain() -> None:
        seen.append(has_app_context())

    # Invoked through a group that is not the app's own, nothing pushes a context.
    group = click.Group(commands={"plain": plain})
    assert app.test_cli_runner().invoke(group, ["plain"]).exit_code == 0
    assert seen == [False]


def test_blueprint_commands_default_group_custom_group_and_top_level() -> None:
    app = make_app()
    default = Blueprint("users", __name__)
    renamed = Blueprint("admin", __name__, cli_group="manage")
    flat = Blueprint("tools", __name__, cli_group=None)

    for bp in (default, renamed, flat):

        @bp.cli.command("whoami")
        def whoami(bp: Blueprint = bp) -> None:
            click.echo(f"{bp.name} in {current_app.name}")

        app.register_blueprint(bp)

    runner = app.test_cli_runner()
    assert runner.invoke(args=["users", "whoami"]).output == f"users in {__name__}\n"
    assert runner.invoke(args=["manage", "whoami"]).output == f"admin in {__name__}\n"
    assert runner.invoke(args=["whoami"]).output == f"tools in {__name__}\n"


def test_nested_groups_are_app_groups() -> None:
    app = make_app()

    @app.cli.group()
    def db() -> None:
        """Database commands."""

    assert isinstance(db, AppGroup)

    @db.command()
    def upgrade() -> None:
        click.echo(f"upgrading {current_app.config['DATABASE']}")

    assert app.test_cli_runner().invoke(args=["db", "upgrade"]).output == (
        "upgrading shop.sqlite\n"
    )


def test_failing_command_reports_and_still_tears_down() -> None:
    app = make_app()
    torn_down: list[bool] = []
    app.teardown_appcontext(lambda exc: torn_down.append(True))

    @app.cli.command("fail")
    def fail() -> None:
        raise click.ClickException("the database is locked")

    result = app.test_cli_runner().invoke(args=["fail"])
    assert result.exit_code == 1
    assert "Error: the database is locked" in result.output
    assert torn_down == [True]


def test_bustapi_group_with_a_factory_in_process() -> None:
    """A project's own script: ``cli = BustAPIGroup(create_app=create_app)``."""
    created: list[BustAPI] = []

    def create_app() -> BustAPI:
        app = make_app()
        app.add_url_rule("/", "index", lambda: "x")

        @app.cli.command("db-path")
        def db_path() -> None:
            click.echo(current_app.config["DATABASE"])

        created.append(app)
        return app

    cli = BustAPIGroup(create_app=create_app, name="manage")
    runner = CliRunner()
    assert runner.invoke(cli, ["db-path"]).output == "shop.sqlite\n"
    routes = runner.invoke(cli, ["routes"]).output
    assert "index     GET      /" in routes
    assert len(created) == 2  # one app per invocation, as a fresh process would


def test_with_appcontext_on_a_plain_command_loads_the_app() -> None:
    app = make_app()

    @click.command()
    @with_appcontext
    def show() -> None:
        click.echo(current_app.config["DATABASE"])

    runner = app.test_cli_runner()
    result = runner.invoke(show, obj=ScriptInfo(create_app=lambda: app))
    assert result.output == "shop.sqlite\n"


def test_logger_is_a_standard_logger_named_after_the_app(caplog: Any) -> None:
    app = make_app()
    assert isinstance(app.logger, logging.Logger)
    assert app.logger.name == __name__
    with caplog.at_level(logging.INFO, logger=__name__):
        app.logger.info("starting %s", "up")
    assert caplog.records[-1].getMessage() == "starting up"


def test_log_lines_of_a_command_reach_the_runners_stderr() -> None:
    # The default handler writes to the current sys.stderr, so the runner (and
    # pytest) capture what a command logs instead of it going to the real stderr.
    # (A logger that does not propagate: pytest's own handlers on the root logger
    # would otherwise stand in for the default one.)
    logger = logging.getLogger("cli_logging_probe")
    logger.propagate = False
    app = BustAPI("cli_logging_probe", static_folder=None)

    @app.cli.command("work")
    def work() -> None:
        current_app.logger.warning("disk almost full")

    try:
        assert app.logger.handlers == [default_handler]
        result = app.test_cli_runner().invoke(args=["work"])
        assert "WARNING in test_cli_runner: disk almost full" in result.stderr
    finally:
        logger.removeHandler(default_handler)
        logger.propagate = True
