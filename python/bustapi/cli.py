"""Command-line support built on **click**: ``app.cli`` commands, finding the
application, and the ``bustapi`` command itself.

``@app.cli.command()`` registers a command that runs inside an application
context (``current_app``, ``g`` and the app's teardown work as in a request).
The ``bustapi`` command (also ``python -m bustapi``) finds the application as
``flask`` does: ``--app`` (``module``, ``module:name``, ``module:create_app("x")``
or a path to a ``.py`` file), else ``BUSTAPI_APP``, else ``wsgi.py`` or ``app.py``
in the current folder; in a module it takes an attribute named ``app`` or
``application``, a single ``BustAPI`` instance, or calls a factory named
``create_app`` or ``make_app``. The app is imported only when a command needs it,
so a broken app never breaks ``bustapi serve`` or ``--help``.
"""

from __future__ import annotations

import ast
import functools
import importlib
import inspect
import os
import sys
import traceback
from typing import TYPE_CHECKING, Any, Callable, Optional, TypeVar

import click
from click.core import ParameterSource

if TYPE_CHECKING:
    from .app import BustAPI

F = TypeVar("F", bound=Callable[..., Any])

# Set while the CLI imports the user's module: an unguarded ``app.run()`` at module
# level must not start a server in the middle of ``bustapi routes`` (see app.run).
_importing_app = False


class NoAppException(click.ClickException):
    """The application could not be found or loaded. Shown by click as one line,
    ``Error: <message>``, with a non-zero exit status."""

    exit_code = 2


class AppLoadError(NoAppException):
    """The user's module (or its factory) raised while loading: the message names the
    exception and the line of the user's code it came from; ``original`` keeps it."""

    def __init__(self, what: str, original: BaseException) -> None:
        self.original = original
        super().__init__(f"{what}: {_summary(original)}")


def _summary(e: BaseException) -> str:
    """``ModuleNotFoundError: No module named 'x' (broken.py, line 1)``: the exception
    and the deepest frame of real source outside BustAPI, which is the user's line."""
    here = os.path.dirname(os.path.abspath(__file__))
    where = ""
    for frame in traceback.extract_tb(e.__traceback__):
        if frame.filename.startswith("<") or os.path.abspath(frame.filename).startswith(here):
            continue
        where = f" ({os.path.relpath(frame.filename)}, line {frame.lineno})"
    return f"{type(e).__name__}: {e}{where}"


def app_run_would_block() -> bool:
    """Whether ``app.run()`` was called while the CLI imports the app; ``app.run`` then
    returns at once, so ``bustapi routes`` (or ``run``) is not held up by a server."""
    if _importing_app:
        click.secho(
            " * Ignoring a call to 'app.run()' made while the 'bustapi' command imports the"
            " app; call it under 'if __name__ == \"__main__\":'.",
            fg="yellow",
            err=True,
        )
    return _importing_app


def get_debug_flag() -> bool:
    """Debug mode as ``BUSTAPI_DEBUG`` (set by ``bustapi --debug``) asks for it."""
    return os.environ.get("BUSTAPI_DEBUG", "").lower() not in ("", "0", "false", "no")


# -- finding the application ----------------------------------------------------------


def find_best_app(module: Any) -> BustAPI:
    """The application in ``module``: ``app``/``application``, the only instance, or
    what ``create_app()``/``make_app()`` returns."""
    from .app import BustAPI

    for attr_name in ("app", "application"):
        app = getattr(module, attr_name, None)
        if isinstance(app, BustAPI):
            return app
    matches = [v for v in module.__dict__.values() if isinstance(v, BustAPI)]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise NoAppException(
            f"found several BustAPI applications in module {module.__name__!r};"
            f" use '{module.__name__}:name' to say which one"
        )
    for attr_name in ("create_app", "make_app"):
        factory = getattr(module, attr_name, None)
        if inspect.isfunction(factory):
            app = _call_factory(factory, (), {}, f"{module.__name__}:{attr_name}")
            if isinstance(app, BustAPI):
                return app
    raise NoAppException(
        f"no BustAPI application or factory (create_app) found in module"
        f" {module.__name__!r}; use '{module.__name__}:name' to name one"
    )


