"""Class-based views (``View``, ``MethodView``), with Flask 3.1 as the reference."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
from conftest import Framework


def views_app(fw: Framework) -> Any:
    app = fw.App(__name__, static_folder=None)
    views = importlib.import_module(f"{fw.name}.views")
    created: list[int] = []

    class Hello(views.View):
        def __init__(self, greeting: str = "Hello") -> None:
            self.greeting = greeting
            created.append(1)

        def dispatch_request(self, name: str = "world") -> str:
            return f"{self.greeting} {name} ({fw.request.method})"

    class Shared(views.View):
        init_every_request = False
        methods = ["GET", "POST"]

        def __init__(self) -> None:
            self.calls = 0

        def dispatch_request(self) -> str:
            self.calls += 1
            return str(self.calls)

    def shout(f: Any) -> Any:
        def wrapper(**kw: Any) -> Any:
            return str(f(**kw)).upper()

        return wrapper

    class Decorated(views.View):
        decorators = [shout]

        def dispatch_request(self) -> str:
            return "quiet"

    class Items(views.MethodView):
        def get(self, item_id: Any = None) -> Any:
            return {"get": item_id}

        def post(self) -> Any:
            return {"post": fw.request.get_json()}, 201

        def delete(self, item_id: int) -> Any:
            return "", 204

    class ReadOnlyItems(Items):
        def post(self) -> Any:  # still there, but methods below limit what routes
            return "never"

    class Upper(Items):
        def put(self, item_id: int) -> Any:
            return {"put": item_id}

    app.add_url_rule("/hello/", view_func=Hello.as_view("hello"))
    app.add_url_rule("/hello/<name>", view_func=Hello.as_view("hello_name", "Hi"))
    app.add_url_rule("/shared", view_func=Shared.as_view("shared"))
    app.add_url_rule("/decorated", view_func=Decorated.as_view("decorated"))
    items = Items.as_view("items")
    app.add_url_rule("/items", view_func=items, methods=["GET", "POST"])
    app.add_url_rule("/items/<int:item_id>", view_func=items, methods=["GET", "DELETE"])
    app.add_url_rule("/upper/<int:item_id>", view_func=Upper.as_view("upper"))
    app.add_url_rule("/ro/<int:item_id>", view_func=ReadOnlyItems.as_view("ro"), methods=["GET"])
    app.created = created  # type: ignore[attr-defined]
    return app


REQUESTS = [
    ("GET", "/hello/", None),
    ("POST", "/hello/", None),  # View without methods: GET only
    ("GET", "/hello/ada", None),
    ("HEAD", "/hello/ada", None),
    ("GET", "/shared", None),
    ("POST", "/shared", None),
    ("GET", "/decorated", None),
    ("GET", "/items", None),
    ("POST", "/items", {"a": 1}),
    ("GET", "/items/7", None),
    ("DELETE", "/items/7", None),
    ("PUT", "/items/7", None),
    ("PUT", "/upper/3", None),
    ("GET", "/upper/3", None),
    ("POST", "/ro/3", None),
    ("GET", "/ro/3", None),
]


def exchange(name: str) -> list[tuple[Any, ...]]:
    app = views_app(Framework(name))
    c = app.test_client()
    out = []
    for method, path, body in REQUESTS:
        r = c.open(path, method=method, json=body)
        data = r.get_json() if r.is_json else r.get_data(as_text=True)
        if r.status_code >= 400:
            # Error pages differ on purpose: Werkzeug's are HTML, BustAPI's plain text.
            data = sorted((r.headers.get("Allow") or "").split(", "))
        out.append((method, path, r.status_code, data))
    return out


def test_class_based_views_answer_as_flask() -> None:
    assert exchange("bustapi") == exchange("flask")


def test_view_attributes_and_methods(fw: Framework) -> None:
    app = views_app(fw)
    view = app.view_functions["items"]
    assert view.__name__ == "items"
    assert view.view_class.__name__ == "Items"
    assert set(view.methods) == {"GET", "POST", "DELETE"}
    assert set(app.view_functions["upper"].methods) == {"GET", "POST", "DELETE", "PUT"}
    rules = {r.rule: set(r.methods) for r in app.url_map.iter_rules()}
    assert rules["/items"] == {"GET", "HEAD", "POST", "OPTIONS"}
    assert rules["/upper/<int:item_id>"] == {"GET", "HEAD", "POST", "DELETE", "PUT", "OPTIONS"}


def test_init_every_request(fw: Framework) -> None:
    app = views_app(fw)
    c = app.test_client()
    c.get("/hello/")
    c.get("/hello/")
    assert len(app.created) == 2  # a new instance per request
    assert [c.get("/shared").get_data(as_text=True) for _ in range(3)] == ["1", "2", "3"]


def test_async_method_view() -> None:
    from bustapi import BustAPI
    from bustapi.views import MethodView

    class Async(MethodView):
        async def get(self) -> Any:
            return {"async": True}

    app = BustAPI(__name__, static_folder=None)
    app.add_url_rule("/a", view_func=Async.as_view("a"))
    assert app.test_client().get("/a").json == {"async": True}


def test_method_view_in_a_blueprint(fw: Framework) -> None:
    views = importlib.import_module(f"{fw.name}.views")

    class User(views.MethodView):
        def get(self, uid: int) -> str:
            return f"{fw.request.endpoint} {fw.url_for('.user', uid=uid)}"

    app = fw.App(__name__, static_folder=None)
    bp = fw.Blueprint("api", __name__, url_prefix="/api")
    bp.add_url_rule("/user/<int:uid>", view_func=User.as_view("user"))
    app.register_blueprint(bp)
    assert app.test_client().get("/api/user/5").get_data(as_text=True) == ("api.user /api/user/5")


@pytest.mark.parametrize("kind", ["View", "MethodView"])
def test_exported_from_bustapi_views(kind: str) -> None:
    import bustapi.views

    assert hasattr(bustapi.views, kind)
