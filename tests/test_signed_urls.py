"""Signed, expiring URLs checked by the engine (issue 14): a view signs once, the
engine checks every request to a signed static mount or route before it opens a
file or calls Python. All over real sockets against the built extension."""

from __future__ import annotations

import http.client
import random
import re
import time
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable, Optional

import pytest
from bustapi import Blueprint, BustAPI, render_template_string, request, url_for
from bustapi.testing import LiveServer
from conftest import Result, http_request

DATA = random.Random(14).randbytes(300_000)
OTHER = b"another file\n"
KEY = "k" * 32


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("signed")
    (root / "media" / "show" / "seg").mkdir(parents=True)
    (root / "media" / "other").mkdir(parents=True)
    (root / "media" / "clip.bin").write_bytes(DATA)
    (root / "media" / "other.bin").write_bytes(OTHER)
    (root / "media" / "show" / "index.m3u8").write_bytes(b"#EXTM3U\n")
    (root / "media" / "show" / "seg" / "001.ts").write_bytes(b"segment 1")
    (root / "media" / "other" / "secret.ts").write_bytes(b"not in the show")
    (root / "bp_static").mkdir()
    (root / "bp_static" / "logo.txt").write_bytes(b"blueprint logo")
    return root


def make_app(root: Path, keys: Any = (KEY,), **config: Any) -> BustAPI:
    app = BustAPI(__name__, root_path=str(root), static_folder=None)
    if keys is not None:
        app.config["SIGNING_KEYS"] = list(keys)
    app.config.update(config)
    app.add_static("/media", "media", signed=True)
    return app


