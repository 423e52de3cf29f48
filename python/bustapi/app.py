"""The application object: routes, error handlers, running and testing."""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import signal
import sys
import threading
import traceback
import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Callable, Optional, TypeVar, Union, cast

from . import _core
from .datastructures import Headers
from .exceptions import HTTPException, InternalServerError, http_exception
from .globals import _request_var
from .streaming import StreamingResponse
from .wrappers import Request, Response, dumps_json

if TYPE_CHECKING:
    from .testing import TestClient

F = TypeVar("F", bound=Callable[..., Any])
ErrorHandler = Callable[[Any], Any]

logger = logging.getLogger("bustapi")

_CONVERT: dict[str, Callable[[str], Any]] = {"int": int, "float": float, "uuid": uuid.UUID}
_JSON_HEADERS = [("Content-Type", "application/json")]
_HTML_HEADERS = [("Content-Type", "text/html; charset=utf-8")]


def _ensure_log_handler() -> None:
    if not logger.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(
            logging.Formatter("[%(asctime)s] %(levelname)s in bustapi: %(message)s")
        )
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)


def _caller_root(depth: int = 2) -> str:
    frame = sys._getframe(depth)
    filename = frame.f_globals.get("__file__")
    return os.path.dirname(os.path.abspath(filename)) if filename else os.getcwd()


