"""``Request`` and ``Response``: what a view reads and what it may return."""

from __future__ import annotations

import datetime as _dt
import io
import json as _json
from collections.abc import Iterable, Mapping
from http import HTTPStatus
from typing import IO, TYPE_CHECKING, Any, ClassVar, Optional, Union
from urllib.parse import parse_qsl, unquote

from .cookies import dump_cookie, parse_cookie
from .datastructures import FileStorage, Headers, MultiDict
from .exceptions import BadRequest, ClientDisconnected, http_exception

if TYPE_CHECKING:
    from ._core import RequestData

HeadersLike = Union[Headers, Mapping[str, Any], Iterable[tuple[str, Any]]]


def _json_default(obj: Any) -> Any:
    import dataclasses
    import decimal
    import uuid

    if isinstance(obj, _dt.datetime):
        return obj.isoformat()
    if isinstance(obj, _dt.date):
        return obj.isoformat()
    if isinstance(obj, (uuid.UUID, decimal.Decimal)):
        return str(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    if hasattr(obj, "__html__"):
        return str(obj.__html__())
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


# One encoder for the process: json.dumps() with options builds a new one per call.
_encoder = _json.JSONEncoder(separators=(",", ":"), default=_json_default, ensure_ascii=False)

# The C encoder behind it, made once: JSONEncoder.encode() builds a new one (and a
# dict for cycle detection) on every call, which costs more than encoding a small
# dict. It checks no cycles (no shared state between view threads); whatever it
# cannot encode is encoded again by ``_encoder``, so errors read as usual.
_c_encoder = getattr(_json.encoder, "c_make_encoder", None)
_fast_encoder = (
    _c_encoder(
        None,  # no cycle check
        _json_default,
        _json.encoder.encode_basestring,  # ensure_ascii=False
        None,  # no indent
        ":",
        ",",
        False,  # sort_keys
        False,  # skipkeys
        True,  # allow_nan
    )
    if _c_encoder is not None
    else None
)


def dumps_json(obj: Any) -> bytes:
    """Compact JSON with a trailing newline, as Flask's ``jsonify`` produces."""
    if _fast_encoder is not None:
        try:
            return ("".join(_fast_encoder(obj, 0)) + "\n").encode()
        except (ValueError, TypeError, RecursionError):
            pass  # a cycle, NaN handling or an unencodable value: the checked path says which
    return (_encoder.encode(obj) + "\n").encode()


class Request:
    """The request being handled, available as :data:`bustapi.request` in a view."""

    __slots__ = (
        "_data",
        "app",
        "_headers",
        "_args",
        "_form",
        "_files",
        "_stream",
        "_cached_data",
        "_cookies",
        "_json",
        "view_args",
        "url_rule",
        "routing_exception",
    )

    def __init__(self, data: RequestData, app: Any = None) -> None:
        self._data = data
        self.app = app
        self._headers: Optional[Headers] = None
        self._args: Optional[MultiDict] = None
        self._form: Optional[MultiDict[str]] = None
        self._files: Optional[MultiDict[FileStorage]] = None
        self._stream: Optional[IO[bytes]] = None
        self._cached_data: Optional[bytes] = None
        self._cookies: Optional[dict[str, str]] = None
        self._json: Any = _UNSET
        #: The matched route's arguments, converted (``None`` when nothing matched).
        self.view_args: Optional[dict[str, Any]] = None
        #: The matched :class:`~bustapi.routing.Rule` (``None`` when nothing matched).
        self.url_rule: Any = None
        #: The error the engine's routing found (404, 405...), raised when dispatching.
        self.routing_exception: Optional[Exception] = None

    @property
    def endpoint(self) -> Optional[str]:
        """The matched endpoint (``"auth.login"``), or ``None``."""
        return self.url_rule.endpoint if self.url_rule is not None else None

    @property
    def blueprint(self) -> Optional[str]:
        """The (dotted) name of the blueprint the matched endpoint belongs to."""
        endpoint = self.endpoint
        if endpoint is not None and "." in endpoint:
            return endpoint.rpartition(".")[0]
        return None

    @property
    def blueprints(self) -> list[str]:
        """The matched blueprint and its parents, innermost first."""
        name = self.blueprint
        if name is None:
            return []
        parts = name.split(".")
        return [".".join(parts[:i]) for i in range(len(parts), 0, -1)]

    @property
    def method(self) -> str:
        return self._data.method

    @property
    def path(self) -> str:
        """The percent-decoded path, e.g. ``/files/a b.txt``."""
        return unquote(self._data.raw_path)

    @property
    def raw_path(self) -> str:
        return self._data.raw_path

    @property
    def query_string(self) -> bytes:
        return self._data.query_string.encode("latin-1", "replace")

    @property
    def full_path(self) -> str:
        """Path and query, always with a ``?`` as in Flask: ``/a?x=1`` or ``/a?``."""
        return f"{self.path}?{self._data.query_string}"

    @property
    def scheme(self) -> str:
        """``https`` when the request arrived over TLS."""
        return self._data.scheme

    @property
    def is_secure(self) -> bool:
        return self._data.scheme == "https"

    @property
    def host(self) -> str:
        return self.headers.get("Host", "")

    @property
    def host_url(self) -> str:
        return f"{self.scheme}://{self.host}/"

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.host}{self._data.raw_path}"

    @property
    def url(self) -> str:
        q = self._data.query_string
        return self.base_url + (f"?{q}" if q else "")

    @property
    def root_path(self) -> str:
        """The prefix the app is mounted under (always empty: BustAPI serves at the root)."""
        return ""

    script_root = root_path

    @property
    def url_root(self) -> str:
        """``scheme://host/``: the root the app is served under."""
        return self.host_url

    @property
    def user_agent(self) -> UserAgent:
        """The ``User-Agent`` header, as a string-like object with ``.string``."""
        return UserAgent(self.headers.get("User-Agent", ""))

    @property
    def access_route(self) -> list[str]:
        """The client and the proxies in between, from ``X-Forwarded-For`` (client
        first), else just the peer address. Only trust it behind your own proxy."""
        forwarded = self.headers.get("X-Forwarded-For")
        if forwarded:
            return [part.strip() for part in forwarded.split(",") if part.strip()]
        return [self.remote_addr] if self.remote_addr else []

    @property
    def environ_protocol(self) -> str:
        return self._data.http_version

    @property
    def headers(self) -> Headers:
        """Case-insensitive request headers."""
        if self._headers is None:
            self._headers = Headers(self._data.header_items())
        return self._headers

    @property
    def args(self) -> MultiDict:
        """Query-string parameters (``?a=1&a=2`` → ``getlist("a") == ["1", "2"]``)."""
        if self._args is None:
            self._args = MultiDict(parse_qsl(self._data.query_string, keep_blank_values=True))
        return self._args

    @property
    def data(self) -> bytes:
        """The raw request body (empty for a multipart form, which the engine parsed
        into :attr:`form` and :attr:`files`, as Werkzeug's is after form parsing)."""
        return self._body()

    def get_data(self, cache: bool = True, as_text: bool = False) -> Union[bytes, str]:
        """The body, as :attr:`data`. On a ``stream_body=True`` route this reads the
        rest of :attr:`stream` into memory (within the route's size limit)."""
        body = self._body()
        return body.decode("utf-8", "replace") if as_text else body

    def _body(self) -> bytes:
        if self._data.body_kind != "stream":
            return self._data.body
        if self._cached_data is None:
            self._cached_data = self.stream.read()
        return self._cached_data

    @property
    def stream(self) -> IO[bytes]:
        """The body as a binary file object. On a route declared with
        ``stream_body=True`` it reads the body as it arrives, with bounded memory: a
        view that reads slowly slows the client down. Elsewhere it holds the bytes
        the engine read (nothing for a multipart form)."""
        if self._stream is None:
            if self._data.body_kind == "stream":
                self._stream = io.BufferedReader(_BodyStream(self._data), 64 * 1024)
            else:
                self._stream = io.BytesIO(self._data.body)
        return self._stream

    @property
    def files(self) -> MultiDict[FileStorage]:
        """The uploaded files of a ``multipart/form-data`` body, by field name:
        ``request.files["video"].save(path)``. Their bytes are on disk already."""
        if self._files is None:
            self._files = MultiDict(
                (name, FileStorage(None, filename, name, headers=hdrs, temp_path=path, size=size))
                for name, filename, hdrs, path, size in self._data.form_files()
            )
        return self._files

    @property
    def max_content_length(self) -> Optional[int]:
        """The body size limit of this request: the route's ``max_content_length``,
        else ``MAX_CONTENT_LENGTH``."""
        rule = self.url_rule
        limit = getattr(rule, "max_content_length", None) if rule is not None else None
        if limit is not None:
            return int(limit)
        return self.app.config.get("MAX_CONTENT_LENGTH") if self.app is not None else None

    @property
    def content_type(self) -> Optional[str]:
        """The ``Content-Type`` header, ``None`` when the request has none."""
        return self.headers.get("Content-Type")

    @property
    def mimetype(self) -> str:
        """The content type without parameters, lower case (``""`` when absent)."""
        return (self.content_type or "").split(";", 1)[0].strip().lower()

    @property
    def content_length(self) -> Optional[int]:
        return self.headers.get("Content-Length", type=int)

    @property
    def is_json(self) -> bool:
        """Whether the body is JSON (``application/json`` or ``application/*+json``)."""
        return _is_json(self.mimetype)

    def get_json(self, force: bool = False, silent: bool = False) -> Any:
        """The body parsed as JSON, or ``None`` if the content type is not JSON.

        Malformed JSON raises ``BadRequest`` (400) unless ``silent=True``.
        """
        if self._json is not _UNSET and not force:
            return self._json
        if not (force or self.is_json):
            return None
        try:
            value = _json.loads(self._body() or b"null")
        except ValueError as e:
            if silent:
                return None
            raise BadRequest(f"Failed to decode JSON object: {e}") from None
        self._json = value
        return value

    @property
    def json(self) -> Any:
        return self.get_json()

    @property
    def form(self) -> MultiDict[str]:
        """Fields of an ``application/x-www-form-urlencoded`` or ``multipart/form-data``
        body (files are in :attr:`files`)."""
        if self._form is None:
            if self._data.body_kind == "form":
                self._form = MultiDict(self._data.form_fields())
            elif self.mimetype == "application/x-www-form-urlencoded":
                text = self._body().decode("utf-8", "replace")
                self._form = MultiDict(parse_qsl(text, keep_blank_values=True))
            else:
                self._form = MultiDict()
        return self._form

    @property
    def values(self) -> MultiDict[str]:
        """:attr:`args` and :attr:`form` together (args first)."""
        return MultiDict(list(self.args.items(multi=True)) + list(self.form.items(multi=True)))

    @property
    def cookies(self) -> dict[str, str]:
        """The request's cookies; one malformed cookie (another site's on the same
        domain) never hides the others."""
        if self._cookies is None:
            if self._headers is None and self._data.header("cookie") is None:
                # No Cookie header: answered without converting every header to Python
                # (the session machinery asks on each request).
                self._cookies = {}
            else:
                self._cookies = parse_cookie("; ".join(self.headers.getlist("Cookie")))
        return self._cookies

    @property
    def remote_addr(self) -> Optional[str]:
        return self._data.remote_addr

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.url!r}>"


