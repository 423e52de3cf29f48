"""Blueprints, with Flask 3.1 as the reference: nesting (prefixes, endpoint names),
hooks and error handlers scoped to their blueprint, ``app_*`` variants that reach
the whole app, registering one blueprint twice; and blueprint static folders,
which are engine-served mounts answering Range and conditional requests over a
real socket."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from conftest import Framework, file_slices, http_request


def nested_app(fw: Framework, events: list[str]) -> Any:
    """app ⊃ parent (/parent) ⊃ child (/child), each with hooks and error handlers
    that write into ``events``."""
    app = fw.App(__name__, static_folder=None)
    parent = fw.Blueprint("parent", __name__, url_prefix="/parent")
    child = fw.Blueprint("child", __name__, url_prefix="/child")
    other = fw.Blueprint("other", __name__)

    for scope, target in (("app", app), ("parent", parent), ("child", child), ("other", other)):

        def hooks(scope: str = scope, target: Any = target) -> None:
            @target.before_request
            def before() -> None:
                events.append(f"before:{scope}")

            @target.after_request
            def after(response: Any) -> Any:
                events.append(f"after:{scope}")
                return response

            @target.teardown_request
            def teardown(exc: Any) -> None:
                events.append(f"teardown:{scope}:{type(exc).__name__ if exc else None}")

            @target.url_value_preprocessor
            def preprocess(endpoint: Any, values: Any) -> None:
                events.append(f"preprocess:{scope}")

        hooks()

    @app.route("/")
    def index() -> str:
        events.append("view:index")
        return "index"

    @parent.route("/")
    def parent_index() -> str:
        events.append("view:parent_index")
        return "parent"

    @parent.route("/missing")
    def parent_missing() -> str:
        fw.abort(404)

    @parent.route("/key")
    def parent_key() -> str:
        raise KeyError("parent")

    @child.route("/leaf/<int:n>")
    def leaf(n: int) -> Any:
        events.append("view:leaf")
        return {
            "n": n,
            "endpoint": fw.request.endpoint,
            "blueprint": fw.request.blueprint,
            "blueprints": list(fw.request.blueprints),
        }

    @child.route("/missing")
    def child_missing() -> str:
        fw.abort(404)

    @child.route("/key")
    def child_key() -> str:
        raise KeyError("child")

    @child.route("/teapot")
    def child_teapot() -> str:
        fw.abort(418)

    @other.route("/other/missing")
    def other_missing() -> str:
        fw.abort(404)

    @other.route("/other/key")
    def other_key() -> str:
        raise KeyError("other")

    @parent.errorhandler(404)
    def parent_404(e: Any) -> Any:
        return "parent 404", 404

    @parent.errorhandler(KeyError)
    def parent_key_error(e: Any) -> Any:
        return f"parent KeyError {e}", 500

    @child.errorhandler(KeyError)
    def child_key_error(e: Any) -> Any:
        return f"child KeyError {e}", 409

    # An app-wide handler registered by a blueprint.
    @other.app_errorhandler(418)
    def teapot(e: Any) -> Any:
        return "app-wide teapot from other", 418

    @app.errorhandler(404)
    def app_404(e: Any) -> Any:
        return "app 404", 404

    parent.register_blueprint(child)
    app.register_blueprint(parent)
    app.register_blueprint(other)
    return app


def run(name: str, path: str) -> tuple[int, Any, list[str]]:
    events: list[str] = []
    r = nested_app(Framework(name), events).test_client().get(path)
    body = r.json if r.is_json else r.get_data(as_text=True)
    return r.status_code, body, events


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/parent/",
        "/parent/child/leaf/3",
        "/parent/missing",  # aborted in parent: parent's 404 handler
        "/parent/child/missing",  # aborted in child: no child handler, parent's
        "/other/missing",  # no handler in other: the app's
        "/nowhere",  # no route: no blueprint, the app's handler
        "/parent/nowhere",  # no route under a prefix: still the app's (Flask)
        "/parent/key",
        "/parent/child/key",  # the innermost handler wins
        "/parent/child/teapot",  # app_errorhandler registered by another blueprint
    ],
)
def test_nested_blueprints_hooks_and_error_handlers_as_flask(path: str) -> None:
    """Status, body and the order of every hook, as Flask runs them."""
    assert run("bustapi", path) == run("flask", path)


def test_an_unhandled_error_in_another_blueprint_is_a_500_with_teardown(fw: Framework) -> None:
    events: list[str] = []
    app = nested_app(fw, events)
    r = app.test_client().get("/other/key")
    assert r.status_code == 500
    assert "teardown:other:KeyError" in events
    assert "teardown:app:KeyError" in events


def test_nested_endpoint_names_and_prefixes(fw: Framework) -> None:
    app = nested_app(fw, [])
    rules = sorted((r.rule, r.endpoint) for r in app.url_map.iter_rules())
    assert rules == [
        ("/", "index"),
        ("/other/key", "other.other_key"),
        ("/other/missing", "other.other_missing"),
        ("/parent/", "parent.parent_index"),
        ("/parent/child/key", "parent.child.child_key"),
        ("/parent/child/leaf/<int:n>", "parent.child.leaf"),
        ("/parent/child/missing", "parent.child.child_missing"),
        ("/parent/child/teapot", "parent.child.child_teapot"),
        ("/parent/key", "parent.parent_key"),
        ("/parent/missing", "parent.parent_missing"),
    ]
    assert sorted(app.blueprints) == ["other", "parent", "parent.child"]
    assert app.test_client().get("/parent/child/leaf/3").json == {
        "n": 3,
        "endpoint": "parent.child.leaf",
        "blueprint": "parent.child",
        "blueprints": ["parent.child", "parent"],
    }


@pytest.mark.parametrize(
    ("bp_prefix", "register_prefix", "child_prefix", "rule"),
    [
        (None, None, None, "/x"),
        ("/a", None, None, "/a/x"),
        ("/a/", None, "/b/", "/a/b/x"),
        ("/a", "/override", "/b", "/override/b/x"),
        (None, "/r", "/b", "/r/b/x"),
        ("/a", None, "", "/a/x"),
    ],
)
def test_prefixes_combine_as_in_flask(
    fw: Framework, bp_prefix: Any, register_prefix: Any, child_prefix: Any, rule: str
) -> None:
    app = fw.App(__name__, static_folder=None)
    parent = fw.Blueprint("parent", __name__, url_prefix=bp_prefix)
    child = fw.Blueprint("child", __name__, url_prefix=child_prefix)

    @child.route("/x")
    def x() -> str:
        return "x"

    parent.register_blueprint(child)
    options = {} if register_prefix is None else {"url_prefix": register_prefix}
    app.register_blueprint(parent, **options)
    assert [r.rule for r in app.url_map.iter_rules() if r.endpoint == "parent.child.x"] == [rule]
    assert app.test_client().get(rule).get_data(as_text=True) == "x"


def test_one_blueprint_registered_twice_under_two_names(fw: Framework) -> None:
    app = fw.App(__name__, static_folder=None)
    bp = fw.Blueprint("api", __name__)

    @bp.route("/v")
    def v() -> Any:
        return {"endpoint": fw.request.endpoint, "self": fw.url_for(".v")}

    app.register_blueprint(bp, url_prefix="/v1")
    app.register_blueprint(bp, url_prefix="/v2", name="api2")
    with pytest.raises(ValueError, match="already registered"):
        app.register_blueprint(bp, url_prefix="/v3")
    c = app.test_client()
    assert c.get("/v1/v").json == {"endpoint": "api.v", "self": "/v1/v"}
    assert c.get("/v2/v").json == {"endpoint": "api2.v", "self": "/v2/v"}


def test_app_wide_hooks_and_template_helpers_from_a_blueprint(fw: Framework) -> None:
    app = fw.App(__name__, static_folder=None)
    bp = fw.Blueprint("bp", __name__)
    seen: list[str] = []

    @bp.before_app_request
    def before() -> None:
        seen.append("before_app_request")

    @bp.after_app_request
    def after(r: Any) -> Any:
        r.headers["X-After"] = "yes"
        return r

    @bp.app_context_processor
    def inject() -> dict[str, Any]:
        return {"site": "BustSite"}

    @bp.app_template_filter("shout")
    def shout(s: str) -> str:
        return s.upper() + "!"

    @bp.app_template_global()
    def answer() -> int:
        return 42

    @bp.app_template_test("even")
    def even(n: int) -> bool:
        return n % 2 == 0

    @app.route("/")
    def index() -> str:
        return fw.render_template_string(
            "{{ site }} {{ 'hi'|shout }} {{ answer() }} {{ 4 is even }}"
        )

    app.register_blueprint(bp)
    r = app.test_client().get("/")
    assert r.get_data(as_text=True) == "BustSite HI! 42 True"
    assert r.headers["X-After"] == "yes"
    assert seen == ["before_app_request"]


def test_blueprint_setup_after_registration_is_refused(fw: Framework) -> None:
    app = fw.App(__name__, static_folder=None)
    bp = fw.Blueprint("bp", __name__)

    @bp.route("/")
    def index() -> str:
        return ""

    app.register_blueprint(bp)
    with pytest.raises(AssertionError, match="can no longer be called"):

        @bp.route("/late")
        def late() -> str:
            return ""


@pytest.mark.parametrize("bad", ["", "a.b"])
def test_blueprint_names_are_checked(fw: Framework, bad: str) -> None:
    with pytest.raises(ValueError):
        fw.Blueprint(bad, __name__)


# -- static folders over a real socket --------------------------------------------------------


@pytest.fixture
def static_site(tmp_path: Path) -> tuple[Path, bytes]:
    content = hashlib.sha256(b"seed").digest() * 4096  # 128 KiB, not repetitive per byte
    (tmp_path / "static").mkdir()
    (tmp_path / "static" / "video.mp4").write_bytes(content)
    (tmp_path / "static" / "a b.txt").write_text("spaced")
    return tmp_path, content


def static_blueprint_app(root: Path) -> Any:
    from bustapi import Blueprint, BustAPI, url_for

    app = BustAPI(__name__, static_folder=None, root_path=str(root))
    outer = Blueprint("outer", __name__, url_prefix="/outer", root_path=str(root))
    media = Blueprint(
        "media", __name__, static_folder="static", url_prefix="/media", root_path=str(root)
    )
    assets = Blueprint(
        "assets", __name__, static_folder="static", static_url_path="/files", root_path=str(root)
    )

    @app.route("/links")
    def links() -> Any:
        return {
            "media": url_for("outer.media.static", filename="video.mp4"),
            "assets": url_for("assets.static", filename="a b.txt"),
        }

    outer.register_blueprint(media)
    app.register_blueprint(outer)
    app.register_blueprint(assets, url_prefix="/assets")
    return app


def test_blueprint_static_answers_a_range_with_206_over_a_socket(
    serve: Any, static_site: tuple[Path, bytes]
) -> None:
    root, content = static_site
    server = serve(static_blueprint_app(root))
    links = http_request(server.port, "GET", "/links").json
    assert links == {
        "media": "/outer/media/static/video.mp4",
        "assets": "/assets/files/a%20b.txt",
    }
    r = http_request(server.port, "GET", links["media"], {"Range": "bytes=1000-1999"})
    assert r.status == 206
    assert r.headers["content-range"] == f"bytes 1000-1999/{len(content)}"
    assert file_slices(r, content) == [(1000, 1999)]
    assert r.headers["accept-ranges"] == "bytes"

    # Several ranges: multipart/byteranges.
    r = http_request(server.port, "GET", links["media"], {"Range": "bytes=0-9,-10"})
    assert r.status == 206
    assert file_slices(r, content) == [(0, 9), (len(content) - 10, len(content) - 1)]

    # Out of range: 416 with the size.
    r = http_request(server.port, "GET", links["media"], {"Range": f"bytes={len(content)}-"})
    assert r.status == 416
    assert r.headers["content-range"] == f"bytes */{len(content)}"

    r = http_request(server.port, "GET", links["assets"])
    assert (r.status, r.body) == (200, b"spaced")


def test_blueprint_static_revalidates_with_304(serve: Any, static_site: tuple[Path, bytes]) -> None:
    root, content = static_site
    server = serve(static_blueprint_app(root))
    path = "/outer/media/static/video.mp4"
    first = http_request(server.port, "GET", path)
    assert first.status == 200 and first.body == content
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    r = http_request(server.port, "GET", path, {"If-None-Match": etag})
    assert (r.status, r.body) == (304, b"")
    assert r.headers["etag"] == etag
    r = http_request(server.port, "GET", path, {"If-Modified-Since": modified})
    assert r.status == 304
    r = http_request(server.port, "GET", path, {"If-None-Match": '"other"'})
    assert r.status == 200
    # If-Range with the current validator: the range; with a stale one: the whole file.
    r = http_request(server.port, "GET", path, {"Range": "bytes=0-0", "If-Range": etag})
    assert (r.status, r.body) == (206, content[:1])
    r = http_request(server.port, "GET", path, {"Range": "bytes=0-0", "If-Range": '"stale"'})
    assert r.status == 200 and len(r.body) == len(content)


def test_blueprint_static_is_safe_and_not_found_is_404(
    serve: Any, static_site: tuple[Path, bytes]
) -> None:
    root, _ = static_site
    (root / "secret.txt").write_text("secret")
    server = serve(static_blueprint_app(root))
    for path in (
        "/outer/media/static/../../../secret.txt",
        "/outer/media/static/%2e%2e/secret.txt",
        "/outer/media/static/nope.mp4",
    ):
        r = http_request(server.port, "GET", path)
        assert r.status in (400, 404), path
        assert b"secret" not in r.body


def test_blueprint_static_max_age_follows_the_config(
    serve: Any, static_site: tuple[Path, bytes]
) -> None:
    root, _ = static_site
    app = static_blueprint_app(root)
    app.config.from_mapping(SEND_FILE_MAX_AGE_DEFAULT=600)
    server = serve(app)
    r = http_request(server.port, "GET", "/assets/files/a%20b.txt")
    assert "max-age=600" in r.headers["cache-control"]


def test_a_blueprint_static_folder_at_the_root_is_refused(tmp_path: Path) -> None:
    """Flask would route /<path:filename> for it and shadow nothing until a request
    misses; BustAPI's engine would serve it ahead of every route, so it refuses."""
    from bustapi import Blueprint, BustAPI

    app = BustAPI(__name__, static_folder=None)
    bp = Blueprint("bp", __name__, static_folder=str(tmp_path), static_url_path="/")
    with pytest.raises(ValueError, match="shadowing"):
        app.register_blueprint(bp)