def _call_factory(
    factory: Callable[..., Any], args: Any, kwargs: dict[str, Any], label: str
) -> Any:
    try:
        return factory(*args, **kwargs)
    except TypeError as e:
        if _called_with_wrong_args(factory):
            raise NoAppException(
                f"the factory {label!r} cannot be called with"
                f" {'these' if args or kwargs else 'no'} arguments ({e});"
                f" give them as '{label}(args)'"
            ) from None
        raise AppLoadError(f"calling {label!r} failed", e) from e
    except Exception as e:
        raise AppLoadError(f"calling {label!r} failed", e) from e


def _called_with_wrong_args(f: Callable[..., Any]) -> bool:
    """Whether the TypeError just raised came from calling ``f`` itself (bad
    arguments), not from inside it: then ``f``'s own frame is not in the traceback."""
    tb = sys.exc_info()[2]
    try:
        while tb is not None:
            if tb.tb_frame.f_code is f.__code__:
                return False
            tb = tb.tb_next
        return True
    finally:
        del tb


def find_app_by_string(module: Any, app_name: str) -> BustAPI:
    """``name`` or ``factory(args)`` (literal arguments only) in ``module``."""
    from .app import BustAPI

    target = f"{module.__name__}:{app_name}"
    try:
        expr = ast.parse(app_name.strip(), mode="eval").body
    except SyntaxError:
        raise NoAppException(f"{app_name!r} is not an attribute name or a call") from None
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    if isinstance(expr, ast.Name):
        name, call = expr.id, False
    elif isinstance(expr, ast.Call) and isinstance(expr.func, ast.Name):
        name, call = expr.func.id, True
        try:
            args = [ast.literal_eval(arg) for arg in expr.args]
            kwargs = {kw.arg: ast.literal_eval(kw.value) for kw in expr.keywords if kw.arg}
        except ValueError:
            raise NoAppException(
                f"the arguments in {app_name!r} must be Python literals (strings, numbers...)"
            ) from None
    else:
        raise NoAppException(f"{app_name!r} is not an attribute name or a call of one")
    try:
        attr = getattr(module, name)
    except AttributeError:
        raise NoAppException(f"module {module.__name__!r} has no attribute {name!r}") from None
    if inspect.isfunction(attr):
        app = _call_factory(attr, args, kwargs, target)
    elif call:
        raise NoAppException(f"{target!r}: {name!r} is not a function")
    else:
        app = attr
    if isinstance(app, BustAPI):
        return app
    raise NoAppException(f"{target!r} is not a BustAPI application")


def prepare_import(path: str) -> str:
    """Puts the folder that holds ``path``'s top package on ``sys.path``; returns the
    dotted module name (``src/pkg/app.py`` → ``pkg.app``)."""
    path = os.path.realpath(path)
    fname, ext = os.path.splitext(path)
    if ext == ".py":
        path = fname
    if os.path.basename(path) == "__init__":
        path = os.path.dirname(path)
    module_name = []
    while True:
        path, name = os.path.split(path)
        module_name.append(name)
        if not os.path.exists(os.path.join(path, "__init__.py")):
            break
    if sys.path[0] != path:
        sys.path.insert(0, path)
    return ".".join(module_name[::-1])


