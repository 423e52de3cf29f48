"""The application object: configuration, the URL map, request dispatch with
contexts, hooks and error handling, running and testing.

The shape follows Flask 3.1 (``flask/app.py`` and ``flask/sansio/app.py``), so
an application moves by changing its imports. What differs is where requests
come from: the Rust engine matches the URL, serves static files and file
bodies itself, and calls :meth:`BustAPI._dispatch` on a view thread only for
routes (and for errors the application renders itself).
"""

from __future__ import annotations

import asyncio
import functools
import importlib.util
import inspect
import logging
import os
import signal
import sys
import threading
import traceback
from collections.abc import Iterable
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Callable, NamedTuple, Optional, TypeVar, Union, cast

from . import _core
from .config import Config, ConfigAttribute
from .ctx import AppContext, RequestContext, _AppCtxGlobals, _test_local
from .datastructures import Headers
from .exceptions import HTTPException, InternalServerError, default_exceptions, http_exception
from .globals import _cv_request
from .resumable import ResumableUpload, authorize_view, complete_view
from .routing import BuildError, Map, Rule, quote_anchor
from .scaffold import Scaffold, _endpoint_from_view_func, _exc_class_and_code, _named_decorator
from .sessions import SecureCookieSessionInterface, SessionInterface
from .signing import ExpiresIn, Signer, sign_path, signing_keys
from .streaming import StreamingResponse
from .wrappers import Request, Response, dumps_json

if TYPE_CHECKING:
    from .blueprints import Blueprint
    from .testing import BustAPICliRunner, TestClient

F = TypeVar("F", bound=Callable[..., Any])
ErrorHandler = Callable[[Any], Any]

_JSON_HEADERS = [("Content-Type", "application/json")]
_HTML_HEADERS = [("Content-Type", "text/html; charset=utf-8")]

# Engine-detected errors a Python hook or handler may want to see.
_ENGINE_ERRORS = (400, 403, 404, 405, 408, 410, 413, 507)


def _make_timedelta(value: Union[timedelta, int, None]) -> Optional[timedelta]:
    if value is None or isinstance(value, timedelta):
        return value
    return timedelta(seconds=value)


def _caller_root(depth: int = 2) -> str:
    frame = sys._getframe(depth)
    filename = frame.f_globals.get("__file__")
    return os.path.dirname(os.path.abspath(filename)) if filename else os.getcwd()


