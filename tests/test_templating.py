"""Jinja2 templates, with Flask 3.1 as the reference: autoescaping by extension,
context processors, filters/globals/tests, the names every template sees,
blueprint template folders, reloading in debug and streamed templates."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import Framework, http_request

TEMPLATES = {
    "page.html": "{{ value }}",
    "page.htm": "{{ value }}",
    "page.xml": "{{ value }}",
    "page.xhtml": "{{ value }}",
    "page.svg": "{{ value }}",
    "page.txt": "{{ value }}",
    "page.j2": "{{ value }}",
    "names.html": (
        "{{ request.path }}|{{ request.args.q }}|{{ session.user }}|{{ g.who }}"
        "|{{ config.SITE }}|{{ url_for('show', name='x y') }}"
        "|{{ get_flashed_messages() }}"
    ),
    "base.html": "<title>{% block title %}{% endblock %}</title>{% block body %}{% endblock %}",
    "child.html": (
        '{% extends "base.html" %}{% block title %}{{ title }}{% endblock %}'
        "{% block body %}{% for i in items %}<li>{{ i }}</li>{% endfor %}{% endblock %}"
    ),
    "macros.html": "{% macro hello(name) %}Hello {{ name }}!{% endmacro %}{% set answer = 42 %}",
    "shared.html": "app's shared",
    "stream.html": "{% for i in range(n) %}<p>{{ i }} {{ request.path }}</p>{% endfor %}",
    "json.html": "<script>var data = {{ data|tojson }};</script>",
}

BP_TEMPLATES = {
    "bp/only.html": "blueprint only {{ value }}",
    "shared.html": "blueprint's shared",
}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    for folder, files in (("templates", TEMPLATES), ("bp_templates", BP_TEMPLATES)):
        for name, text in files.items():
            path = tmp_path / folder / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    return tmp_path


def template_app(fw: Framework, root: Path) -> Any:
    app = fw.App(__name__, static_folder=None, root_path=str(root))
    app.config.update(SECRET_KEY="k", SITE="Example")
    bp = fw.Blueprint("bp", __name__, template_folder="bp_templates", root_path=str(root))

    @app.route("/show/<name>")
    def show(name: str) -> str:
        return fw.render_template(name, value=fw.request.args.get("v", "<b>&'\"</b>"))

    @app.route("/names")
    def names() -> str:
        fw.session["user"] = "ada"
        fw.g.who = "grace"
        fw.flash("hi <there>")
        return fw.render_template("names.html")

    @app.route("/string")
    def string() -> str:
        return fw.render_template_string("{{ value }}|{{ value|safe }}", value="<i>")

    @app.route("/child")
    def child() -> str:
        return fw.render_template("child.html", title="T<", items=["a", "<b>"])

    @app.route("/stream")
    def stream() -> Any:
        return fw.stream_template("stream.html", n=int(fw.request.args.get("n", "3")))

    @app.route("/stream-string")
    def stream_string() -> Any:
        return fw.stream_template_string("{{ a }}-{{ request.method }}", a="<x>")

    @app.route("/json")
    def json_view() -> str:
        return fw.render_template("json.html", data={"html": "</script><b>&'", "n": [1, 2.5]})

    @app.route("/list")
    def first_found() -> str:
        return fw.render_template(["missing.html", "page.txt"], value="<first found>")

    @bp.route("/bp")
    def bp_view() -> str:
        return (
            fw.render_template("bp/only.html", value="<v>")
            + "|"
            + (fw.render_template("shared.html"))
        )

    app.register_blueprint(bp)
    return app


def both(root: Path, path: str, **kw: Any) -> list[tuple[int, str, str]]:
    out = []
    for name in ("flask", "bustapi"):
        r = template_app(Framework(name), root).test_client().get(path, **kw)
        out.append((r.status_code, r.headers.get("Content-Type"), r.get_data(as_text=True)))
    return out


@pytest.mark.parametrize(
    "name", ["page.html", "page.htm", "page.xml", "page.xhtml", "page.svg", "page.txt", "page.j2"]
)
def test_autoescape_by_extension_as_flask(root: Path, name: str) -> None:
    flask_answer, bustapi_answer = both(root, f"/show/{name}")
    assert bustapi_answer == flask_answer
    escaped = flask_answer[2] == "&lt;b&gt;&amp;&#39;&#34;&lt;/b&gt;"
    assert escaped == (name.rsplit(".", 1)[1] in ("html", "htm", "xml", "xhtml", "svg"))


@pytest.mark.parametrize("path", ["/string", "/child", "/json", "/list", "/bp", "/names?q=%3Cq%3E"])
def test_rendering_as_flask(root: Path, path: str) -> None:
    flask_answer, bustapi_answer = both(root, path)
    assert bustapi_answer == flask_answer
    assert flask_answer[0] == 200


def test_names_every_template_sees(fw: Framework, root: Path) -> None:
    r = template_app(fw, root).test_client().get("/names?q=%3Cq%3E")
    assert r.get_data(as_text=True) == (
        "/names|&lt;q&gt;|ada|grace|Example|/show/x%20y|[&#39;hi &lt;there&gt;&#39;]"
    )


def test_blueprint_templates_come_after_the_apps(fw: Framework, root: Path) -> None:
    assert template_app(fw, root).test_client().get("/bp").get_data(as_text=True) == (
        "blueprint only &lt;v&gt;|app's shared"
    )


def test_a_missing_template_is_a_500_and_names_it(fw: Framework, root: Path) -> None:
    app = template_app(fw, root)
    app.testing = True
    from jinja2 import TemplateNotFound

    with pytest.raises(TemplateNotFound, match="nope.html"):
        app.test_client().get("/show/nope.html")
    app.testing = False
    assert app.test_client().get("/show/nope.html").status_code == 500


def test_streamed_template_as_flask(root: Path) -> None:
    flask_answer, bustapi_answer = both(root, "/stream?n=3")
    assert bustapi_answer == flask_answer
    assert flask_answer[2] == "<p>0 /stream</p><p>1 /stream</p><p>2 /stream</p>"
    flask_answer, bustapi_answer = both(root, "/stream-string")
    assert bustapi_answer == flask_answer


def test_streamed_template_over_a_socket_is_chunked_with_the_request_context(
    serve: Any, root: Path
) -> None:
    server = serve(template_app(Framework("bustapi"), root))
    r = http_request(server.port, "GET", "/stream?n=500")
    assert r.status == 200
    assert r.headers.get("transfer-encoding") == "chunked"
    assert r.headers["content-type"].startswith("text/html")
    assert r.text == "".join(f"<p>{i} /stream</p>" for i in range(500))


def test_context_processors_app_and_blueprint_scoped(fw: Framework) -> None:
    app = fw.App(__name__, static_folder=None)
    bp = fw.Blueprint("bp", __name__, url_prefix="/bp")

    @app.context_processor
    def app_values() -> dict[str, Any]:
        return {"site": "S", "who": "app"}

    @bp.context_processor
    def bp_values() -> dict[str, Any]:
        return {"who": "bp", "section": "B"}

    source = "{{ site }} {{ who }} {{ section|default('-') }} {{ given|default('-') }}"

    @app.route("/")
    def index() -> str:
        return fw.render_template_string(source)

    @bp.route("/")
    def bp_index() -> str:
        return fw.render_template_string(source)

    @bp.route("/given")
    def bp_given() -> str:
        # A value passed to render wins over a context processor's.
        return fw.render_template_string(source, who="caller", given="g")

    app.register_blueprint(bp)
    c = app.test_client()
    assert c.get("/").get_data(as_text=True) == "S app - -"
    assert c.get("/bp/").get_data(as_text=True) == "S bp B -"
    assert c.get("/bp/given").get_data(as_text=True) == "S caller B g"


def test_filters_globals_and_tests(fw: Framework) -> None:
    app = fw.App(__name__, static_folder=None)

    @app.template_filter()
    def reverse(s: str) -> str:
        return s[::-1]

    @app.template_filter("double")
    def twice(n: int) -> int:
        return n * 2

    @app.template_global()
    def greet(name: str) -> str:
        return f"hello {name}"

    @app.template_test()
    def big(n: int) -> bool:
        return n > 100

    @app.route("/")
    def index() -> str:
        return fw.render_template_string(
            "{{ 'abc'|reverse }} {{ 4|double }} {{ greet('x') }} {{ 500 is big }}"
            " {{ late('y') }} {{ 'q'|late_filter }}"
        )

    # Registered after the environment exists: still seen.
    with app.app_context():
        fw.render_template_string("warm up")
    app.add_template_global(lambda s: f"late {s}", name="late")
    app.add_template_filter(lambda s: f"lf {s}", name="late_filter")
    assert app.test_client().get("/").get_data(as_text=True) == ("cba 8 hello x True late y lf q")


def test_templates_in_an_app_context_without_a_request(fw: Framework, root: Path) -> None:
    app = template_app(fw, root)
    with app.app_context():
        fw.g.who = "cli"
        text = fw.render_template("child.html", title=fw.g.who, items=[1])
        assert fw.render_template_string("{{ g.who }} {{ config.SITE }}") == "cli Example"
    assert text == "<title>cli</title><li>1</li>"


def test_get_template_attribute(fw: Framework, root: Path) -> None:
    app = template_app(fw, root)
    with app.app_context():
        hello = fw.get_template_attribute("macros.html", "hello")
        assert str(hello("<you>")) == "Hello &lt;you&gt;!"
        assert fw.get_template_attribute("macros.html", "answer") == 42


@pytest.mark.parametrize(
    ("debug", "auto_reload", "reloads"),
    [(True, None, True), (False, None, False), (False, True, True), (True, False, False)],
)
def test_templates_reload_in_debug(
    fw: Framework, root: Path, debug: bool, auto_reload: Any, reloads: bool
) -> None:
    app = template_app(fw, root)
    # (In this order: Flask's debug setter creates the Jinja environment, which then
    # keeps the TEMPLATES_AUTO_RELOAD it saw.)
    if auto_reload is not None:
        app.config["TEMPLATES_AUTO_RELOAD"] = auto_reload
    app.debug = debug
    c = app.test_client()
    assert c.get("/show/page.txt?v=1").get_data(as_text=True) == "1"
    page = root / "templates" / "page.txt"
    page.write_text("changed {{ value }}")
    later = time.time() + 10  # a different mtime, even on a coarse clock
    os.utime(page, (later, later))
    expected = "changed 2" if reloads else "2"
    assert c.get("/show/page.txt?v=2").get_data(as_text=True) == expected


def test_setting_debug_after_first_render_turns_reloading_on(fw: Framework, root: Path) -> None:
    app = template_app(fw, root)
    c = app.test_client()
    c.get("/show/page.txt?v=1")
    app.debug = True
    page = root / "templates" / "page.txt"
    page.write_text("changed {{ value }}")
    later = time.time() + 10
    os.utime(page, (later, later))
    assert c.get("/show/page.txt?v=2").get_data(as_text=True) == "changed 2"


def test_dotted_lookups_on_dicts_and_others_resolve_as_in_flask() -> None:
    """``{{ d.name }}`` on a plain dict looks the item up first (a fast path): the
    page must come out as Jinja's attribute-then-item order makes it in Flask, for
    dict methods, missing keys, odd keys, dict subclasses and objects alike."""

    class Row(dict):  # type: ignore[type-arg]
        name = "the class attribute"

    class Obj:
        name = "attr"

        def __getitem__(self, key: str) -> str:
            return f"item {key}"

    source = (
        "{{ d.name }}|{{ d.items is defined }}|{{ d.keys()|list }}|{{ d.missing is defined }}"
        "|{{ d.get('name') }}|{{ d.__class__.__name__ }}|{{ sub.name }}|{{ sub.other }}"
        "|{{ obj.name }}|{{ obj.other }}|{{ notdict.real }}|{{ d['items'] }}"
        "|{% for row in rows %}{{ row.id }}:{{ row.name }};{% endfor %}"
    )
    context = {
        "d": {"name": "item", "items": "an item called items"},
        "sub": Row(name="item", other="sub item"),
        "obj": Obj(),
        "notdict": 1,
        "rows": [{"id": i, "name": f"<n{i}>"} for i in range(3)],
    }
    pages = []
    for name in ("flask", "bustapi"):
        fw = Framework(name)
        app = fw.App(__name__, static_folder=None)
        with app.test_request_context("/"):
            pages.append(fw.render_template_string(source, **context))
    assert pages[1] == pages[0]
    assert pages[1].startswith("item|True|")
    assert "0:&lt;n0&gt;;1:&lt;n1&gt;;" in pages[1]
