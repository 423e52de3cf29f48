"""``app.test_client()`` goes through the same engine, limits and response path as a
socket: the same request gets the same status, headers and body either way."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Callable

import pytest
from bustapi import BustAPI, FileResponse, StreamingResponse, request, send_file
from bustapi.testing import LiveServer, TestClient
from conftest import Client, Result

# Headers that legitimately differ: the time, and how this HTTP/1.1 connection
# frames and keeps the message (HTTP/2 has none of them; the test client hands
# over the decoded body).
PER_RESPONSE = {"date", "connection", "keep-alive", "transfer-encoding"}


def limited_app(limit: int) -> BustAPI:
    app = BustAPI(__name__, static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = limit

    @app.route("/upload", methods=["POST"])
    def upload() -> dict[str, int]:
        return {"received": len(request.data)}

    return app


def test_max_content_length_applies_to_both_paths(
    client_for: Callable[[BustAPI], Client],
) -> None:
    client = client_for(limited_app(10))
    assert client.post("/upload", data=b"x" * 100).status == 413
    ok = client.post("/upload", data=b"x" * 10)
    assert ok.status == 200 and ok.json == {"received": 10}


def test_test_client_reads_the_config_at_each_request() -> None:
    """As in Flask, ``app.config`` may change after the client is made."""
    app = limited_app(10)
    client: TestClient = app.test_client()
    assert client.post("/upload", data=b"x" * 100).status_code == 413
    app.config["MAX_CONTENT_LENGTH"] = 1000
    assert client.post("/upload", data=b"x" * 100).status_code == 200
    app.config["MAX_CONTENT_LENGTH"] = 50
    assert client.post("/upload", data=b"x" * 100).status_code == 413


def test_test_client_keeps_run_options_given_to_a_live_server() -> None:
    """Options given to ``LiveServer`` (or ``run()``) stay in force for the test
    client; only ``app.config`` is re-read."""
    app = limited_app(1000)
    with LiveServer(app, max_body_size=20):
        assert app.test_client().post("/upload", data=b"x" * 100).status_code == 413


@pytest.fixture
def paired(tmp_path: Path) -> Iterator[tuple[Client, Client]]:
    """A socket client and a test client for one app with every kind of response."""
    static = tmp_path / "static"
    static.mkdir()
    (static / "clip.bin").write_bytes(bytes(range(256)) * 8)
    data = tmp_path / "report.csv"
    data.write_text("a,b\n1,2\n")
    app = BustAPI(__name__, static_folder=str(static))
    app.config["MAX_CONTENT_LENGTH"] = 64

    @app.route("/text")
    def text() -> str:
        return "hello"

    @app.route("/json", methods=["GET", "POST"])
    def json() -> dict[str, int]:
        return {"n": len(request.data)}

    @app.route("/file")
    def file() -> FileResponse:
        return send_file(str(data), mimetype="text/csv")

    @app.route("/download")
    def download() -> FileResponse:
        return FileResponse(str(data), filename="custom name.csv", media_type="text/csv")

    @app.route("/stream")
    def stream() -> StreamingResponse:
        return StreamingResponse(iter([b"a", b"bc"]), media_type="text/plain")

    @app.route("/created")
    def created() -> tuple[str, int, dict[str, str]]:
        return "made", 201, {"X-Id": "7"}

    @app.route("/empty")
    def empty() -> tuple[str, int]:
        return "", 204

    with LiveServer(app) as server:
        yield Client(app, "socket", server.port), Client(app, "test_client")


REQUESTS: list[tuple[str, str, dict[str, str], bytes | None]] = [
    ("GET", "/text", {}, None),
    ("HEAD", "/text", {}, None),
    ("POST", "/json", {}, b"12345"),
    ("POST", "/json", {}, b"x" * 65),
    ("GET", "/nope", {}, None),
    ("DELETE", "/text", {}, None),
    ("OPTIONS", "/json", {}, None),
    ("GET", "/text/", {}, None),
    ("GET", "/created", {}, None),
    ("GET", "/empty", {}, None),
    ("GET", "/file", {}, None),
    ("HEAD", "/file", {}, None),
    ("GET", "/file", {"Range": "bytes=2-5"}, None),
    ("GET", "/file", {"Range": "bytes=0-0,3-4"}, None),
    ("GET", "/file", {"Range": "bytes=999-"}, None),
    ("GET", "/download", {}, None),
    ("GET", "/stream", {}, None),
    ("HEAD", "/stream", {}, None),
    ("GET", "/static/clip.bin", {"Range": "bytes=100-199"}, None),
    ("HEAD", "/static/clip.bin", {}, None),
    ("GET", "/static/missing", {}, None),
    ("POST", "/static/clip.bin", {}, b"x"),
    ("GET", "/static/../secret", {}, None),
]


def comparable(r: Result) -> tuple[int, dict[str, str], bytes]:
    headers = {k: v for k, v in r.headers.items() if k not in PER_RESPONSE}
    if headers.get("content-type", "").startswith("multipart/byteranges"):
        # The boundary is random per response; the parts must still agree.
        boundary = headers["content-type"].split("boundary=")[1]
        body = r.body.replace(boundary.encode(), b"BOUNDARY")
        headers["content-type"] = "multipart/byteranges; boundary=BOUNDARY"
        return r.status, headers, body
    return r.status, headers, r.body


@pytest.mark.parametrize("method, path, headers, body", REQUESTS)
def test_same_answer_as_a_socket(
    paired: tuple[Client, Client],
    method: str,
    path: str,
    headers: dict[str, str],
    body: bytes | None,
) -> None:
    socket_client, test_client = paired
    over_socket = socket_client.open(method, path, headers=headers, data=body)
    in_process = test_client.open(method, path, headers=headers, data=body)
    assert comparable(in_process) == comparable(over_socket)


def test_etag_revalidation_matches(paired: tuple[Client, Client]) -> None:
    socket_client, test_client = paired
    etag = socket_client.get("/file").headers["etag"]
    for client in paired:
        assert client.get("/file", headers={"If-None-Match": etag}).status == 304
    assert comparable(test_client.get("/file", headers={"If-None-Match": etag})) == comparable(
        socket_client.get("/file", headers={"If-None-Match": etag})
    )
