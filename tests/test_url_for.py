"""``url_for``, with Flask 3.1 as the reference: every converter, the query string,
``_external``/``_scheme``/``_anchor``/``_method``, blueprint-relative endpoints,
static endpoints and the messages of ``BuildError``. Each scenario is built on
Flask and on BustAPI from the same code and must give Flask's URL."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from conftest import Framework

U = uuid.UUID("12345678-1234-5678-1234-567812345678")


def url_app(fw: Framework, **config: Any) -> Any:
    app = fw.App(__name__, static_folder="static")
    app.config.update(config)

    @app.route("/s/<name>")
    def string(name: str) -> str:
        return name

    @app.route("/typed/<string:name>")
    def typed_string(name: str) -> str:
        return name

    @app.route("/i/<int:n>")
    def integer(n: int) -> str:
        return str(n)

    @app.route("/f/<float:x>")
    def floating(x: float) -> str:
        return str(x)

    @app.route("/u/<uuid:u>")
    def uuid_view(u: uuid.UUID) -> str:
        return str(u)

    @app.route("/p/<path:rest>")
    def path(rest: str) -> str:
        return rest

    @app.route("/two/<int:a>/and/<b>")
    def two(a: int, b: str) -> str:
        return f"{a} {b}"

    @app.route("/page/", defaults={"n": 1})
    @app.route("/page/<int:n>")
    def page(n: int) -> str:
        return str(n)

    def item() -> str:
        return fw.request.method

    # One endpoint, two rules told apart by method (_method picks one).
    app.add_url_rule("/item", "item_get", item, methods=["GET"])
    app.add_url_rule("/item/new", "item_get", item, methods=["POST"])

    @app.route("/", endpoint="home")
    def index() -> str:
        return "home"

    def plain() -> str:
        return "plain"

    app.add_url_rule("/plain", view_func=plain)
    app.add_url_rule("/named", "a_name", plain)
    return app


def build(
    fw: Framework, app: Any, endpoint: str, *, base_url: str = "http://localhost/", **values: Any
) -> str:
    with app.test_request_context("/", base_url=base_url):
        return str(fw.url_for(endpoint, **values))


CASES = [
    ("string", {"name": "ada"}),
    ("string", {"name": "a b/c?d#e%f"}),
    ("string", {"name": "zürich ünïcode"}),
    ("string", {"name": "!$&'()*+,:;=@~"}),
    ("typed_string", {"name": "x"}),
    ("integer", {"n": 42}),
    ("integer", {"n": "7"}),
    ("integer", {"n": 0}),
    ("floating", {"x": 1.5}),
    ("floating", {"x": 2}),
    ("uuid_view", {"u": U}),
    ("uuid_view", {"u": str(U)}),
    ("path", {"rest": "a/b/c.txt"}),
    ("path", {"rest": "dir with space/ü.txt"}),
    ("two", {"a": 1, "b": "x"}),
    ("page", {"n": 1}),
    ("page", {"n": 2}),
    ("page", {}),
    ("home", {}),
    ("plain", {}),
    ("a_name", {}),
    ("static", {"filename": "css/app.css"}),
    ("static", {"filename": "a b.css"}),
    # Values the rule does not take become the query string, in order, lists repeated
    # and None dropped.
    ("integer", {"n": 1, "q": "a b&c=d", "tags": ["x", "y"], "none": None, "flag": True}),
    ("string", {"name": "n", "next": "/path?x=1#frag", "ü": "ö"}),
    ("home", {"page": 2}),
]


@pytest.mark.parametrize(("endpoint", "values"), CASES)
def test_url_for_every_converter_and_the_query_string(
    endpoint: str, values: dict[str, Any]
) -> None:
    flask_fw, bustapi_fw = Framework("flask"), Framework("bustapi")
    want = build(flask_fw, url_app(flask_fw), endpoint, **values)
    got = build(bustapi_fw, url_app(bustapi_fw), endpoint, **values)
    assert got == want


def test_built_urls_lead_back_to_the_view(fw: Framework) -> None:
    """Each built URL, requested, reaches its view with the original value."""
    app = url_app(fw)
    c = app.test_client()
    for endpoint, values, body in [
        ("string", {"name": "a b?c#d"}, "a b?c#d"),
        ("string", {"name": "zürich"}, "zürich"),
        ("integer", {"n": 42}, "42"),
        ("floating", {"x": 1.5}, "1.5"),
        ("uuid_view", {"u": U}, str(U)),
        ("path", {"rest": "dir with space/ü.txt"}, "dir with space/ü.txt"),
        ("page", {}, "1"),
    ]:
        url = build(fw, app, endpoint, **values)
        r = c.get(url)
        assert (r.status_code, r.get_data(as_text=True)) == (200, body), url


@pytest.mark.parametrize(
    "options",
    [
        {"_external": True},
        {"_external": True, "_scheme": "https"},
        {"_scheme": "https"},  # a scheme implies _external in a request
        {"_anchor": "section 2"},
        {"_anchor": "a/b?c=d#e%"},
        {"_external": True, "_anchor": "top", "q": "1"},
        {"_external": False},
        {"_method": "GET"},
        {"_method": "POST"},
    ],
)
@pytest.mark.parametrize("base_url", ["http://localhost/", "https://example.test:8443/"])
def test_url_for_options(options: dict[str, Any], base_url: str) -> None:
    flask_fw, bustapi_fw = Framework("flask"), Framework("bustapi")
    endpoint = "item_get"
    want = build(flask_fw, url_app(flask_fw), endpoint, base_url=base_url, **options)
    got = build(bustapi_fw, url_app(bustapi_fw), endpoint, base_url=base_url, **options)
    assert got == want


def test_scheme_without_external_is_refused(fw: Framework) -> None:
    with pytest.raises(ValueError, match="_external"):
        build(fw, url_app(fw), "home", _scheme="https", _external=False)


def test_url_for_in_an_app_context_uses_server_name_and_application_root(
    fw: Framework,
) -> None:
    app = url_app(fw, SERVER_NAME="example.test", APPLICATION_ROOT="/app")
    with app.app_context():
        external = fw.url_for("integer", n=3)
        relative = fw.url_for("integer", n=3, _external=False)
        https = fw.url_for("integer", n=3, _scheme="https")
    assert (external, relative, https) == (
        "http://example.test/app/i/3",
        "/app/i/3",
        "https://example.test/app/i/3",
    )
    app.config["PREFERRED_URL_SCHEME"] = "https"
    with app.app_context():
        assert fw.url_for("home") == "https://example.test/app/"


def test_url_for_in_an_app_context_without_server_name_is_a_clear_error(
    fw: Framework,
) -> None:
    app = url_app(fw)
    with app.app_context(), pytest.raises(RuntimeError, match="SERVER_NAME"):
        fw.url_for("home")


def test_url_for_outside_any_context(fw: Framework) -> None:
    with pytest.raises(RuntimeError, match="application context"):
        fw.url_for("home")


def test_url_for_in_a_view_and_a_template(fw: Framework) -> None:
    app = url_app(fw)

    @app.route("/links")
    def links() -> Any:
        return {
            "view": fw.url_for("integer", n=5, q="x"),
            "template": fw.render_template_string(
                "{{ url_for('path', rest='a/b', _anchor='t') }}"
                "|{{ url_for('static', filename='app.css', _external=True) }}"
            ),
        }

    r = app.test_client().get("/links", base_url="http://example.test:8080")
    assert r.json == {
        "view": "/i/5?q=x",
        "template": "/p/a/b#t|http://example.test:8080/static/app.css",
    }


def test_url_defaults_and_value_preprocessors(fw: Framework) -> None:
    app = fw.App(__name__, static_folder=None)

    @app.url_defaults
    def add_lang(endpoint: str, values: dict[str, Any]) -> None:
        if endpoint == "about":
            values.setdefault("lang", fw.g.get("lang", "en"))

    @app.url_value_preprocessor
    def pull_lang(endpoint: Any, values: Any) -> None:
        if values and "lang" in values:
            fw.g.lang = values.pop("lang")

    @app.route("/<lang>/about")
    def about() -> str:
        return f"{fw.g.lang} {fw.url_for('about')} {fw.url_for('about', lang='de')}"

    assert app.test_client().get("/fr/about").get_data(as_text=True) == ("fr /fr/about /de/about")


# -- blueprints ------------------------------------------------------------------------------


def blueprint_app(fw: Framework) -> Any:
    app = fw.App(__name__, static_folder=None)
    parent = fw.Blueprint("parent", __name__, url_prefix="/parent")
    child = fw.Blueprint("child", __name__, url_prefix="/child", static_folder="static")

    @parent.route("/")
    def index() -> Any:
        return {
            "self": fw.url_for(".index"),
            "sibling": fw.url_for(".other", x=1),
            "child": fw.url_for("parent.child.leaf"),
            "app": fw.url_for("root"),
            "endpoint": fw.request.endpoint,
            "blueprint": fw.request.blueprint,
        }

    @parent.route("/other/<int:x>")
    def other(x: int) -> str:
        return str(x)

    @child.route("/leaf")
    def leaf() -> Any:
        return {
            "self": fw.url_for(".leaf"),
            "up": fw.url_for("parent.index"),
            "static": fw.url_for(".static", filename="x.txt"),
            "endpoint": fw.request.endpoint,
            "blueprint": fw.request.blueprint,
        }

    @app.route("/")
    def root() -> Any:
        return {"relative": fw.url_for(".root")}

    parent.register_blueprint(child)
    app.register_blueprint(parent)
    return app


@pytest.mark.parametrize("path", ["/parent/", "/parent/child/leaf", "/"])
def test_relative_endpoints_in_nested_blueprints(path: str) -> None:
    answers = [
        blueprint_app(Framework(name)).test_client().get(path).json for name in ("flask", "bustapi")
    ]
    assert answers[1] == answers[0]
    assert answers[0] is not None


def test_blueprint_url_map_and_endpoints(fw: Framework) -> None:
    app = blueprint_app(fw)
    rules = sorted(
        (r.rule, r.endpoint) for r in app.url_map.iter_rules() if not r.endpoint.endswith("static")
    )
    assert rules == [
        ("/", "root"),
        ("/parent/", "parent.index"),
        ("/parent/child/leaf", "parent.child.leaf"),
        ("/parent/other/<int:x>", "parent.other"),
    ]


# -- BuildError ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("endpoint", "values"),
    [
        ("integer", {}),  # a missing value
        ("two", {"a": 1}),
        ("intger", {"n": 1}),  # a typo: Werkzeug suggests the close endpoint
        ("nothing_like_it_at_all", {}),
        ("item_get", {"_method": "DELETE"}),  # no rule for that method
        ("integer", {"n": "not a number"}),  # the converter refuses the value
    ],
)
def test_build_error_messages_are_flasks(endpoint: str, values: dict[str, Any]) -> None:
    """The same exception as Flask, with Werkzeug's message and suggestion (a value
    refused by its converter is the converter's ValueError, as in Flask)."""
    errors = []
    for name in ("flask", "bustapi"):
        fw = Framework(name)
        with pytest.raises(Exception) as info:
            build(fw, url_app(fw), endpoint, **values)
        errors.append((type(info.value).__name__, str(info.value)))
    assert errors[1] == errors[0]


def test_build_error_is_a_lookup_error_and_names_the_endpoint() -> None:
    from bustapi import BuildError

    fw = Framework("bustapi")
    with pytest.raises(LookupError) as info:
        build(fw, url_app(fw), "integer")
    assert isinstance(info.value, BuildError)
    assert info.value.endpoint == "integer"


def test_url_build_error_handlers(fw: Framework) -> None:
    app = url_app(fw)

    def fallback(error: Exception, endpoint: str, values: dict[str, Any]) -> Any:
        return f"/fallback/{endpoint}" if endpoint.startswith("ext_") else None

    app.url_build_error_handlers.append(fallback)
    assert build(fw, app, "ext_thing") == "/fallback/ext_thing"
    with pytest.raises(LookupError):
        build(fw, app, "other_thing")
