"""HTTP exceptions and :func:`abort`, with the names and shape of Werkzeug's.

Each status has its own class (``NotFound``, ``MethodNotAllowed``, ...), so an
application can subclass one, annotate with it, and register an error handler
for it::

    class UserNotFound(NotFound):
        description = "No user has that id."
"""

from __future__ import annotations

from collections.abc import Iterable
from http import HTTPStatus
from typing import TYPE_CHECKING, NoReturn, Optional

if TYPE_CHECKING:
    from .wrappers import Response


class HTTPException(Exception):
    """An error that becomes an HTTP response with ``code`` and a short plain message.

    ``response``, if given, is sent instead of the generated one (``abort(response)``).
    """

    code: int = 500
    description: str = ""

    def __init__(
        self,
        description: Optional[str] = None,
        response: Optional[Response] = None,
        original_exception: Optional[BaseException] = None,
    ) -> None:
        super().__init__(description or self.description)
        if description is not None:
            self.description = description
        self.response = response
        #: For a 500 made from an unhandled exception: that exception.
        self.original_exception = original_exception

    @property
    def name(self) -> str:
        """The status phrase: ``"Not Found"``."""
        try:
            return HTTPStatus(self.code).phrase
        except ValueError:
            return "Unknown Error"

    def get_headers(self) -> list[tuple[str, str]]:
        """Headers of the generated response besides ``Content-Type``."""
        return []

    def get_response(self) -> Response:
        """The response to send: ``response`` if one was given, else a plain-text
        ``"<code> <name>: <description>"`` with :meth:`get_headers`."""
        from .wrappers import Response

        if self.response is not None:
            return self.response
        body = (
            f"{self.code} {self.name}: {self.description}\n"
            if self.description
            else f"{self.code} {self.name}\n"
        )
        return Response(body, status=self.code, headers=self.get_headers(), mimetype="text/plain")

    def __str__(self) -> str:
        return f"{self.code} {self.name}: {self.description}"


class BadRequest(HTTPException):
    code = 400
    description = "The browser (or proxy) sent a request that this server could not understand."


class ClientDisconnected(BadRequest):
    """The client went away, or broke the body's framing, before the body was read."""


class Unauthorized(HTTPException):
    code = 401
    description = "The server could not verify that you are authorized to access the URL requested."

    def __init__(
        self,
        description: Optional[str] = None,
        response: Optional[Response] = None,
        www_authenticate: Optional[str] = None,
    ) -> None:
        super().__init__(description, response)
        self.www_authenticate = www_authenticate

    def get_headers(self) -> list[tuple[str, str]]:
        if self.www_authenticate is None:
            return []
        return [("WWW-Authenticate", self.www_authenticate)]


class Forbidden(HTTPException):
    code = 403
    description = "You don't have the permission to access the requested resource."


class NotFound(HTTPException):
    code = 404
    description = "The requested URL was not found on the server."


class MethodNotAllowed(HTTPException):
    """``valid_methods`` become the ``Allow`` header."""

    code = 405
    description = "The method is not allowed for the requested URL."

    def __init__(
        self,
        valid_methods: Optional[Iterable[str]] = None,
        description: Optional[str] = None,
        response: Optional[Response] = None,
    ) -> None:
        super().__init__(description, response)
        self.valid_methods = list(valid_methods) if valid_methods is not None else None

    def get_headers(self) -> list[tuple[str, str]]:
        if not self.valid_methods:
            return []
        return [("Allow", ", ".join(self.valid_methods))]


class NotAcceptable(HTTPException):
    code = 406
    description = "The resource is not available in a form acceptable to the client."


class RequestTimeout(HTTPException):
    code = 408
    description = "The server closed the connection waiting for the request."


class Conflict(HTTPException):
    code = 409
    description = "A conflict happened while processing the request."


class Gone(HTTPException):
    code = 410
    description = "The requested URL is no longer available on this server."


class LengthRequired(HTTPException):
    code = 411
    description = "A request with this method requires a valid Content-Length header."


class PreconditionFailed(HTTPException):
    code = 412
    description = "The precondition on the request for the URL failed positive evaluation."


class RequestEntityTooLarge(HTTPException):
    code = 413
    description = "The data value transmitted exceeds the capacity limit."


class RequestURITooLarge(HTTPException):
    code = 414
    description = "The length of the requested URL exceeds the capacity limit for this server."


class UnsupportedMediaType(HTTPException):
    code = 415
    description = "The server does not support the media type transmitted in the request."