_UNSET: Any = object()


class _BodyStream(io.RawIOBase):
    """The raw body of a ``stream_body=True`` route, read from the engine as it
    arrives (each read waits for bytes with the GIL released). A body the engine
    refuses midway (too large, too slow, cut short) raises the matching HTTP error
    (413, 408, 400), which becomes the response unless the view catches it."""

    def __init__(self, data: RequestData) -> None:
        self._data = data

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        chunk = self._read(len(view))
        view[: len(chunk)] = chunk
        return len(chunk)

    def read(self, size: Optional[int] = -1) -> bytes:
        if size is None or size < 0:
            return self.readall()
        return self._read(size)

    def readall(self) -> bytes:
        out = bytearray()
        while chunk := self._read(1 << 20):
            out += chunk
        return bytes(out)

    def _read(self, size: int) -> bytes:
        from ._core import BodyReadError

        try:
            return self._data.read_body(size)
        except BodyReadError as e:
            status, reason = e.args
            if status == 400:
                raise ClientDisconnected(reason) from None
            raise http_exception(status, reason) from None


# (token in the User-Agent, name), most specific first: Edge and Opera also say
# "Chrome/", Chrome also says "Safari/"; Android also says "Linux".
_BROWSERS = (
    ("Edg/", "edge"),
    ("OPR/", "opera"),
    ("Firefox/", "firefox"),
    ("Chrome/", "chrome"),
    ("Safari/", "safari"),
)
_PLATFORMS = (
    ("Android", "android"),
    ("iPhone", "iphone"),
    ("iPad", "ipad"),
    ("Windows", "windows"),
    ("Mac OS X", "macos"),
    ("Linux", "linux"),
)