def locate_app(module_name: str, app_name: Optional[str]) -> BustAPI:
    """Imports ``module_name`` and finds the app in it (``app_name``, or the best
    candidate). Every failure is a :class:`NoAppException` with a one-line message."""
    global _importing_app
    _importing_app = True
    try:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as e:
            # The module asked for (or a package on its way) missing is a mistake on
            # the command line; a module missing *inside* the user's code is their bug.
            if e.name is None or not (module_name + ".").startswith(e.name + "."):
                raise AppLoadError(f"importing {module_name!r} failed", e) from e
            raise NoAppException(
                f"no module named {module_name!r} (start from the folder that holds it,"
                " or give path/to/file.py)"
            ) from None
        except Exception as e:
            raise AppLoadError(f"importing {module_name!r} failed", e) from e
        if app_name is None:
            return find_best_app(module)
        return find_app_by_string(module, app_name)
    finally:
        _importing_app = False


class ScriptInfo:
    """How the CLI finds the app: an import string (``--app``), a factory (for a
    custom :class:`BustAPIGroup`), or the conventional file names. Loaded once."""

    def __init__(
        self,
        app_import_path: Optional[str] = None,
        create_app: Optional[Callable[..., BustAPI]] = None,
        set_debug_flag: bool = True,
        load_dotenv_defaults: bool = True,
    ) -> None:
        self.app_import_path = app_import_path
        self.create_app = create_app
        self.data: dict[Any, Any] = {}
        self.set_debug_flag = set_debug_flag
        self.load_dotenv_defaults = load_dotenv_defaults
        self._loaded_app: Optional[BustAPI] = None

    def load_app(self) -> BustAPI:
        if self._loaded_app is not None:
            return self._loaded_app
        if self.create_app is not None:
            app = _call_factory(self.create_app, (), {}, "create_app")
        elif self.app_import_path:
            app = self._load_from_import_path(self.app_import_path)
        else:
            app = self._discover()
        if self.set_debug_flag and os.environ.get("BUSTAPI_DEBUG"):
            # `bustapi --debug` (or BUSTAPI_DEBUG) wins over what the app's code set.
            app.debug = get_debug_flag()
        self._loaded_app = app
        return app

    def _load_from_import_path(self, import_path: str) -> BustAPI:
        path, _, name = import_path.partition(":")
        if path.endswith(".py") or os.sep in path:
            if path.endswith(".py") and not os.path.isfile(path):
                raise NoAppException(f"{path!r}: no such file")
            import_name = prepare_import(path)
        else:
            import_name = path
            if os.getcwd() not in sys.path:
                sys.path.insert(0, os.getcwd())
        return locate_app(import_name, name or None)

    def _discover(self) -> BustAPI:
        for filename in ("wsgi.py", "app.py"):
            if os.path.isfile(filename):
                return locate_app(prepare_import(filename), None)
        raise NoAppException(
            "no BustAPI application found: give one with '--app module:app' or"
            " BUSTAPI_APP, or start from a folder with an app.py or wsgi.py",
        )


pass_script_info = click.make_pass_decorator(ScriptInfo, ensure=True)


def _push_app_context(ctx: click.Context, app: BustAPI) -> None:
    """Makes ``app`` the current app until ``ctx`` closes (then teardown_appcontext
    runs), unless it already is."""
    from .globals import _cv_app

    current = _cv_app.get(None)
    if current is None or current.app is not app:
        ctx.with_resource(app.app_context())


def with_appcontext(f: F) -> F:
    """Runs a click command inside the app's application context (the app is the one
    the :class:`ScriptInfo` finds), unless one is already active."""

    @click.pass_context
    def decorator(ctx: click.Context, /, *args: Any, **kwargs: Any) -> Any:
        from .globals import _cv_app

        if _cv_app.get(None) is None:
            _push_app_context(ctx, ctx.ensure_object(ScriptInfo).load_app())
        return ctx.invoke(f, *args, **kwargs)

    return functools.update_wrapper(decorator, f)  # type: ignore[return-value]