class RequestedRangeNotSatisfiable(HTTPException):
    """``length`` (the resource's size) becomes ``Content-Range: bytes */length``."""

    code = 416
    description = "The server cannot provide the requested range."

    def __init__(
        self,
        length: Optional[int] = None,
        units: str = "bytes",
        description: Optional[str] = None,
        response: Optional[Response] = None,
    ) -> None:
        super().__init__(description, response)
        self.length = length
        self.units = units

    def get_headers(self) -> list[tuple[str, str]]:
        if self.length is None:
            return []
        return [("Content-Range", f"{self.units} */{self.length}")]


class ExpectationFailed(HTTPException):
    code = 417
    description = "The server could not meet the requirements of the Expect header."


class ImATeapot(HTTPException):
    code = 418
    description = "This server is a teapot, not a coffee machine."


class UnprocessableEntity(HTTPException):
    code = 422
    description = (
        "The request was well-formed but was unable to be followed due to semantic errors."
    )


class Locked(HTTPException):
    code = 423
    description = "The resource that is being accessed is locked."


class FailedDependency(HTTPException):
    code = 424
    description = "The method could not be performed because a request it depended on failed."


class PreconditionRequired(HTTPException):
    code = 428
    description = "This request is required to be conditional, e.g. with If-Match."


class _RetryAfter(HTTPException):
    """Statuses that may say when to come back (``Retry-After``, in seconds)."""

    def __init__(
        self,
        description: Optional[str] = None,
        response: Optional[Response] = None,
        retry_after: Optional[int] = None,
    ) -> None:
        super().__init__(description, response)
        self.retry_after = retry_after

    def get_headers(self) -> list[tuple[str, str]]:
        if self.retry_after is None:
            return []
        return [("Retry-After", str(int(self.retry_after)))]


class TooManyRequests(_RetryAfter):
    code = 429
    description = "This user has exceeded an allotted request count."


class RequestHeaderFieldsTooLarge(HTTPException):
    code = 431
    description = "One or more header fields exceeds the maximum size."


class UnavailableForLegalReasons(HTTPException):
    code = 451
    description = "Unavailable for legal reasons."


class InternalServerError(HTTPException):
    code = 500
    description = (
        "The server encountered an internal error and was unable to complete your request."
    )


# Werkzeug's name; it shadows the builtin constant in this module only.
class NotImplemented(HTTPException):
    code = 501
    description = "The server does not support the action requested by the browser."


#: The name this class had before it took Werkzeug's.
NotImplementedHTTP = NotImplemented


class BadGateway(HTTPException):
    code = 502
    description = "The proxy server received an invalid response from an upstream server."


class ServiceUnavailable(_RetryAfter):
    code = 503
    description = "The server is temporarily unable to service your request."


class GatewayTimeout(HTTPException):
    code = 504
    description = "The connection to an upstream server timed out."


class InsufficientStorage(HTTPException):
    code = 507
    description = "The server has no space left to store the request."


class HTTPVersionNotSupported(HTTPException):
    code = 505
    description = "The server does not support the HTTP protocol version used in the request."


#: Status code -> exception class, for every status with a class of its own.
default_exceptions: dict[int, type[HTTPException]] = {
    cls.code: cls
    for cls in (
        BadRequest,
        Unauthorized,
        Forbidden,
        NotFound,
        MethodNotAllowed,
        NotAcceptable,
        RequestTimeout,
        Conflict,
        Gone,
        LengthRequired,
        PreconditionFailed,
        RequestEntityTooLarge,
        RequestURITooLarge,
        UnsupportedMediaType,
        RequestedRangeNotSatisfiable,
        ExpectationFailed,
        ImATeapot,
        UnprocessableEntity,
        Locked,
        FailedDependency,
        PreconditionRequired,
        TooManyRequests,
        RequestHeaderFieldsTooLarge,
        UnavailableForLegalReasons,
        InternalServerError,
        NotImplemented,
        BadGateway,
        ServiceUnavailable,
        GatewayTimeout,
        HTTPVersionNotSupported,
        InsufficientStorage,
    )
}


def http_exception(code: int, description: Optional[str] = None) -> HTTPException:
    """The exception for ``code``: an instance of its class, or for a status
    without one, an :class:`HTTPException` carrying that code."""
    cls = default_exceptions.get(code)
    if cls is not None:
        return cls(description=description)
    e = HTTPException(description)
    e.code = code
    return e


def abort(status: object, description: Optional[str] = None) -> NoReturn:
    """Stops the view with an HTTP error: ``abort(404)``, ``abort(403, "no")``,
    or ``abort(response)`` to send a prepared response."""
    from .wrappers import Response

    if isinstance(status, Response):
        raise HTTPException(response=status)
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 999:
        raise TypeError(f"abort() needs an HTTP status code or a Response, not {status!r}")
    raise http_exception(status, description)