class UserAgent(str):
    """The ``User-Agent`` string, with the common parts Werkzeug's offered."""

    @property
    def string(self) -> str:
        return str(self)

    @property
    def browser(self) -> Optional[str]:
        return self._first_of(_BROWSERS)

    @property
    def platform(self) -> Optional[str]:
        return self._first_of(_PLATFORMS)

    def _first_of(self, table: tuple[tuple[str, str], ...]) -> Optional[str]:
        return next((name for token, name in table if token in self), None)

    @property
    def version(self) -> Optional[str]:
        import re

        browser = self.browser
        token = {"edge": "Edg", "opera": "OPR", "safari": "Version"}.get(browser or "", browser)
        if token is None:
            return None
        m = re.search(rf"{re.escape(token)}/([\d.]+)", self, flags=re.IGNORECASE)
        return m.group(1) if m else None

    def to_header(self) -> str:
        return str(self)


class HeaderSet:
    """A comma-separated header (``Vary``) as a set: ``response.vary.add("Cookie")``."""

    def __init__(self, headers: Headers, name: str) -> None:
        self._headers, self._name = headers, name

    def _items(self) -> list[str]:
        raw = ",".join(self._headers.getlist(self._name))
        return [v.strip() for v in raw.split(",") if v.strip()]

    def add(self, value: str) -> None:
        items = self._items()
        if value.lower() not in (v.lower() for v in items):
            items.append(value)
            self._headers.set(self._name, ", ".join(items))

    def discard(self, value: str) -> None:
        items = [v for v in self._items() if v.lower() != value.lower()]
        if items:
            self._headers.set(self._name, ", ".join(items))
        elif self._name in self._headers:
            self._headers.remove(self._name)

    def __contains__(self, value: object) -> bool:
        return isinstance(value, str) and value.lower() in (v.lower() for v in self._items())

    def __iter__(self) -> Any:
        return iter(self._items())

    def __len__(self) -> int:
        return len(self._items())

    def __repr__(self) -> str:
        return f"HeaderSet({self._items()!r})"


