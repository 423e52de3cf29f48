"""Testing helpers: an in-process client, a CLI runner and a live server on a
real socket.

``TestClient`` sends each request through the same Rust engine a socket uses
(routing, limits, file semantics); nothing about HTTP is imitated in Python. It
keeps cookies between requests (so sessions and logins work), can follow
redirects, open and modify the session directly (``session_transaction``), and,
inside ``with client:``, keeps the last request's context so a test can look at
``request``, ``session`` and ``g`` after the response, as Flask's does. With
``TESTING`` on, an exception the app did not handle is raised in the test.
"""

from __future__ import annotations

import datetime
import io
import json as _json
import mimetypes
import os
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, Optional, Union
from urllib.parse import urlencode, urljoin, urlsplit

import click.testing

from .cookies import parse_set_cookie
from .ctx import _test_local
from .datastructures import Headers
from .wrappers import Response

if TYPE_CHECKING:
    from .app import BustAPI
    from .ctx import RequestContext
    from .sessions import SessionMixin


class TestResponse(Response):
    """What :class:`TestClient` returns: a :class:`~bustapi.Response` with the
    request that produced it and, after ``follow_redirects``, the ``history``."""

    __test__ = False  # not a pytest test class
    default_mimetype = None

    def __init__(
        self,
        status_code: int,
        headers: list[tuple[str, str]],
        data: bytes,
        request: Optional[_RequestInfo] = None,
    ) -> None:
        super().__init__(data, status=status_code, headers=headers)
        self.request = request
        self.history: tuple[TestResponse, ...] = ()

    @property
    def text(self) -> str:
        return self.get_data(as_text=True)  # type: ignore[return-value]

    def __repr__(self) -> str:
        return f"<TestResponse [{self.status_code}]>"


class _RequestInfo:
    """The request a :class:`TestResponse` answered (method, path, headers)."""

    def __init__(self, method: str, url: str, headers: Headers) -> None:
        self.method = method
        self.url = url
        self.path = urlsplit(url).path
        self.headers = headers

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.url!r}>"


# -- request bodies -------------------------------------------------------------------


def _file_part(value: Any) -> Optional[tuple[bytes, str, Optional[str]]]:
    """``(content, filename, content_type)`` when ``value`` is a file to upload:
    a file object, or ``(file, filename)`` / ``(file, filename, content_type)``."""
    if isinstance(value, tuple) and value and hasattr(value[0], "read"):
        f, name = value[0], value[1] if len(value) > 1 else None
        ctype = value[2] if len(value) > 2 else None
    elif hasattr(value, "read"):
        f, name, ctype = value, None, None
    else:
        return None
    content = f.read()
    if isinstance(content, str):
        content = content.encode()
    if name is None:
        name = os.path.basename(str(getattr(f, "name", "") or "")) or "file"
    return content, name, ctype


