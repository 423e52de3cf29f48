"""Context-locals: ``current_app``, ``g``, ``request`` and ``session``.

Each is a proxy to an object of the context that is active in the *current*
execution context, backed by ``contextvars`` so that the right object is seen
in threaded views, in ``async def`` views and in streamed generators alike.
Views run on BustAPI's view threads; the engine pushes a request context (and
the application context under it) around each call, as Flask does.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Callable, Generic, TypeVar, cast

if TYPE_CHECKING:
    from .app import BustAPI
    from .ctx import AppContext, RequestContext, _AppCtxGlobals
    from .sessions import SessionMixin
    from .wrappers import Request

T = TypeVar("T")

_cv_app: ContextVar[AppContext] = ContextVar("bustapi.app_ctx")
_cv_request: ContextVar[RequestContext] = ContextVar("bustapi.request_ctx")

_NO_APP = """\
Working outside of application context.

This typically means that you attempted to use functionality that needed the
current application. To solve this, set up an application context with
app.app_context(). See the documentation for more information.\
"""

_NO_REQUEST = """\
Working outside of request context.

This typically means that you attempted to use functionality that needed an
active HTTP request. Inside a view this is automatic; in tests, use
app.test_request_context(). See the documentation for more information.\
"""


class LocalProxy(Generic[T]):
    """Forwards every operation to the object ``lookup()`` returns *now*.

    ``lookup`` raises ``RuntimeError`` with a helpful message when there is no
    such object (outside a context). ``_get_current_object()`` unwraps the proxy,
    for example to hand the real app to another thread.
    """

    __slots__ = ("_lookup", "__wrapped_name__")

    def __init__(self, lookup: Callable[[], T], name: str) -> None:
        object.__setattr__(self, "_lookup", lookup)
        object.__setattr__(self, "__wrapped_name__", name)

    def _get_current_object(self) -> T:
        return cast("Callable[[], T]", object.__getattribute__(self, "_lookup"))()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._get_current_object(), name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._get_current_object(), name, value)

    def __delattr__(self, name: str) -> None:
        delattr(self._get_current_object(), name)

    def __getitem__(self, key: Any) -> Any:
        return self._get_current_object()[key]  # type: ignore[index]

    def __setitem__(self, key: Any, value: Any) -> None:
        self._get_current_object()[key] = value  # type: ignore[index]

    def __delitem__(self, key: Any) -> None:
        del self._get_current_object()[key]  # type: ignore[attr-defined]

    def __contains__(self, item: Any) -> bool:
        return item in self._get_current_object()  # type: ignore[operator]

    def __iter__(self) -> Any:
        return iter(self._get_current_object())  # type: ignore[call-overload]

    def __len__(self) -> int:
        return len(self._get_current_object())  # type: ignore[arg-type]

    def __bool__(self) -> bool:
        try:
            return bool(self._get_current_object())
        except RuntimeError:
            return False

    def __eq__(self, other: object) -> bool:
        return bool(self._get_current_object() == other)

    def __ne__(self, other: object) -> bool:
        return bool(self._get_current_object() != other)

    def __hash__(self) -> int:
        return hash(self._get_current_object())

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._get_current_object()(*args, **kwargs)  # type: ignore[operator]

    def __repr__(self) -> str:
        try:
            return repr(self._get_current_object())
        except RuntimeError:
            name = object.__getattribute__(self, "__wrapped_name__")
            return f"<{name}: unbound>"

    def __str__(self) -> str:
        return str(self._get_current_object())


def _app_ctx() -> AppContext:
    try:
        return _cv_app.get()
    except LookupError:
        raise RuntimeError(_NO_APP) from None


def _request_ctx() -> RequestContext:
    try:
        return _cv_request.get()
    except LookupError:
        raise RuntimeError(_NO_REQUEST) from None


def _find_app() -> BustAPI:
    return _app_ctx().app


def _find_g() -> _AppCtxGlobals:
    return _app_ctx().g


def _find_request() -> Request:
    return _request_ctx().request


def _find_session() -> SessionMixin:
    return _request_ctx().session


current_app: BustAPI = cast("BustAPI", LocalProxy(_find_app, "current_app"))
"""The application handling the current request (or the pushed app context)."""

g: _AppCtxGlobals = cast("_AppCtxGlobals", LocalProxy(_find_g, "g"))
"""A namespace for data during one application context (one request, one CLI command)."""

request: Request = cast("Request", LocalProxy(_find_request, "request"))
"""The current request (see :class:`bustapi.Request`)."""

session: SessionMixin = cast("SessionMixin", LocalProxy(_find_session, "session"))
"""The current session: a dict stored in a signed cookie (see :mod:`bustapi.sessions`)."""
