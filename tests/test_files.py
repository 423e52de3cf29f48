"""File responses end to end over real sockets: the static folder, ``send_file``,
``FileResponse`` and ``send_from_directory`` all get the same RFC 9110 behaviour."""

from __future__ import annotations

import email.utils
import hashlib
import io
import os
import random
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from bustapi import BustAPI, FileResponse, send_file, send_from_directory
from bustapi.testing import LiveServer
from conftest import Result, file_slices, http_request, parse_multipart

SIZE = 10_000
DATA = random.Random(1234).randbytes(SIZE)
# Above the static cache's inline size (64 KiB, so read from disk) and the sendfile
# threshold, and spanning several 256 KiB read chunks and 1 MiB sendfile calls.
BIG = random.Random(4321).randbytes(2 * 1024 * 1024 + 12_345)


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("files")
    static = root / "static"
    (static / "sub").mkdir(parents=True)
    (static / "data.bin").write_bytes(DATA)
    (static / "big.bin").write_bytes(BIG)
    (static / "clip.mp4").write_bytes(DATA)
    (static / "style.css").write_text("body{}\n")
    (static / "sub" / "index.html").write_text("<p>index</p>")
    (static / ".env").write_text("SECRET=static-dotfile")
    (static / ".git").mkdir()
    (static / ".git" / "config").write_text("SECRET=git")
    (root / "secret.txt").write_text("SECRET=outside")
    (root / "static_secret").mkdir()
    (root / "static_secret" / "x.txt").write_text("SECRET=sibling")
    os.symlink(root / "secret.txt", static / "link_out.txt")
    os.symlink(static / "data.bin", static / "link_in.bin")
    (root / "downloads").mkdir()
    (root / "downloads" / "data.bin").write_bytes(DATA)
    (root / "downloads" / "big.bin").write_bytes(BIG)
    (root / "downloads" / "r\u00e9sum\u00e9 \u20ac.pdf").write_bytes(b"%PDF-1.4 fake")
    os.symlink(root / "secret.txt", root / "downloads" / "link_out.txt")
    return root


def make_app(tree: Path) -> BustAPI:
    app = BustAPI(static_folder=str(tree / "static"))

    @app.route("/send/<path:name>")
    def send(name: str) -> FileResponse:
        return send_file(str(tree / "static" / name))

    @app.route("/typed/<path:name>")
    def typed(name: str) -> FileResponse:
        return send_file(str(tree / "static" / name), mimetype="application/x-custom")

    @app.route("/fr/<path:name>")
    def fr(name: str) -> FileResponse:
        return FileResponse(path=str(tree / "static" / name), headers={"X-Extra": "kept"})

    @app.route("/dl/<path:name>")
    def dl(name: str) -> FileResponse:
        return send_from_directory(str(tree / "downloads"), name)

    @app.route("/download")
    def download() -> FileResponse:
        return FileResponse(
            path=str(tree / "downloads" / "data.bin"),
            filename="custom_name.csv",
            media_type="text/csv",
            content_disposition_type="attachment",
        )

    @app.route("/unicode-name")
    def unicode_name() -> FileResponse:
        return send_file(
            str(tree / "downloads" / "r\u00e9sum\u00e9 \u20ac.pdf"), as_attachment=True
        )

    @app.route("/bytesio")
    def bytesio() -> FileResponse:
        return send_file(io.BytesIO(DATA), mimetype="application/octet-stream")

    @app.route("/fileobj")
    def fileobj() -> FileResponse:
        f = open(tree / "static" / "data.bin", "rb")  # noqa: SIM115 - the engine owns a dup
        try:
            return send_file(f, download_name="data.bin")
        finally:
            f.close()

    @app.route("/dir")
    def directory() -> FileResponse:
        return send_file(str(tree / "static"))

    @app.route("/missing")
    def missing() -> FileResponse:
        return send_file(str(tree / "nope.bin"))

    return app


@pytest.fixture(scope="module")
def port(tree: Path) -> Iterator[int]:
    with LiveServer(make_app(tree)) as server:
        yield server.port


@pytest.fixture(scope="module")
def copy_port(tree: Path) -> Iterator[int]:
    """The same app with sendfile off: file bodies go through the read-and-copy path."""
    with LiveServer(make_app(tree), sendfile=False) as server:
        yield server.port


