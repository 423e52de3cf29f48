"""The Flask-style core, end to end: every scenario runs over a real socket and
through ``app.test_client()`` (both use the same Rust request path)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from bustapi import BustAPI, Response, abort, jsonify, redirect, request


def make_app(debug: bool = False) -> BustAPI:
    app = BustAPI(__name__, static_folder=None)
    app.debug = debug

    @app.route("/")
    def index() -> dict[str, str]:
        return {"message": "Hello, world!"}

    @app.route("/user/<name>")
    def user(name: str) -> str:
        return f"user {name}"

    @app.route("/n/<int:n>")
    def number(n: int) -> dict[str, Any]:
        return {"n": n, "type": type(n).__name__}

    @app.route("/f/<float:x>")
    def flt(x: float) -> dict[str, Any]:
        return {"x": x, "type": type(x).__name__}

    @app.route("/files/<path:p>")
    def files(p: str) -> str:
        return p

    @app.route("/u/<uuid:u>")
    def uid(u: uuid.UUID) -> dict[str, Any]:
        return {"u": str(u), "type": type(u).__name__}

    @app.route("/items", methods=["GET", "POST"])
    def items() -> Any:
        if request.method == "POST":
            return {"got": request.get_json()}, 201
        return {"args": request.args.to_dict(flat=False)}

    @app.put("/items/<int:i>")
    def put_item(i: int) -> dict[str, Any]:
        return {"put": i, "data": request.get_data(as_text=True)}

    @app.delete("/items/<int:i>")
    def delete_item(i: int) -> tuple[str, int]:
        return "", 204

    @app.patch("/items/<int:i>")
    def patch_item(i: int) -> dict[str, Any]:
        return {"patched": i}

    @app.post("/form")
    def form() -> dict[str, Any]:
        return {"form": request.form.to_dict(flat=False), "ct": request.mimetype}

    @app.route("/echo-headers")
    def echo_headers() -> dict[str, Any]:
        return {
            "x": request.headers.get("x-custom"),
            "X": request.headers["X-CUSTOM"],
            "cookies": request.cookies,
            "remote": request.remote_addr,
            "path": request.path,
            "full_path": request.full_path,
        }

    @app.route("/tuple3")
    def tuple3() -> Any:
        return "made", 202, {"X-A": "1"}

    @app.route("/tuple-headers")
    def tuple_headers() -> Any:
        return "hdrs", [("X-B", "2")]

    @app.route("/response")
    def response() -> Response:
        r = Response("plain text", status=418, headers={"X-Teapot": "yes"}, mimetype="text/plain")
        r.set_cookie("session", "abc", httponly=True)
        return r

    @app.route("/bytes")
    def raw_bytes() -> bytes:
        return b"\x00\x01binary"

    @app.route("/list")
    def a_list() -> list[int]:
        return [1, 2, 3]

    @app.route("/jsonify")
    def jsonified() -> Response:
        return jsonify(a=1, b=[True, None])

    @app.route("/redirect")
    def go() -> Response:
        return redirect("/target")

    @app.route("/abort/<int:code>")
    def aborting(code: int) -> str:
        abort(code)

    @app.route("/boom")
    def boom() -> str:
        raise RuntimeError("secret-internal-detail")

    @app.route("/teapot-error")
    def teapot_error() -> str:
        raise LookupError("handled")

    @app.errorhandler(LookupError)
    def on_lookup(e: LookupError) -> tuple[dict[str, str], int]:
        return {"error": str(e)}, 409

    @app.errorhandler(404)
    def on_404(e: Exception) -> tuple[str, int]:
        return "custom not found", 404

    @app.route("/async")
    async def async_view() -> dict[str, Any]:
        await asyncio.sleep(0.01)
        return {"async": True, "method": request.method}

    @app.route("/none")
    def returns_none() -> None:
        return None

    @app.route("/injection")
    def injection() -> Response:
        return Response("x", headers={"X-Bad": "a\r\nSet-Cookie: evil=1"})

    @app.route("/dir/")
    def directory() -> str:
        return "dir"

    return app


@pytest.fixture
def client(client_for: Any) -> Any:
    return client_for(make_app())


def test_hello_json(client: Any) -> None:
    r = client.get("/")
    assert r.status == 200
    assert r.headers["content-type"] == "application/json"
    assert r.json == {"message": "Hello, world!"}
    assert int(r.headers["content-length"]) == len(r.body)


def test_converters(client: Any) -> None:
    assert client.get("/user/ada%20lovelace").text == "user ada lovelace"
    assert client.get("/n/42").json == {"n": 42, "type": "int"}
    assert client.get("/f/2.5").json == {"x": 2.5, "type": "float"}
    assert client.get("/files/a/b/c.txt").text == "a/b/c.txt"
    u = "123e4567-e89b-12d3-a456-426614174000"
    assert client.get(f"/u/{u}").json == {"u": u, "type": "UUID"}
    for bad in ["/n/abc", "/n/-3", "/f/3", "/u/not-a-uuid", "/user/a/b"]:
        assert client.get(bad).status == 404, bad


def test_methods_and_status(client: Any) -> None:
    r = client.post("/items", json={"a": [1, 2]})
    assert r.status == 201 and r.json == {"got": {"a": [1, 2]}}
    r = client.open("PUT", "/items/3", data=b"payload")
    assert r.json == {"put": 3, "data": "payload"}
    r = client.open("DELETE", "/items/3")
    assert r.status == 204 and r.body == b""
    assert client.open("PATCH", "/items/9").json == {"patched": 9}


def test_404_and_custom_handler(client: Any) -> None:
    r = client.get("/does-not-exist")
    assert r.status == 404
    assert r.text == "custom not found"


def test_405_has_allow(client: Any) -> None:
    r = client.open("DELETE", "/items")
    assert r.status == 405
    assert r.headers["allow"] == "GET, HEAD, OPTIONS, POST"
    r = client.post("/")
    assert r.status == 405 and r.headers["allow"] == "GET, HEAD, OPTIONS"


def test_options(client: Any) -> None:
    r = client.open("OPTIONS", "/items")
    assert r.status == 200
    assert r.headers["allow"] == "GET, HEAD, OPTIONS, POST"


def test_head_same_headers_no_body(client: Any) -> None:
    get = client.get("/")
    head = client.head("/")
    assert head.status == 200
    assert head.body == b""
    assert head.headers["content-length"] == get.headers["content-length"]
    assert head.headers["content-type"] == get.headers["content-type"]


def test_query_string(client: Any) -> None:
    r = client.get("/items?a=1&a=2&b=&c=%C3%A9")
    assert r.json == {"args": {"a": ["1", "2"], "b": [""], "c": ["é"]}}


def test_form_urlencoded(client: Any) -> None:
    r = client.post(
        "/form",
        data=b"x=1&x=2&name=J%C3%B6",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.json == {
        "form": {"x": ["1", "2"], "name": ["Jö"]},
        "ct": "application/x-www-form-urlencoded",
    }


def test_request_headers_cookies_path(client: Any) -> None:
    r = client.get("/echo-headers?q=1", headers={"X-Custom": "v", "Cookie": "a=1; b=two"})
    body = r.json
    assert body["x"] == "v" and body["X"] == "v"
    assert body["cookies"] == {"a": "1", "b": "two"}
    assert body["remote"] == "127.0.0.1"
    assert body["path"] == "/echo-headers"
    assert body["full_path"] == "/echo-headers?q=1"


def test_return_value_forms(client: Any) -> None:
    r = client.get("/tuple3")
    assert (r.status, r.text, r.headers["x-a"]) == (202, "made", "1")
    r = client.get("/tuple-headers")
    assert (r.status, r.headers["x-b"]) == (200, "2")
    r = client.get("/response")
    assert r.status == 418 and r.headers["x-teapot"] == "yes"
    assert r.headers["content-type"] == "text/plain; charset=utf-8"
    assert "session=abc" in r.headers["set-cookie"] and "HttpOnly" in r.headers["set-cookie"]
    assert client.get("/bytes").body == b"\x00\x01binary"
    assert client.get("/list").json == [1, 2, 3]
    assert client.get("/jsonify").json == {"a": 1, "b": [True, None]}
    r = client.get("/redirect")
    assert r.status == 302 and r.headers["location"] == "/target"


def test_abort(client: Any) -> None:
    r = client.get("/abort/403")
    assert r.status == 403 and "Forbidden" in r.text
    assert client.get("/abort/404").text == "custom not found"


def test_exception_is_500_without_traceback(client: Any) -> None:
    r = client.get("/boom")
    assert r.status == 500
    assert "secret-internal-detail" not in r.text
    assert "Traceback" not in r.text


def test_exception_handler_by_class(client: Any) -> None:
    r = client.get("/teapot-error")
    assert r.status == 409 and r.json == {"error": "handled"}


def test_view_returning_none_is_500(client: Any) -> None:
    assert client.get("/none").status == 500


def test_header_injection_refused(client: Any) -> None:
    r = client.get("/injection")
    assert r.status == 500
    assert "set-cookie" not in r.headers


def test_async_view(client: Any) -> None:
    assert client.get("/async").json == {"async": True, "method": "GET"}
    r = client.head("/async")
    assert r.status == 200 and r.body == b""


def test_trailing_slash_redirect(client: Any) -> None:
    r = client.get("/dir?x=1")
    assert r.status == 308 and r.headers["location"] == "/dir/?x=1"
    assert client.get("/dir/").text == "dir"


def test_debug_shows_traceback(client_for: Any) -> None:
    app = make_app(debug=True)
    # Flask's test client re-raises in debug and testing; ask for the page instead.
    app.config["PROPAGATE_EXCEPTIONS"] = False
    client = client_for(app)
    r = client.get("/boom")
    assert r.status == 500
    assert "Traceback" in r.text and "secret-internal-detail" in r.text


def test_bad_json_is_400(client: Any) -> None:
    r = client.post("/items", data=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status == 400


def test_registration_errors() -> None:
    app = BustAPI(static_folder=None)
    with pytest.raises(ValueError):
        app.route("/x/<bogus:y>")(lambda y: y)
    with pytest.raises(ValueError):
        app.route("/p/<path:p>/tail")(lambda p: p)

    @app.route("/dup")
    def dup() -> str:
        return ""

    with pytest.raises(ValueError):
        app.add_url_rule("/dup", "other", lambda: "", methods=["GET"])
    with pytest.raises(TypeError):
        app.route("/m", methods="GET")(lambda: "")  # type: ignore[arg-type]


def test_after_request_sees_error_responses(client_for: Any) -> None:
    app = BustAPI(static_folder=None)

    @app.route("/fails")
    def fails() -> str:
        abort(403)

    @app.route("/raises")
    def raises() -> str:
        raise ValueError("x")

    @app.after_request
    def stamp(response: Response) -> Response:
        response.headers["X-After"] = "yes"
        return response

    client = client_for(app)
    for path, status in (("/fails", 403), ("/raises", 500), ("/missing", 404)):
        r = client.get(path)
        assert r.status == status and r.headers.get("x-after") == "yes", path