class BustAPI(Scaffold):
    """A Flask-style application whose HTTP engine is Rust.

    >>> app = BustAPI(__name__)
    >>> @app.route("/")
    ... def index():
    ...     return {"message": "Hello, world!"}

    Files under ``static_folder`` are served by the engine at ``static_url_path``
    (default ``/static``) with Range and conditional support and no Python per
    request. ``static_folder``, ``template_folder`` and other relative paths resolve
    against ``root_path``: the folder of the module named by ``import_name`` (or of
    the module that created the app when ``import_name`` is omitted), as in Flask.
    """

    request_class: type[Request] = Request
    response_class: type[Response] = Response
    app_ctx_globals_class: type[_AppCtxGlobals] = _AppCtxGlobals
    config_class: type[Config] = Config
    session_interface: SessionInterface = SecureCookieSessionInterface()

    testing = ConfigAttribute("TESTING")
    secret_key = ConfigAttribute("SECRET_KEY")
    permanent_session_lifetime = ConfigAttribute(
        "PERMANENT_SESSION_LIFETIME", get_converter=_make_timedelta
    )

    default_config: dict[str, Any] = {
        "DEBUG": None,
        "TESTING": False,
        "PROPAGATE_EXCEPTIONS": None,
        "SECRET_KEY": None,
        "SECRET_KEY_FALLBACKS": None,
        "PERMANENT_SESSION_LIFETIME": timedelta(days=31),
        "SERVER_NAME": None,
        "APPLICATION_ROOT": "/",
        "SESSION_COOKIE_NAME": "session",
        "SESSION_COOKIE_DOMAIN": None,
        "SESSION_COOKIE_PATH": None,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SECURE": False,
        "SESSION_COOKIE_PARTITIONED": False,
        "SESSION_COOKIE_SAMESITE": None,
        "SESSION_REFRESH_EACH_REQUEST": True,
        "MAX_CONTENT_LENGTH": 16 * 1024 * 1024,
        "MAX_FORM_MEMORY_SIZE": 500_000,
        "MAX_FORM_PARTS": 1_000,
        "UPLOAD_TEMP_FOLDER": None,
        # Keys of signed URLs, newest first; None: SECRET_KEY (see bustapi.signing).
        "SIGNING_KEYS": None,
        "SEND_FILE_MAX_AGE_DEFAULT": None,
        "TRAP_BAD_REQUEST_ERRORS": None,
        "TRAP_HTTP_EXCEPTIONS": False,
        "EXPLAIN_TEMPLATE_LOADING": False,
        "PREFERRED_URL_SCHEME": "http",
        "TEMPLATES_AUTO_RELOAD": None,
        "MAX_COOKIE_SIZE": 4093,
        "PROVIDE_AUTOMATIC_OPTIONS": True,
        # Accepted for Flask configs; the engine sends files itself, so there is no
        # X-Sendfile hand-off to a front server (the file is served either way).
        "USE_X_SENDFILE": False,
        # Host checking is not implemented: setting it raises when the app starts
        # serving rather than letting every Host through silently.
        "TRUSTED_HOSTS": None,
    }

    def __init__(
        self,
        import_name: Optional[str] = None,
        static_url_path: Optional[str] = None,
        static_folder: Union[str, os.PathLike[str], None] = "static",
        static_host: Optional[str] = None,
        host_matching: bool = False,
        subdomain_matching: bool = False,
        template_folder: Union[str, os.PathLike[str], None] = "templates",
        instance_path: Optional[str] = None,
        instance_relative_config: bool = False,
        root_path: Optional[str] = None,
    ) -> None:
        if host_matching or static_host is not None or subdomain_matching:
            raise NotImplementedError("BustAPI does not route by host or subdomain (yet)")
        if import_name is None:
            import_name = "__main__"
            if root_path is None:
                root_path = _caller_root()
        super().__init__(
            import_name,
            static_folder=static_folder,
            static_url_path=static_url_path,
            template_folder=template_folder,
            root_path=root_path,
        )
        if instance_path is None:
            instance_path = self.auto_find_instance_path()
        elif not os.path.isabs(instance_path):
            raise ValueError("If an instance path is provided it must be absolute.")
        self.instance_path = instance_path
        self.config = self.make_config(instance_relative_config)
        self.extensions: dict[str, Any] = {}
        self.url_map = Map()
        self.blueprints: dict[str, Blueprint] = {}
        self.teardown_appcontext_funcs: list[Callable[[Optional[BaseException]], Any]] = []
        self.shell_context_processors: list[Callable[[], dict[str, Any]]] = []
        self.url_build_error_handlers: list[Callable[[Exception, str, dict[str, Any]], str]] = []
        self.template_filters: dict[str, Callable[..., Any]] = {}
        self.template_globals: dict[str, Any] = {}
        self.template_tests: dict[str, Callable[..., bool]] = {}
        self._jinja_env: Any = None
        self._logger: Optional[logging.Logger] = None
        # Engine endpoint id -> rule; the engine matches, Python looks the view up.
        self._rules: list[Rule] = []
        self._engine_routes: set[tuple[str, str]] = set()
        self._resumable: list[str] = []  # tus url prefixes
        self._core = _core.CoreApp(self._dispatch)
        self._got_first_request = False
        # Whether a subclass makes its own app contexts: a request context then
        # pushes one of those rather than standing in as the app context itself.
        self._custom_app_context = type(self).app_context is not BustAPI.app_context
        # (url prefix, folder) of every engine-served static folder: the app's and
        # its blueprints'. Handed to the engine by _prepare(), with the max-age
        # SEND_FILE_MAX_AGE_DEFAULT has by then.
        self._static_mounts: list[_StaticMount] = []
        # Endpoints answered only for a validly signed URL (the engine checks).
        self._signed_endpoints: set[str] = set()
        self._signer = Signer()
        self._sent_to_engine: Any = None
        # What the engine was last configured with (see _configure, _sync_config).
        self._run_options: tuple[Optional[int], dict[str, Any]] = (None, {})
        self._applied_config: Optional[tuple[Any, ...]] = None
        if self.has_static_folder:
            url_path = self.static_url_path
            if not url_path:
                raise ValueError("static_url_path must not be '/': it would shadow every route")
            self._add_static_mount(url_path, self.static_folder or "")
            # Only for url_for('static', filename=...): the engine serves the files.
            self._add_build_rule(f"{url_path}/<path:filename>", "static", ("GET",))

    def _add_static_mount(
        self,
        url_path: str,
        folder: str,
        listing: bool = False,
        max_age: Optional[int] = None,
        signed: bool = False,
        rate: Union[int, str, None] = None,
        rate_after: Optional[int] = None,
    ) -> None:
        self._static_mounts.append(
            _StaticMount(url_path, os.fspath(folder), listing, max_age, signed, rate, rate_after)
        )

    def add_static(
        self,
        url_path: str,
        folder: Union[str, os.PathLike[str]],
        *,
        signed: bool = False,
        listing: bool = False,
        max_age: Optional[int] = None,
        rate: Union[int, str, None] = None,
        rate_after: Optional[int] = None,
    ) -> None:
        """Serves ``folder`` at ``url_path`` from the engine (ranges, conditionals, no
        Python per request), besides the static folder: ``app.add_static("/media",
        "/srv/media")``. ``listing`` shows directory listings; ``max_age`` sets
        ``Cache-Control`` (default ``SEND_FILE_MAX_AGE_DEFAULT``, else ``no-cache``).
        A ``url_path`` of ``"/"`` mounts the folder at the root, ahead of every route.

        ``signed=True`` serves only URLs made by :meth:`sign_url` (403 for a missing
        or wrong signature, 410 once expired), checked by the engine before the
        file is looked up.

        ``rate`` (bytes per second, or ``"auto"``) and ``rate_after`` pace every
        response as :func:`~bustapi.send_file`'s do."""
        if not url_path.startswith("/"):
            raise ValueError("url_path must start with '/'")
        folder = os.path.join(self.root_path, os.fspath(folder))
        self._add_static_mount(
            url_path.rstrip("/") or "/", folder, listing, max_age, signed, rate, rate_after
        )
        # Checked now, where the mistake is, rather than when the app first serves.
        _core.FileSpec(data=b"", rate=rate, rate_after=rate_after)

    def sign_url(
        self,
        path: str,
        expires_in: ExpiresIn = 3600,
        *,
        ip: Union[str, bool, None] = None,
        prefix: Union[str, bool, None] = None,
    ) -> str:
        """``path`` with a signature that a signed static mount or route accepts
        until ``expires_in`` (seconds or a timedelta; default one hour) from now:

        >>> app.sign_url("/media/intro.mp4", expires_in=timedelta(hours=2))
        '/media/intro.mp4?expires=1764160000&signature=...'

        ``ip`` binds the URL to one client address (``True``: the current
        request's ``remote_addr``). ``prefix`` makes it good for every path under a
        folder (``True``: the folder of ``path``; or a path ending in ``/``), e.g.
        the segments of a stream. The signature covers the path (or prefix), the
        expiry and the address, not other query parameters. Keys come from
        ``SIGNING_KEYS``, else ``SECRET_KEY`` (see :mod:`bustapi.signing`)."""
        signer = self._signer.for_keys(signing_keys(self.config))
        if signer is None:
            raise RuntimeError(
                "signing a URL needs keys: set SIGNING_KEYS (a list) or SECRET_KEY in app.config"
            )
        if ip is True:
            req_ctx = _cv_request.get(None)
            ip = req_ctx.request.remote_addr if req_ctx is not None else None
            if not ip:
                raise RuntimeError("ip=True needs a request with a client address")
        return sign_path(signer, path, expires_in, ip or None, prefix)

    def resumable_uploads(
        self,
        url_prefix: str,
        folder: Union[str, os.PathLike[str]],
        *,
        max_size: Optional[int] = None,
        on_complete: Optional[Callable[[ResumableUpload], Any]] = None,
        authorize: Optional[Callable[[ResumableUpload], Any]] = None,
        expiration: Union[timedelta, int, float, None] = timedelta(days=1),
        fsync: bool = True,
    ) -> None:
        """Serves resumable uploads (the tus 1.0 protocol) at ``url_prefix``:

        >>> app.resumable_uploads("/files/", folder="incoming", max_size=8 << 30,
        ...                       on_complete=lambda upload: print(upload.path))

        The engine answers ``POST``/``HEAD``/``PATCH``/``DELETE``/``OPTIONS``
        under the prefix (creation, creation-with-upload, creation-defer-length,
        termination, expiration and checksum extensions) and writes upload bytes
        to ``folder`` itself, without Python. ``GET`` falls through to the rest of
        the app, so ``app.add_static(url_prefix, folder)`` serves finished uploads
        at their upload URLs.

        ``authorize(upload)`` runs like a view before an upload is created (it
        sees ``request`` with its headers, ``session``, ``g``): return ``None`` to
        allow, ``False`` or a response, or ``abort(401)``, to refuse.
        ``on_complete(upload)`` runs once, in the request that delivered the last
        byte, when the file is complete at ``upload.path`` (``<folder>/<id>``).
        ``max_size`` caps an upload's length (``Tus-Max-Size``); ``expiration``
        (default one day, ``None`` for never) removes unfinished uploads not
        written to for that long. With ``fsync`` (the default) every PATCH is on
        stable storage before it is acknowledged; without, data is synced only at
        completion (a crash of the process loses nothing, a power cut may lose
        the last acknowledged bytes).
        """
        prefix = "/" + url_prefix.strip("/") + "/"
        if prefix == "//":
            raise ValueError("url_prefix must not be '/': it would take every URL")
        path = os.path.join(self.root_path, os.fspath(folder))
        os.makedirs(path, exist_ok=True)
        if isinstance(expiration, timedelta):
            expiration = expiration.total_seconds()
        name = f"_resumable_{len(self._resumable)}"
        hooks: dict[str, Optional[int]] = {"authorize": None, "on_complete": None}
        if authorize is not None:
            view = authorize_view(authorize)
            hooks["authorize"] = self._add_hidden_view(prefix, f"{name}_authorize", view)
        if on_complete is not None:
            view = complete_view(on_complete)
            hooks["on_complete"] = self._add_hidden_view(prefix, f"{name}_complete", view)
        self._core.add_resumable_uploads(
            prefix,
            path,
            max_size=max_size,
            expiration=None if expiration is None else float(expiration),
            sync_each_patch=fsync,
            **hooks,
        )
        self._resumable.append(prefix)

    def _add_hidden_view(self, rule: str, endpoint: str, view: Callable[..., Any]) -> int:
        """A view the engine dispatches to by id with no URL of its own (the tus
        hooks): it runs like any view, but nothing routes to it or builds it."""
        self.view_functions[endpoint] = view
        self._rules.append(Rule(rule, endpoint, ("POST",)))
        return len(self._rules) - 1

    # -- names, config, logging ------------------------------------------------------

    @property
    def name(self) -> str:  # type: ignore[override]
        """The import name, or the script's name when run as ``__main__``."""
        if self.import_name == "__main__":
            fn = getattr(sys.modules.get("__main__"), "__file__", None)
            if fn is None:
                return "__main__"
            return os.path.splitext(os.path.basename(fn))[0]
        return self.import_name

    @property
    def debug(self) -> bool:
        """Debug mode: tracebacks in 500 pages, templates reload when changed."""
        return bool(self.config.get("DEBUG"))

    @debug.setter
    def debug(self, value: bool) -> None:
        self.config["DEBUG"] = value
        if self.config.get("TEMPLATES_AUTO_RELOAD") is None and self._jinja_env is not None:
            self._jinja_env.auto_reload = bool(value)

    def make_config(self, instance_relative: bool = False) -> Config:
        root_path = self.instance_path if instance_relative else self.root_path
        defaults = dict(self.default_config)
        defaults["DEBUG"] = bool(os.environ.get("BUSTAPI_DEBUG", "") not in ("", "0", "false"))
        return self.config_class(root_path, defaults)

    def auto_find_instance_path(self) -> str:
        """Flask's default: an ``instance`` folder beside the module, or beside the
        package folder (not inside it) for a package; for code installed under the
        interpreter's prefix (site-packages), ``<prefix>/var/<name>-instance``."""
        base = _package_parent(self.import_name, self.root_path)
        prefix = os.path.abspath(sys.prefix)
        if os.path.commonpath([prefix, base]) == prefix:
            return os.path.join(prefix, "var", f"{self.name}-instance")
        return os.path.join(base, "instance")

    def open_instance_resource(
        self, resource: str, mode: str = "rb", encoding: Optional[str] = "utf-8"
    ) -> Any:
        """Opens a file under :attr:`instance_path` (for reading or writing)."""
        path = os.path.join(self.instance_path, resource)
        if "b" in mode:
            return open(path, mode)
        return open(path, mode, encoding=encoding)

    @property
    def logger(self) -> logging.Logger:
        """A ``logging.Logger`` named after the app; a handler is added when none is
        configured, and its level follows :attr:`debug`."""
        if self._logger is None:
            from .logging import create_logger

            self._logger = create_logger(self)
        return self._logger

    # -- templates --------------------------------------------------------------------

    @property
    def jinja_env(self) -> Any:
        """The Jinja2 environment, created on first use."""
        if self._jinja_env is None:
            from .templating import create_jinja_environment

            self._jinja_env = create_jinja_environment(self)
        return self._jinja_env

    def template_filter(self, name: Optional[str] = None) -> Callable[[F], F]:
        """Registers a Jinja filter: ``@app.template_filter("reverse")``."""
        return _named_decorator(self.add_template_filter, name)

    def add_template_filter(self, f: Callable[..., Any], name: Optional[str] = None) -> None:
        self._add_template_helper("filters", self.template_filters, f, name)

    def template_global(self, name: Optional[str] = None) -> Callable[[F], F]:
        """Registers a Jinja global: ``@app.template_global()``."""
        return _named_decorator(self.add_template_global, name)

    def add_template_global(self, f: Callable[..., Any], name: Optional[str] = None) -> None:
        self._add_template_helper("globals", self.template_globals, f, name)

    def template_test(self, name: Optional[str] = None) -> Callable[[F], F]:
        """Registers a Jinja test: ``@app.template_test("prime")``."""
        return _named_decorator(self.add_template_test, name)

    def add_template_test(self, f: Callable[..., bool], name: Optional[str] = None) -> None:
        self._add_template_helper("tests", self.template_tests, f, name)

    def _add_template_helper(
        self, kind: str, registry: dict[str, Any], f: Callable[..., Any], name: Optional[str]
    ) -> None:
        """Keeps a filter/global/test for environments made later and adds it to the
        one that exists (``kind`` is the environment's attribute: filters, globals, tests)."""
        registry[name or f.__name__] = f
        if self._jinja_env is not None:
            getattr(self._jinja_env, kind)[name or f.__name__] = f

    def update_template_context(self, context: dict[str, Any]) -> None:
        """Adds what context processors return (app's, then the current blueprints');
        values already in ``context`` win."""
        names: Iterable[Optional[str]] = (None,)
        req_ctx = _cv_request.get(None)
        if req_ctx is not None:
            names = (None, *reversed(req_ctx.request.blueprints))
        orig = context.copy()
        for name in names:
            for func in self.template_context_processors.get(name, ()):
                context.update(func())
        context.update(orig)

    def shell_context_processor(self, f: F) -> F:
        self.shell_context_processors.append(f)
        return f

    def make_shell_context(self) -> dict[str, Any]:
        from .globals import g

        rv: dict[str, Any] = {"app": self, "g": g}
        for processor in self.shell_context_processors:
            rv.update(processor())
        return rv

    # -- registration -------------------------------------------------------------

    def _add_build_rule(self, rule: str, endpoint: str, methods: Iterable[str]) -> Rule:
        r = Rule(rule, endpoint, methods)
        self.url_map.add(r)
        return r

    def add_url_rule(
        self,
        rule: str,
        endpoint: Optional[str] = None,
        view_func: Optional[Callable[..., Any]] = None,
        provide_automatic_options: Optional[bool] = None,
        **options: Any,
    ) -> None:
        """Connects ``rule`` to ``endpoint`` and ``view_func`` (the decorators call this).

        ``methods`` defaults to the view's ``methods`` attribute or ``["GET"]``;
        ``defaults`` gives values for arguments the rule does not capture.
        ``stream_body=True`` gives the view the raw body as it arrives, in
        ``request.stream`` (no buffering, no form parsing); ``max_content_length``
        sets this route's body limit instead of ``MAX_CONTENT_LENGTH``.
        ``signed=True`` runs the view only for URLs made by :meth:`sign_url` or
        ``url_for(..., _signed=True)``: the engine answers 403/410 otherwise. A rule
        without ``view_func`` only names a URL for ``url_for`` until a view is attached
        with :meth:`endpoint`.
        """
        if endpoint is None:
            endpoint = _endpoint_from_view_func(view_func)  # type: ignore[arg-type]
        methods = options.pop("methods", None)
        if methods is None:
            methods = getattr(view_func, "methods", None) or ("GET",)
        if isinstance(methods, str):
            raise TypeError(
                "Allowed methods must be a list of strings, for example:"
                ' @app.route(..., methods=["POST"])'
            )
        names = {m.upper() for m in methods}
        names |= set(getattr(view_func, "required_methods", ()))
        if provide_automatic_options is None:
            provide_automatic_options = getattr(view_func, "provide_automatic_options", None)
        if provide_automatic_options is None:
            provide_automatic_options = "OPTIONS" not in names and bool(
                self.config.get("PROVIDE_AUTOMATIC_OPTIONS", True)
            )
        defaults = options.pop("defaults", None)
        options.pop("strict_slashes", None)  # the engine always redirects /dir to /dir/
        stream_body = bool(options.pop("stream_body", False))
        signed = bool(options.pop("signed", False))
        max_content_length = options.pop("max_content_length", None)
        if options:
            raise TypeError(f"add_url_rule() got unexpected options: {', '.join(sorted(options))}")
        # The rule lists OPTIONS as Flask's does (url_map, BuildError messages); the
        # engine answers it with Allow by itself, so it is not routed to Python.
        rule_methods = names | {"OPTIONS"} if provide_automatic_options else names
        parsed = Rule(rule, endpoint, rule_methods, defaults)
        if view_func is not None:
            existing = self.view_functions.get(endpoint)
            if existing is not None and existing != view_func:
                raise AssertionError(
                    "View function mapping is overwriting an existing endpoint function:"
                    f" {endpoint}"
                )
        engine_methods = sorted(names - {"HEAD"} if "GET" in names else names)
        taken = [m for m in engine_methods if (rule, m) in self._engine_routes]
        if taken and view_func is None:
            # Flask allows a build-only alias of an existing URL
            # (``app.add_url_rule("/", endpoint="index")``): name it, route nothing.
            self.url_map.add(parsed)
            return
        self._core.add_route(
            rule,
            engine_methods,
            len(self._rules),
            stream_body=stream_body,
            max_body_size=None if max_content_length is None else int(max_content_length),
            signed=signed,
        )
        if signed:
            self._signed_endpoints.add(endpoint)
        parsed.max_content_length = max_content_length
        if view_func is not None:
            self.view_functions[endpoint] = view_func
        self._engine_routes.update((rule, m) for m in engine_methods)
        self._rules.append(parsed)
        self.url_map.add(parsed)

    def register_blueprint(self, blueprint: Blueprint, **options: Any) -> None:
        """Registers ``blueprint``'s views, hooks and static folder on the app;
        ``url_prefix``, ``subdomain``, ``url_defaults`` and ``name`` override its own."""
        blueprint.register(self, options)

    def iter_blueprints(self) -> Iterable[Blueprint]:
        return self.blueprints.values()

    def teardown_appcontext(self, f: F) -> F:
        """Runs ``f(error_or_None)`` when the application context is popped: after every
        request and every CLI command, even after an unhandled exception."""
        self.teardown_appcontext_funcs.append(f)
        return f

    def errorhandler(self, code_or_exception: Union[int, type[BaseException]]) -> Callable[[F], F]:
        """Registers a handler for an HTTP status (``404``) or an exception class."""
        return super().errorhandler(code_or_exception)

    # -- contexts -----------------------------------------------------------------------

    def app_context(self) -> AppContext:
        """``with app.app_context():`` makes ``current_app`` and ``g`` usable."""
        return AppContext(self)

    def request_context(self, request: Request) -> RequestContext:
        return RequestContext(self, request)

    def test_request_context(self, *args: Any, **kwargs: Any) -> RequestContext:
        """A request context for a request built from the test client's arguments:
        ``with app.test_request_context("/?q=1", method="POST"):``."""
        from .testing import build_request_data

        data = build_request_data(self, *args, **kwargs)
        return RequestContext(self, self.request_class(data, self))  # type: ignore[arg-type]

    def do_teardown_request(self, exc: Optional[BaseException] = None) -> None:
        if not self.teardown_request_funcs:
            return
        req_ctx = _cv_request.get(None)
        names: Iterable[Optional[str]] = (None,)
        if req_ctx is not None:
            names = (*req_ctx.request.blueprints, None)
        for name in names:
            for func in reversed(self.teardown_request_funcs.get(name, ())):
                _await(func(exc))

    def do_teardown_appcontext(self, exc: Optional[BaseException] = None) -> None:
        if not self.teardown_appcontext_funcs:
            return
        for func in reversed(self.teardown_appcontext_funcs):
            _await(func(exc))

    # -- URL building ---------------------------------------------------------------------

    def inject_url_defaults(self, endpoint: str, values: dict[str, Any]) -> None:
        names: list[Optional[str]] = [None]
        if "." in endpoint:
            parts = endpoint.rpartition(".")[0].split(".")
            names.extend(".".join(parts[: i + 1]) for i in range(len(parts)))
        for name in names:
            for func in self.url_default_functions.get(name, ()):
                func(endpoint, values)

    def url_for(
        self,
        endpoint: str,
        *,
        _anchor: Optional[str] = None,
        _method: Optional[str] = None,
        _scheme: Optional[str] = None,
        _external: Optional[bool] = None,
        _signed: bool = False,
        _expires_in: ExpiresIn = 3600,
        _signed_ip: Union[str, bool, None] = None,
        _signed_prefix: Union[str, bool, None] = None,
        **values: Any,
    ) -> str:
        """Builds the URL of ``endpoint``; see :func:`bustapi.url_for`."""
        # A template calls this once per link: only what the call needs is computed
        # (the host only for external URLs, defaults only when some are registered).
        req_ctx = _cv_request.get(None)
        if req_ctx is not None:
            if endpoint[:1] == ".":
                blueprint = req_ctx.request.blueprint
                endpoint = f"{blueprint}{endpoint}" if blueprint is not None else endpoint[1:]
            if _external is None:
                _external = _scheme is not None
            root = ""
        else:
            if endpoint[:1] == ".":
                endpoint = endpoint[1:]
            if _external is None:
                _external = True
            root = (self.config.get("APPLICATION_ROOT") or "/").rstrip("/")
        if not _external and _scheme is not None:
            raise ValueError("When specifying '_scheme', '_external' must be True.")
        if self.url_default_functions:
            self.inject_url_defaults(endpoint, values)
        try:
            path = self.url_map.build(endpoint, values, method=_method)
        except BuildError as error:
            values.update(_anchor=_anchor, _method=_method, _scheme=_scheme, _external=_external)
            return self.handle_url_build_error(error, endpoint, values)
        path = root + path
        if _signed:
            path = self.sign_url(path, _expires_in, ip=_signed_ip, prefix=_signed_prefix)
        if _external:
            host: Optional[str]
            if req_ctx is not None:
                scheme = _scheme or req_ctx.request.scheme
                host = req_ctx.request.host
            else:
                host = self.config.get("SERVER_NAME")
                if not host:
                    raise RuntimeError(
                        "Unable to build URLs outside an active request without 'SERVER_NAME'"
                        " configured. Also configure 'APPLICATION_ROOT' and"
                        " 'PREFERRED_URL_SCHEME' as needed."
                    )
                scheme = _scheme or self.config.get("PREFERRED_URL_SCHEME") or "http"
            path = f"{scheme}://{host}{path}"
        if _anchor is not None:
            path += f"#{quote_anchor(_anchor)}"
        return path

    def handle_url_build_error(
        self, error: BuildError, endpoint: str, values: dict[str, Any]
    ) -> str:
        for handler in self.url_build_error_handlers:
            try:
                rv = handler(error, endpoint, values)
            except BuildError as e:
                error = e
            else:
                if rv is not None:
                    return rv
        if error is sys.exc_info()[1]:
            raise
        raise error

    # -- dispatch (called by the engine on a view thread) -------------------------

    def _dispatch(
        self,
        data: _core.RequestData,
        endpoint: int,
        params: tuple[tuple[str, str, str], ...],
        error_status: int,
    ) -> tuple[int, list[tuple[str, str]], Any]:
        """Runs one request; called by the engine on a view thread, with the GIL."""
        request = self.request_class(data, self)
        if endpoint >= 0:
            rule = self._rules[endpoint]
            request.url_rule = rule
            if params or rule.defaults:
                view_args = dict(rule.defaults)
                for name, value, _kind in params:
                    view_args[name] = rule.convert(name, value)
            else:
                view_args = {}
            request.view_args = view_args
        else:
            request.routing_exception = http_exception(error_status)
        ctx = RequestContext(self, request)
        error: Optional[BaseException] = None
        recorder = _test_local.recorder
        try:
            ctx.push()
            try:
                return self._dispatch_parts(ctx)
            except Exception as e:
                error = e
                return self.handle_exception(e)._parts()
            except BaseException:
                error = sys.exc_info()[1]
                raise
        except Exception as e:  # the 500 path itself failed: never let it reach the engine
            self.logger.error("Exception while handling an error", exc_info=e)
            return self._internal_error(e)._parts()
        finally:
            if recorder is not None and recorder.preserve:
                recorder.ctx = ctx  # `with client:` pops it before the next request
            else:
                try:
                    ctx.pop(error)
                except Exception as e:  # noqa: BLE001 - a failing teardown is logged, not sent
                    self.logger.error("Exception in teardown", exc_info=e)
            if recorder is not None and error is not None:
                recorder.raised(error)

    def _dispatch_parts(self, ctx: RequestContext) -> tuple[int, list[tuple[str, str]], Any]:
        """:meth:`full_dispatch_request` as the engine consumes it. The common returns
        of a plain view (a dict, a list or a str, with no ``after_request`` hook and
        no session to save) skip building a :class:`Response`: ``/hello`` pays
        nothing for features it does not use."""
        self._got_first_request = True
        try:
            # The hook dicts are empty unless something was registered: a test of
            # each is what the usual app pays for hooks it does not have.
            if self.url_value_preprocessors or self.before_request_funcs:
                rv = self.preprocess_request()
            else:
                rv = None
            if rv is None:
                rv = self.dispatch_request()
        except Exception as e:
            rv = self.handle_user_exception(e)
        kind = type(rv)
        if (
            (kind is dict or kind is list or kind is str)
            and not ctx._after_request_functions
            and ctx._session is None
            and not (self.after_request_funcs and self._has_after_hooks)
            and not self.session_interface.needs_opening(self, ctx.request)
        ):
            if kind is str:
                return 200, _HTML_HEADERS, rv.encode()
            return 200, _JSON_HEADERS, dumps_json(rv)
        return self.finalize_request(rv)._parts()

    def full_dispatch_request(self) -> Response:
        """Runs the URL preprocessors, ``before_request`` hooks and the view, turning
        exceptions into responses with the error handlers; then finishes the response."""
        self._got_first_request = True
        try:
            rv = self.preprocess_request()
            if rv is None:
                rv = self.dispatch_request()
        except Exception as e:
            rv = self.handle_user_exception(e)
        return self.finalize_request(rv)

    def preprocess_request(self) -> Any:
        if not self.url_value_preprocessors and not self.before_request_funcs:
            return None  # the usual app: nothing to run, and nothing to compute for it
        request = _cv_request.get().request
        names = (None, *reversed(request.blueprints))
        for name in names:
            for url_func in self.url_value_preprocessors.get(name, ()):
                url_func(request.endpoint, request.view_args)
        for name in names:
            for before_func in self.before_request_funcs.get(name, ()):
                rv = _await(before_func())
                if rv is not None:
                    return rv
        return None

    def dispatch_request(self) -> Any:
        """Calls the view of the matched rule with the URL's arguments."""
        request = _cv_request.get().request
        if request.routing_exception is not None:
            raise request.routing_exception
        rule = request.url_rule
        assert rule is not None
        try:
            view = self.view_functions[rule.endpoint]
        except KeyError:
            raise AssertionError(
                f"The URL rule {rule.rule!r} has no view function for endpoint"
                f" {rule.endpoint!r}; attach one with @app.endpoint({rule.endpoint!r})."
            ) from None
        rv = view(**(request.view_args or {}))
        # Inline for the usual plain return value; a coroutine runs on this thread's loop.
        return _await(rv) if hasattr(rv, "__await__") else rv

    def finalize_request(self, rv: Any, from_error_handler: bool = False) -> Response:
        response = self.make_response(rv)
        try:
            response = self.process_response(response)
        except Exception:
            if not from_error_handler:
                raise
            self.logger.exception("Request finalizing failed with an error while handling an error")
        return response

    def process_response(self, response: Response) -> Response:
        """Runs ``after_this_request`` functions and ``after_request`` hooks (the
        blueprints' first, then the app's, each in reverse order), then saves the
        session."""
        ctx = _cv_request.get()
        for func in ctx._after_request_functions:
            response = _await(func(response))
        for name in (*ctx.request.blueprints, None):
            for func in reversed(self.after_request_funcs.get(name, ())):
                response = _await(func(response))
        if ctx.session_opened or self.session_interface.needs_opening(self, ctx.request):
            session = ctx.session
            if not self.session_interface.is_null_session(session):
                self.session_interface.save_session(self, session, response)
        return response

    def make_response(self, rv: Any) -> Response:
        """Turns what a view returned into a :class:`Response` (Flask's rules)."""
        return _to_response(rv, self.response_class)

    # -- errors ----------------------------------------------------------------------------

    def _find_error_handler(
        self, e: BaseException, blueprints: Iterable[str]
    ) -> Optional[ErrorHandler]:
        exc_class, code = _exc_class_and_code(type(e))
        if code is not None:
            code = getattr(e, "code", code)  # abort(599): the instance carries the code
        names = (*blueprints, None)
        classes = _handler_classes(exc_class)
        for c in (code, None) if code is not None else (None,):
            for name in names:
                handler_map = self.error_handler_spec.get(name, {}).get(c)
                if not handler_map:
                    continue
                for cls in classes:
                    handler = handler_map.get(cls)
                    if handler is not None:
                        return handler
        return None

    def handle_http_exception(self, e: Any) -> Any:
        """Renders an HTTP exception with its handler, or as its own response."""
        if getattr(e, "code", None) is None:
            return e
        request = _cv_request.get().request
        handler = self._find_error_handler(e, request.blueprints)
        if handler is None:
            return e.get_response() if isinstance(e, HTTPException) else _werkzeug_response(e)
        return _await(handler(e))

    def handle_user_exception(self, e: Exception) -> Any:
        """Handles an exception from a hook or view with a registered handler; an
        exception without one propagates to :meth:`handle_exception` (a 500)."""
        if isinstance(e, HTTPException) or _is_werkzeug_exception(e):
            if not self.config.get("TRAP_HTTP_EXCEPTIONS"):
                return self.handle_http_exception(e)
        request = _cv_request.get().request
        handler = self._find_error_handler(e, request.blueprints)
        if handler is None:
            raise e
        return _await(handler(e))

    def handle_exception(self, e: Exception) -> Response:
        """An unhandled exception: logged, then a 500 (rendered by a 500 handler when
        there is one). With ``PROPAGATE_EXCEPTIONS`` (on when testing), the test
        client re-raises it in the test."""
        self.log_exception(e)
        server_error: Any = InternalServerError(original_exception=e)
        request = _cv_request.get().request
        handler = self._find_error_handler(server_error, request.blueprints)
        if handler is not None:
            server_error = _await(handler(server_error))
            return self.finalize_request(server_error, from_error_handler=True)
        return self.finalize_request(self._internal_error(e), from_error_handler=True)

    def log_exception(self, e: BaseException) -> None:
        ctx = _cv_request.get(None)
        where = f"{ctx.request.path} [{ctx.request.method}]" if ctx is not None else "?"
        self.logger.error("Exception on %s", where, exc_info=(type(e), e, e.__traceback__))

    def _internal_error(self, e: BaseException) -> Response:
        if self.debug:
            body = "500 Internal Server Error\n\n" + "".join(
                traceback.format_exception(type(e), e, e.__traceback__)
            )
        else:
            body = "500 Internal Server Error: " + (InternalServerError.description or "") + "\n"
        return Response(body, status=500, mimetype="text/plain")

    def _error_codes(self) -> frozenset[int]:
        """The errors the engine detects (404, 405, 413, 400) that Python must render:
        all of them once any hook or handler could see them, as in Flask, where
        ``before_request``, ``after_request`` and teardown run for a 404 too."""
        hooks = any(
            funcs
            for spec in (
                self.before_request_funcs,
                self.after_request_funcs,
                self.teardown_request_funcs,
            )
            for funcs in spec.values()
        )
        handlers = any(self.error_handler_spec.get(n) for n in self.error_handler_spec)
        preprocessors = any(self.url_value_preprocessors.values())
        if hooks or handlers or preprocessors or self.teardown_appcontext_funcs:
            return frozenset(_ENGINE_ERRORS)
        return frozenset()

    # -- running --------------------------------------------------------------------

    @property
    def _has_after_hooks(self) -> bool:
        funcs = self.after_request_funcs
        return bool(funcs) and any(funcs.values())

    def _prepare(self) -> None:
        """Hands what the engine needs from Python-side state to it before it serves
        (so config, hooks and blueprints set after creation take effect). Cheap when
        nothing changed: the test client calls it before every request."""
        default_age = _max_age_seconds(self.config.get("SEND_FILE_MAX_AGE_DEFAULT"))
        keys = signing_keys(self.config)
        state = (tuple(self._static_mounts), default_age, self._error_codes(), keys)
        if state == self._sent_to_engine:
            return
        mounts, default_age, codes, _ = state
        if not keys and (self._signed_endpoints or any(m.signed for m in mounts)):
            raise RuntimeError(
                "signed routes and static mounts need keys: set SIGNING_KEYS (a list)"
                " or SECRET_KEY in app.config"
            )
        self._core.reset_statics()
        for m in mounts:
            age = default_age if m.max_age is None else m.max_age
            self._core.add_static(
                m.url_path,
                m.folder,
                max_age=age,
                listing=m.listing,
                signed=m.signed,
                rate=m.rate,
                rate_after=m.rate_after,
            )
        self._core.set_url_signer(self._signer.for_keys(keys))
        self._core.set_error_codes(sorted(codes))
        self._sent_to_engine = state

    def _configure(self, threads: Optional[int], options: dict[str, Any]) -> str:
        """Hands the engine settings (``app.config`` and ``run()`` options) to the
        core; every way of serving (``run()``, ``LiveServer``, the test client)
        comes through here. Returns the URL scheme served."""
        self._run_options = (threads, dict(options))
        self._applied_config = self._engine_config()
        self._prepare()
        max_body = _body_limit(self.config.get("MAX_CONTENT_LENGTH"))
        temp_folder = self.config.get("UPLOAD_TEMP_FOLDER")
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
            body_read_timeout=options.pop("body_read_timeout", None),
            max_form_memory_size=_body_limit(self.config.get("MAX_FORM_MEMORY_SIZE")),
            max_form_parts=_body_limit(self.config.get("MAX_FORM_PARTS")),
            upload_temp_folder=os.fspath(temp_folder) if temp_folder else None,
            view_threads=threads,
        )
        if options:
            raise TypeError(f"unknown run() options: {', '.join(sorted(options))}")
        return "https" if cert else "http"

    def _engine_config(self) -> tuple[Any, ...]:
        """The ``app.config`` values the engine enforces (or refuses)."""
        trusted = self.config.get("TRUSTED_HOSTS")
        if trusted is not None:
            raise NotImplementedError(
                "TRUSTED_HOSTS is not supported by BustAPI yet: check the Host header at"
                " your proxy or in a before_request hook, and leave TRUSTED_HOSTS unset."
            )
        return tuple(
            self.config.get(key)
            for key in (
                "MAX_CONTENT_LENGTH",
                "MAX_FORM_MEMORY_SIZE",
                "MAX_FORM_PARTS",
                "UPLOAD_TEMP_FOLDER",
            )
        )

    def _sync_config(self) -> None:
        """Re-applies the last run options with the current ``app.config`` if it
        changed, and hands over mounts and hooks added since: the test client calls
        this per request, as Flask reads its config per request."""
        if self._applied_config != self._engine_config():
            self._configure(*self._run_options)
        else:
            self._prepare()

    def run(
        self,
        host: Optional[str] = None,
        port: Optional[int] = None,
        debug: Optional[bool] = None,
        workers: int = 1,
        threads: Optional[int] = None,
        io_threads: Optional[int] = None,
        load_dotenv: bool = True,
        **options: Any,
    ) -> None:
        """Serves the app until Ctrl-C or SIGTERM, then shuts down gracefully.

        ``workers`` > 1 forks processes that share the port (``SO_REUSEPORT``);
        ``threads`` is the number of threads that run views (default 16);
        ``io_threads`` the async IO threads per process (default: CPU count).
        ``ssl_context=("cert.pem", "key.pem")`` serves HTTPS, with HTTP/2 by ALPN.
        Options: ``max_body_size``, ``header_read_timeout``, ``write_timeout``,
        ``max_connections``, ``shutdown_timeout``, ``max_header_bytes``,
        ``body_read_timeout`` (seconds a request body may stall before the client
        is cut with 408), ``access_log`` (one line per request on stderr), ``live_stats``,
        ``sendfile`` (zero-copy file bodies on plain HTTP/1.x, default on)
        (defaults in the README).
        """
        from .cli import app_run_would_block

        if app_run_would_block():
            return
        host = host or "127.0.0.1"
        port = 5000 if port is None else port
        if debug is not None:
            self.debug = bool(debug)
        self.logger  # noqa: B018 - attaches the default handler before serving
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

    def test_client(self, use_cookies: bool = True, **kwargs: Any) -> TestClient:
        """A client that sends requests through the same Rust engine, with the same
        limits (``app.config["MAX_CONTENT_LENGTH"]``, ``run()`` options given to a
        ``LiveServer``), as a socket; it keeps cookies between requests."""
        from .testing import TestClient

        return TestClient(self, use_cookies=use_cookies, **kwargs)

    def test_cli_runner(self, **kwargs: Any) -> BustAPICliRunner:
        """A click runner that invokes this app's CLI commands: ``runner.invoke(args=[...])``."""
        from .testing import BustAPICliRunner

        return BustAPICliRunner(self, **kwargs)

    def __call__(self, *args: Any) -> Any:
        raise TypeError(
            "BustAPI apps are not WSGI apps; start them with app.run() or `python -m bustapi run`"
        )

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