class AppGroup(click.Group):
    """A click group whose commands run in an application context by default
    (``@app.cli.command(with_appcontext=False)`` to opt out). ``@app.cli.command``
    works with or without parentheses, as click's own decorator does."""

    def command(self, *args: Any, **kwargs: Any) -> Any:
        wrap_for_ctx = kwargs.pop("with_appcontext", True)
        if len(args) == 1 and callable(args[0]) and not kwargs:
            return self.command(with_appcontext=wrap_for_ctx)(args[0])

        def decorator(f: Callable[..., Any]) -> click.Command:
            if wrap_for_ctx:
                f = with_appcontext(f)
            return click.Group.command(self, *args, **kwargs)(f)

        return decorator

    def group(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("cls", AppGroup)
        return click.Group.group(self, *args, **kwargs)

    def get_command(self, ctx: click.Context, cmd_name: str) -> Optional[click.Command]:
        rv = super().get_command(ctx, cmd_name)
        info = ctx.find_object(ScriptInfo)
        if rv is not None and info is not None and ctx.parent is None:
            # ``app.cli`` invoked on its own (app.test_cli_runner()): its commands,
            # plain click ones too, run with the app current, as under `bustapi`.
            _push_app_context(ctx, info.load_app())
        return rv


# -- the `bustapi` command --------------------------------------------------------------


def load_dotenv(path: Optional[str] = None, load_defaults: bool = True) -> bool:
    """Loads environment variables from ``path`` and from the ``.env`` and
    ``.bustapienv`` files found from the current folder upwards, when python-dotenv
    is installed (it is optional). Variables already set win; then ``path``, then
    ``.env``, then ``.bustapienv``. Returns whether a file was loaded."""
    try:
        import dotenv
    except ImportError:
        if path is not None:
            raise click.UsageError("python-dotenv must be installed to load an env file") from None
        return False
    values: dict[str, Optional[str]] = {}
    files = [dotenv.find_dotenv(name, usecwd=True) for name in (".bustapienv", ".env")]
    for file in [*(files if load_defaults else []), path]:
        if file:
            values.update(dotenv.dotenv_values(file, encoding="utf-8"))
    for key, value in values.items():
        if value is not None:
            os.environ.setdefault(key, value)
    return bool(values)


def _set_app(ctx: click.Context, param: click.Parameter, value: Optional[str]) -> None:
    if value:
        ctx.ensure_object(ScriptInfo).app_import_path = value


def _set_debug(ctx: click.Context, param: click.Parameter, value: Optional[bool]) -> None:
    # Only an explicit --debug/--no-debug (or BUSTAPI_DEBUG) is passed on, through the
    # environment, so the app's config sees it however the app gets created.
    source = ctx.get_parameter_source(param.name or "")
    if source in (None, ParameterSource.DEFAULT, ParameterSource.DEFAULT_MAP):
        return
    os.environ["BUSTAPI_DEBUG"] = "1" if value else "0"


def _load_env_file(ctx: click.Context, param: click.Parameter, value: Optional[str]) -> None:
    info = ctx.ensure_object(ScriptInfo)
    if value is not None or info.load_dotenv_defaults:
        load_dotenv(value, load_defaults=info.load_dotenv_defaults)


_env_file_option = click.Option(
    ["-e", "--env-file"],
    type=click.Path(exists=True, dir_okay=False),
    help="Load environment variables from this file (needs python-dotenv);"
    " it takes precedence over .env and .bustapienv. (default: not set)",
    is_eager=True,
    expose_value=False,
    callback=_load_env_file,
)
_app_option = click.Option(
    ["-A", "--app"],
    metavar="IMPORT",
    help="The app to load: 'module', 'module:name', 'module:create_app(\"x\")' or"
    " 'path/to/file.py'. (default: BUSTAPI_APP, else wsgi.py or app.py here)",
    is_eager=True,
    expose_value=False,
    callback=_set_app,
)
_debug_option = click.Option(
    ["--debug/--no-debug"],
    default=None,
    help="Debug mode: tracebacks in 500 responses, templates reloaded, `run` reloads"
    " on changes. (default: BUSTAPI_DEBUG, else off)",
    expose_value=False,
    callback=_set_debug,
)


class BustAPIGroup(AppGroup):
    """The ``bustapi`` command: ``--app``/``--debug``/``--env-file``, the built-in
    ``run``, ``routes`` and ``shell``, and the app's own commands, looked up only
    when asked for. A project script can make its own:
    ``cli = BustAPIGroup(create_app=create_app)``."""

    def __init__(
        self,
        add_default_commands: bool = True,
        create_app: Optional[Callable[..., BustAPI]] = None,
        load_dotenv: bool = True,
        set_debug_flag: bool = True,
        **extra: Any,
    ) -> None:
        params = list(extra.pop("params", None) or ())
        params += [_env_file_option, _app_option, _debug_option]
        # BUSTAPI_APP, BUSTAPI_DEBUG, BUSTAPI_RUN_PORT, ... (as FLASK_* for flask).
        extra.setdefault("context_settings", {}).setdefault("auto_envvar_prefix", "BUSTAPI")
        super().__init__(params=params, **extra)
        self.create_app = create_app
        self.load_dotenv = load_dotenv
        self.set_debug_flag = set_debug_flag
        if add_default_commands:
            from .commands import routes_command, run_command, shell_command

            self.add_command(run_command)
            self.add_command(routes_command)
            self.add_command(shell_command)

    def get_command(self, ctx: click.Context, cmd_name: str) -> Optional[click.Command]:
        # Built-in commands first: they never import the app.
        rv = click.Group.get_command(self, ctx, cmd_name)
        if rv is not None:
            return rv
        info = ctx.ensure_object(ScriptInfo)
        try:
            app = info.load_app()
        except NoAppException as e:
            if ctx.resilient_parsing:  # shell completion: stay quiet
                return None
            raise NoAppException(f"cannot look up the command {cmd_name!r}: {e.message}") from e
        # The app's commands (and plain click commands added to app.cli) run with the
        # app as current_app; the context is popped, with teardown, when ctx closes.
        _push_app_context(ctx, app)
        return app.cli.get_command(ctx, cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        rv = set(super().list_commands(ctx))
        info = ctx.ensure_object(ScriptInfo)
        try:
            rv.update(info.load_app().cli.list_commands(ctx))
        except NoAppException as e:
            # --help still works; say why the app's commands are missing, unless no
            # app was asked for and none is here (then there is nothing to say).
            if info.app_import_path or isinstance(e, AppLoadError) or _has_app_file():
                click.secho(f"Error: {e.message}", err=True, fg="red")
        return sorted(rv)

    def make_context(
        self,
        info_name: Optional[str],
        args: list[str],
        parent: Optional[click.Context] = None,
        **extra: Any,
    ) -> click.Context:
        if "obj" not in extra and "obj" not in self.context_settings:
            extra["obj"] = ScriptInfo(
                create_app=self.create_app,
                set_debug_flag=self.set_debug_flag,
                load_dotenv_defaults=self.load_dotenv
                and os.environ.get("BUSTAPI_SKIP_DOTENV", "") in ("", "0"),
            )
        return super().make_context(info_name, args, parent=parent, **extra)


def _has_app_file() -> bool:
    return any(os.path.isfile(name) for name in ("wsgi.py", "app.py"))


def _make_cli() -> BustAPIGroup:
    from .commands import demo_command, serve_command

    group = BustAPIGroup(
        name="bustapi",
        help="BustAPI command line: run an app, serve a folder, or run the app's own"
        " commands. The app comes from --app, BUSTAPI_APP, or an app.py or wsgi.py in"
        " the current folder.",
    )
    group.add_command(serve_command)
    group.add_command(demo_command)
    return group


def main(argv: Optional[list[str]] = None) -> None:
    """The ``bustapi`` script and ``python -m bustapi``."""
    _make_cli().main(args=argv)
