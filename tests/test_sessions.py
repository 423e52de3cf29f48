"""Signed cookie sessions and flashed messages, with Flask 3.1 as the reference.

Most scenarios run twice through the ``fw`` fixture, once on Flask and once on
BustAPI, built from the same code: the expected answer is Flask's. The cookie
format itself is checked across the two: a cookie Flask signs is read by BustAPI
with the same ``SECRET_KEY``, and the other way round.
"""

from __future__ import annotations

import datetime as dt
import uuid
from email.utils import parsedate_to_datetime
from typing import Any

import bustapi
import flask
import pytest
from conftest import Framework
from markupsafe import Markup

SECRET = "test-secret-key"


def set_cookie_attrs(header: str) -> dict[str, str]:
    """The attributes of one ``Set-Cookie`` header, names lower-cased (flags map to "")."""
    name_value, *attrs = (part.strip() for part in header.split(";"))
    out = {"=": name_value}
    for attr in attrs:
        k, _, v = attr.partition("=")
        out[k.lower()] = v
    return out


def session_cookies(response: Any, name: str = "session") -> list[dict[str, str]]:
    return [
        set_cookie_attrs(h)
        for h in response.headers.getlist("Set-Cookie")
        if h.startswith(f"{name}=")
    ]


def vary(response: Any) -> set[str]:
    return {v.strip().lower() for v in (response.headers.get("Vary") or "").split(",") if v.strip()}


def session_app(fw: Framework, **config: Any) -> Any:
    app = fw.App(__name__, static_folder=None)
    app.config.update(SECRET_KEY=SECRET, **config)
    session = fw.session

    @app.route("/set/<key>/<value>")
    def set_value(key: str, value: str) -> str:
        session[key] = value
        return "set"

    @app.route("/permanent")
    def permanent() -> str:
        session.permanent = True
        session["p"] = 1
        return "permanent"

    @app.route("/read/<key>")
    def read(key: str) -> str:
        return str(session.get(key))

    @app.route("/untouched")
    def untouched() -> str:
        return "untouched"

    @app.route("/clear")
    def clear() -> str:
        session.clear()
        return "cleared"

    @app.route("/dump")
    def dump() -> Any:
        return {k: repr(v) for k, v in session.items()}

    return app


# -- the cookie format, across the two frameworks ----------------------------------------


RICH = {
    "user_id": 42,
    "tuple": (1, "two"),
    "bytes": b"\x00\xffraw",
    "markup": Markup("<b>bold</b>"),
    "uuid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
    "when": dt.datetime(2024, 5, 17, 10, 30, 0, tzinfo=dt.timezone.utc),
    "nested": {" t": "a key that looks like a tag"},
    "list": [{"a": (1, 2)}, None, True],
}


def expected_reprs() -> dict[str, str]:
    return {k: repr(v) for k, v in RICH.items()}


def test_a_cookie_flask_signs_is_read_by_bustapi() -> None:
    f = flask.Flask(__name__)
    f.secret_key = SECRET

    @f.route("/login")
    def login() -> str:
        flask.session.update(RICH)
        return "ok"

    fc = f.test_client()
    fc.get("/login")
    cookie = fc.get_cookie("session")
    assert cookie is not None

    b = session_app(Framework("bustapi"))
    bc = b.test_client()
    bc.set_cookie("session", cookie.value)
    assert bc.get("/dump").json == expected_reprs()


def test_a_cookie_bustapi_signs_is_read_by_flask() -> None:
    b = bustapi.BustAPI(__name__, static_folder=None)
    b.secret_key = SECRET

    @b.route("/login")
    def login() -> str:
        bustapi.session.update(RICH)
        return "ok"

    bc = b.test_client()
    bc.get("/login")
    cookie = bc.get_cookie("session")
    assert cookie is not None

    f = session_app(Framework("flask"))
    fc = f.test_client()
    fc.set_cookie("session", cookie.value)
    assert fc.get("/dump").json == expected_reprs()


def test_same_serialized_payload_as_flask() -> None:
    """The tagged JSON itself is byte-for-byte Flask's (only the timestamp and the
    signature of a cookie differ from one moment to the next). Flask serialises with
    the app's JSON provider when it saves a session (keys sorted), so it is compared
    inside an app context."""
    from bustapi.tag import TaggedJSONSerializer
    from flask.json.tag import TaggedJSONSerializer as FlaskTagged

    with flask.Flask(__name__).app_context():
        text = FlaskTagged().dumps(RICH)
        assert TaggedJSONSerializer().dumps(RICH) == text
        assert TaggedJSONSerializer().loads(text) == FlaskTagged().loads(text)