def _multipart(fields: list[tuple[str, Any]]) -> tuple[bytes, str]:
    boundary = f"----BustAPITestBoundary{uuid.uuid4().hex}"
    out = io.BytesIO()
    for name, value in fields:
        out.write(f"--{boundary}\r\n".encode())
        part = _file_part(value)
        quoted = name.replace('"', "%22")
        if part is None:
            out.write(f'Content-Disposition: form-data; name="{quoted}"\r\n\r\n'.encode())
            out.write(value if isinstance(value, bytes) else str(value).encode())
        else:
            content, filename, ctype = part
            ctype = ctype or mimetypes.guess_type(filename)[0] or "application/octet-stream"
            fname = filename.replace('"', "%22")
            out.write(
                f'Content-Disposition: form-data; name="{quoted}"; filename="{fname}"\r\n'
                f"Content-Type: {ctype}\r\n\r\n".encode()
            )
            out.write(content)
        out.write(b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue(), f"multipart/form-data; boundary={boundary}"


def _flatten(data: Mapping[str, Any]) -> list[tuple[str, Any]]:
    items = data.items(multi=True) if hasattr(data, "getlist") else data.items()  # type: ignore[call-arg]
    fields: list[tuple[str, Any]] = []
    for key, value in items:
        if isinstance(value, list):
            fields.extend((key, v) for v in value)
        else:
            fields.append((key, value))
    return fields


def encode_body(data: Any, json: Any, headers: Headers, content_type: Optional[str]) -> bytes:
    """The body bytes for the test client's ``data=``/``json=``, setting the content
    type: a dict is a form (multipart when it holds files), ``json`` is JSON."""
    body = b""
    if json is not None:
        if data is not None:
            raise TypeError("pass either 'data' or 'json', not both")
        from .wrappers import _json_default

        # As Flask's client encodes it (its JSON provider's defaults).
        body = _json.dumps(json, default=_json_default, sort_keys=True).encode()
        headers.setdefault("Content-Type", "application/json")
    elif isinstance(data, Mapping):
        fields = _flatten(data)
        if any(_is_file(v) for _, v in fields):
            body, ctype = _multipart(fields)
            headers.set("Content-Type", ctype)
        else:
            body = urlencode([(k, v) for k, v in fields], doseq=True).encode()
            headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
    elif isinstance(data, str):
        body = data.encode()
    elif data is not None:
        body = bytes(data.read() if hasattr(data, "read") else data)
    if content_type is not None:
        headers.set("Content-Type", content_type)
    return body


def _is_file(value: Any) -> bool:
    return hasattr(value, "read") or (
        isinstance(value, tuple) and bool(value) and hasattr(value[0], "read")
    )


def _target(path: str, query_string: Union[str, bytes, Mapping[str, Any], None]) -> str:
    parts = urlsplit(path)
    target = parts.path or "/"
    query = parts.query
    if query and query_string is not None:
        # As Werkzeug: two sources of one query string is a mistake in the test.
        raise ValueError("Query string is defined in the path and as an argument")
    if query_string:
        if isinstance(query_string, bytes):
            extra = query_string.decode("latin-1")
        elif isinstance(query_string, str):
            extra = query_string
        else:
            extra = urlencode(_flatten(query_string), doseq=True)
        query = f"{query}&{extra}" if query else extra
    return f"{target}?{query}" if query else target


class _RequestData:
    """A request built in Python, with the interface of the engine's ``RequestData``
    (for ``app.test_request_context()``, where no engine is involved)."""

    def __init__(
        self,
        method: str,
        target: str,
        headers: Headers,
        body: bytes,
        scheme: str,
        remote_addr: Optional[str],
    ) -> None:
        parts = urlsplit(target)
        self.method = method.upper()
        self.raw_path = parts.path or "/"
        self.query_string = parts.query
        self.http_version = "HTTP/1.1"
        self.scheme = scheme
        self.remote_addr = remote_addr
        self.remote_port = 0 if remote_addr else None
        self.body = body
        self._headers = [(k.lower(), v) for k, v in headers.items()]

    # The engine parses multipart bodies; a request that never reaches it has bytes.
    body_kind = "bytes"

    def form_fields(self) -> list[tuple[str, str]]:
        return []

    def form_files(self) -> list[tuple[str, str, list[tuple[str, str]], str, int]]:
        return []

    def read_body(self, size: int) -> bytes:
        return b""

    def header_items(self) -> list[tuple[str, str]]:
        return list(self._headers)

    def header(self, name: str) -> Optional[str]:
        name = name.lower()
        return next((v for k, v in self._headers if k == name), None)


def build_request_data(
    app: BustAPI,
    path: str = "/",
    base_url: Optional[str] = None,
    *,
    method: str = "GET",
    headers: Any = None,
    data: Any = None,
    json: Any = None,
    query_string: Union[str, bytes, Mapping[str, Any], None] = None,
    content_type: Optional[str] = None,
    environ_base: Optional[Mapping[str, Any]] = None,
    **kwargs: Any,
) -> _RequestData:
    """The request ``app.test_request_context(...)`` describes (same arguments as
    the test client)."""
    if kwargs:
        raise TypeError(f"unexpected arguments: {', '.join(sorted(kwargs))}")
    hdrs = Headers(headers)
    scheme = "http"
    host = app.config.get("SERVER_NAME") or "localhost"
    if "://" in path:
        parts = urlsplit(path)
        scheme, host = parts.scheme, parts.netloc
        path = parts.path + (f"?{parts.query}" if parts.query else "")
    if base_url is not None:
        parts = urlsplit(base_url)
        scheme, host = parts.scheme or scheme, parts.netloc or host
    hdrs.setdefault("Host", host)
    body = encode_body(data, json, hdrs, content_type)
    if body:
        hdrs.set("Content-Length", str(len(body)))
    remote = (environ_base or {}).get("REMOTE_ADDR", "127.0.0.1")
    return _RequestData(method, _target(path, query_string), hdrs, body, scheme, remote)


# -- hand-back of contexts and exceptions from the view thread -------------------------


class _Recorder:
    """What a test request's view hands back to the client on the same thread: the
    request context (kept pushed for ``with client:``) and an unhandled exception."""

    def __init__(self, preserve: bool) -> None:
        self.preserve = preserve
        self.ctx: Optional[RequestContext] = None
        self.exception: Optional[BaseException] = None

    def raised(self, error: BaseException) -> None:
        self.exception = error


def _propagates(app: BustAPI) -> bool:
    value = app.config.get("PROPAGATE_EXCEPTIONS")
    if value is not None:
        return bool(value)
    return bool(app.testing or app.debug)


# -- cookies ----------------------------------------------------------------------------


class _Cookie:
    __slots__ = ("key", "value", "domain", "path")

    def __init__(self, key: str, value: str, domain: str, path: str) -> None:
        self.key, self.value, self.domain, self.path = key, value, domain, path

    def __repr__(self) -> str:
        return f"<Cookie {self.key}={self.value!r} domain={self.domain} path={self.path}>"


class TestClient:
    """``app.test_client()``: ``client.get("/x", headers=..., query_string=...)``.

    ``data`` may be bytes, a str, or a dict (a form; multipart when a value is a file
    or ``(file, filename)``); ``json`` sends JSON. ``follow_redirects=True`` follows
    3xx answers. ``environ_base={"REMOTE_ADDR": ...}`` sets the client address.
    """

    __test__ = False

    def __init__(
        self, app: BustAPI, use_cookies: bool = True, environ_base: Optional[dict[str, Any]] = None
    ) -> None:
        self.app = app
        self.use_cookies = use_cookies
        self.environ_base = dict(environ_base or {})
        self._cookies: dict[tuple[str, str, str], _Cookie] = {}
        self._preserve = False
        self._kept: list[RequestContext] = []

    # cookies

    def get_cookie(self, key: str, domain: str = "localhost", path: str = "/") -> Optional[_Cookie]:
        return self._cookies.get((domain, path, key))

    def set_cookie(
        self, key: str, value: str = "", *, domain: str = "localhost", path: str = "/"
    ) -> None:
        self._cookies[(domain, path, key)] = _Cookie(key, value, domain, path)

    def delete_cookie(self, key: str, *, domain: str = "localhost", path: str = "/") -> None:
        self._cookies.pop((domain, path, key), None)

    def _cookie_header(self, host: str, path: str) -> Optional[str]:
        host = host.split(":")[0]
        pairs = [
            f"{c.key}={c.value}"
            for c in self._cookies.values()
            if _domain_matches(host, c.domain) and _path_matches(path, c.path)
        ]
        return "; ".join(pairs) or None

    def _store_cookies(self, headers: Headers, host: str) -> None:
        host = host.split(":")[0]
        now = datetime.datetime.now(datetime.timezone.utc)
        for raw in headers.getlist("Set-Cookie"):
            key, value, attrs = parse_set_cookie(raw)
            if not key:
                continue
            domain = (attrs.get("domain") or host).lstrip(".")
            path = attrs.get("path") or "/"
            expired = False
            if attrs.get("max-age"):
                try:
                    expired = int(attrs["max-age"]) <= 0
                except ValueError:
                    pass
            elif attrs.get("expires"):
                try:
                    expired = parsedate_to_datetime(attrs["expires"]) < now
                except (TypeError, ValueError):
                    pass
            if expired:
                self._cookies.pop((domain, path, key), None)
            else:
                self._cookies[(domain, path, key)] = _Cookie(key, value, domain, path)

    # requests

    def open(
        self,
        path: str = "/",
        method: str = "GET",
        headers: Optional[Any] = None,
        data: Any = None,
        json: Any = None,
        query_string: Union[str, bytes, Mapping[str, Any], None] = None,
        content_type: Optional[str] = None,
        follow_redirects: bool = False,
        base_url: Optional[str] = None,
        environ_base: Optional[Mapping[str, Any]] = None,
        buffered: bool = False,
    ) -> TestResponse:
        """Sends one request through the engine (and, with ``follow_redirects``, the
        requests its redirects lead to)."""
        response = self._open_once(
            path, method, headers, data, json, query_string, content_type, base_url, environ_base
        )
        if not follow_redirects:
            return response
        history: list[TestResponse] = []
        seen = 0
        while response.status_code in (301, 302, 303, 305, 307, 308) and response.location:
            seen += 1
            if seen > 30:
                raise RuntimeError("too many redirects")
            history.append(response)
            assert response.request is not None
            target = urljoin(response.request.url, response.location)
            # 307/308 repeat the request that was redirected (its method and body),
            # the others become a GET (HEAD stays HEAD) without a body.
            keep_body = response.status_code in (307, 308)
            method = response.request.method
            if not keep_body:
                method = "HEAD" if method == "HEAD" else "GET"
                data = json = content_type = None
            response = self._open_once(
                target,
                method,
                headers,
                data,
                json,
                None,
                content_type,
                None,
                environ_base,
            )
        response.history = tuple(history)
        return response

    def _open_once(
        self,
        path: str,
        method: str,
        headers: Optional[Any],
        data: Any,
        json: Any,
        query_string: Union[str, bytes, Mapping[str, Any], None],
        content_type: Optional[str],
        base_url: Optional[str],
        environ_base: Optional[Mapping[str, Any]],
    ) -> TestResponse:
        app = self.app
        method = method.upper()
        hdrs = Headers(headers)
        scheme, host = "http", app.config.get("SERVER_NAME") or "localhost"
        if "://" in path:
            parts = urlsplit(path)
            scheme, host = parts.scheme, parts.netloc
            path = parts.path + (f"?{parts.query}" if parts.query else "")
        if base_url is not None:
            parts = urlsplit(base_url)
            scheme, host = parts.scheme or scheme, parts.netloc or host
        hdrs.setdefault("Host", host)
        body = encode_body(data, json, hdrs, content_type)
        if body or method in ("POST", "PUT", "PATCH"):
            hdrs.set("Content-Length", str(len(body)))
        target = _target(path, query_string)
        if self.use_cookies:
            cookie = self._cookie_header(hdrs["Host"], urlsplit(target).path)
            if cookie is not None and "Cookie" not in hdrs:
                hdrs.set("Cookie", cookie)
        remote = {**self.environ_base, **(environ_base or {})}.get("REMOTE_ADDR", "127.0.0.1")
        self._pop_kept()
        recorder = _Recorder(self._preserve)
        app._sync_config()
        _test_local.recorder = recorder
        try:
            status, out_headers, out_body = app._core.test_request(
                method, target, hdrs.items(), body, remote, scheme == "https"
            )
        finally:
            _test_local.recorder = None
        if recorder.ctx is not None:
            self._kept.append(recorder.ctx)
        response = TestResponse(
            status, out_headers, out_body, _RequestInfo(method, f"{scheme}://{host}{target}", hdrs)
        )
        if self.use_cookies:
            self._store_cookies(response.headers, hdrs["Host"])
        if recorder.exception is not None and _propagates(app):
            raise recorder.exception
        return response

    def get(self, path: str = "/", **kw: Any) -> TestResponse:
        return self.open(path, method="GET", **kw)

    def head(self, path: str = "/", **kw: Any) -> TestResponse:
        return self.open(path, method="HEAD", **kw)

    def post(self, path: str = "/", **kw: Any) -> TestResponse:
        return self.open(path, method="POST", **kw)

    def put(self, path: str = "/", **kw: Any) -> TestResponse:
        return self.open(path, method="PUT", **kw)

    def patch(self, path: str = "/", **kw: Any) -> TestResponse:
        return self.open(path, method="PATCH", **kw)

    def delete(self, path: str = "/", **kw: Any) -> TestResponse:
        return self.open(path, method="DELETE", **kw)

    def options(self, path: str = "/", **kw: Any) -> TestResponse:
        return self.open(path, method="OPTIONS", **kw)

    # sessions and preserved contexts

    @contextmanager
    def session_transaction(self, *args: Any, **kwargs: Any) -> Iterator[SessionMixin]:
        """Opens the session the client's cookies carry, for the test to read or
        change; on exit it is saved back into the cookies:

        >>> with client.session_transaction() as sess:   # doctest: +SKIP
        ...     sess["user_id"] = 1
        """
        app = self.app
        kwargs.setdefault("headers", {})
        req_ctx = app.test_request_context(*args, **kwargs)
        host = req_ctx.request.host
        if self.use_cookies:
            cookie = self._cookie_header(host, req_ctx.request.path)
            if cookie is not None:
                req_ctx = app.test_request_context(
                    *args, **{**kwargs, "headers": {**dict(kwargs["headers"]), "Cookie": cookie}}
                )
        interface = app.session_interface
        with req_ctx:
            sess = interface.open_session(app, req_ctx.request)
            if sess is None:
                raise RuntimeError("Session backend did not open a session.")
            yield sess
            response = app.response_class()
            if not interface.is_null_session(sess):
                interface.save_session(app, sess, response)
        self._store_cookies(response.headers, host)

    def _pop_kept(self) -> None:
        while self._kept:
            self._kept.pop().pop()

    def __enter__(self) -> TestClient:
        if self._preserve:
            raise RuntimeError("Cannot nest client invocations")
        self._preserve = True
        return self

    def __exit__(self, *exc: object) -> None:
        self._preserve = False
        self._pop_kept()


def _domain_matches(host: str, domain: str) -> bool:
    return host == domain or host.endswith("." + domain) or domain in ("localhost", "")


def _path_matches(path: str, cookie_path: str) -> bool:
    if cookie_path in ("", "/"):
        return True
    return path == cookie_path or path.startswith(cookie_path.rstrip("/") + "/")


class BustAPICliRunner(click.testing.CliRunner):
    """``app.test_cli_runner()``: invokes the app's CLI commands in-process, each with
    an application context: ``runner.invoke(args=["init-db"])``. As under the
    ``bustapi`` command, plain click commands added with ``app.cli.add_command`` see
    ``current_app`` too, and teardown_appcontext runs when the command ends."""

    def __init__(self, app: BustAPI, **kwargs: Any) -> None:
        self.app = app
        super().__init__(**kwargs)

    def invoke(  # type: ignore[override]
        self, cli: Any = None, args: Any = None, **kwargs: Any
    ) -> click.testing.Result:
        from .cli import ScriptInfo

        if cli is None:
            cli = self.app.cli
        if "obj" not in kwargs:
            kwargs["obj"] = ScriptInfo(create_app=lambda: self.app)
        return super().invoke(cli, args, **kwargs)


class LiveServer:
    """Runs an app on a real socket in a background thread.

    >>> with LiveServer(app) as server:          # doctest: +SKIP
    ...     urllib.request.urlopen(server.url + "/")
    """

    def __init__(
        self, app: BustAPI, host: str = "127.0.0.1", port: int = 0, **options: Any
    ) -> None:
        from ._core import CoreApp

        self.app = app
        threads = options.pop("threads", None)
        self.scheme = app._configure(threads, dict(options))
        self._listener = CoreApp.bind(host, port)
        self.host = host
        self.port: int = self._listener.port
        self._handle: Any = None

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    def start(self) -> LiveServer:
        self._handle = self.app._core.start(self._listener, io_threads=2)
        return self

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.stop()
            self._handle = None

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
