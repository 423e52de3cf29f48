"""HTTP exceptions: real classes with Werkzeug's names, usable as base classes
and annotations (checked with ``mypy --strict``), raised by ``abort``."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import bustapi.exceptions as exc
import pytest
from bustapi import BustAPI, HTTPException, abort

WERKZEUG_NAMES = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    408: "RequestTimeout",
    409: "Conflict",
    410: "Gone",
    411: "LengthRequired",
    412: "PreconditionFailed",
    413: "RequestEntityTooLarge",
    414: "RequestURITooLarge",
    415: "UnsupportedMediaType",
    416: "RequestedRangeNotSatisfiable",
    417: "ExpectationFailed",
    418: "ImATeapot",
    422: "UnprocessableEntity",
    423: "Locked",
    424: "FailedDependency",
    428: "PreconditionRequired",
    429: "TooManyRequests",
    431: "RequestHeaderFieldsTooLarge",
    451: "UnavailableForLegalReasons",
    500: "InternalServerError",
    501: "NotImplemented",
    502: "BadGateway",
    503: "ServiceUnavailable",
    504: "GatewayTimeout",
    505: "HTTPVersionNotSupported",
}


@pytest.mark.parametrize("code, name", sorted(WERKZEUG_NAMES.items()))
def test_werkzeug_names_codes_and_abort(code: int, name: str) -> None:
    cls = getattr(exc, name)
    assert isinstance(cls, type) and issubclass(cls, HTTPException)
    assert cls.__name__ == name and cls.__module__ == "bustapi.exceptions"
    assert cls.code == code and cls.description
    assert exc.default_exceptions[code] is cls
    with pytest.raises(cls) as raised:
        abort(code)
    assert type(raised.value) is cls
    response = raised.value.get_response()
    assert response.status_code == code and name not in ("", None)


def test_unusual_codes_still_abort() -> None:
    with pytest.raises(HTTPException) as raised:
        abort(599, "odd")
    assert raised.value.code == 599 and raised.value.get_response().status_code == 599
    assert type(raised.value) is HTTPException
    assert HTTPException.code == 500, "the class default is untouched"


def test_subclass_keeps_code_and_is_caught_by_the_parent_handler() -> None:
    class UserNotFound(exc.NotFound):
        description = "no such user"

    app = BustAPI(__name__, static_folder=None)

    @app.route("/user")
    def user() -> str:
        raise UserNotFound()

    @app.errorhandler(exc.NotFound)
    def missing(e: exc.NotFound) -> tuple[dict[str, str], int]:
        return {"error": e.description, "kind": type(e).__name__}, e.code

    r = app.test_client().get("/user")
    assert r.status_code == 404
    assert r.json == {"error": "no such user", "kind": "UserNotFound"}


def test_headers_werkzeug_adds() -> None:
    r = exc.MethodNotAllowed(valid_methods=["GET", "POST"]).get_response()
    assert r.status_code == 405 and r.headers["Allow"] == "GET, POST"
    r = exc.RequestedRangeNotSatisfiable(length=1000).get_response()
    assert r.headers["Content-Range"] == "bytes */1000"
    r = exc.TooManyRequests(retry_after=30).get_response()
    assert r.headers["Retry-After"] == "30"
    assert str(exc.NotFound("gone away")) == "404 Not Found: gone away"


STRICT_USER_CODE = textwrap.dedent(
    """
    from typing import assert_type

    from bustapi import BustAPI, HTTPException
    from bustapi.exceptions import BadRequest, MethodNotAllowed, NotFound
    from bustapi.testing import TestClient, TestResponse


    class UserNotFound(NotFound):
        description = "no such user"


    class Throttled(HTTPException):
        code = 429


    def describe(e: NotFound) -> str:
        return f"{e.code} {e.name}: {e.description}"


    def status_of(e: HTTPException) -> int:
        return e.code


    app = BustAPI(__name__)
    assert_type(app.test_client(), TestClient)
    assert_type(app.test_client().get("/"), TestResponse)
    print(describe(UserNotFound()), status_of(BadRequest()), status_of(Throttled()))
    print(MethodNotAllowed(valid_methods=["GET"]).get_response().status_code)
    """
)


def test_mypy_strict_accepts_subclasses_annotations_and_a_typed_test_client(
    tmp_path: Path,
) -> None:
    mypy = shutil.which("mypy", path=str(Path(sys.executable).parent))
    if mypy is None:
        pytest.skip("mypy is not installed")
    source = tmp_path / "user_code.py"
    source.write_text(STRICT_USER_CODE)
    result = subprocess.run(
        [mypy, "--strict", "--no-incremental", "--python-version", "3.11", str(source)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
