"""Application and request contexts.

An :class:`AppContext` makes ``current_app`` and ``g`` available: it is pushed
for every request, for every CLI command, and by ``with app.app_context():``.
A :class:`RequestContext` adds ``request`` and ``session``; pushing it pushes an
application context too when none for this app is active. Both are stacks per
execution context (``contextvars``): pushing saves a token, popping restores
what was active before, so contexts nest and each view thread or task sees
only its own.
"""

from __future__ import annotations

import contextvars
import functools
import threading
from collections.abc import Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any, Callable, Optional, TypeVar

from .globals import _cv_app, _cv_request

if TYPE_CHECKING:
    from .app import BustAPI
    from .sessions import SessionMixin
    from .wrappers import Request, Response

F = TypeVar("F", bound=Callable[..., Any])
C = TypeVar("C", bound="_Context")

_sentinel = object()


class _TestLocal(threading.local):
    """Set by the test client on its own thread while it sends a request: views of
    test requests run on the test's thread, and hand their context and any
    unhandled exception back through this."""

    # A class attribute, so that every other thread (the server's view threads, on
    # every request) reads ``None`` without the AttributeError a plain
    # ``threading.local`` raises (and ``getattr(..., None)`` swallows) each time.
    recorder: Any = None


_test_local = _TestLocal()


class _AppCtxGlobals:
    """The ``g`` object: a plain namespace that lives as long as its app context.

    >>> g.user = "ada"; g.get("user"); "user" in g
    """

    def get(self, name: str, default: Any = None) -> Any:
        return self.__dict__.get(name, default)

    def pop(self, name: str, default: Any = _sentinel) -> Any:
        if default is _sentinel:
            return self.__dict__.pop(name)
        return self.__dict__.pop(name, default)

    def setdefault(self, name: str, default: Any = None) -> Any:
        return self.__dict__.setdefault(name, default)

    def __contains__(self, item: str) -> bool:
        return item in self.__dict__

    def __iter__(self) -> Iterator[str]:
        return iter(self.__dict__)

    def __repr__(self) -> str:
        from .globals import _cv_app

        ctx = _cv_app.get(None)
        if ctx is not None:
            return f"<bustapi.g of '{ctx.app.name}'>"
        return object.__repr__(self)


class _Context:
    """``with ctx:`` for both kinds: push on entry, pop on exit, handing the pop the
    exception that ended the block (teardown functions receive it)."""

    def push(self) -> None:
        raise NotImplementedError

    def pop(self, exc: Optional[BaseException] = None) -> None:
        raise NotImplementedError

    def __enter__(self: C) -> C:
        self.push()
        return self

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc_value: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.pop(exc_value)


class AppContext(_Context):
    """Binds ``current_app`` and ``g``; use as ``with app.app_context(): ...``."""

    def __init__(self, app: BustAPI) -> None:
        self.app = app
        self._g: Optional[_AppCtxGlobals] = None
        self._tokens: list[contextvars.Token[AppContext]] = []

    @property
    def g(self) -> _AppCtxGlobals:
        """This context's ``g``, made on first use: most requests never touch it,
        and it is the same object for the whole context however it is reached."""
        g = self._g
        if g is None:
            g = self._g = self.app.app_ctx_globals_class()
        return g

    @g.setter
    def g(self, value: _AppCtxGlobals) -> None:
        self._g = value

    def push(self) -> None:
        self._tokens.append(_cv_app.set(self))

    def pop(self, exc: Optional[BaseException] = _sentinel) -> None:  # type: ignore[assignment]
        try:
            if len(self._tokens) == 1:
                if exc is _sentinel:
                    exc = None
                self.app.do_teardown_appcontext(exc)
        finally:
            ctx = _cv_app.get(None)
            _cv_app.reset(self._tokens.pop())
        if ctx is not self:
            raise AssertionError(f"Popped wrong app context ({ctx!r} instead of {self!r})")

    def __repr__(self) -> str:
        return f"<AppContext of {self.app.name!r}>"


