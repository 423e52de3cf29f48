"""What the per-request fast path leaves out must not change what an application sees.

A request costs one context object (it stands in as the application context), ``g``
is made on first use, and hooks and the session are looked at only when an app has
them. Each scenario runs on Flask 3.1 (the reference, through its test client) and
on BustAPI through its test client and over a real socket (the engine's view
threads, where nothing of the test client is involved)."""

from __future__ import annotations

import json
from typing import Any, Callable

import pytest
from bustapi import BustAPI
from bustapi.testing import LiveServer
from bustapi.wrappers import dumps_json
from conftest import Framework, http_request

MakeApp = Callable[[Framework, list[Any]], Any]


def answers(
    make_app: MakeApp,
    serve: Callable[..., LiveServer],
    paths: list[str],
    headers: Any = None,
) -> list[tuple[str, list[Any], list[Any]]]:
    """``(framework, [(status, body, set_cookie, vary) per path], events)`` for Flask,
    BustAPI's test client and BustAPI over a socket."""
    out = []
    for name, kind in (("flask", "test_client"), ("bustapi", "test_client"), ("bustapi", "socket")):
        events: list[Any] = []
        app = make_app(Framework(name), events)
        results = []
        if kind == "socket":
            port = serve(app).port
            for path in paths:
                r = http_request(port, "GET", path, headers)
                results.append((r.status, r.body, "set-cookie" in r.headers, r.headers.get("vary")))
        else:
            client = app.test_client(use_cookies=False)  # the Cookie header as given
            for path in paths:
                r = client.get(path, headers=headers)
                results.append(
                    (r.status_code, r.data, "Set-Cookie" in r.headers, r.headers.get("Vary"))
                )
        out.append((f"{name} {kind}", results, events))
    return out


def assert_same(got: list[tuple[str, list[Any], list[Any]]]) -> None:
    (_, want_results, want_events), *others = got
    for name, results, events in others:
        assert (name, results, events) == (name, want_results, want_events)


def test_g_from_before_request_reaches_the_view_and_every_teardown(serve: Any) -> None:
    """No after_request hook, a dict view: the path that skips building a Response."""

    def make(fw: Framework, events: list[Any]) -> Any:
        app = fw.App(__name__, static_folder=None)

        @app.before_request
        def load_user() -> None:
            fw.g.user = "ada"

        @app.teardown_request
        def teardown_request(exc: Any) -> None:
            events.append(("teardown_request", fw.g.user, exc))

        @app.teardown_appcontext
        def teardown_appcontext(exc: Any) -> None:
            events.append(("teardown_appcontext", fw.g.user, exc))

        @app.route("/")
        def view() -> Any:
            return {"user": fw.g.user}

        return app

    got = answers(make, serve, ["/", "/"])
    assert got[0][1][0][1] == b'{"user":"ada"}\n'
    per_request = [("teardown_request", "ada", None), ("teardown_appcontext", "ada", None)]
    assert got[0][2] == per_request * 2
    assert_same(got)


def test_teardown_appcontext_runs_for_an_app_with_no_other_hook(serve: Any) -> None:
    def make(fw: Framework, events: list[Any]) -> Any:
        app = fw.App(__name__, static_folder=None)

        @app.teardown_appcontext
        def close(exc: Any) -> None:
            events.append(("closed", fw.g.get("opened"), exc))

        @app.route("/")
        def view() -> Any:
            fw.g.opened = fw.request.path
            return {"ok": True}

        @app.route("/untouched")
        def untouched() -> Any:
            return "no g here"

        return app

    got = answers(make, serve, ["/", "/untouched"])
    assert got[0][2] == [("closed", "/", None), ("closed", None, None)]
    assert_same(got)


def test_each_request_has_a_fresh_g_and_its_own_app_context(serve: Any) -> None:
    def make(fw: Framework, events: list[Any]) -> Any:
        app = fw.App(__name__, static_folder=None)

        @app.route("/")
        def view() -> Any:
            seen = "mark" in fw.g
            fw.g.mark = 1
            return [
                seen,
                fw.current_app.name,
                fw.current_app._get_current_object() is app,
                [fw.has_app_context(), fw.has_request_context()],
                repr(fw.g).replace("flask", "X").replace("bustapi", "X"),
            ]

        return app

    got = answers(make, serve, ["/", "/", "/"])
    assert json.loads(got[0][1][0][1])[0] is False
    assert_same(got)


@pytest.mark.parametrize("refresh", [True, False])
def test_a_view_that_never_touches_the_session_sends_no_cookie(serve: Any, refresh: bool) -> None:
    """A session cookie arrives; only views that read it vary by Cookie, and only one
    that changes it (or a permanent one being refreshed) sends it back."""

    def make(fw: Framework, events: list[Any]) -> Any:
        app = fw.App(__name__, static_folder=None)
        app.secret_key = "lazy-secret"
        app.config["SESSION_REFRESH_EACH_REQUEST"] = refresh

        @app.route("/untouched")
        def untouched() -> Any:
            return {"hello": "world"}

        @app.route("/read")
        def read() -> Any:
            return {"user": fw.session.get("user")}

        @app.route("/write")
        def write() -> Any:
            fw.session["visits"] = 1
            return {"written": True}

        return app

    for permanent in (False, True):
        flask = Framework("flask").App(__name__)
        flask.secret_key = "lazy-secret"
        signer = flask.session_interface.get_signing_serializer(flask)
        payload = {"user": "ada", **({"_permanent": True} if permanent else {})}
        cookie = {"Cookie": f"session={signer.dumps(payload)}"}
        got = answers(make, serve, ["/untouched", "/read", "/write"], cookie)
        untouched, read, write = got[0][1]
        assert untouched[2] is (permanent and refresh)
        assert read[1] == b'{"user":"ada"}\n' and read[3] == "Cookie"
        assert write[2] is True
        assert_same(got)


