"""``request``: a proxy to the request the current view is handling.

Backed by a ``contextvars.ContextVar`` so it is right in threaded views and in
``async def`` views alike.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from .wrappers import Request

_request_var: ContextVar[Request] = ContextVar("bustapi.request")


class _RequestProxy:
    __slots__ = ()

    def _get(self) -> Request:
        try:
            return _request_var.get()
        except LookupError:
            raise RuntimeError(
                "Working outside of request context: 'request' is only available inside a view."
            ) from None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._get(), name)

    def __repr__(self) -> str:
        try:
            return repr(_request_var.get())
        except LookupError:
            return "<request: unbound>"

    def __bool__(self) -> bool:
        try:
            _request_var.get()
            return True
        except LookupError:
            return False


request: Request = cast("Request", _RequestProxy())
"""The current request (see :class:`bustapi.Request`)."""