class RequestContext(AppContext):
    """Binds ``request`` and ``session`` (and an app context under them).

    The engine pushes one around each view call; tests make one with
    ``app.test_request_context(...)``.

    When no application context of this app is active, the request context is
    pushed as the application context too (it is one: it has ``app`` and ``g``),
    so a request costs one small object and ``g`` is made only if used. An app
    that overrides ``app_context()`` gets that context pushed instead, as in Flask.
    """

    def __init__(
        self, app: BustAPI, request: Request, session: Optional[SessionMixin] = None
    ) -> None:
        self.app = app
        self._g = None
        self.request = request
        self._session = session
        self.flashes: Optional[list[tuple[str, str]]] = None
        self._after_request_functions: list[Callable[[Response], Response]] = []
        # Per push: the request token, and what was pushed as the app context (this
        # context's own token, or a separate AppContext), or None.
        self._cv_tokens: list[
            tuple[contextvars.Token[RequestContext], Optional[contextvars.Token[AppContext]]]
        ] = []

    @property
    def session(self) -> SessionMixin:
        """The session, opened from the request's cookie on first use."""
        if self._session is None:
            interface = self.app.session_interface
            opened = interface.open_session(self.app, self.request)
            self._session = opened if opened is not None else interface.make_null_session(self.app)
        return self._session

    @session.setter
    def session(self, value: SessionMixin) -> None:
        self._session = value

    @property
    def session_opened(self) -> bool:
        """Whether the session was touched (so it may need saving)."""
        return self._session is not None

    def copy(self) -> RequestContext:
        """A context for the same request and session, e.g. for a worker thread."""
        return type(self)(self.app, self.request, self._session)

    def push(self) -> None:
        app_ctx = _cv_app.get(None)
        app_token: Any = None
        if app_ctx is None or app_ctx.app is not self.app:
            if self.app._custom_app_context:
                app_token = self.app.app_context()
                app_token.push()
            else:
                app_token = _cv_app.set(self)
        self._cv_tokens.append((_cv_request.set(self), app_token))

    def pop(self, exc: Optional[BaseException] = _sentinel) -> None:  # type: ignore[assignment]
        clear = len(self._cv_tokens) == 1
        if exc is _sentinel:
            exc = None
        try:
            if clear:
                self.app.do_teardown_request(exc)
        finally:
            ctx = _cv_request.get(None)
            token, app_token = self._cv_tokens.pop()
            _cv_request.reset(token)
            if isinstance(app_token, AppContext):
                app_token.pop(exc)
            elif app_token is not None:
                # This context was the app context: its teardown, then unbind it.
                try:
                    self.app.do_teardown_appcontext(exc)
                finally:
                    app_ctx = _cv_app.get(None)
                    _cv_app.reset(app_token)
                if app_ctx is not self:
                    raise AssertionError(
                        f"Popped wrong app context ({app_ctx!r} instead of {self!r})"
                    )
        if ctx is not self:
            raise AssertionError(f"Popped wrong request context ({ctx!r} instead of {self!r})")

    def __repr__(self) -> str:
        return f"<RequestContext {self.request.method} {self.request.url!r} of {self.app.name!r}>"


def has_app_context() -> bool:
    """Whether an application context is active (``current_app`` is usable)."""
    return _cv_app.get(None) is not None


def has_request_context() -> bool:
    """Whether a request context is active (``request`` and ``session`` are usable)."""
    return _cv_request.get(None) is not None


def after_this_request(f: F) -> F:
    """Runs ``f(response)`` after the current request's view, before ``after_request``
    hooks: ``@after_this_request def add_header(response): ...``."""
    ctx = _cv_request.get(None)
    if ctx is None:
        raise RuntimeError("'after_this_request' can only be used when a request context is active")
    ctx._after_request_functions.append(f)
    return f


def copy_current_request_context(f: F) -> F:
    """Wraps ``f`` so that it runs with a copy of the current request context, for
    example in a thread the view starts."""
    ctx = _cv_request.get(None)
    if ctx is None:
        raise RuntimeError(
            "'copy_current_request_context' can only be used when a request context is active"
        )
    copied = ctx.copy()

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with copied:
            return f(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