def test_signed_with_a_fallback_key_is_read_and_resigned_with_the_current_one() -> None:
    old = flask.Flask(__name__)
    old.secret_key = "old-key"
    value = old.session_interface.get_signing_serializer(old).dumps({"user": "ada"})

    for name in ("flask", "bustapi"):
        app = session_app(Framework(name), SECRET_KEY_FALLBACKS=["old-key"])
        c = app.test_client()
        c.set_cookie("session", value)
        assert c.get("/read/user").text == "ada", name
        # A write re-signs with SECRET_KEY: a server without the fallback reads it.
        c.get("/set/x/1")
        new_value = c.get_cookie("session").value
        plain = session_app(Framework("flask"))
        pc = plain.test_client()
        pc.set_cookie("session", new_value)
        assert pc.get("/read/user").text == "ada", name

    # Without the fallback the old cookie is simply no session.
    for name in ("flask", "bustapi"):
        c = session_app(Framework(name)).test_client()
        c.set_cookie("session", value)
        assert c.get("/read/user").text == "None", name


# -- tampering and missing keys ------------------------------------------------------------


@pytest.mark.parametrize(
    "tamper",
    [
        lambda v: v[:-2] + ("AA" if not v.endswith("AA") else "BB"),  # signature
        lambda v: "x" + v,  # payload
        lambda v: v.split(".")[0],  # no signature at all
        lambda v: "garbage",
        lambda v: ".eJyrVkrOz0nNS8_MS1WyUlBKSS1OLgEA.AAAA.BBBB",  # compressed, bad sig
        lambda v: "",
    ],
)
def test_a_tampered_cookie_is_an_empty_session_never_an_error(fw: Framework, tamper: Any) -> None:
    app = session_app(fw)
    c = app.test_client()
    c.get("/set/user/ada")
    good = c.get_cookie("session").value
    c.set_cookie("session", tamper(good))
    r = c.get("/read/user")
    assert (r.status_code, r.text) == (200, "None")
    r = c.get("/dump")
    assert (r.status_code, r.json) == (200, {})


def test_a_cookie_signed_with_another_key_is_an_empty_session(fw: Framework) -> None:
    other = session_app(fw)
    other.secret_key = "another key"
    oc = other.test_client()
    oc.get("/set/user/mallory")
    forged = oc.get_cookie("session").value
    c = session_app(fw).test_client()
    c.set_cookie("session", forged)
    assert c.get("/read/user").text == "None"


def test_a_tampered_cookie_over_a_socket_is_200(serve: Any) -> None:
    from conftest import http_request

    server = serve(session_app(Framework("bustapi")))
    forged = {"Cookie": "session=eyJ1c2VyIjoiYWRhIn0.bad.sig"}
    r = http_request(server.port, "GET", "/read/user", forged)
    assert (r.status, r.body) == (200, b"None")


@pytest.mark.parametrize(
    "others",
    ["flag", 'prefs={"theme":"dark"}', "tracker=a b", "bad key=1", '"=x'],
)
def test_another_odd_cookie_never_hides_the_session(serve: Any, others: str) -> None:
    """Other apps on the same domain set cookies the strict standard-library parser
    refuses; the session cookie next to them must still be read (as Flask does)."""
    from conftest import http_request

    app = session_app(Framework("bustapi"))
    value = app.session_interface.get_signing_serializer(app).dumps({"user": "ada"})
    server = serve(app)
    for header in (f"{others}; session={value}", f"session={value}; {others}"):
        r = http_request(server.port, "GET", "/read/user", {"Cookie": header})
        assert (r.status, r.body) == (200, b"ada"), header


def test_request_cookies_are_parsed_as_flask_parses_them(fw: Framework) -> None:
    app = fw.App(__name__, static_folder=None)

    @app.route("/")
    def cookies() -> Any:
        return dict(fw.request.cookies)

    header = 'a=1; b="quoted \\"x\\" \\054"; c=; a=2; d=x=y'
    # (Flask's client replaces a Cookie header with its jar unless use_cookies=False.)
    client = app.test_client(use_cookies=False)
    assert client.get("/", headers={"Cookie": header}).json == {
        "a": "1",
        "b": 'quoted "x" ,',
        "c": "",
        "d": "x=y",
    }


def test_writing_without_a_secret_key_is_a_clear_runtime_error(fw: Framework) -> None:
    app = session_app(fw)
    app.secret_key = None
    app.testing = True
    c = app.test_client()
    with pytest.raises(RuntimeError, match="secret key"):
        c.get("/set/user/ada")
    # Reading an unavailable session works: it is empty.
    r = c.get("/read/user")
    assert (r.status_code, r.text) == (200, "None")
    assert r.headers.getlist("Set-Cookie") == []