# Every way of serving a file.
KINDS = {
    "static": "/static/{}",
    "send_file": "/send/{}",
    "file_response": "/fr/{}",
    "send_from_directory": "/dl/{}",
}
# Each takes a different path through the engine: the small file is served from the
# static cache's memory (or read whole), the big one with sendfile(2) by default, and
# read in chunks and copied with sendfile off.
SOURCES = {
    "small": ("data.bin", DATA, False),
    "big": ("big.bin", BIG, False),
    "big-copy": ("big.bin", BIG, True),
}


@dataclass
class Target:
    port: int
    url: str
    data: bytes

    @property
    def size(self) -> int:
        return len(self.data)


@pytest.fixture(params=list(SOURCES))
def source(request: pytest.FixtureRequest) -> tuple[str, bytes, bool]:
    return SOURCES[request.param]


@pytest.fixture(params=list(KINDS))
def target(request: pytest.FixtureRequest, source: tuple[str, bytes, bool]) -> Target:
    name, data, copy = source
    port = request.getfixturevalue("copy_port" if copy else "port")
    return Target(port, KINDS[request.param].format(name), data)


def get(port: int, path: str, method: str = "GET", **headers: str) -> Result:
    return http_request(port, method, path, {k.replace("_", "-"): v for k, v in headers.items()})


def test_full_get(target: Target) -> None:
    r = get(target.port, target.url)
    assert r.status == 200
    assert file_slices(r, target.data) == [(0, target.size - 1)]
    assert r.headers["content-length"] == str(target.size)
    assert r.headers["accept-ranges"] == "bytes"
    assert re.fullmatch(r'"[^"]+"', r.headers["etag"]), r.headers["etag"]
    assert email.utils.parsedate_to_datetime(r.headers["last-modified"])
    assert r.headers["content-type"] == "application/octet-stream"


