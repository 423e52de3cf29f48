"""Testing helpers: an in-process client and a live server on a real socket.

``TestClient`` sends each request through the same Rust engine a socket uses
(routing, limits, file semantics); nothing about HTTP is imitated in Python.
"""

from __future__ import annotations

import json as _json
from typing import TYPE_CHECKING, Any, Optional, Union
from urllib.parse import urlencode

from .datastructures import Headers

if TYPE_CHECKING:
    from .app import BustAPI


class TestResponse:
    """What :class:`TestClient` returns."""

    __test__ = False  # not a pytest test class

    def __init__(self, status_code: int, headers: list[tuple[str, str]], data: bytes) -> None:
        self.status_code = status_code
        self.headers = Headers(headers)
        self.data = data

    @property
    def status(self) -> str:
        from http import HTTPStatus

        try:
            return f"{self.status_code} {HTTPStatus(self.status_code).phrase.upper()}"
        except ValueError:
            return str(self.status_code)

    def get_data(self, as_text: bool = False) -> Union[bytes, str]:
        return self.data.decode("utf-8", "replace") if as_text else self.data

    @property
    def text(self) -> str:
        return self.data.decode("utf-8", "replace")

    def get_json(self) -> Any:
        return _json.loads(self.data)

    @property
    def json(self) -> Any:
        return self.get_json()

    @property
    def content_type(self) -> Optional[str]:
        return self.headers.get("Content-Type")

    def __repr__(self) -> str:
        return f"<TestResponse [{self.status_code}]>"


class TestClient:
    """``app.test_client()``: ``client.get("/x", headers=..., query_string=...)``."""

    __test__ = False

    def __init__(self, app: BustAPI) -> None:
        self.app = app

    def open(
        self,
        path: str,
        method: str = "GET",
        headers: Optional[Any] = None,
        data: Union[bytes, str, dict[str, Any], None] = None,
        json: Any = None,
        query_string: Union[str, dict[str, Any], None] = None,
        content_type: Optional[str] = None,
    ) -> TestResponse:
        hdrs = Headers(headers)
        body = b""
        if json is not None:
            body = _json.dumps(json).encode()
            hdrs.setdefault("Content-Type", "application/json")
        elif isinstance(data, dict):
            body = urlencode(data, doseq=True).encode()
            hdrs.setdefault("Content-Type", "application/x-www-form-urlencoded")
        elif isinstance(data, str):
            body = data.encode()
        elif data is not None:
            body = bytes(data)
        if content_type is not None:
            hdrs.set("Content-Type", content_type)
        if body or method.upper() in ("POST", "PUT", "PATCH"):
            hdrs.set("Content-Length", str(len(body)))
        hdrs.setdefault("Host", "localhost")
        if query_string:
            qs = (
                query_string
                if isinstance(query_string, str)
                else urlencode(query_string, doseq=True)
            )
            path = f"{path}{'&' if '?' in path else '?'}{qs}"
        self.app._sync_config()
        status, out_headers, out_body = self.app._core.test_request(
            method.upper(), path, hdrs.items(), body
        )
        return TestResponse(status, out_headers, out_body)

    def get(self, path: str, **kw: Any) -> TestResponse:
        return self.open(path, "GET", **kw)

    def head(self, path: str, **kw: Any) -> TestResponse:
        return self.open(path, "HEAD", **kw)

    def post(self, path: str, **kw: Any) -> TestResponse:
        return self.open(path, "POST", **kw)

    def put(self, path: str, **kw: Any) -> TestResponse:
        return self.open(path, "PUT", **kw)

    def patch(self, path: str, **kw: Any) -> TestResponse:
        return self.open(path, "PATCH", **kw)

    def delete(self, path: str, **kw: Any) -> TestResponse:
        return self.open(path, "DELETE", **kw)

    def options(self, path: str, **kw: Any) -> TestResponse:
        return self.open(path, "OPTIONS", **kw)

    def __enter__(self) -> TestClient:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


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