def test_writing_without_a_secret_key_is_a_500_when_not_testing(fw: Framework) -> None:
    app = session_app(fw)
    app.secret_key = None
    r = app.test_client().get("/set/user/ada")
    assert r.status_code == 500


def test_writing_without_a_secret_key_is_logged_over_a_socket(serve: Any, caplog: Any) -> None:
    from conftest import http_request

    app = session_app(Framework("bustapi"))
    app.secret_key = None
    server = serve(app)
    r = http_request(server.port, "GET", "/set/user/ada")
    assert r.status == 500
    assert b"secret" not in r.body  # the reason is logged, not shown
    assert any("secret key" in str(rec.exc_info[1]) for rec in caplog.records if rec.exc_info)


# -- when the cookie is sent, and how ---------------------------------------------------------


def test_written_only_when_modified_and_vary_cookie(fw: Framework) -> None:
    c = session_app(fw, SESSION_REFRESH_EACH_REQUEST=False).test_client()
    r = c.get("/set/user/ada")
    assert len(session_cookies(r)) == 1
    assert "cookie" in vary(r)
    r = c.get("/read/user")
    assert r.text == "ada"
    assert session_cookies(r) == []  # read, not modified: nothing sent
    assert "cookie" in vary(r)  # but the page depends on the cookie
    r = c.get("/untouched")
    assert session_cookies(r) == []
    assert "cookie" not in vary(r)


def test_a_new_session_read_but_not_written_sets_no_cookie(fw: Framework) -> None:
    c = session_app(fw).test_client()
    r = c.get("/read/user")
    assert session_cookies(r) == []
    assert "cookie" in vary(r)


def test_clearing_the_session_deletes_the_cookie(fw: Framework) -> None:
    c = session_app(fw).test_client()
    c.get("/set/user/ada")
    r = c.get("/clear")
    (deleted,) = session_cookies(r)
    assert deleted["="] == "session="
    assert deleted.get("max-age") == "0" or parsedate_to_datetime(
        deleted["expires"]
    ) < dt.datetime.now(dt.timezone.utc)
    assert "cookie" in vary(r)
    assert c.get("/read/user").text == "None"


def test_default_cookie_attributes(fw: Framework) -> None:
    (cookie,) = session_cookies(session_app(fw).test_client().get("/set/a/b"))
    assert cookie["path"] == "/"
    assert "httponly" in cookie
    assert "secure" not in cookie
    assert "samesite" not in cookie
    assert "domain" not in cookie
    assert "expires" not in cookie  # a browser-session cookie
    assert "max-age" not in cookie


def test_session_cookie_settings_are_reflected_in_set_cookie(fw: Framework) -> None:
    app = session_app(
        fw,
        SESSION_COOKIE_NAME="sid",
        SESSION_COOKIE_DOMAIN="example.test",
        SESSION_COOKIE_PATH="/app",
        SESSION_COOKIE_HTTPONLY=False,
        SESSION_COOKIE_SECURE=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_PARTITIONED=True,
    )
    r = app.test_client().get("/set/a/b", base_url="https://www.example.test")
    (cookie,) = session_cookies(r, "sid")
    assert cookie["domain"].lstrip(".") == "example.test"
    assert cookie["path"] == "/app"
    assert "httponly" not in cookie
    assert "secure" in cookie
    assert cookie["samesite"] == "Lax"
    assert "partitioned" in cookie


def test_application_root_is_the_default_cookie_path(fw: Framework) -> None:
    app = session_app(fw, APPLICATION_ROOT="/prefix")
    (cookie,) = session_cookies(app.test_client().get("/set/a/b"))
    assert cookie["path"] == "/prefix"


def test_permanent_session_expires_after_the_lifetime(fw: Framework) -> None:
    app = session_app(fw, PERMANENT_SESSION_LIFETIME=dt.timedelta(hours=2))
    before = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    (cookie,) = session_cookies(app.test_client().get("/permanent"))
    after = dt.datetime.now(dt.timezone.utc)
    expires = parsedate_to_datetime(cookie["expires"])
    assert before + dt.timedelta(hours=2) <= expires <= after + dt.timedelta(hours=2)


def test_permanent_session_lifetime_as_seconds(fw: Framework) -> None:
    app = session_app(fw, PERMANENT_SESSION_LIFETIME=600)
    assert app.permanent_session_lifetime == dt.timedelta(seconds=600)
    (cookie,) = session_cookies(app.test_client().get("/permanent"))
    expires = parsedate_to_datetime(cookie["expires"])
    now = dt.datetime.now(dt.timezone.utc)
    assert dt.timedelta(seconds=500) < expires - now <= dt.timedelta(seconds=601)