class BustAPI:
    """A Flask-style application whose HTTP engine is Rust.

    >>> app = BustAPI(static_folder="static")
    >>> @app.route("/")
    ... def index():
    ...     return {"message": "Hello, world!"}

    Files under ``static_folder`` are served by the engine at ``static_url_path``
    (default ``/static``) with Range and conditional support and no Python per
    request. ``static_folder`` and other relative paths resolve against
    ``root_path``: the directory of the module that created the app, as in Flask.
    """

    def __init__(
        self,
        import_name: Optional[str] = None,
        static_folder: Optional[str] = "static",
        static_url_path: Optional[str] = None,
        root_path: Optional[str] = None,
        template_folder: Optional[str] = None,
    ) -> None:
        self.import_name = import_name or "__main__"
        if root_path is None:
            module = sys.modules.get(import_name) if import_name else None
            module_file = getattr(module, "__file__", None)
            root_path = (
                os.path.dirname(os.path.abspath(module_file)) if module_file else _caller_root()
            )
        self.root_path = os.path.abspath(root_path)
        self.debug = False
        self.config: dict[str, Any] = {"DEBUG": False, "MAX_CONTENT_LENGTH": 16 * 1024 * 1024}
        self.view_functions: dict[str, Callable[..., Any]] = {}
        self.url_map: list[tuple[str, str, tuple[str, ...]]] = []
        self._endpoints: list[Callable[..., Any]] = []
        self._error_handlers: dict[Union[int, type[BaseException]], ErrorHandler] = {}
        self._before: list[Callable[[], Any]] = []
        self._after: list[Callable[[Response], Response]] = []
        self._core = _core.CoreApp(self._dispatch)
        # What the engine was last configured with (see _configure, _sync_config).
        self._run_options: tuple[Optional[int], dict[str, Any]] = (None, {})
        self._applied_config: Optional[tuple[Any, ...]] = None
        self.static_folder: Optional[str] = None
        self.static_url_path: Optional[str] = None
        if static_folder is not None:
            folder = os.path.join(self.root_path, static_folder)
            if static_url_path is None:
                static_url_path = "/" + os.path.basename(os.path.normpath(static_folder))
            self.static_folder = folder
            self.static_url_path = static_url_path.rstrip("/") or "/"
            if self.static_url_path == "/":
                raise ValueError("static_url_path must not be '/': it would shadow every route")
            self._core.add_static(self.static_url_path, folder)

    # -- registration -------------------------------------------------------------

    def add_url_rule(
        self,
        rule: str,
        endpoint: Optional[str] = None,
        view_func: Optional[Callable[..., Any]] = None,
        methods: Optional[Iterable[str]] = None,
    ) -> None:
        """Connects ``rule`` to ``view_func`` (the decorators call this)."""
        if view_func is None:
            raise TypeError("add_url_rule() needs a view_func")
        if isinstance(methods, str):
            raise TypeError("methods must be a list of strings, e.g. methods=['GET', 'POST']")
        names = tuple(m.upper() for m in (methods or ("GET",)))
        endpoint = endpoint or view_func.__name__
        existing = self.view_functions.get(endpoint)
        if existing is not None and existing is not view_func:
            raise AssertionError(
                f"View function mapping is overwriting an existing endpoint function: {endpoint}"
            )
        self._core.add_route(rule, list(names), len(self._endpoints))
        self._endpoints.append(view_func)
        self.view_functions[endpoint] = view_func
        self.url_map.append((rule, endpoint, names))

    def route(
        self, rule: str, methods: Optional[Iterable[str]] = None, endpoint: Optional[str] = None
    ) -> Callable[[F], F]:
        """Registers a view: ``@app.route("/user/<int:id>", methods=["GET", "POST"])``.

        Converters: ``<name>`` (text without slash), ``<int:n>``, ``<float:x>``,
        ``<path:p>`` (slashes allowed, last segment), ``<uuid:u>``. The view gets
        them as keyword arguments, converted. HEAD and OPTIONS are automatic.
        """

        def decorator(f: F) -> F:
            self.add_url_rule(rule, endpoint, f, methods)
            return f

        return decorator

    def get(self, rule: str, **kw: Any) -> Callable[[F], F]:
        return self.route(rule, methods=["GET"], **kw)

    def post(self, rule: str, **kw: Any) -> Callable[[F], F]:
        return self.route(rule, methods=["POST"], **kw)

    def put(self, rule: str, **kw: Any) -> Callable[[F], F]:
        return self.route(rule, methods=["PUT"], **kw)

    def delete(self, rule: str, **kw: Any) -> Callable[[F], F]:
        return self.route(rule, methods=["DELETE"], **kw)

    def patch(self, rule: str, **kw: Any) -> Callable[[F], F]:
        return self.route(rule, methods=["PATCH"], **kw)

    def errorhandler(self, code_or_exception: Union[int, type[BaseException]]) -> Callable[[F], F]:
        """Registers a handler for an HTTP status (``404``) or an exception class."""

        def decorator(f: F) -> F:
            self.register_error_handler(code_or_exception, f)
            return f

        return decorator

    def register_error_handler(
        self, code_or_exception: Union[int, type[BaseException]], f: ErrorHandler
    ) -> None:
        if isinstance(code_or_exception, int):
            if not 100 <= code_or_exception <= 999:
                raise ValueError(f"{code_or_exception} is not an HTTP status code")
        elif not (
            isinstance(code_or_exception, type) and issubclass(code_or_exception, BaseException)
        ):
            raise TypeError("errorhandler() needs an HTTP status code or an exception class")
        self._error_handlers[code_or_exception] = f
        self._sync_error_codes()

    def _sync_error_codes(self) -> None:
        """Tells the engine which errors it detects (404, 405, 413, 400) Python must
        render: those with a handler, or all of them once after_request hooks exist."""
        codes = {c for c in self._error_handlers if isinstance(c, int)}
        if self._after:
            codes |= {400, 404, 405, 413}
        self._core.set_error_codes(sorted(codes))

    def before_request(self, f: F) -> F:
        """Runs ``f()`` before each view; a non-``None`` return value is the response."""
        self._before.append(f)
        return f

    def after_request(self, f: F) -> F:
        """Runs ``f(response)`` after each view, error responses included; it
        returns the response to send."""
        self._after.append(f)
        self._sync_error_codes()
        return f

    # -- dispatch (called by the engine on a view thread) -------------------------

    def _dispatch(
        self,
        data: _core.RequestData,
        endpoint: int,
        params: tuple[tuple[str, str, str], ...],
        error_status: int,
    ) -> tuple[int, list[tuple[str, str]], Any]:
        """Runs one request; called by the engine on a view thread, with the GIL."""
        token = _request_var.set(Request(data, self))
        try:
            try:
                if endpoint < 0:
                    rv = self._handle_http_exception(http_exception(error_status))
                else:
                    rv = self._run_view(self._endpoints[endpoint], params)
                if not self._after:
                    # The common returns skip building a Response object.
                    kind = type(rv)
                    if kind is dict or kind is list:
                        return 200, _JSON_HEADERS, dumps_json(rv)
                    if kind is str:
                        return 200, _HTML_HEADERS, rv.encode()
            except HTTPException as e:
                rv = self._handle_http_exception(e)
            except Exception as e:  # noqa: BLE001 - every view error becomes a response
                rv = self._handle_exception(e)
            response = _to_response(rv)
            # As in Flask, after_request also sees responses made by error handlers.
            for hook in self._after:
                response = hook(response)
            return response._parts()
        except Exception as e:  # an error handler or hook itself failed
            logger.error("Exception while handling an error", exc_info=e)
            return self._internal_error(e)._parts()
        finally:
            _request_var.reset(token)

    def _run_view(self, view: Callable[..., Any], params: tuple[tuple[str, str, str], ...]) -> Any:
        kwargs = {}
        for name, value, kind in params:
            convert = _CONVERT.get(kind)
            kwargs[name] = convert(value) if convert else value
        if kwargs:
            _request_var.get().view_args = kwargs
        for hook in self._before:
            rv = _await(hook())
            if rv is not None:
                return rv
        return _await(view(**kwargs))

    def _handle_http_exception(self, e: HTTPException) -> Any:
        handler = self._error_handlers.get(e.code) or self._find_exception_handler(e)
        if handler is None:
            return e.get_response()
        return _await(handler(e))

    def _find_exception_handler(self, e: BaseException) -> Optional[ErrorHandler]:
        for cls in type(e).__mro__:
            handler = self._error_handlers.get(cls)
            if handler is not None:
                return handler
        return None

    def _handle_exception(self, e: Exception) -> Any:
        handler = self._find_exception_handler(e)
        if handler is not None:
            return _await(handler(e))
        logger.error("Exception on %s [%s]", _request_path(), _request_method(), exc_info=e)
        handler = self._error_handlers.get(500)
        if handler is not None:
            return _await(handler(InternalServerError()))
        return self._internal_error(e)

    def _internal_error(self, e: BaseException) -> Response:
        if self.debug:
            body = "500 Internal Server Error\n\n" + "".join(
                traceback.format_exception(type(e), e, e.__traceback__)
            )
        else:
            body = "500 Internal Server Error: " + (InternalServerError.description or "") + "\n"
        return Response(body, status=500, mimetype="text/plain")

    # -- running --------------------------------------------------------------------

    def _configure(self, threads: Optional[int], options: dict[str, Any]) -> str:
        """Hands the engine settings (``app.config`` and ``run()`` options) to the
        core; every way of serving (``run()``, ``LiveServer``, the test client)
        comes through here. Returns the URL scheme served."""
        self._run_options = (threads, dict(options))
        self._applied_config = self._engine_config()
        max_body = self.config.get("MAX_CONTENT_LENGTH")
        ssl_context = options.pop("ssl_context", None)
        cert = key = None
        if ssl_context is not None:
            if not (isinstance(ssl_context, (tuple, list)) and len(ssl_context) == 2):
                raise TypeError('ssl_context must be a ("cert.pem", "key.pem") pair')
            cert, key = (os.fspath(p) for p in ssl_context)
        self._core.configure(
            ssl_cert=cert,
            ssl_key=key,
            max_body_size=options.pop("max_body_size", max_body),
            header_read_timeout=options.pop("header_read_timeout", None),
            shutdown_timeout=options.pop("shutdown_timeout", None),
            max_header_bytes=options.pop("max_header_bytes", None),
            write_timeout=options.pop("write_timeout", None),
            max_connections=options.pop("max_connections", None),
            access_log=options.pop("access_log", None),
            live_stats=options.pop("live_stats", None),
            sendfile=options.pop("sendfile", None),
            view_threads=threads,
        )
        if options:
            raise TypeError(f"unknown run() options: {', '.join(sorted(options))}")
        return "https" if cert else "http"

    def _engine_config(self) -> tuple[Any, ...]:
        """The ``app.config`` values the engine enforces."""
        return (self.config.get("MAX_CONTENT_LENGTH"),)

    def _sync_config(self) -> None:
        """Re-applies the last run options with the current ``app.config`` if it
        changed: the test client calls this per request, as Flask reads its
        config per request."""
        if self._applied_config != self._engine_config():
            self._configure(*self._run_options)

    def run(
        self,
        host: str = "127.0.0.1",
        port: int = 5000,
        debug: bool = False,
        workers: int = 1,
        threads: Optional[int] = None,
        io_threads: Optional[int] = None,
        **options: Any,
    ) -> None:
        """Serves the app until Ctrl-C or SIGTERM, then shuts down gracefully.

        ``workers`` > 1 forks processes that share the port (``SO_REUSEPORT``);
        ``threads`` is the number of threads that run views (default 16);
        ``io_threads`` the async IO threads per process (default: CPU count).
        ``ssl_context=("cert.pem", "key.pem")`` serves HTTPS, with HTTP/2 by ALPN.
        Options: ``max_body_size``, ``header_read_timeout``, ``write_timeout``,
        ``max_connections``, ``shutdown_timeout``, ``max_header_bytes``,
        ``access_log`` (one line per request on stderr), ``live_stats``,
        ``sendfile`` (zero-copy file bodies on plain HTTP/1.x, default on)
        (defaults in the README).
        """
        _ensure_log_handler()
        self.debug = self.config["DEBUG"] = bool(debug)
        scheme = self._configure(threads, dict(options))
        io = io_threads or _usable_cpus()
        try:
            listener = _core.CoreApp.bind(host, port, reuse_port=workers > 1)
        except OSError as e:
            # Like Werkzeug's dev server: a port in use is a one-line answer, not a traceback.
            raise SystemExit(f"bustapi: {e}") from None
        # SIGINT too, whatever the inherited disposition: a shell's `cmd &` starts
        # the process with SIGINT ignored, and Python then installs no handler.
        # Installed before the start-up line, which tells a watcher we are ready.
        previous = {
            sig: signal.signal(sig, _raise_interrupt) for sig in (signal.SIGTERM, signal.SIGINT)
        }
        children: list[int] = []
        try:
            shown = f"[{host}]" if ":" in host else host
            print(
                f" * BustAPI serving on {scheme}://{shown}:{listener.port}/ (workers: {workers})",
                flush=True,
            )
            print(" * Press CTRL+C to quit", flush=True)
            for _ in range(max(1, workers) - 1):
                children.append(self._fork_worker(host, listener.port, io))
            self._core.serve(listener, io_threads=io)
        except KeyboardInterrupt:
            pass
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            for pid in children:
                _stop_child(pid)
        print(" * BustAPI stopped", flush=True)

    def _fork_worker(self, host: str, port: int, io_threads: int) -> int:
        pid = os.fork()
        if pid:
            return pid
        code = 0
        try:
            signal.signal(signal.SIGTERM, _raise_interrupt)
            signal.signal(signal.SIGINT, _raise_interrupt)
            listener = _core.CoreApp.bind(host, port, reuse_port=True)
            self._core.serve(listener, io_threads=io_threads)
        except KeyboardInterrupt:
            pass
        except BaseException:  # noqa: BLE001 - a worker must never return into the parent's code
            traceback.print_exc()
            code = 1
        finally:
            os._exit(code)

    def test_client(self) -> TestClient:
        """A client that sends requests through the same Rust engine, with the same
        limits (``app.config["MAX_CONTENT_LENGTH"]``, ``run()`` options given to a
        ``LiveServer``), as a socket."""
        from .testing import TestClient

        return TestClient(self)

    def __call__(self, *args: Any) -> Any:
        raise TypeError(
            "BustAPI apps are not WSGI apps; start them with app.run() or `python -m bustapi run`"
        )


