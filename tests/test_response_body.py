"""A ``FileResponse`` or ``StreamingResponse`` has no bytes in Python: reading or
replacing its body raises :class:`bustapi.StreamedBodyError` instead of quietly
giving ``b''`` or doing nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Callable

import pytest
from bustapi import (
    BustAPI,
    FileResponse,
    Response,
    StreamedBodyError,
    StreamingResponse,
    send_file,
)


def chunks() -> Iterator[bytes]:
    yield b"one"
    yield b"two"


@pytest.fixture
def csv(tmp_path: Path) -> Path:
    path = tmp_path / "data.csv"
    path.write_text("a,b\n1,2\n")
    return path


def engine_bodies(csv: Path) -> list[Response]:
    return [
        FileResponse(str(csv), media_type="text/csv"),
        send_file(str(csv)),
        StreamingResponse(chunks()),
    ]


READS: list[Callable[[Response], object]] = [
    lambda r: r.data,
    lambda r: r.get_data(),
    lambda r: r.get_data(as_text=True),
    lambda r: r.get_json(),
    lambda r: r.json,
]
WRITES: list[Callable[[Response], object]] = [
    lambda r: r.set_data(b"replaced"),
    lambda r: r.set_data("replaced"),
    lambda r: setattr(r, "data", b"replaced"),
]


@pytest.mark.parametrize("access", READS + WRITES)
def test_reading_or_replacing_an_engine_body_raises(csv: Path, access: Callable) -> None:
    for response in engine_bodies(csv):
        with pytest.raises(StreamedBodyError, match=type(response).__name__):
            access(response)


def test_the_error_is_a_runtime_error_and_can_be_subclassed() -> None:
    assert issubclass(StreamedBodyError, RuntimeError)

    class Mine(StreamedBodyError):
        pass

    with pytest.raises(StreamedBodyError):
        raise Mine("x")


def test_ordinary_responses_still_read_and_replace() -> None:
    r = Response("hello")
    r.set_data(b"bye")
    assert r.data == b"bye" and r.get_data(as_text=True) == "bye"


def test_after_request_replacing_a_file_body_is_a_clear_500(csv: Path) -> None:
    app = BustAPI(__name__, static_folder=None)
    app.debug = True  # the 500 body then carries the traceback, and so the message
    app.config["PROPAGATE_EXCEPTIONS"] = False  # a page, not a re-raise in the test

    @app.route("/file")
    def file() -> FileResponse:
        return send_file(str(csv))

    @app.route("/stream")
    def stream() -> StreamingResponse:
        return StreamingResponse(chunks())

    @app.after_request
    def rewrite(response: Response) -> Response:
        # after_request also sees the 500 page that replaces the failed response
        # (as in Flask); leave that one alone.
        if isinstance(response, (FileResponse, StreamingResponse)):
            response.set_data(b"rewritten")
        return response

    client = app.test_client()
    for path in ("/file", "/stream"):
        r = client.get(path)
        assert r.status_code == 500
        assert "StreamedBodyError" in r.text and "cannot be read or replaced" in r.text


def test_after_request_may_still_change_headers_and_status_of_a_file(csv: Path) -> None:
    app = BustAPI(__name__, static_folder=None)

    @app.route("/file")
    def file() -> FileResponse:
        return send_file(str(csv), mimetype="text/csv")

    @app.after_request
    def tag(response: Response) -> Response:
        response.headers["X-Seen"] = "yes"
        return response

    r = app.test_client().get("/file")
    assert r.status_code == 200 and r.headers["X-Seen"] == "yes"
    assert r.data == csv.read_bytes()
