"""What applications and blueprints have in common: registering views, hooks,
error handlers and template helpers, and finding their static and template
folders and resources relative to their package.

Hooks and handlers are stored per *scope*: ``None`` for the application, the
blueprint's dotted name for a blueprint, so that a blueprint's
``before_request`` runs only for its own views and its error handlers catch only
its own errors, as in Flask.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections import defaultdict
from typing import IO, TYPE_CHECKING, Any, Callable, Optional, TypeVar, Union

from .exceptions import HTTPException, default_exceptions

if TYPE_CHECKING:
    import click

    from .wrappers import Response

F = TypeVar("F", bound=Callable[..., Any])
Scope = Optional[str]
ErrorHandler = Callable[[Any], Any]


def get_root_path(import_name: str) -> str:
    """The folder of the module or package ``import_name`` (the working directory when
    it cannot be found, e.g. in an interactive session), as Flask finds it."""
    mod = sys.modules.get(import_name)
    filename = getattr(mod, "__file__", None)
    if filename is not None:
        return os.path.dirname(os.path.abspath(filename))
    try:
        spec = importlib.util.find_spec(import_name)
    except (ImportError, ValueError):
        spec = None
    if spec is None or spec.origin in (None, "namespace", "built-in", "frozen"):
        if spec is not None and spec.submodule_search_locations:
            return os.path.abspath(list(spec.submodule_search_locations)[0])
        return os.getcwd()
    return os.path.dirname(os.path.abspath(spec.origin))


class Scaffold:
    """The shared base of :class:`~bustapi.BustAPI` and :class:`~bustapi.Blueprint`."""

    name: str
    _static_folder: Optional[str] = None
    _static_url_path: Optional[str] = None

    def __init__(
        self,
        import_name: str,
        static_folder: Union[str, os.PathLike[str], None] = None,
        static_url_path: Optional[str] = None,
        template_folder: Union[str, os.PathLike[str], None] = None,
        root_path: Optional[str] = None,
    ) -> None:
        self.import_name = import_name
        self.static_folder = static_folder
        self.static_url_path = static_url_path
        self.template_folder = os.fspath(template_folder) if template_folder is not None else None
        if root_path is None:
            root_path = get_root_path(import_name)
        self.root_path = os.path.abspath(root_path)
        self.view_functions: dict[str, Callable[..., Any]] = {}
        self.error_handler_spec: dict[
            Scope, dict[Optional[int], dict[type[BaseException], ErrorHandler]]
        ] = defaultdict(lambda: defaultdict(dict))
        self.before_request_funcs: dict[Scope, list[Callable[[], Any]]] = defaultdict(list)
        self.after_request_funcs: dict[Scope, list[Callable[[Response], Response]]] = defaultdict(
            list
        )
        self.teardown_request_funcs: dict[Scope, list[Callable[[Optional[BaseException]], Any]]] = (
            defaultdict(list)
        )
        self.template_context_processors: dict[Scope, list[Callable[[], dict[str, Any]]]] = (
            defaultdict(list)
        )
        self.url_value_preprocessors: dict[
            Scope, list[Callable[[Optional[str], Optional[dict[str, Any]]], None]]
        ] = defaultdict(list)
        self.url_default_functions: dict[Scope, list[Callable[[str, dict[str, Any]], None]]] = (
            defaultdict(list)
        )
        self._cli: Optional[click.Group] = None

    # -- folders -------------------------------------------------------------------

    @property
    def static_folder(self) -> Optional[str]:
        """The absolute path of the static folder, if there is one."""
        if self._static_folder is not None:
            return os.path.join(self.root_path, self._static_folder)
        return None

    @static_folder.setter
    def static_folder(self, value: Union[str, os.PathLike[str], None]) -> None:
        if value is not None:
            value = os.fspath(value).rstrip(r"\/")
        self._static_folder = value

    @property
    def has_static_folder(self) -> bool:
        return self.static_folder is not None

    @property
    def static_url_path(self) -> Optional[str]:
        """The URL prefix of the static folder (default: ``/`` + the folder's name)."""
        if self._static_url_path is not None:
            return self._static_url_path
        if self._static_folder is not None:
            basename = os.path.basename(self._static_folder)
            return f"/{basename}".rstrip("/")
        return None

    @static_url_path.setter
    def static_url_path(self, value: Optional[str]) -> None:
        if value is not None:
            value = value.rstrip("/")
        self._static_url_path = value

    def open_resource(
        self, resource: str, mode: str = "rb", encoding: Optional[str] = None
    ) -> IO[Any]:
        """Opens a file relative to :attr:`root_path` for reading:
        ``open_resource("schema.sql")``."""
        if mode not in {"r", "rt", "rb"}:
            raise ValueError("Resources can only be opened for reading.")
        path = os.path.join(self.root_path, resource)
        if mode == "rb":
            return open(path, mode)
        return open(path, mode, encoding=encoding)

    def get_send_file_max_age(self, filename: Optional[str]) -> Optional[int]:
        """``max-age`` for static files and ``send_file``: ``SEND_FILE_MAX_AGE_DEFAULT``
        (``None`` by default: ``no-cache``, revalidated by ETag/Last-Modified)."""
        from .globals import current_app

        value = current_app.config.get("SEND_FILE_MAX_AGE_DEFAULT")
        if value is None:
            return None
        if hasattr(value, "total_seconds"):
            return int(value.total_seconds())
        return int(value)

    def send_static_file(self, filename: str) -> Any:
        """Sends ``filename`` from the static folder, as a view would (static URLs are
        served by the engine directly; this is for views that want the same file)."""
        if not self.has_static_folder:
            raise RuntimeError("'static_folder' must be set to serve static_files.")
        from .files import send_from_directory

        return send_from_directory(
            self.static_folder or "", filename, max_age=self.get_send_file_max_age(filename)
        )

    # -- CLI -----------------------------------------------------------------------

    @property
    def cli(self) -> click.Group:
        """A click group for this app's or blueprint's commands (``@app.cli.command()``)."""
        if self._cli is None:
            from .cli import AppGroup

            self._cli = AppGroup(self.name)
        return self._cli

    # -- views -----------------------------------------------------------------------

    def add_url_rule(
        self,
        rule: str,
        endpoint: Optional[str] = None,
        view_func: Optional[Callable[..., Any]] = None,
        provide_automatic_options: Optional[bool] = None,
        **options: Any,
    ) -> None:
        raise NotImplementedError

    def route(self, rule: str, **options: Any) -> Callable[[F], F]:
        """Registers a view: ``@app.route("/user/<int:id>", methods=["GET", "POST"])``.

        Converters: ``<name>`` (text without slash), ``<int:n>``, ``<float:x>``,
        ``<path:p>`` (slashes allowed, last segment), ``<uuid:u>``. The view gets
        them as keyword arguments, converted. HEAD and OPTIONS are automatic. The
        endpoint (for ``url_for``) defaults to the function's name.
        """

        def decorator(f: F) -> F:
            endpoint = options.pop("endpoint", None)
            self.add_url_rule(rule, endpoint, f, **options)
            return f

        return decorator

    def _method_route(self, method: str, rule: str, options: dict[str, Any]) -> Callable[[F], F]:
        if "methods" in options:
            raise TypeError("Use the 'route' decorator to use the 'methods' argument.")
        return self.route(rule, methods=[method], **options)

    def get(self, rule: str, **options: Any) -> Callable[[F], F]:
        """``route(rule, methods=["GET"])``."""
        return self._method_route("GET", rule, options)

    def post(self, rule: str, **options: Any) -> Callable[[F], F]:
        """``route(rule, methods=["POST"])``."""
        return self._method_route("POST", rule, options)

    def put(self, rule: str, **options: Any) -> Callable[[F], F]:
        """``route(rule, methods=["PUT"])``."""
        return self._method_route("PUT", rule, options)

    def delete(self, rule: str, **options: Any) -> Callable[[F], F]:
        """``route(rule, methods=["DELETE"])``."""
        return self._method_route("DELETE", rule, options)

    def patch(self, rule: str, **options: Any) -> Callable[[F], F]:
        """``route(rule, methods=["PATCH"])``."""
        return self._method_route("PATCH", rule, options)

    def endpoint(self, endpoint: str) -> Callable[[F], F]:
        """Attaches a view to an endpoint registered without one:
        ``app.add_url_rule("/", endpoint="index")`` then ``@app.endpoint("index")``."""

        def decorator(f: F) -> F:
            self.view_functions[endpoint] = f
            return f

        return decorator

    # -- hooks -----------------------------------------------------------------------

    def before_request(self, f: F) -> F:
        """Runs ``f()`` before each view; a non-``None`` return value is the response
        and the view is skipped."""
        self.before_request_funcs[None].append(f)
        return f

    def after_request(self, f: F) -> F:
        """Runs ``f(response)`` after each view, error responses included; it returns
        the response to send."""
        self.after_request_funcs[None].append(f)
        return f

    def teardown_request(self, f: F) -> F:
        """Runs ``f(error_or_None)`` when the request context is popped, even after an
        unhandled exception; its return value is ignored."""
        self.teardown_request_funcs[None].append(f)
        return f

    def context_processor(self, f: F) -> F:
        """Registers ``f()`` returning a dict of names added to every template's context."""
        self.template_context_processors[None].append(f)
        return f

    def url_value_preprocessor(self, f: F) -> F:
        """Runs ``f(endpoint, view_args)`` before ``before_request``; it may change the
        view arguments in place (e.g. pop a language code into ``g``)."""
        self.url_value_preprocessors[None].append(f)
        return f

    def url_defaults(self, f: F) -> F:
        """Runs ``f(endpoint, values)`` in ``url_for`` to fill in values in place."""
        self.url_default_functions[None].append(f)
        return f

    def errorhandler(self, code_or_exception: Union[int, type[BaseException]]) -> Callable[[F], F]:
        """Registers a handler for an HTTP status (``404``) or an exception class."""

        def decorator(f: F) -> F:
            self.register_error_handler(code_or_exception, f)
            return f

        return decorator

    def register_error_handler(
        self, code_or_exception: Union[int, type[BaseException]], f: ErrorHandler
    ) -> None:
        """The non-decorator form of :meth:`errorhandler`."""
        exc_class, code = _exc_class_and_code(code_or_exception)
        self.error_handler_spec[None][code][exc_class] = f


def _named_decorator(add: Callable[..., None], name: Optional[str]) -> Callable[[F], F]:
    """``@register(name)`` for a ``register(f, name=...)`` method: template filters,
    globals and tests, on apps and blueprints alike."""

    def decorator(f: F) -> F:
        add(f, name=name)
        return f

    return decorator


def _exc_class_and_code(
    exc_class_or_code: Union[int, type[BaseException]],
) -> tuple[type[BaseException], Optional[int]]:
    """Normalises an error-handler key to (exception class, HTTP code or ``None``).

    Werkzeug's ``HTTPException`` subclasses are accepted too (when Werkzeug is
    installed), so handlers written for Flask keep working."""
    exc_class: type[BaseException]
    if isinstance(exc_class_or_code, int) and not isinstance(exc_class_or_code, bool):
        try:
            exc_class = default_exceptions[exc_class_or_code]
        except KeyError:
            raise ValueError(
                f"'{exc_class_or_code}' is not a recognized HTTP error code. Use a subclass of"
                " HTTPException with that code instead."
            ) from None
        return exc_class, exc_class_or_code
    if isinstance(exc_class_or_code, BaseException):
        raise TypeError(
            f"{exc_class_or_code!r} is an instance, not a class. Handlers can only be"
            " registered for Exception classes or HTTP error codes."
        )
    if not (isinstance(exc_class_or_code, type) and issubclass(exc_class_or_code, BaseException)):
        raise TypeError(
            f"'{exc_class_or_code!r}' is not a subclass of Exception. Handlers can only be"
            " registered for Exception classes or HTTP error codes."
        )
    exc_class = exc_class_or_code
    if issubclass(exc_class, HTTPException):
        return exc_class, exc_class.code
    code = getattr(exc_class, "code", None)
    if _is_werkzeug_http_exception(exc_class) and isinstance(code, int):
        return exc_class, code
    return exc_class, None


def _is_werkzeug_http_exception(cls: type[BaseException]) -> bool:
    return any(
        base.__module__.startswith("werkzeug") and base.__name__ == "HTTPException"
        for base in cls.__mro__
    )


def _endpoint_from_view_func(view_func: Callable[..., Any]) -> str:
    if view_func is None:
        raise TypeError("expected view func if endpoint is not provided.")
    return view_func.__name__