def test_no_secret_key_and_no_session_use_sends_no_cookie(serve: Any) -> None:
    def make(fw: Framework, events: list[Any]) -> Any:
        app = fw.App(__name__, static_folder=None)

        @app.route("/")
        def view() -> Any:
            return ["plain"]

        return app

    got = answers(make, serve, ["/"], {"Cookie": "session=whatever"})
    assert got[0][1] == [(200, b'["plain"]\n', False, None)]
    assert_same(got)


def test_after_this_request_applies_to_a_plain_dict_view(serve: Any) -> None:
    def make(fw: Framework, events: list[Any]) -> Any:
        app = fw.App(__name__, static_folder=None)

        @app.route("/")
        def view() -> Any:
            @fw.after_this_request
            def mark(response: Any) -> Any:
                events.append(response.status_code)
                response.set_cookie("seen", "1")
                return response

            return {"ok": 1}

        return app

    got = answers(make, serve, ["/"])
    assert got[0][1][0][2] is True and got[0][2] == [200]
    assert_same(got)


def test_a_request_inside_an_app_context_uses_that_context_and_its_g(fw: Framework) -> None:
    """The request context then does not stand in as the app context: ``g`` is the
    outer one, and teardown_appcontext waits for the outer context to end."""
    app = fw.App(__name__, static_folder=None)
    events: list[Any] = []

    @app.teardown_appcontext
    def teardown(exc: Any) -> None:
        events.append(("teardown_appcontext", fw.g.get("outer")))

    with app.app_context():
        fw.g.outer = "kept"
        with app.test_request_context("/"):
            assert fw.g.outer == "kept"
            fw.g.inner = 1
        assert events == [] and fw.g.inner == 1
    assert events == [("teardown_appcontext", "kept")]


def test_a_pushed_request_context_is_an_app_context_with_its_own_g(fw: Framework) -> None:
    app = fw.App(__name__, static_folder=None)
    events: list[Any] = []

    @app.teardown_appcontext
    def teardown(exc: Any) -> None:
        events.append(fw.g.get("x"))

    with app.test_request_context("/"):
        fw.g.x = "req"
        assert fw.current_app.name == app.name and fw.has_app_context()
    with app.test_request_context("/"):
        assert "x" not in fw.g
    assert events == ["req", None]
    assert not fw.has_app_context()


def test_an_app_that_makes_its_own_app_contexts_gets_them_for_requests(serve: Any) -> None:
    def make(fw: Framework, events: list[Any]) -> Any:
        class App(fw.App):  # type: ignore[name-defined,misc]
            def app_context(self) -> Any:
                ctx = super().app_context()
                ctx.g.made_by = "custom app_context"
                return ctx

        app = App(__name__, static_folder=None)

        @app.route("/")
        def view() -> Any:
            return {"made_by": fw.g.get("made_by")}

        return app

    got = answers(make, serve, ["/"])
    assert got[0][1][0][1] == b'{"made_by":"custom app_context"}\n'
    assert_same(got)


@pytest.mark.parametrize(
    "value",
    [
        {"message": "Hello, world!"},
        [1, 2.5, None, True, False, "é <&>", {"nested": ["x"]}],
        "text",
        {"inf": float("inf"), "nan": float("nan"), 1: "int key"},
        [],
    ],
)
def test_json_bodies_are_json_dumps_compact(value: Any) -> None:
    want = json.dumps(value, separators=(",", ":"), ensure_ascii=False) + "\n"
    assert dumps_json(value) == want.encode()


def test_json_errors_read_as_before() -> None:
    cyclic: dict[str, Any] = {}
    cyclic["self"] = cyclic
    with pytest.raises(ValueError, match="Circular reference"):
        dumps_json(cyclic)
    with pytest.raises(TypeError, match="not JSON serializable"):
        dumps_json({"x": object()})
    # A failed encoding leaves nothing behind for the next one.
    assert dumps_json({"ok": [1]}) == b'{"ok":[1]}\n'


def test_a_cyclic_json_view_is_a_500_not_a_crash(serve: Any) -> None:
    app = BustAPI(__name__, static_folder=None)
    cyclic: list[Any] = []
    cyclic.append(cyclic)

    @app.route("/")
    def view() -> Any:
        return cyclic

    @app.route("/ok")
    def ok() -> Any:
        return {"ok": True}

    port = serve(app).port
    assert http_request(port, "GET", "/").status == 500
    assert http_request(port, "GET", "/ok").body == b'{"ok":true}\n'
