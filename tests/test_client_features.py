"""The test client, request attributes, ``make_response``, ``stream_with_context``,
Werkzeug's HTTP exceptions and ``secure_filename``, with Flask 3.1 (and Werkzeug
3) as the reference."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import Framework, http_request

# -- the test client ------------------------------------------------------------------------


def client_app(fw: Framework) -> Any:
    app = fw.App(__name__, static_folder=None)
    app.secret_key = "k"

    @app.route("/set")
    def set_cookies() -> Any:
        r = fw.make_response("set")
        r.set_cookie("plain", "1")
        r.set_cookie("scoped", "2", path="/scoped")
        r.set_cookie("gone", "3")
        return r

    @app.route("/delete")
    def delete() -> Any:
        r = fw.make_response("deleted")
        r.delete_cookie("gone")
        return r

    @app.route("/cookies")
    @app.route("/scoped/cookies")
    def cookies() -> Any:
        return dict(fw.request.cookies)

    @app.route("/login", methods=["POST"])
    def login() -> Any:
        fw.session["user"] = fw.request.form["user"]
        return fw.redirect(fw.url_for("step", n=1))

    @app.route("/step/<int:n>")
    def step(n: int) -> Any:
        if n < 3:
            return fw.redirect(fw.url_for("step", n=n + 1), 307 if n == 2 else 302)
        return {"n": n, "user": fw.session.get("user"), "method": fw.request.method}

    @app.route("/form", methods=["POST"])
    def form() -> Any:
        # (request.files and multipart forms are issue 12's: uploads streamed to disk.)
        return {"form": fw.request.form.to_dict(flat=False), "ct": fw.request.mimetype}

    @app.route("/args")
    def args() -> Any:
        return {"args": fw.request.args.to_dict(flat=False), "qs": fw.request.query_string.decode()}

    @app.route("/remote")
    def remote() -> Any:
        return {"remote": fw.request.remote_addr, "route": fw.request.access_route}

    @app.route("/keep")
    def keep() -> str:
        fw.g.kept = "yes"
        fw.session["kept"] = "s"
        return "kept"

    return app


def test_cookie_jar_across_requests(fw: Framework) -> None:
    c = client_app(fw).test_client()
    c.get("/set")
    assert c.get("/cookies").json == {"plain": "1", "gone": "3"}
    assert c.get("/scoped/cookies").json == {"plain": "1", "gone": "3", "scoped": "2"}
    c.get("/delete")
    assert c.get("/cookies").json == {"plain": "1"}
    assert c.get_cookie("plain").value == "1"
    assert c.get_cookie("gone") is None
    c.set_cookie("mine", "x")
    assert c.get("/cookies").json == {"plain": "1", "mine": "x"}
    c.delete_cookie("mine")
    assert "mine" not in c.get("/cookies").json
    assert fw.App(__name__).test_client(use_cookies=False).get("/").status_code == 404


def test_follow_redirects_with_history(fw: Framework) -> None:
    c = client_app(fw).test_client()
    r = c.post("/login", data={"user": "ada"}, follow_redirects=True)
    # 302 turns the POST into a GET; 307 keeps the method (GET here).
    assert r.json == {"n": 3, "user": "ada", "method": "GET"}
    assert [h.status_code for h in r.history] == [302, 302, 307]
    assert [h.request.path for h in r.history] == ["/login", "/step/1", "/step/2"]
    assert r.request.path == "/step/3"
    no_follow = c.post("/login", data={"user": "ada"})
    assert (no_follow.status_code, no_follow.location) == (302, "/step/1")


def test_session_transaction(fw: Framework) -> None:
    c = client_app(fw).test_client()
    with c.session_transaction() as sess:
        assert dict(sess) == {}
        sess["user"] = "grace"
    assert c.get("/step/3").json["user"] == "grace"
    c.post("/login", data={"user": "ada"})
    with c.session_transaction() as sess:
        assert sess["user"] == "ada"


def test_with_client_keeps_the_last_request_context(fw: Framework) -> None:
    app = client_app(fw)
    with app.test_client() as c:
        c.get("/keep?x=1")
        assert fw.request.path == "/keep"
        assert fw.request.args["x"] == "1"
        assert fw.g.kept == "yes"
        assert fw.session["kept"] == "s"
        c.get("/args?y=2")
        assert fw.request.path == "/args"
    assert not fw.has_request_context()


def test_form_data_and_query_string(fw: Framework) -> None:
    c = client_app(fw).test_client()
    r = c.post("/form", data={"a": "1", "multi": ["x", "y"], "ü": "é"})
    assert r.json == {
        "form": {"a": ["1"], "multi": ["x", "y"], "ü": ["é"]},
        "ct": "application/x-www-form-urlencoded",
    }
    r = c.get("/args", query_string={"q": "a b", "l": ["1", "2"]})
    assert r.json == {"args": {"q": ["a b"], "l": ["1", "2"]}, "qs": "q=a+b&l=1&l=2"}
    with pytest.raises(ValueError, match="Query string is defined in the path and as an argument"):
        c.get("/args?x=1", query_string="y=2")


def test_environ_base_remote_addr(fw: Framework) -> None:
    app = client_app(fw)
    assert app.test_client().get("/remote").json == {"remote": "127.0.0.1", "route": ["127.0.0.1"]}
    c = app.test_client()
    c.environ_base["REMOTE_ADDR"] = "10.1.2.3"
    assert c.get("/remote").json["remote"] == "10.1.2.3"
    r = app.test_client().get("/remote", environ_base={"REMOTE_ADDR": "192.0.2.9"})
    assert r.json == {"remote": "192.0.2.9", "route": ["192.0.2.9"]}
    r = app.test_client().get("/remote", headers={"X-Forwarded-For": "203.0.113.1, 10.0.0.1"})
    assert r.json["route"] == ["203.0.113.1", "10.0.0.1"]


# -- request attributes ----------------------------------------------------------------------


def attrs_app(fw: Framework) -> Any:
    app = fw.App(__name__, static_folder=None)
    bp = fw.Blueprint("shop", __name__, url_prefix="/shop")

    def describe(**view_args: Any) -> Any:
        r = fw.request
        return {
            "url": r.url,
            "base_url": r.base_url,
            "url_root": r.url_root,
            "host_url": r.host_url,
            "host": r.host,
            "path": r.path,
            "full_path": r.full_path,
            "script_root": r.script_root,
            "scheme": r.scheme,
            "is_secure": r.is_secure,
            "method": r.method,
            "user_agent": r.user_agent.string,
            "user_agent_str": str(r.user_agent),
            "is_json": r.is_json,
            "mimetype": r.mimetype,
            "content_type": r.content_type,
            "content_length": r.content_length,
            "endpoint": r.endpoint,
            "view_args": {k: str(v) for k, v in (r.view_args or {}).items()},
            "blueprint": r.blueprint,
            "blueprints": list(r.blueprints),
            "args": r.args.to_dict(flat=False),
            "json": r.get_json(silent=True),
        }

    app.add_url_rule("/item/<int:n>", "item", describe, methods=["GET", "POST"])
    bp.add_url_rule("/p/<path:rest>", "product", describe)
    app.register_blueprint(bp)
    return app


@pytest.mark.parametrize(
    ("path", "kw"),
    [
        ("/item/5?a=1&a=2&b=x%20y", {}),
        ("/item/5", {"base_url": "https://example.test:8443"}),
        ("/item/5", {"base_url": "http://example.test"}),
        ("/item/5", {"method": "POST", "json": {"k": [1, 2]}}),
        ("/item/5", {"method": "POST", "data": "x", "content_type": "application/ld+json"}),
        ("/item/5", {"method": "POST", "data": b"{}", "content_type": "text/plain; charset=utf-8"}),
        ("/item/5", {"headers": {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"}}),
        ("/shop/p/a/b%20c.txt?q=a%2Bb", {}),
        ("/nowhere", {}),
    ],
)
def test_request_attributes_as_flask(path: str, kw: dict[str, Any]) -> None:
    answers = []
    for name in ("flask", "bustapi"):
        app = attrs_app(Framework(name))
        # Flask's client sends "Werkzeug/<version>" by default; BustAPI's sends none.
        kw.setdefault("headers", {}).setdefault("User-Agent", "test-agent/1")
        r = app.test_client().open(path, **kw)
        answers.append((r.status_code, r.get_json() if r.status_code == 200 else None))
    assert answers[1] == answers[0]


def test_request_attributes_over_a_socket(serve: Any) -> None:
    app = attrs_app(Framework("bustapi"))
    server = serve(app)
    host = f"127.0.0.1:{server.port}"
    r = http_request(server.port, "GET", "/shop/p/x?y=1", {"User-Agent": "curl/8"})
    assert r.json["url"] == f"http://{host}/shop/p/x?y=1"
    assert r.json["host_url"] == f"http://{host}/"
    assert (r.json["endpoint"], r.json["blueprint"], r.json["view_args"]) == (
        "shop.product",
        "shop",
        {"rest": "x"},
    )
    assert r.json["user_agent"] == "curl/8"


def test_user_agent_basics() -> None:
    """Werkzeug 2.1+ no longer parses User-Agent (browser/platform are None); BustAPI
    keeps the common basics (a deliberate difference), and the string is the same."""
    from bustapi import BustAPI, request

    app = BustAPI(__name__, static_folder=None)

    @app.route("/")
    def ua() -> Any:
        u = request.user_agent
        return {"s": u.string, "browser": u.browser, "platform": u.platform, "v": u.version}

    chrome = (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"
    )
    r = app.test_client().get("/", headers={"User-Agent": chrome})
    assert r.json == {"s": chrome, "browser": "chrome", "platform": "windows", "v": "126.0.0.0"}


# -- make_response and stream_with_context ---------------------------------------------------


def response_app(fw: Framework) -> Any:
    app = fw.App(__name__, static_folder=None)

    @app.route("/<kind>")
    def make(kind: str) -> Any:
        if kind == "plain":
            r = fw.make_response("body")
        elif kind == "status":
            r = fw.make_response("created", 201)
        elif kind == "headers":
            r = fw.make_response("h", {"X-A": "1"})
        elif kind == "all":
            r = fw.make_response("all", 202, [("X-B", "2")])
        elif kind == "tuple":
            r = fw.make_response(("tuple", 203))
        elif kind == "dict":
            r = fw.make_response({"a": 1})
        elif kind == "list":
            r = fw.make_response([1, 2])
        elif kind == "bytes":
            r = fw.make_response(b"\x00raw")
        elif kind == "empty":
            r = fw.make_response()
        elif kind == "template":
            r = fw.make_response(fw.render_template_string("<p>{{ x }}</p>", x="<y>"))
        elif kind == "response":
            r = fw.make_response(fw.Response("resp", status=418, mimetype="text/plain"))
        elif kind == "redirect":
            r = fw.make_response(fw.redirect("/elsewhere"))
        else:
            r = fw.make_response("?", 400)
        r.headers["X-Made"] = "yes"
        return r

    return app


@pytest.mark.parametrize(
    "kind",
    [
        "plain",
        "status",
        "headers",
        "all",
        "tuple",
        "dict",
        "list",
        "bytes",
        "empty",
        "template",
        "response",
        "redirect",
    ],
)
def test_make_response_as_flask(kind: str) -> None:
    answers = []
    for name in ("flask", "bustapi"):
        r = response_app(Framework(name)).test_client().get(f"/{kind}")
        headers = {
            k: r.headers.get(k) for k in ("Content-Type", "X-A", "X-B", "X-Made", "Location")
        }
        body: Any = r.get_json() if r.is_json else r.get_data()
        if r.status_code in (301, 302):
            body = None  # Werkzeug's redirect page differs in wording
        answers.append((r.status_code, headers, body))
    assert answers[1] == answers[0]


def stream_app(fw: Framework) -> Any:
    app = fw.App(__name__, static_folder=None)
    app.secret_key = "k"

    @app.route("/stream")
    def stream() -> Any:
        fw.session["who"] = "ada"

        def generate() -> Any:
            yield "path=" + fw.request.path
            yield " q=" + fw.request.args["q"]
            yield " who=" + fw.session["who"]

        return fw.Response(fw.stream_with_context(generate()), mimetype="text/plain")

    @app.route("/decorated")
    def decorated() -> Any:
        @fw.stream_with_context
        def generate() -> Any:
            yield "decorated "
            yield fw.request.args.get("q", "")

        return fw.Response(generate(), mimetype="text/plain")

    return app


def test_stream_with_context_as_flask(fw: Framework) -> None:
    c = stream_app(fw).test_client()
    assert c.get("/stream?q=1").get_data(as_text=True) == "path=/stream q=1 who=ada"
    assert c.get("/decorated?q=2").get_data(as_text=True) == "decorated 2"


def test_stream_with_context_over_a_socket(serve: Any) -> None:
    server = serve(stream_app(Framework("bustapi")))
    r = http_request(server.port, "GET", "/stream?q=socket")
    assert (r.status, r.text) == (200, "path=/stream q=socket who=ada")
    assert r.headers.get("transfer-encoding") == "chunked"
    r2 = http_request(server.port, "GET", "/decorated?q=after")
    assert r2.text == "decorated after"


def test_response_with_an_iterable_body(fw: Framework) -> None:
    app = fw.App(__name__, static_folder=None)

    @app.route("/list")
    def a_list() -> Any:
        return fw.Response(["a", b"b", "ü"], mimetype="text/plain")

    @app.route("/generator")
    def generator() -> Any:
        return fw.Response((str(i) for i in range(3)), status=201)

    @app.route("/replaced")
    def replaced() -> Any:
        r = fw.Response(iter(["never"]))
        r.set_data("replaced")
        return r

    c = app.test_client()
    assert c.get("/list").get_data(as_text=True) == "abü"
    r = c.get("/generator")
    assert (r.status_code, r.get_data(as_text=True)) == (201, "012")
    assert r.headers["Content-Type"] == "text/html; charset=utf-8"
    assert c.get("/replaced").get_data(as_text=True) == "replaced"


def test_stream_with_context_outside_a_request_is_an_error(fw: Framework) -> None:
    with pytest.raises(RuntimeError):
        fw.stream_with_context(iter(["x"]))


# -- Werkzeug's HTTP exceptions ----------------------------------------------------------------


def werkzeug_app(fw: Framework) -> Any:
    from werkzeug import exceptions as wz

    app = fw.App(__name__, static_folder=None)

    class PaymentRequired(wz.HTTPException):
        code = 402
        description = "Pay first."

    @app.route("/abort-int")
    def abort_int() -> Any:
        fw.abort(404)

    @app.route("/abort-desc")
    def abort_desc() -> Any:
        fw.abort(409, description="taken")

    @app.route("/raise-wz")
    def raise_wz() -> Any:
        raise wz.Forbidden("no entry")

    @app.route("/raise-custom")
    def raise_custom() -> Any:
        raise PaymentRequired()

    @app.route("/wz-abort")
    def wz_abort() -> Any:
        wz.abort(410)

    @app.route("/abort-response")
    def abort_response() -> Any:
        fw.abort(fw.Response("custom body", status=451, mimetype="text/plain"))

    @app.route("/unhandled-wz")
    def unhandled_wz() -> Any:
        raise wz.ImATeapot()

    @app.errorhandler(wz.NotFound)
    def not_found(e: Any) -> Any:
        return f"handled {e.code} {type(e).__name__}", e.code

    @app.errorhandler(403)
    def forbidden(e: Any) -> Any:
        return f"handled 403 {e.description}", 403

    @app.errorhandler(PaymentRequired)
    def payment(e: Any) -> Any:
        return f"handled 402 {e.description}", 402

    @app.errorhandler(409)
    def conflict(e: Any) -> Any:
        return f"handled 409 {e.description}", 409

    @app.errorhandler(wz.Gone)
    def gone(e: Any) -> Any:
        return "handled 410", 410

    return app


@pytest.mark.parametrize(
    "path",
    [
        "/abort-int",
        "/abort-desc",
        "/raise-wz",
        "/raise-custom",
        "/wz-abort",
        "/abort-response",
        "/no-such-route",
    ],
)
def test_werkzeug_http_exceptions_and_handlers_as_flask(path: str) -> None:
    answers = []
    for name in ("flask", "bustapi"):
        r = werkzeug_app(Framework(name)).test_client().get(path)
        answers.append((r.status_code, r.get_data(as_text=True)))
    assert answers[1] == answers[0]


def test_an_unhandled_werkzeug_exception_keeps_its_status(fw: Framework) -> None:
    r = werkzeug_app(fw).test_client().get("/unhandled-wz")
    assert r.status_code == 418


def test_http_exception_handler_catches_every_http_error(fw: Framework) -> None:
    from werkzeug.exceptions import HTTPException as WerkzeugHTTPException

    app = fw.App(__name__, static_folder=None)

    @app.route("/a")
    def a() -> Any:
        fw.abort(400)

    @app.errorhandler(WerkzeugHTTPException)
    def any_http(e: Any) -> Any:
        return f"any {e.code}", e.code

    c = app.test_client()
    assert (c.get("/a").status_code, c.get("/a").get_data(as_text=True)) == (400, "any 400")
    assert c.get("/nothing").get_data(as_text=True) == "any 404"


# -- secure_filename -------------------------------------------------------------------------


NAMES = [
    "My cool movie.mov",
    "../../../etc/passwd",
    "i contain cool \xfcml\xe4uts.txt",
    "..",
    "...hidden",
    "__init__.py",
    "a/b\\c.txt",
    "  spaced   out  .txt",
    "résumé (final) [v2].pdf",
    "日本語.txt",
    "CON.txt",
    "file\x00name.txt",
    "tab\tand\nnewline.txt",
    "semi;colon&amp.txt",
    "",
    "ﬁnancial.pdf",  # a ligature NFKD splits into "fi"
    "-leading-dash",
]


@pytest.mark.parametrize("name", NAMES)
def test_secure_filename_as_werkzeug(name: str) -> None:
    import bustapi
    import bustapi.utils
    from werkzeug.utils import secure_filename as werkzeug_secure_filename

    assert bustapi.secure_filename is bustapi.utils.secure_filename
    assert bustapi.secure_filename(name) == werkzeug_secure_filename(name)
