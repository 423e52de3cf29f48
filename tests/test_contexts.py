"""Application and request contexts, with Flask 3.1 as the reference: ``g``,
``current_app``, ``request`` and ``session`` in views, hooks, error handlers and
teardown; pushing contexts by hand; teardown order and the exception it is given;
``after_this_request``; ``copy_current_request_context``; and isolation between
requests running at the same time on the engine's view threads."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from conftest import Framework, http_request


def context_app(fw: Framework, events: list[Any]) -> Any:
    app = fw.App(__name__, static_folder=None)
    app.secret_key = "k"

    def snapshot(where: str) -> None:
        events.append(
            (
                where,
                fw.has_app_context(),
                fw.has_request_context(),
                fw.current_app.name if fw.has_app_context() else None,
                fw.request.path if fw.has_request_context() else None,
                fw.g.get("trail", []) if fw.has_app_context() else None,
            )
        )

    @app.before_request
    def before() -> None:
        fw.g.trail = ["before"]
        fw.session["seen"] = fw.session.get("seen", 0) + 1
        snapshot("before_request")

    @app.after_request
    def after(response: Any) -> Any:
        fw.g.trail.append("after")
        snapshot("after_request")
        response.headers["X-Seen"] = str(fw.session["seen"])
        return response

    @app.teardown_request
    def teardown_1(exc: Any) -> None:
        snapshot(f"teardown_request_1:{type(exc).__name__ if exc else None}")

    @app.teardown_request
    def teardown_2(exc: Any) -> None:
        snapshot(f"teardown_request_2:{type(exc).__name__ if exc else None}")

    @app.teardown_appcontext
    def teardown_app_1(exc: Any) -> None:
        snapshot(f"teardown_appcontext_1:{type(exc).__name__ if exc else None}")

    @app.teardown_appcontext
    def teardown_app_2(exc: Any) -> None:
        snapshot(f"teardown_appcontext_2:{type(exc).__name__ if exc else None}")

    @app.errorhandler(LookupError)
    def lookup(e: Any) -> Any:
        fw.g.trail.append("handler")
        snapshot("errorhandler")
        return f"handled {fw.request.path} {fw.current_app.name}", 400

    @app.route("/ok")
    def ok() -> str:
        fw.g.trail.append("view")
        snapshot("view")

        @fw.after_this_request
        def add_header(response: Any) -> Any:
            snapshot("after_this_request")
            response.headers["X-This"] = "1"
            return response

        return "ok"

    @app.route("/handled")
    def handled() -> str:
        raise KeyError("x")

    @app.route("/unhandled")
    def unhandled() -> str:
        raise ZeroDivisionError("boom")

    @app.route("/aborted")
    def aborted() -> str:
        fw.abort(403)

    return app


@pytest.mark.parametrize("path", ["/ok", "/handled", "/unhandled", "/aborted", "/missing"])
def test_contexts_in_views_hooks_handlers_and_teardown_as_flask(path: str) -> None:
    """Which contexts each hook sees, in which order, and the exception teardown gets."""
    answers = []
    for name in ("flask", "bustapi"):
        events: list[Any] = []
        app = context_app(Framework(name), events)
        r = app.test_client().get(path)
        headers = {k: r.headers.get(k) for k in ("X-Seen", "X-This")}
        answers.append((r.status_code, headers, events))
    assert answers[1] == answers[0]


def test_unhandled_exception_reaches_teardown_when_testing(fw: Framework) -> None:
    events: list[Any] = []
    app = context_app(fw, events)
    app.testing = True
    with pytest.raises(ZeroDivisionError):
        app.test_client().get("/unhandled")
    assert [e[0] for e in events][-4:] == [
        "teardown_request_2:ZeroDivisionError",
        "teardown_request_1:ZeroDivisionError",
        "teardown_appcontext_2:ZeroDivisionError",
        "teardown_appcontext_1:ZeroDivisionError",
    ]


def test_pushing_contexts_by_hand(fw: Framework) -> None:
    app = fw.App(__name__, static_folder=None)
    app.secret_key = "k"
    assert not fw.has_app_context() and not fw.has_request_context()
    with pytest.raises(RuntimeError, match="application context"):
        fw.current_app.name  # noqa: B018
    with pytest.raises(RuntimeError, match="request context"):
        fw.request.path  # noqa: B018
    with pytest.raises(RuntimeError, match="application context"):
        fw.g.x = 1

    with app.app_context():
        assert fw.has_app_context() and not fw.has_request_context()
        assert fw.current_app._get_current_object() is app
        fw.g.x = 1
        with app.app_context():  # a new app context has a new g
            assert "x" not in fw.g
        assert fw.g.x == 1
    assert not fw.has_app_context()

    with app.test_request_context("/a/b?q=1", method="POST", data={"f": "v"}) as ctx:
        assert fw.has_request_context() and fw.has_app_context()
        assert (fw.request.path, fw.request.method, fw.request.args["q"]) == ("/a/b", "POST", "1")
        assert fw.request.form["f"] == "v"
        assert ctx.request is fw.request._get_current_object()
        fw.session["k"] = "v"
        assert fw.session["k"] == "v"
        fw.g.y = 2
    assert not fw.has_request_context() and not fw.has_app_context()


def test_a_request_context_inside_an_app_context_shares_g(fw: Framework) -> None:
    app = fw.App(__name__, static_folder=None)
    with app.app_context():
        fw.g.outer = 1
        with app.test_request_context("/"):
            assert fw.g.outer == 1


def test_g_is_a_namespace(fw: Framework) -> None:
    app = fw.App(__name__, static_folder=None)
    with app.app_context():
        fw.g.a = 1
        assert fw.g.get("a") == 1 and fw.g.get("b", 2) == 2
        assert "a" in fw.g and "b" not in fw.g
        assert fw.g.setdefault("c", 3) == 3
        assert sorted(fw.g) == ["a", "c"]
        assert fw.g.pop("a") == 1 and fw.g.pop("a", None) is None
        with pytest.raises(KeyError):
            fw.g.pop("a")


def test_g_is_new_for_each_request(fw: Framework) -> None:
    app = fw.App(__name__, static_folder=None)

    @app.route("/")
    def index() -> Any:
        before = fw.g.get("count")
        fw.g.count = 1
        return {"before": before}

    c = app.test_client()
    assert c.get("/").json == {"before": None}
    assert c.get("/").json == {"before": None}


def test_teardown_appcontext_runs_for_a_bare_app_context(fw: Framework) -> None:
    app = fw.App(__name__, static_folder=None)
    seen: list[Any] = []
    app.teardown_appcontext(lambda exc: seen.append(exc))
    with app.app_context():
        pass
    error = ValueError("x")
    with pytest.raises(ValueError), app.app_context():
        raise error
    assert seen == [None, error]


def test_copy_current_request_context_in_a_thread(fw: Framework) -> None:
    app = fw.App(__name__, static_folder=None)
    app.secret_key = "k"

    @app.route("/")
    def index() -> Any:
        fw.session["user"] = "ada"
        fw.g.value = "from view"
        out: dict[str, Any] = {}

        @fw.copy_current_request_context
        def work() -> None:
            out["path"] = fw.request.path
            out["q"] = fw.request.args["q"]
            out["user"] = fw.session["user"]
            out["app"] = fw.current_app.name

        t = threading.Thread(target=work)
        t.start()
        t.join()
        return out

    assert app.test_client().get("/?q=1").json == {
        "path": "/",
        "q": "1",
        "user": "ada",
        "app": app.name,
    }


def test_after_this_request_and_copy_outside_a_request_are_errors(fw: Framework) -> None:
    with pytest.raises(RuntimeError):
        fw.after_this_request(lambda r: r)
    with pytest.raises(RuntimeError):
        fw.copy_current_request_context(lambda: None)


def test_extensions_have_a_place_on_the_app(fw: Framework) -> None:
    """The shape Flask extensions use: state in app.extensions, per-context
    resources in g, cleaned up by teardown_appcontext."""

    class Counter:
        def __init__(self, app: Any = None) -> None:
            self.closed = 0
            if app is not None:
                self.init_app(app)

        def init_app(self, app: Any) -> None:
            app.extensions["counter"] = self
            app.teardown_appcontext(self.teardown)

        def connection(self) -> list[int]:
            if "counter_conn" not in fw.g:
                fw.g.counter_conn = []
            return fw.g.counter_conn

        def teardown(self, exc: Any) -> None:
            if fw.g.pop("counter_conn", None) is not None:
                self.closed += 1

    app = fw.App(__name__, static_folder=None)
    assert app.extensions == {}
    ext = Counter(app)

    @app.route("/")
    def index() -> str:
        conn = fw.current_app.extensions["counter"].connection()
        conn.append(1)
        return str(len(conn))

    c = app.test_client()
    assert c.get("/").get_data(as_text=True) == "1"
    assert c.get("/").get_data(as_text=True) == "1"
    assert ext.closed == 2


def test_concurrent_requests_each_see_their_own_context(serve: Any) -> None:
    """Views run on several view threads at once: request, g and session never leak
    from one request to another."""
    from bustapi import BustAPI, g, request, session

    app = BustAPI(__name__, static_folder=None)
    app.secret_key = "k"
    barrier = threading.Barrier(8, timeout=20)

    @app.route("/<int:n>")
    def view(n: int) -> Any:
        g.n = n
        session["n"] = n
        barrier.wait()  # all eight requests are inside a view at the same time
        return {"n": n, "g": g.n, "arg": int(request.args["n"]), "session": session["n"]}

    server = serve(app, threads=8)
    with ThreadPoolExecutor(8) as pool:
        results = list(
            pool.map(lambda n: http_request(server.port, "GET", f"/{n}?n={n}").json, range(8))
        )
    assert results == [{"n": n, "g": n, "arg": n, "session": n} for n in range(8)]