def _package_parent(import_name: str, root_path: str) -> str:
    """The folder holding the top-level module or package of ``import_name``."""
    top = import_name.partition(".")[0]
    try:
        spec = importlib.util.find_spec(top) if top != "__main__" else None
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        return root_path
    if spec.submodule_search_locations:
        locations = list(spec.submodule_search_locations)
        if spec.origin in (None, "namespace") and locations:
            return os.path.dirname(os.path.abspath(locations[0]))
        if spec.origin is not None:
            return os.path.dirname(os.path.dirname(os.path.abspath(spec.origin)))
    if spec.origin in (None, "built-in", "frozen"):
        return root_path
    return os.path.dirname(os.path.abspath(spec.origin))


def _body_limit(value: Any) -> int:
    """A size or count limit for the engine: ``None`` (Flask's "no limit") is the largest."""
    return (1 << 64) - 1 if value is None else int(value)


class _StaticMount(NamedTuple):
    """An engine-served folder, as handed to the engine by ``_prepare``."""

    url_path: str
    folder: str
    listing: bool
    max_age: Optional[int]
    signed: bool
    rate: Union[int, str, None] = None
    rate_after: Optional[int] = None


def _max_age_seconds(value: Any) -> Optional[int]:
    if value is None:
        return None
    if isinstance(value, timedelta):
        return int(value.total_seconds())
    return int(value)