def get(
    port: int, path: str, headers: Optional[dict[str, str]] = None, source: str = "127.0.0.1"
) -> Result:
    """One GET from ``source`` (127.0.0.x are all local, so a client address can
    differ from the one a URL is bound to)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30, source_address=(source, 0))
    try:
        conn.request("GET", path, headers=headers or {})
        resp = conn.getresponse()
        return Result(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
    finally:
        conn.close()


def with_query(url: str, name: str, value: str) -> str:
    return re.sub(rf"([?&]{name}=)[^&]*", lambda m: m.group(1) + value, url)


@pytest.fixture
def served(media: Path, serve: Callable[..., LiveServer]) -> tuple[BustAPI, int]:
    app = make_app(media)
    return app, serve(app).port


def test_a_signed_url_serves_ranges_with_the_right_bytes(served: tuple[BustAPI, int]) -> None:
    app, port = served
    url = app.sign_url("/media/clip.bin", expires_in=60)
    assert re.fullmatch(r"/media/clip\.bin\?expires=\d+&signature=[A-Za-z0-9_-]{43}", url)
    r = get(port, url, {"Range": "bytes=1000-200999"})
    assert r.status == 206
    assert r.headers["content-range"] == f"bytes 1000-200999/{len(DATA)}"
    assert r.body == DATA[1000:201000]
    # The signature's parameters are invisible to conditionals: a revalidation
    # with the ETag is a 304, and If-Range still picks the range.
    etag = r.headers["etag"]
    assert get(port, url, {"If-None-Match": etag}).status == 304
    r = get(port, url, {"Range": "bytes=0-9", "If-Range": etag})
    assert (r.status, r.body) == (206, DATA[:10])
    # Another signature for the same file hits the same cached entry.
    r = get(port, app.sign_url("/media/clip.bin", timedelta(minutes=5)))
    assert (r.status, r.body) == (200, DATA)


def test_each_tampering_is_forbidden(media: Path, served: tuple[BustAPI, int]) -> None:
    app, port = served
    url = app.sign_url("/media/clip.bin", expires_in=60)
    expires = re.search(r"expires=(\d+)", url).group(1)  # type: ignore[union-attr]
    signature = re.search(r"signature=([^&]+)", url).group(1)  # type: ignore[union-attr]
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    # The same key but for one byte, on another app.
    near_key = make_app(media, keys=[KEY[:-1] + "j"])
    tampered = {
        "another file": url.replace("/media/clip.bin", "/media/other.bin"),
        "a later expiry": with_query(url, "expires", str(int(expires) + 3600)),
        "an earlier expiry": with_query(url, "expires", str(int(expires) - 1)),
        "another signature": with_query(url, "signature", flipped),
        "a truncated signature": with_query(url, "signature", signature[:-2]),
        "a key one byte off": near_key.sign_url("/media/clip.bin", 60),
        "no signature": "/media/clip.bin",
        "no expiry": re.sub(r"expires=\d+&", "", url),
        "a malformed expiry": with_query(url, "expires", "soon"),
        "a huge expiry": with_query(url, "expires", "9" * 40),
        "a malformed signature": with_query(url, "signature", "%%%!"),
        "a repeated parameter": url + f"&expires={expires}",
        "an ip flag added": url + "&ip=1",
        "a prefix added": url + "&prefix=/media/",
    }
    for what, bad in tampered.items():
        r = get(port, bad)
        assert r.status == 403, (what, bad, r.status)
        assert DATA[:100] not in r.body, what


def test_an_ip_bound_url_serves_that_address_only(served: tuple[BustAPI, int]) -> None:
    app, port = served
    url = app.sign_url("/media/clip.bin", 60, ip="127.0.0.2")
    assert "ip=1" in url and "127.0.0.2" not in url  # the address is signed, not shown
    assert get(port, url, source="127.0.0.2").body == DATA
    assert get(port, url, source="127.0.0.3").status == 403
    assert get(port, url.replace("&ip=1", ""), source="127.0.0.3").status == 403


def test_an_expired_url_is_gone_and_a_forged_one_is_forbidden(
    served: tuple[BustAPI, int],
) -> None:
    app, port = served
    expired = app.sign_url("/media/clip.bin", expires_in=-5)
    r = get(port, expired)
    assert r.status == 410, r
    assert b"expired" in r.body and DATA[:100] not in r.body
    # Only a genuine signature earns the 410: a forger learns nothing from it.
    assert get(port, expired.replace("clip", "other")).status == 403


def test_refusals_do_not_tell_whether_the_file_exists(served: tuple[BustAPI, int]) -> None:
    _, port = served
    there = get(port, "/media/clip.bin?expires=1&signature=AAAA")
    missing = get(port, "/media/nope.bin?expires=1&signature=AAAA")
    outside = get(port, "/media/../../etc/passwd?expires=1&signature=AAAA")
    assert there.status == missing.status == outside.status == 403
    assert there.body == missing.body == outside.body
    assert there.headers.keys() == missing.headers.keys()


def test_rotated_keys_sign_with_the_first_and_accept_any(
    media: Path, serve: Callable[..., LiveServer]
) -> None:
    old = make_app(media, keys=["old-key"])
    rotated = make_app(media, keys=["new-key", "old-key"])
    new_only = make_app(media, keys=["new-key"])
    old_url = old.sign_url("/media/other.bin", 60)
    new_url = rotated.sign_url("/media/other.bin", 60)
    port = serve(rotated).port
    assert get(port, old_url).body == OTHER
    assert get(port, new_url).body == OTHER
    port = serve(new_only).port
    assert get(port, new_url).body == OTHER
    assert get(port, old_url).status == 403  # the old key was dropped


def test_secret_key_and_its_fallbacks_are_the_default_keys(
    media: Path, serve: Callable[..., LiveServer]
) -> None:
    old = make_app(media, keys=None, SECRET_KEY="old secret")
    app = make_app(media, keys=None, SECRET_KEY="new secret", SECRET_KEY_FALLBACKS=["old secret"])
    port = serve(app).port
    assert get(port, app.sign_url("/media/other.bin", 60)).body == OTHER
    assert get(port, old.sign_url("/media/other.bin", 60)).body == OTHER
    # An explicit SIGNING_KEYS list replaces the secret key for URLs.
    explicit = make_app(media, keys=["url key"], SECRET_KEY="new secret")
    assert get(port, explicit.sign_url("/media/other.bin", 60)).status == 403


def test_without_keys_signing_and_signed_mounts_fail_loudly(media: Path) -> None:
    app = make_app(media, keys=None)
    with pytest.raises(RuntimeError, match="SIGNING_KEYS"):
        app.sign_url("/media/clip.bin")
    with pytest.raises(RuntimeError, match="SIGNING_KEYS"):
        LiveServer(app)
    app.config["SIGNING_KEYS"] = "a single string"
    with pytest.raises(TypeError, match="list"):
        app.sign_url("/media/clip.bin")


def test_a_prefix_signature_admits_its_folder_and_nothing_outside(
    served: tuple[BustAPI, int],
) -> None:
    app, port = served
    url = app.sign_url("/media/show/index.m3u8", 60, prefix=True)
    assert "prefix=/media/show/" in url
    query = url.split("?", 1)[1]
    assert get(port, url).body == b"#EXTM3U\n"
    assert get(port, f"/media/show/seg/001.ts?{query}").body == b"segment 1"
    for outside in [
        "/media/other.bin",
        "/media/other/secret.ts",
        "/media/show/../other/secret.ts",
        "/media/show/%2e%2e/other/secret.ts",
        "/media/show/seg/%2E%2E/%2e%2e/other/secret.ts",
        "/media/show/..%2fother%2fsecret.ts",
        "/media/show%2f..%2fother/secret.ts",
        "/media/show/%2fmedia/other/secret.ts",
        "/media/showing/x.ts",
    ]:
        r = get(port, f"{outside}?{query}")
        assert r.status == 403, (outside, r.status)
    # Widening the signed prefix breaks the signature.
    wider = with_query(url, "prefix", "/media/")
    assert get(port, wider.replace("/show/index.m3u8", "/other.bin")).status == 403
    # An explicit prefix works the same, and must contain the path.
    explicit = app.sign_url("/media/show/seg/001.ts", 60, prefix="/media/show/")
    assert get(port, explicit).status == 200
    with pytest.raises(ValueError, match="not under the prefix"):
        app.sign_url("/media/other.bin", 60, prefix="/media/show/")


def test_a_signed_route_runs_its_view_only_for_a_valid_url(
    media: Path, serve: Callable[..., LiveServer]
) -> None:
    app = make_app(media)
    calls: list[str] = []

    @app.route("/report/<int:n>", signed=True, methods=["GET", "POST"])
    def report(n: int) -> str:
        calls.append(request.path)
        return f"report {n}"

    @app.route("/link/<int:n>")
    def link(n: int) -> str:
        return url_for("report", n=n, _signed=True, _expires_in=timedelta(minutes=1))

    @app.route("/page")
    def page() -> str:
        return render_template_string(
            "<a href=\"{{ url_for('report', n=7, _signed=True, _expires_in=60) }}\">r</a>"
        )

    port = serve(app).port
    assert http_request(port, "GET", "/report/3").status == 403
    assert http_request(port, "POST", "/report/3", body=b"x" * 1000).status == 403
    forged = http_request(port, "GET", "/link/4").text.replace("/report/4", "/report/5")
    assert http_request(port, "GET", forged).status == 403
    assert calls == []
    signed = http_request(port, "GET", "/link/4").text
    assert signed.startswith("/report/4?expires=")
    assert http_request(port, "GET", signed).text == "report 4"
    href = re.search(r'href="([^"]+)"', http_request(port, "GET", "/page").text).group(1)  # type: ignore[union-attr]
    assert http_request(port, "GET", href.replace("&amp;", "&")).text == "report 7"
    assert calls == ["/report/4", "/report/7"]


def test_signed_urls_keep_other_query_parameters(
    media: Path, serve: Callable[..., LiveServer]
) -> None:
    app = make_app(media)

    @app.route("/dl/<name>", signed=True)
    def dl(name: str) -> str:
        return f"{name} {request.args.get('as')}"

    with app.test_request_context():
        url = url_for("dl", name="a b", **{"as": "zip"}, _signed=True, _anchor="top")
    assert re.fullmatch(r"/dl/a%20b\?as=zip&expires=\d+&signature=[\w-]+#top", url)
    port = serve(app).port
    assert http_request(port, "GET", url.split("#")[0]).text == "a b zip"


def test_a_blueprint_static_folder_can_be_signed(
    media: Path, serve: Callable[..., LiveServer]
) -> None:
    app = make_app(media)
    bp = Blueprint(
        "shop",
        __name__,
        static_folder="bp_static",
        static_url_path="/static",
        root_path=str(media),
        url_prefix="/shop",
        static_signed=True,
    )
    app.register_blueprint(bp)
    port = serve(app).port
    assert http_request(port, "GET", "/shop/static/logo.txt").status == 403
    with app.test_request_context():
        url = url_for("shop.static", filename="logo.txt", _signed=True)
    assert http_request(port, "GET", url).body == b"blueprint logo"


def test_the_apps_error_handlers_render_refusals(
    media: Path, client_for: Callable[[BustAPI], Any]
) -> None:
    app = make_app(media)

    @app.errorhandler(403)
    def forbidden(e: Any) -> tuple[str, int]:
        return "ask for a new link", 403

    @app.errorhandler(410)
    def gone(e: Any) -> tuple[str, int]:
        return "this link has expired", 410

    client = client_for(app)
    r = client.get("/media/clip.bin?expires=1&signature=AAAA")
    assert (r.status, r.text) == (403, "ask for a new link")
    r = client.get(app.sign_url("/media/clip.bin", -1))
    assert (r.status, r.text) == (410, "this link has expired")
    r = client.get(app.sign_url("/media/other.bin", 60))
    assert (r.status, r.body) == (200, OTHER)


def test_head_and_options_need_a_signature_too(served: tuple[BustAPI, int]) -> None:
    app, port = served
    r = http_request(port, "HEAD", "/media/clip.bin")
    assert (r.status, r.body) == (403, b"")
    assert http_request(port, "OPTIONS", "/media/clip.bin").status == 403
    r = http_request(port, "HEAD", app.sign_url("/media/clip.bin", 60))
    assert (r.status, r.headers["content-length"]) == (200, str(len(DATA)))


def test_sign_url_quotes_paths_and_checks_its_arguments(media: Path) -> None:
    app = make_app(media)
    assert app.sign_url("/media/a b.mp4").startswith("/media/a%20b.mp4?expires=")
    assert app.sign_url("/media/a%20b.mp4").startswith("/media/a%20b.mp4?expires=")
    expires = int(re.search(r"expires=(\d+)", app.sign_url("/x", 90)).group(1))  # type: ignore[union-attr]
    assert abs(expires - (time.time() + 90)) < 5
    with pytest.raises(ValueError, match="IP address"):
        app.sign_url("/x", ip="not-an-ip")
    with pytest.raises(TypeError, match="timedelta"):
        app.sign_url("/x", expires_in="1h")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="start with '/'"):
        app.sign_url("relative/path")
    with app.test_request_context(environ_base={"REMOTE_ADDR": "10.1.2.3"}):
        assert "ip=1" in app.sign_url("/x", ip=True)