@pytest.mark.parametrize("refresh", [True, False])
def test_session_refresh_each_request(fw: Framework, refresh: bool) -> None:
    """A permanent session's cookie is re-sent on every request (its expiry slides)
    unless SESSION_REFRESH_EACH_REQUEST is off; a non-permanent one only when modified."""
    c = session_app(fw, SESSION_REFRESH_EACH_REQUEST=refresh).test_client()
    c.get("/permanent")
    assert len(session_cookies(c.get("/untouched"))) == (1 if refresh else 0)
    assert len(session_cookies(c.get("/read/p"))) == (1 if refresh else 0)

    c2 = session_app(fw, SESSION_REFRESH_EACH_REQUEST=refresh).test_client()
    c2.get("/set/a/b")
    assert session_cookies(c2.get("/untouched")) == []
    assert session_cookies(c2.get("/read/a")) == []


def test_an_expired_permanent_cookie_is_no_session(fw: Framework) -> None:
    app = session_app(fw, PERMANENT_SESSION_LIFETIME=dt.timedelta(seconds=-1))
    s = app.session_interface.get_signing_serializer(app)
    c = app.test_client()
    c.set_cookie("session", s.dumps({"user": "ada"}))
    assert c.get("/read/user").text == "None"


def test_session_is_available_in_session_transaction(fw: Framework) -> None:
    c = session_app(fw).test_client()
    with c.session_transaction() as sess:
        sess["user"] = "grace"
    assert c.get("/read/user").text == "grace"
    c.get("/set/n/7")
    with c.session_transaction() as sess:
        assert sess["n"] == "7"
        assert sess["user"] == "grace"


# -- flash --------------------------------------------------------------------------------


def flash_app(fw: Framework) -> Any:
    app = fw.App(__name__, static_folder=None)
    app.secret_key = SECRET

    @app.route("/flash")
    def do_flash() -> str:
        fw.flash("plain")
        fw.flash("careful", "warning")
        fw.flash("broken", "error")
        fw.flash(Markup("<b>safe</b>"), "info")
        return "flashed"

    @app.route("/all")
    def all_messages() -> Any:
        first = fw.get_flashed_messages()
        again = fw.get_flashed_messages()  # the same list for the rest of the request
        return {"messages": [str(m) for m in first], "same": first == again}

    @app.route("/categories")
    def with_categories() -> Any:
        return {"messages": [[c, str(m)] for c, m in fw.get_flashed_messages(True)]}

    @app.route("/filtered")
    def filtered() -> Any:
        return {
            "errors": fw.get_flashed_messages(category_filter=["error", "warning"]),
            "with": [list(x) for x in fw.get_flashed_messages(True, category_filter=["error"])],
        }

    @app.route("/template")
    def template() -> str:
        return fw.render_template_string(
            "{% for c, m in get_flashed_messages(with_categories=true) %}[{{ c }}:{{ m }}]"
            "{% endfor %}"
        )

    return app


def test_flash_and_get_flashed_messages(fw: Framework) -> None:
    c = flash_app(fw).test_client()
    c.get("/flash")
    assert c.get("/all").json == {
        "messages": ["plain", "careful", "broken", "<b>safe</b>"],
        "same": True,
    }
    # Consumed: the next request has none.
    assert c.get("/all").json == {"messages": [], "same": True}


def test_flash_with_categories_and_filter(fw: Framework) -> None:
    c = flash_app(fw).test_client()
    c.get("/flash")
    assert c.get("/categories").json == {
        "messages": [
            ["message", "plain"],
            ["warning", "careful"],
            ["error", "broken"],
            ["info", "<b>safe</b>"],
        ]
    }
    c.get("/flash")
    assert c.get("/filtered").json == {
        "errors": ["careful", "broken"],
        "with": [["error", "broken"]],
    }


def test_flashed_messages_in_a_template_keep_markup(fw: Framework) -> None:
    c = flash_app(fw).test_client()
    c.get("/flash")
    assert c.get("/template").text == (
        "[message:plain][warning:careful][error:broken][info:<b>safe</b>]"
    )


def test_flash_survives_a_redirect(fw: Framework) -> None:
    app = flash_app(fw)

    @app.route("/go")
    def go() -> Any:
        fw.flash("moved")
        return fw.redirect(fw.url_for("all_messages"))

    r = app.test_client().get("/go", follow_redirects=True)
    assert r.json["messages"] == ["moved"]