# Each case maps the file size n to (Range header, first byte, last byte).
SINGLE_RANGES: dict[str, Callable[[int], tuple[str, int, int]]] = {
    "head": lambda n: ("bytes=0-499", 0, 499),
    "inner": lambda n: ("bytes=500-999", 500, 999),
    "suffix": lambda n: ("bytes=-500", n - 500, n - 1),
    "open-ended": lambda n: (f"bytes={n - 500}-", n - 500, n - 1),
    "all": lambda n: ("bytes=0-", 0, n - 1),
    "past-the-end": lambda n: (f"bytes={n - 10}-{2 * n}", n - 10, n - 1),
    "odd-spelling": lambda n: ("BYTES = 5-5", 5, 5),
    "suffix-too-long": lambda n: (f"bytes=-{2 * n}", 0, n - 1),
    # On the big file this crosses read chunks and sendfile calls.
    "middle-third": lambda n: (f"bytes={n // 3}-{2 * n // 3}", n // 3, 2 * n // 3),
}


@pytest.mark.parametrize("case", list(SINGLE_RANGES))
def test_single_range(target: Target, case: str) -> None:
    spec, start, end = SINGLE_RANGES[case](target.size)
    r = get(target.port, target.url, Range=spec)
    assert r.status == 206
    assert r.headers["content-range"] == f"bytes {start}-{end}/{target.size}"
    assert file_slices(r, target.data) == [(start, end)]
    assert r.headers["content-length"] == str(end - start + 1)
    assert "etag" in r.headers and "last-modified" in r.headers


def test_multipart_ranges(target: Target) -> None:
    n = target.size
    r = get(target.port, target.url, Range=f"bytes=0-9, 100-109, {n // 3}-{2 * n // 3}, -5")
    assert r.status == 206
    want = [(0, 9), (100, 109), (n // 3, 2 * n // 3), (n - 5, n - 1)]
    assert file_slices(r, target.data) == want
    assert all(ct == "application/octet-stream" for ct, _, _ in parse_multipart(r))


def test_overlapping_ranges_coalesce(target: Target) -> None:
    r = get(target.port, target.url, Range="bytes=0-99,50-149,150-199")
    assert r.status == 206
    assert r.headers["content-range"] == f"bytes 0-199/{target.size}"
    assert file_slices(r, target.data) == [(0, 199)]


@pytest.mark.parametrize("spec", ["bytes={twice}-", "bytes={n}-{n_plus_1}", "bytes=-0"])
def test_unsatisfiable_is_416(target: Target, spec: str) -> None:
    n = target.size
    r = get(target.port, target.url, Range=spec.format(n=n, n_plus_1=n + 1, twice=2 * n))
    assert r.status == 416
    assert r.headers["content-range"] == f"bytes */{n}"


@pytest.mark.parametrize("spec", ["bytes=abc", "items=0-5", "bytes=5-1", "bytes=", "bytes=--1"])
def test_invalid_or_unknown_range_is_ignored(target: Target, spec: str) -> None:
    r = get(target.port, target.url, Range=spec)
    assert r.status == 200 and file_slices(r, target.data)


def test_conditional_get(target: Target) -> None:
    port, url = target.port, target.url
    first = get(port, url, "HEAD")
    etag, lm = first.headers["etag"], first.headers["last-modified"]
    r = get(port, url, If_None_Match=etag)
    assert r.status == 304 and r.body == b""
    assert r.headers["etag"] == etag and r.headers["last-modified"] == lm
    assert "cache-control" in r.headers
    assert get(port, url, If_None_Match=f"W/{etag}").status == 304  # weak comparison
    r = get(port, url, If_None_Match='"other"')
    assert r.status == 200 and file_slices(r, target.data)
    assert get(port, url, If_Modified_Since=lm).status == 304
    # If-None-Match beats Range.
    assert get(port, url, If_None_Match=etag, Range="bytes=0-1").status == 304


def test_preconditions_412(target: Target) -> None:
    port, url = target.port, target.url
    etag = get(port, url, "HEAD").headers["etag"]
    assert get(port, url, If_Match='"nope"').status == 412
    r = get(port, url, If_Match=etag)
    assert r.status == 200 and file_slices(r, target.data)
    r = get(port, url, If_Match="*", Range="bytes=1-2")
    assert r.status == 206 and file_slices(r, target.data) == [(1, 2)]
    assert get(port, url, If_Match=f"W/{etag}").status == 412  # strong comparison
    assert get(port, url, If_Unmodified_Since="Mon, 01 Jan 1990 00:00:00 GMT").status == 412


def test_if_range(target: Target) -> None:
    port, url, data = target.port, target.url, target.data
    first = get(port, url, "HEAD")
    etag, lm = first.headers["etag"], first.headers["last-modified"]
    r = get(port, url, Range="bytes=0-9", If_Range=etag)
    assert r.status == 206 and file_slices(r, data) == [(0, 9)]
    r = get(port, url, Range="bytes=0-9", If_Range='"stale-version"')
    assert r.status == 200 and file_slices(r, data)
    r = get(port, url, Range="bytes=0-9", If_Range=f"W/{etag}")
    assert r.status == 200, "a weak validator never matches If-Range"
    r = get(port, url, Range="bytes=0-9", If_Range=lm)
    assert r.status == 206 and file_slices(r, data) == [(0, 9)]
    r = get(port, url, Range="bytes=0-9", If_Range="Mon, 01 Jan 1990 00:00:00 GMT")
    assert r.status == 200 and file_slices(r, data)


def test_head_matches_get_without_body(target: Target) -> None:
    n = target.size
    for headers in ({}, {"Range": "bytes=10-19"}, {"Range": f"bytes=0-1,{n // 2}-{n - 1}"}):
        g = get(target.port, target.url, **headers)
        h = get(target.port, target.url, "HEAD", **headers)
        assert h.status == g.status
        assert h.body == b""
        for name in ("content-length", "content-range", "etag", "accept-ranges"):
            assert h.headers.get(name) == g.headers.get(name), name
        # Multipart boundaries are fresh per response; the type itself must agree.
        assert h.headers["content-type"].split(";")[0] == g.headers["content-type"].split(";")[0]


def test_static_methods(port: int) -> None:
    r = get(port, "/static/data.bin", "POST")
    assert r.status == 405 and r.headers["allow"] == "GET, HEAD, OPTIONS"
    r = get(port, "/static/data.bin", "OPTIONS")
    assert r.status == 200 and "GET" in r.headers["allow"]


def test_content_types(port: int) -> None:
    assert get(port, "/static/clip.mp4").headers["content-type"] == "video/mp4"
    assert get(port, "/static/style.css").headers["content-type"] == "text/css; charset=utf-8"
    assert get(port, "/send/clip.mp4").headers["content-type"] == "video/mp4"
    assert get(port, "/typed/clip.mp4").headers["content-type"] == "application/x-custom"
    r = get(port, "/static/clip.mp4", Range="bytes=0-0,5-5")
    assert all(ct == "video/mp4" for ct, _, _ in parse_multipart(r))


def test_file_response_download(port: int) -> None:
    r = get(port, "/download")
    assert r.status == 200 and r.body == DATA
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    assert r.headers["content-disposition"] == 'attachment; filename="custom_name.csv"'
    r = get(port, "/download", Range="bytes=1-2")
    assert r.status == 206 and r.body == DATA[1:3]
    assert r.headers["content-disposition"] == 'attachment; filename="custom_name.csv"'
    assert get(port, "/fr/data.bin").headers["x-extra"] == "kept"


def test_non_ascii_disposition(port: int) -> None:
    cd = get(port, "/unicode-name").headers["content-disposition"]
    assert cd.startswith("attachment; ")
    assert "filename*=UTF-8''r%C3%A9sum%C3%A9%20%E2%82%AC.pdf" in cd
    fallback = re.search(r'filename="([^"]*)"', cd)
    assert fallback and fallback.group(1).isascii() and fallback.group(1).endswith(".pdf")
    r = get(port, "/dl/r%C3%A9sum%C3%A9%20%E2%82%AC.pdf")
    assert r.status == 200 and r.body == b"%PDF-1.4 fake"
    assert r.headers["content-type"] == "application/pdf"


def test_in_memory_and_open_files_support_ranges(port: int) -> None:
    for path in ("/bytesio", "/fileobj"):
        r = get(port, path)
        assert r.status == 200 and r.body == DATA, path
        r = get(port, path, Range="bytes=100-199")
        assert r.status == 206 and r.body == DATA[100:200], path
        r = get(port, path, Range="bytes=0-0,-1")
        assert r.status == 206 and [b for _, _, b in parse_multipart(r)] == [DATA[:1], DATA[-1:]]


def test_missing_and_directories_are_404(port: int) -> None:
    for path in ("/static/nope.bin", "/send/nope.bin", "/fr/nope.bin", "/dl/nope.bin", "/missing",
                 "/dir", "/static/", "/static/.", "/send/sub"):  # fmt: skip
        assert get(port, path).status == 404, path
    r = get(port, "/static/sub/")
    assert r.status == 200 and r.body == b"<p>index</p>"
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    r = get(port, "/static/sub?x=1")
    assert r.status == 308 and r.headers["location"] == "/static/sub/?x=1"


def test_symlink_inside_root_is_served(port: int) -> None:
    r = get(port, "/static/link_in.bin")
    assert r.status == 200 and r.body == DATA


TRAVERSAL = [
    "../secret.txt", "..%2fsecret.txt", "%2e%2e/secret.txt", "%2e%2e%2fsecret.txt",
    "%252e%252e/secret.txt", "%252e%252e%252fsecret.txt", "..%5csecret.txt", "..\\secret.txt",
    "sub/../../secret.txt", "sub/%2e%2e/%2e%2e/secret.txt", "%2fetc%2fpasswd", "/etc/passwd",
    "..%00/secret.txt", "data.bin%00.txt", "%c0%ae%c0%ae/secret.txt", ".env", "%2eenv",
    ".git/config", "%2egit/config", "link_out.txt", "..", "%2e%2e", "./../secret.txt",
    "....//secret.txt", "..;/secret.txt", "%u002e%u002e/secret.txt",
]  # fmt: skip


@pytest.mark.parametrize("prefix", ["/static/", "/dl/"])
@pytest.mark.parametrize("attack", TRAVERSAL)
def test_traversal_is_refused(port: int, prefix: str, attack: str) -> None:
    r = get(port, prefix + attack)
    assert 400 <= r.status < 500, (attack, r.status)
    assert b"SECRET" not in r.body


def test_sibling_prefix_is_not_the_root(port: int) -> None:
    r = get(port, "/static_secret/x.txt")
    assert r.status == 404 and b"SECRET" not in r.body
    r = get(port, "/static/../static_secret/x.txt")
    assert 400 <= r.status < 500 and b"SECRET" not in r.body


def test_python_side_mistakes_raise_at_the_call(tmp_path: Path) -> None:
    with pytest.raises(TypeError):
        send_file(12345)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        send_file(io.StringIO("text"))  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        send_file(io.BytesIO(b"x"))  # no name, no mimetype: type cannot be known
    with pytest.raises(TypeError):
        FileResponse(path=5)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        FileResponse(path="x", content_disposition_type="sideways")
    with pytest.raises(ValueError):
        FileResponse(path="x", headers={"X-A": "a\r\nInjected: 1"})
    with pytest.raises(ValueError):
        send_file("x", mimetype="text/plain\r\nX-Injected: 1")


def test_resumable_download(tmp_path: Path, serve: Callable[..., Any]) -> None:
    static = tmp_path / "static"
    static.mkdir()
    big = static / "big.bin"
    content = random.Random(99).randbytes(3_000_000)
    big.write_bytes(content)
    port = serve(BustAPI(static_folder=str(static))).port

    # Download the first half, then resume with Range + If-Range.
    first = get(port, "/static/big.bin", Range="bytes=0-1499999")
    assert first.status == 206
    etag = first.headers["etag"]
    rest = get(port, "/static/big.bin", Range="bytes=1500000-", If_Range=etag)
    assert rest.status == 206
    assert hashlib.sha256(first.body + rest.body).digest() == hashlib.sha256(content).digest()

    # The file changes between the two halves: the server must send all of it again.
    time.sleep(0.01)
    new_content = random.Random(100).randbytes(3_000_000)
    big.write_bytes(new_content)
    resumed = get(port, "/static/big.bin", Range="bytes=1500000-", If_Range=etag)
    assert resumed.status == 200
    assert hashlib.sha256(resumed.body).digest() == hashlib.sha256(new_content).digest()
    assert resumed.headers["etag"] != etag


def test_sparse_file_past_4gib(tmp_path: Path, serve: Callable[..., Any]) -> None:
    static = tmp_path / "static"
    static.mkdir()
    huge = static / "huge.bin"
    size = 5 * 1024**3
    marker_at = 4 * 1024**3 + 100
    with open(huge, "wb") as f:
        f.truncate(size)  # sparse: no disk blocks used
        f.seek(marker_at)
        f.write(b"MARKER-PAST-4GIB")
    app = BustAPI(static_folder=str(static))

    @app.route("/huge")
    def send_huge() -> FileResponse:
        return send_file(str(huge))

    port = serve(app).port
    for path in ("/static/huge.bin", "/huge"):
        h = get(port, path, "HEAD")
        assert h.status == 200 and h.headers["content-length"] == str(size)
        r = get(port, path, Range=f"bytes={marker_at - 4}-{marker_at + 19}")
        assert r.status == 206
        assert r.headers["content-range"] == f"bytes {marker_at - 4}-{marker_at + 19}/{size}"
        assert r.body == b"\0" * 4 + b"MARKER-PAST-4GIB" + b"\0" * 4
        r = get(port, path, Range="bytes=-16")
        assert r.status == 206 and r.body == b"\0" * 16
        assert r.headers["content-range"] == f"bytes {size - 16}-{size - 1}/{size}"


@pytest.mark.parametrize("sendfile", [True, False])
def test_zero_copy_and_copy_paths_send_the_same_bytes(
    tmp_path: Path, serve: Callable[..., Any], sendfile: bool
) -> None:
    static = tmp_path / "static"
    static.mkdir()
    content = random.Random(7).randbytes(3 * 1024 * 1024 + 17)  # above the inline size
    (static / "v.bin").write_bytes(content)
    port = serve(BustAPI(static_folder=str(static)), sendfile=sendfile).port
    assert get(port, "/static/v.bin").body == content
    r = get(port, "/static/v.bin", Range="bytes=1048570-2097160")
    assert r.status == 206 and r.body == content[1048570:2097161]
    r = get(port, "/static/v.bin", Range="bytes=0-9,2097152-3145727,-5")
    parts = parse_multipart(r)
    assert [b for _, _, b in parts] == [content[:10], content[2097152:3145728], content[-5:]]