def _handler_classes(exc_class: type[BaseException]) -> tuple[type[BaseException], ...]:
    """The classes a handler may be registered under for ``exc_class``: its MRO, then
    the *twins* of its HTTP classes in the other family (Werkzeug's ``NotFound`` for
    BustAPI's and the other way round), so ``@app.errorhandler(werkzeug NotFound)``
    sees ``abort(404)`` and ``@app.errorhandler(403)`` sees a raised Werkzeug
    ``Forbidden``, as they would in Flask. Werkzeug is never imported for this."""
    wz = sys.modules.get("werkzeug.exceptions")
    if wz is None:
        return exc_class.__mro__
    return _with_twins(exc_class, wz)  # type: ignore[arg-type]  # classes are hashable


@functools.lru_cache(maxsize=256)
def _with_twins(exc_class: type[BaseException], wz: Any) -> tuple[type[BaseException], ...]:
    mro = exc_class.__mro__
    twins: list[type[BaseException]] = []
    for cls in mro:
        if cls is HTTPException:
            twins.append(wz.HTTPException)
        elif cls is wz.HTTPException:
            twins.append(HTTPException)
        else:
            code = getattr(cls, "code", None)
            if not isinstance(code, int):
                continue
            if default_exceptions.get(code) is cls and code in wz.default_exceptions:
                twins.append(wz.default_exceptions[code])
            elif wz.default_exceptions.get(code) is cls and code in default_exceptions:
                twins.append(default_exceptions[code])
    return mro + tuple(t for t in twins if t not in mro)


