"""Command-line support built on **click**: ``app.cli`` commands, application
discovery, and the ``bustapi`` command's group of app commands.

``@app.cli.command()`` registers a command that runs inside an application
context (``current_app``, ``g`` and the app's teardown work as in a request).
The ``bustapi`` command finds the application as ``flask`` does: ``--app``
(``module``, ``module:name``, ``module:create_app()`` or a path to a ``.py``
file), else ``BUSTAPI_APP``, else ``wsgi.py`` or ``app.py`` in the current folder;
in a module it takes an attribute named ``app`` or ``application``, a single
``BustAPI`` instance, or calls a factory named ``create_app`` or ``make_app``.
"""

from __future__ import annotations

import ast
import functools
import inspect
import os
import sys
from typing import TYPE_CHECKING, Any, Callable, Optional, TypeVar

import click

if TYPE_CHECKING:
    from .app import BustAPI

F = TypeVar("F", bound=Callable[..., Any])


class NoAppException(click.UsageError):
    """The application could not be found or loaded; the message says why."""


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
            "Detected multiple BustAPI applications in module"
            f" '{module.__name__}'. Use '{module.__name__}:name' to specify the correct one."
        )
    for attr_name in ("create_app", "make_app"):
        app_factory = getattr(module, attr_name, None)
        if inspect.isfunction(app_factory):
            try:
                app = app_factory()
            except TypeError as e:
                if not _called_with_wrong_args(app_factory):
                    raise
                raise NoAppException(
                    f"Detected factory '{attr_name}' in module '{module.__name__}', but could not"
                    " call it without arguments. Use"
                    f" '{module.__name__}:{attr_name}(args)' to specify arguments."
                ) from e
            if isinstance(app, BustAPI):
                return app
    raise NoAppException(
        f"Failed to find BustAPI application or factory in module '{module.__name__}'. Use"
        f" '{module.__name__}:name' to specify one."
    )


def _called_with_wrong_args(f: Callable[..., Any]) -> bool:
    """Whether the TypeError just raised came from calling ``f`` itself (bad
    arguments), not from inside it."""
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

    try:
        expr = ast.parse(app_name.strip(), mode="eval").body
    except SyntaxError:
        raise NoAppException(
            f"Failed to parse {app_name!r} as an attribute name or function call."
        ) from None
    if isinstance(expr, ast.Name):
        name, args, kwargs = expr.id, [], {}
    elif isinstance(expr, ast.Call):
        if not isinstance(expr.func, ast.Name):
            raise NoAppException(f"Function reference must be a simple name: {app_name!r}.")
        name = expr.func.id
        try:
            args = [ast.literal_eval(arg) for arg in expr.args]
            kwargs = {kw.arg: ast.literal_eval(kw.value) for kw in expr.keywords if kw.arg}
        except ValueError:
            raise NoAppException(
                f"Failed to parse arguments as literal values: {app_name!r}."
            ) from None
    else:
        raise NoAppException(f"Failed to parse {app_name!r} as an attribute name or function call.")
    try:
        attr = getattr(module, name)
    except AttributeError as e:
        raise NoAppException(f"Failed to find attribute {name!r} in {module.__name__!r}.") from e
    if inspect.isfunction(attr):
        try:
            app = attr(*args, **kwargs)
        except TypeError as e:
            if not _called_with_wrong_args(attr):
                raise
            raise NoAppException(
                f"The factory {app_name!r} in module {module.__name__!r} could not be called with"
                " the specified arguments."
            ) from e
    else:
        app = attr
    if isinstance(app, BustAPI):
        return app
    raise NoAppException(
        f"A valid BustAPI application was not obtained from '{module.__name__}:{app_name}'."
    )


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


def locate_app(module_name: str, app_name: Optional[str], raise_if_not_found: bool = True) -> Any:
    """Imports ``module_name`` and finds the app in it (``None`` when the module does
    not exist and ``raise_if_not_found`` is false)."""
    try:
        __import__(module_name)
    except ImportError:
        # An ImportError raised inside the module is the module's own problem.
        if sys.exc_info()[2] is not None and sys.exc_info()[2].tb_next:  # type: ignore[union-attr]
            raise NoAppException(
                f"While importing {module_name!r}, an ImportError was raised:\n\n{_format_exc()}"
            ) from None
        if raise_if_not_found:
            raise NoAppException(f"Could not import {module_name!r}.") from None
        return None
    module = sys.modules[module_name]
    if app_name is None:
        return find_best_app(module)
    return find_app_by_string(module, app_name)


def _format_exc() -> str:
    import traceback

    return traceback.format_exc()


class ScriptInfo:
    """How the CLI finds the app: an import string (``--app``), a factory, or the
    conventional file names. Loaded once and cached."""

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
        self._loaded_app: Optional[BustAPI] = None

    def load_app(self) -> BustAPI:
        if self._loaded_app is not None:
            return self._loaded_app
        app: Optional[BustAPI] = None
        if self.create_app is not None:
            app = self.create_app()
        elif self.app_import_path:
            path, _, attr = self.app_import_path.partition(":")
            name = attr or None
            import_name = prepare_import(path) if path.endswith(".py") or os.sep in path else path
            if import_name == path and os.getcwd() not in sys.path:
                sys.path.insert(0, os.getcwd())
            app = locate_app(import_name, name)
        else:
            if os.getcwd() not in sys.path:
                sys.path.insert(0, os.getcwd())
            for path in ("wsgi.py", "app.py"):
                import_name = prepare_import(path)
                app = locate_app(import_name, None, raise_if_not_found=False)
                if app is not None:
                    break
        if app is None:
            raise NoAppException(
                "Could not locate a BustAPI application. Use the 'bustapi --app' option,"
                " 'BUSTAPI_APP' environment variable, or a 'wsgi.py' or 'app.py' file in the"
                " current directory."
            )
        self._loaded_app = app
        return app


pass_script_info = click.make_pass_decorator(ScriptInfo, ensure=True)


def with_appcontext(f: F) -> F:
    """Runs a click command inside the app's application context (the app is the one
    the :class:`ScriptInfo` finds)."""

    @click.pass_context
    def decorator(ctx: click.Context, /, *args: Any, **kwargs: Any) -> Any:
        from .globals import _cv_app

        if _cv_app.get(None) is None:
            app = ctx.ensure_object(ScriptInfo).load_app()
            ctx.with_resource(app.app_context())
        return ctx.invoke(f, *args, **kwargs)

    return functools.update_wrapper(decorator, f)  # type: ignore[return-value]


class AppGroup(click.Group):
    """A click group whose commands run in an application context by default
    (``@app.cli.command(with_appcontext=False)`` to opt out)."""

    def command(self, *args: Any, **kwargs: Any) -> Callable[[Callable[..., Any]], click.Command]:  # type: ignore[override]
        wrap_for_ctx = kwargs.pop("with_appcontext", True)

        def decorator(f: Callable[..., Any]) -> click.Command:
            if wrap_for_ctx:
                f = with_appcontext(f)
            return click.Group.command(self, *args, **kwargs)(f)

        return decorator

    def group(self, *args: Any, **kwargs: Any) -> Callable[[Callable[..., Any]], click.Group]:  # type: ignore[override]
        kwargs.setdefault("cls", AppGroup)
        return click.Group.group(self, *args, **kwargs)
