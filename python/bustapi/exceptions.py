"""HTTP exceptions and :func:`abort`, in the shape Flask users know."""

from __future__ import annotations

from http import HTTPStatus
from typing import TYPE_CHECKING, NoReturn, Optional

if TYPE_CHECKING:
    from .wrappers import Response


class HTTPException(Exception):
    """An error that becomes an HTTP response with ``code`` and a short plain message."""

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
        try:
            return HTTPStatus(self.code).phrase
        except ValueError:
            return "Unknown Error"

    def get_response(self) -> Response:
        from .wrappers import Response

        if self.response is not None:
            return self.response
        body = (
            f"{self.code} {self.name}: {self.description}\n"
            if self.description
            else f"{self.code} {self.name}\n"
        )
        return Response(body, status=self.code, mimetype="text/plain")

    def __str__(self) -> str:
        return f"{self.code} {self.name}: {self.description}"


_DESCRIPTIONS = {
    400: "The browser (or proxy) sent a request that this server could not understand.",
    401: "The server could not verify that you are authorized to access the URL requested.",
    403: "You don't have the permission to access the requested resource.",
    404: "The requested URL was not found on the server.",
    405: "The method is not allowed for the requested URL.",
    406: "The resource is not available in a form acceptable to the client.",
    408: "The server closed the connection waiting for the request.",
    409: "A conflict happened while processing the request.",
    410: "The requested URL is no longer available on this server.",
    411: "A request with this method requires a valid Content-Length header.",
    412: "The precondition on the request for the URL failed positive evaluation.",
    413: "The data value transmitted exceeds the capacity limit.",
    414: "The length of the requested URL exceeds the capacity limit for this server.",
    415: "The server does not support the media type transmitted in the request.",
    416: "The server cannot provide the requested range.",
    422: "The request was well-formed but was unable to be followed due to semantic errors.",
    429: "This user has exceeded an allotted request count.",
    431: "One or more header fields exceeds the maximum size.",
    500: "The server encountered an internal error and was unable to complete your request.",
    501: "The server does not support the action requested by the browser.",
    502: "The proxy server received an invalid response from an upstream server.",
    503: "The server is temporarily unable to service your request.",
    504: "The connection to an upstream server timed out.",
}

_CLASSES: dict[int, type[HTTPException]] = {}


def _make(code: int, name: str) -> type[HTTPException]:
    cls = type(name, (HTTPException,), {"code": code, "description": _DESCRIPTIONS.get(code, "")})
    _CLASSES[code] = cls
    return cls


BadRequest = _make(400, "BadRequest")
Unauthorized = _make(401, "Unauthorized")
Forbidden = _make(403, "Forbidden")
NotFound = _make(404, "NotFound")
MethodNotAllowed = _make(405, "MethodNotAllowed")
NotAcceptable = _make(406, "NotAcceptable")
Conflict = _make(409, "Conflict")
Gone = _make(410, "Gone")
PreconditionFailed = _make(412, "PreconditionFailed")
RequestEntityTooLarge = _make(413, "RequestEntityTooLarge")
UnsupportedMediaType = _make(415, "UnsupportedMediaType")
RequestedRangeNotSatisfiable = _make(416, "RequestedRangeNotSatisfiable")
UnprocessableEntity = _make(422, "UnprocessableEntity")
TooManyRequests = _make(429, "TooManyRequests")
InternalServerError = _make(500, "InternalServerError")
NotImplementedHTTP = _make(501, "NotImplemented")
ServiceUnavailable = _make(503, "ServiceUnavailable")
for _code in _DESCRIPTIONS:
    if _code not in _CLASSES:
        _make(_code, "HTTP" + str(_code))


def exception_for(code: int) -> type[HTTPException]:
    """The exception class for ``code`` (created on demand for unusual codes)."""
    cls = _CLASSES.get(code)
    if cls is None:
        cls = type(f"HTTP{code}", (HTTPException,), {"code": code})
    return cls


def abort(status: object, description: Optional[str] = None) -> NoReturn:
    """Stops the view with an HTTP error: ``abort(404)``, ``abort(403, "no")``,
    or ``abort(response)`` to send a prepared response."""
    from .wrappers import Response

    if isinstance(status, Response):
        raise HTTPException(response=status)
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 999:
        raise TypeError(f"abort() needs an HTTP status code or a Response, not {status!r}")
    raise exception_for(status)(description)