def _is_werkzeug_exception(e: BaseException) -> bool:
    return any(
        c.__name__ == "HTTPException" and c.__module__.startswith("werkzeug")
        for c in type(e).__mro__
    )


def _werkzeug_response(e: Any) -> Response:
    """A Werkzeug ``HTTPException`` raised in a view (``werkzeug.exceptions.abort``)."""
    code = int(getattr(e, "code", 500) or 500)
    description = getattr(e, "description", "") or ""
    name = getattr(e, "name", "") or ""
    body = f"{code} {name}: {description}\n" if description else f"{code} {name}\n"
    return Response(body, status=code, mimetype="text/plain")


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


def _to_response(rv: Any, response_class: type[Response] = Response) -> Response:
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
        response = response_class(bytes(rv) if not isinstance(rv, str) else rv)
    elif isinstance(rv, (dict, list)):
        response = response_class(dumps_json(rv), mimetype="application/json")
    elif rv is None:
        raise TypeError("The view function did not return a valid response: it returned None.")
    elif _is_werkzeug_exception(rv):
        response = _werkzeug_response(rv)
    elif isinstance(rv, HTTPException):
        response = rv.get_response()
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


# Keep the fast JSON/HTML path's header lists importable for the bindings' tests.
__all__ = ["BustAPI", "_to_response", "_JSON_HEADERS", "_HTML_HEADERS"]