def _usable_cpus() -> int:
    # The CPUs this process may run on (taskset, cgroups), not the machine's.
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _stop_child(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


def _request_path() -> str:
    try:
        return _request_var.get().path
    except LookupError:
        return "?"


def _request_method() -> str:
    try:
        return _request_var.get().method
    except LookupError:
        return "?"


_loops = threading.local()


def _await(value: Any) -> Any:
    """Runs a coroutine (from an ``async def`` view or hook) to completion on this
    view thread's own event loop; other values pass through."""
    if not hasattr(value, "__await__"):
        return value
    loop = getattr(_loops, "loop", None)
    if loop is None or loop.is_closed():
        loop = asyncio.new_event_loop()
        _loops.loop = loop
    return loop.run_until_complete(_as_coroutine(value))


async def _as_coroutine(awaitable: Any) -> Any:
    return await awaitable


def _to_response(rv: Any) -> Response:
    """Normalises what a view returned, with Flask's rules."""
    status: Optional[Any] = None
    headers: Optional[Any] = None
    if isinstance(rv, tuple):
        if len(rv) == 3:
            rv, status, headers = rv
        elif len(rv) == 2:
            if isinstance(rv[1], (Headers, dict, tuple, list)):
                rv, headers = rv
            else:
                rv, status = rv
        else:
            raise TypeError(
                "The view function returned a tuple of the wrong size; use (body, status), "
                "(body, headers) or (body, status, headers)."
            )
    if isinstance(rv, Response):
        response = rv
    elif inspect.isgenerator(rv) or inspect.isasyncgen(rv):
        response = StreamingResponse(cast(Any, rv), media_type="text/html")
    elif isinstance(rv, (str, bytes, bytearray)):
        response = Response(bytes(rv) if not isinstance(rv, str) else rv)
    elif isinstance(rv, (dict, list)):
        response = Response(dumps_json(rv), mimetype="application/json")
    elif rv is None:
        raise TypeError("The view function did not return a valid response: it returned None.")
    else:
        raise TypeError(
            f"The view function returned {type(rv).__name__}; return str, bytes, dict, list, "
            "a tuple or a Response."
        )
    if status is not None:
        response.status = status
    if headers is not None:
        if isinstance(headers, (dict, Headers)):
            for k, v in headers.items():
                response.headers.set(k, v)
        else:
            for k, v in headers:
                response.headers.add(k, v)
    return response