class StreamedBodyError(RuntimeError):
    """Raised on reading or replacing the body of a response whose bytes never
    exist in Python: a :class:`~bustapi.FileResponse` (the engine streams the file)
    or a :class:`~bustapi.StreamingResponse` (its iterator produces the chunks).

    Its status and headers may still be changed, e.g. in ``after_request``; to
    send other bytes, return a new :class:`Response` instead.
    """


class Response:
    """An HTTP response a view can build and return.

    >>> Response("created", status=201, headers={"X-Id": "7"}, mimetype="text/plain").status
    '201 CREATED'
    """

    default_mimetype: Optional[str] = "text/html"
    default_status = 200
    #: For responses whose body the engine produces: what that body is. Reading or
    #: replacing it then raises :class:`StreamedBodyError`; ``None`` means the bytes
    #: are held here.
    _engine_body: ClassVar[Optional[str]] = None

    #: An iterator given as the body (``Response(generate())``): streamed by the
    #: engine chunk by chunk, as :class:`~bustapi.StreamingResponse` does.
    _stream: Any = None

    def __init__(
        self,
        response: Union[str, bytes, Iterable[Union[str, bytes]], None] = None,
        status: Union[int, str, HTTPStatus, None] = None,
        headers: Optional[HeadersLike] = None,
        mimetype: Optional[str] = None,
        content_type: Optional[str] = None,
    ) -> None:
        self.headers = headers.copy() if isinstance(headers, Headers) else Headers(headers)
        self.status_code = self.default_status if status is None else _status_code(status)
        if content_type is None:
            mt = mimetype or (None if "Content-Type" in self.headers else self.default_mimetype)
            if mt is not None:
                content_type = _with_charset(mt)
        if content_type is not None:
            self.headers.set("Content-Type", content_type)
        self._body = b""
        if response is None:
            return
        if isinstance(response, (list, tuple)):
            # Flask joins a list body; a list is already in memory, so no stream.
            response = b"".join(c.encode("utf-8") if isinstance(c, str) else c for c in response)
        if isinstance(response, (str, bytes, bytearray, memoryview)):
            self.set_data(response)
        elif hasattr(response, "__iter__") or hasattr(response, "__aiter__"):
            self._refuse_engine_body()
            self._stream = response
        else:
            raise TypeError(f"response body must be str or bytes, not {type(response).__name__}")

    @property
    def status(self) -> str:
        try:
            return f"{self.status_code} {HTTPStatus(self.status_code).phrase.upper()}"
        except ValueError:
            return f"{self.status_code} UNKNOWN"

    @status.setter
    def status(self, value: Union[int, str, HTTPStatus]) -> None:
        self.status_code = _status_code(value)

    def _body_bytes(self) -> bytes:
        self._refuse_engine_body()
        return self._body

    def _refuse_engine_body(self) -> None:
        what = self._engine_body
        if what is None and self._stream is not None:
            what = "a stream its iterator produces"
        if what is not None:
            raise StreamedBodyError(
                f"a {type(self).__name__}'s body is {what}: it never exists in "
                "Python, so it cannot be read or replaced. Change its status or headers, or "
                "return a new Response with the bytes you want to send."
            )

    def set_data(self, value: Union[str, bytes, bytearray, memoryview]) -> None:
        """Replaces the body (raises :class:`StreamedBodyError` for a file or a
        ``StreamingResponse``; a ``Response`` given an iterator gets these bytes
        instead, as in Werkzeug)."""
        if self._engine_body is None:
            self._stream = None
        self._refuse_engine_body()
        if isinstance(value, str):
            self._body = value.encode("utf-8")
        elif isinstance(value, (bytes, bytearray, memoryview)):
            self._body = bytes(value)
        else:
            raise TypeError(f"response body must be str or bytes, not {type(value).__name__}")

    def get_data(self, as_text: bool = False) -> Union[bytes, str]:
        """The body (raises :class:`StreamedBodyError` for a file or a stream)."""
        body = self._body_bytes()
        return body.decode("utf-8", "replace") if as_text else body

    @property
    def data(self) -> bytes:
        return self._body_bytes()

    @data.setter
    def data(self, value: Union[str, bytes]) -> None:
        self.set_data(value)

    @property
    def content_type(self) -> Optional[str]:
        return self.headers.get("Content-Type")

    @content_type.setter
    def content_type(self, value: str) -> None:
        self.headers.set("Content-Type", value)

    @property
    def mimetype(self) -> Optional[str]:
        ct = self.content_type
        return ct.split(";", 1)[0].strip() if ct else None

    @mimetype.setter
    def mimetype(self, value: str) -> None:
        self.headers.set("Content-Type", _with_charset(value))

    @property
    def location(self) -> Optional[str]:
        return self.headers.get("Location")

    @property
    def is_json(self) -> bool:
        """Whether the body is JSON (``application/json`` or ``application/*+json``)."""
        return _is_json((self.mimetype or "").lower())

    def get_json(self) -> Any:
        return _json.loads(self._body_bytes())

    @property
    def json(self) -> Any:
        return self.get_json()

    def set_cookie(
        self,
        key: str,
        value: str = "",
        max_age: Union[int, _dt.timedelta, None] = None,
        expires: Optional[Union[_dt.datetime, int, float]] = None,
        path: Optional[str] = "/",
        domain: Optional[str] = None,
        secure: bool = False,
        httponly: bool = False,
        samesite: Optional[str] = None,
        partitioned: bool = False,
    ) -> None:
        """Adds a ``Set-Cookie`` header with Werkzeug's attributes and order (values
        are quoted as needed, never raw CR/LF; an empty value is sent as ``key=``)."""
        self.headers.add(
            "Set-Cookie",
            dump_cookie(
                key, value, max_age, expires, path, domain, secure, httponly, samesite, partitioned
            ),
        )

    def delete_cookie(
        self,
        key: str,
        path: Optional[str] = "/",
        domain: Optional[str] = None,
        secure: bool = False,
        httponly: bool = False,
        samesite: Optional[str] = None,
        partitioned: bool = False,
    ) -> None:
        """Tells the browser to drop a cookie (an expired one with the same scope)."""
        self.set_cookie(
            key,
            "",
            max_age=0,
            expires=0,
            path=path,
            domain=domain,
            secure=secure,
            httponly=httponly,
            samesite=samesite,
            partitioned=partitioned,
        )

    @property
    def vary(self) -> HeaderSet:
        """The ``Vary`` header as a set."""
        return HeaderSet(self.headers, "Vary")

    def _parts(self) -> tuple[int, list[tuple[str, str]], Any]:
        """``(status, headers, body)`` as the engine consumes it."""
        if self._stream is not None:
            from .streaming import stream_body

            return self.status_code, self.headers.items(), stream_body(self._stream)
        return self.status_code, self.headers.items(), self._body

    def __repr__(self) -> str:
        return f"<{type(self).__name__} [{self.status_code}]>"


def _is_json(mimetype: str) -> bool:
    return mimetype == "application/json" or (
        mimetype.startswith("application/") and mimetype.endswith("+json")
    )


def _status_code(status: Union[int, str, HTTPStatus]) -> int:
    if isinstance(status, bool):
        raise TypeError("status must be an int or a string like '200 OK'")
    if isinstance(status, int):
        code = int(status)
    elif isinstance(status, str) and status.strip()[:3].isdigit():
        code = int(status.strip()[:3])
    else:
        raise TypeError(f"invalid status {status!r}")
    if not 100 <= code <= 999:
        raise ValueError(f"invalid HTTP status code {code}")
    return code


def _with_charset(mimetype: str) -> str:
    if "charset=" in mimetype:
        return mimetype
    mt = mimetype.lower()
    if mt.startswith("text/") or mt in ("application/xml", "application/javascript"):
        return f"{mimetype}; charset=utf-8"
    return mimetype
