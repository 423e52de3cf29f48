"""Uploads: multipart bodies parsed by the engine as they arrive, file parts written
straight to temp files, ``request.files``/``form``/``stream``, and every limit and bad
input with its exact status and no temp file left behind.

Bodies are written by hand (uploads_helpers.py) and sent over real sockets, so what
is tested is the engine's parser against the bytes browsers and curl send.
"""

from __future__ import annotations

import hashlib
import io
import os
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

import pytest
from bustapi import BustAPI, request
from bustapi.testing import LiveServer
from conftest import closed_within, http_request, read_response
from uploads_helpers import (
    CONTENT_TYPE,
    chunked,
    closing,
    exchange,
    field,
    file,
    head,
    leftovers,
)

MIB = 1024 * 1024
Serve = Callable[..., LiveServer]
Folders = tuple[Path, Path]


def secure_filename(name: str) -> str:
    """``bustapi.utils.secure_filename`` where it exists, else Werkzeug's (the reference)."""
    try:
        from bustapi.utils import secure_filename as ours  # type: ignore[import-not-found]
    except ImportError:
        from werkzeug.utils import secure_filename as ours
    return str(ours(name))


def describe_files() -> list[dict[str, Any]]:
    out = []
    for name, f in request.files.items(multi=True):
        data = f.read()
        out.append(
            {
                "field": name,
                "name": f.name,
                "filename": f.filename,
                "content_type": f.content_type,
                "mimetype": f.mimetype,
                "content_length": f.content_length,
                "size": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
                "secure": secure_filename(f.filename or ""),
                "headers": sorted(k.lower() for k, _ in f.headers.items()),
            }
        )
    return out


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    """``(upload temp folder, destination folder)``, on the same filesystem."""
    temp, dest = tmp_path / "upload-tmp", tmp_path / "saved"
    temp.mkdir()
    dest.mkdir()
    return temp, dest


@pytest.fixture
def app(folders: tuple[Path, Path]) -> BustAPI:
    temp, dest = folders
    app = BustAPI(__name__)
    app.config["UPLOAD_TEMP_FOLDER"] = str(temp)
    app.config["MAX_CONTENT_LENGTH"] = 4 * MIB
    app.config["MAX_FORM_MEMORY_SIZE"] = 64 * 1024
    app.config["MAX_FORM_PARTS"] = 20

    @app.route("/echo", methods=["POST"])
    def echo() -> Any:
        return {
            "form": request.form.items(multi=True),
            "values": request.values.items(multi=True),
            "files": describe_files(),
            "data": request.get_data(as_text=True),
            "temp_files_during": leftovers(temp),
        }

    @app.route("/save", methods=["POST"])
    def save() -> Any:
        (during,) = leftovers(temp)
        inode = os.stat(temp / during).st_ino
        f = request.files["f"]
        target = dest / secure_filename(f.filename or "")
        f.save(target)
        saved = os.stat(target)
        return {"renamed": saved.st_ino == inode, "mode": stat.S_IMODE(saved.st_mode)}

    @app.route("/raise", methods=["POST"])
    def fail() -> Any:
        assert len(request.files) == 1 and leftovers(temp)
        raise RuntimeError("the view failed after the upload arrived")

    @app.route("/big", methods=["POST"], max_content_length=16 * MIB)
    def big() -> Any:
        return {"size": request.files["f"].content_length}

    @app.route("/small", methods=["POST"], max_content_length=1000)
    def small() -> Any:
        return {"size": len(request.get_data())}

    @app.route("/stream", methods=["POST"], stream_body=True)
    def stream() -> Any:
        digest, size = hashlib.sha256(), 0
        while chunk := request.stream.read(100_000):
            digest.update(chunk)
            size += len(chunk)
        return {"size": size, "sha256": digest.hexdigest(), "form": len(request.form)}

    return app


def post(port: int, path: str, body: bytes, extra: dict[str, str] | None = None) -> Any:
    return http_request(port, "POST", path, {"Content-Type": CONTENT_TYPE, **(extra or {})}, body)


# -- what arrives -------------------------------------------------------------------------


def test_files_and_fields_of_one_body(app: BustAPI, serve: Serve, folders: Folders) -> None:
    video = os.urandom(300_000)
    body = b"".join(
        [
            field("title", "Été à Paris".encode()),
            file("video", "clip.mp4", video, "video/mp4"),
            file("video", "../../etc/passwd", b"root:x:0:0", "text/plain"),
            file("empty", "", b""),
            file("thumb", "фото 1.png", b"\x89PNG\r\n", "image/png"),
            field("meta", b'{"a": 1}', "Content-Type: application/json\r\n"),
            field("title", b"second"),
            closing(),
        ]
    )
    server = serve(app)
    r = post(server.port, "/echo?title=query", body)
    assert r.status == 200, r.body
    got = r.json
    assert got["form"] == [["title", "Été à Paris"], ["meta", '{"a": 1}'], ["title", "second"]]
    assert got["values"][0] == ["title", "query"] and len(got["values"]) == 4
    assert got["data"] == "", "a parsed form's body is consumed, as in Werkzeug"
    files = {(f["field"], f["filename"]): f for f in got["files"]}
    assert [k for k, _ in ((f["field"], 0) for f in got["files"])] == [
        "video", "video", "empty", "thumb"
    ]  # fmt: skip
    clip = files[("video", "clip.mp4")]
    assert (clip["size"], clip["content_length"]) == (len(video), len(video))
    assert clip["sha256"] == hashlib.sha256(video).hexdigest()
    assert (clip["content_type"], clip["mimetype"]) == ("video/mp4", "video/mp4")
    assert clip["name"] == "video"
    assert "content-disposition" in clip["headers"] and "content-type" in clip["headers"]
    evil = files[("video", "../../etc/passwd")]
    assert evil["secure"] == "etc_passwd", "the raw name is kept; secure_filename makes it safe"
    empty = files[("empty", "")]
    assert (empty["size"], empty["sha256"]) == (0, hashlib.sha256(b"").hexdigest())
    thumb = files[("thumb", "фото 1.png")]
    assert thumb["secure"] == secure_filename("фото 1.png") and thumb["content_type"] == "image/png"
    assert len(got["temp_files_during"]) == 4, "one temp file per file part while the view runs"
    temp, _ = folders
    assert leftovers(temp) == [], "temp files not saved are gone when the request ends"


def test_chunked_body_and_100_continue(app: BustAPI, serve: Serve, folders: Folders) -> None:
    temp, _ = folders
    content = os.urandom(1_000_000)
    body = file("f", "a.bin", content) + field("k", b"v") + closing()
    server = serve(app)
    pieces = [body[i : i + 7777] for i in range(0, len(body), 7777)]
    r = exchange(server.port, [head("/echo"), *chunked(pieces)])
    assert r.status == 200, r.body
    (only,) = r.json["files"]
    assert only["sha256"] == hashlib.sha256(content).hexdigest()
    assert r.json["form"] == [["k", "v"]]

    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(head("/echo", len(body), "Expect: 100-continue\r\n"))
        stream = s.makefile("rb")
        assert stream.readline() == b"HTTP/1.1 100 Continue\r\n"
        assert stream.readline() == b"\r\n"
        s.sendall(body)
        r = read_response(stream)
    assert r.status == 200 and r.json["files"][0]["size"] == len(content)
    assert leftovers(temp) == []


def test_test_client_posts_files_through_the_same_parser(app: BustAPI, folders: Folders) -> None:
    temp, _ = folders
    r = app.test_client().post(
        "/echo", data={"f": (io.BytesIO(b"frames"), "name.mp4"), "title": "x"}
    )
    assert r.status_code == 200
    (f,) = r.json["files"]
    assert (f["filename"], f["content_type"], f["size"]) == ("name.mp4", "video/mp4", 6)
    assert r.json["form"] == [["title", "x"]]
    assert leftovers(temp) == []


def test_small_posts_stay_in_memory(app: BustAPI, serve: Serve, folders: Folders) -> None:
    """JSON and URL-encoded bodies are collected bytes: no temp file, same answers."""
    temp, _ = folders
    server = serve(app)
    form = http_request(
        server.port,
        "POST",
        "/echo",
        {"Content-Type": "application/x-www-form-urlencoded"},
        b"a=1&b=%C3%A9&a=2",
    )
    assert form.json["form"] == [["a", "1"], ["b", "é"], ["a", "2"]]
    assert form.json["data"] == "a=1&b=%C3%A9&a=2" and form.json["temp_files_during"] == []
    raw = http_request(server.port, "POST", "/small", {"Content-Type": "application/json"}, b"{}")
    assert raw.json == {"size": 2}
    assert leftovers(temp) == []


def test_save_renames_on_the_same_filesystem(app: BustAPI, serve: Serve, folders: Folders) -> None:
    temp, dest = folders
    content = os.urandom(2 * MIB)
    server = serve(app)
    r = post(server.port, "/save", file("f", "../My Video.mp4", content) + closing())
    assert r.status == 200, r.body
    umask = os.umask(0o022)
    os.umask(umask)
    assert r.json == {"renamed": True, "mode": 0o666 & ~umask}
    assert (dest / "My_Video.mp4").read_bytes() == content
    assert leftovers(temp) == []


def test_temp_files_go_when_the_view_raises(app: BustAPI, serve: Serve, folders: Folders) -> None:
    temp, _ = folders
    server = serve(app)
    r = post(server.port, "/raise", file("f", "a.bin", b"x" * 100_000) + closing())
    assert r.status == 500
    assert leftovers(temp) == []


def test_stream_body_reads_the_raw_body(app: BustAPI, serve: Serve, folders: Folders) -> None:
    temp, _ = folders
    content = os.urandom(3 * MIB)
    server = serve(app)
    r = post(server.port, "/stream", file("f", "a.bin", content) + closing())
    assert r.status == 200
    raw = file("f", "a.bin", content) + closing()
    assert r.json == {"size": len(raw), "sha256": hashlib.sha256(raw).hexdigest(), "form": 0}
    assert leftovers(temp) == [], "a streamed body is not parsed: no temp file"
    pieces = [content[i : i + 50_000] for i in range(0, len(content), 50_000)]
    r = exchange(server.port, [head("/stream"), *chunked(pieces)])
    assert r.json["sha256"] == hashlib.sha256(content).hexdigest()


# -- limits and bad input: exact status, nothing left behind ---------------------------------


def test_declared_length_over_the_limit_is_refused_before_reading(
    app: BustAPI, serve: Serve, folders: Folders
) -> None:
    temp, _ = folders
    server = serve(app)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(head("/echo", 5 * MIB, "Expect: 100-continue\r\n"))
        r = read_response(s.makefile("rb"))
    assert r.status == 413, "no 100 Continue: the client never sends the body"
    assert leftovers(temp) == []


def test_chunked_body_over_the_limit_is_cut_as_it_passes(
    app: BustAPI, serve: Serve, folders: Folders
) -> None:
    temp, _ = folders
    server = serve(app)
    pieces = [file("f", "a.bin", b"")[:-2]] + [b"z" * 65536] * 100  # 6.4 MiB > 4 MiB
    r = exchange(server.port, [head("/echo"), *chunked(pieces)])
    assert r.status == 413 and r.headers["connection"] == "close"
    assert leftovers(temp) == [], "the partial temp file is removed"


def test_per_route_limit_overrides_the_global_one(
    app: BustAPI, serve: Serve, folders: Folders
) -> None:
    temp, _ = folders
    server = serve(app)
    content = b"y" * (6 * MIB)
    r = post(server.port, "/big", file("f", "a.bin", content) + closing())
    assert (r.status, r.json) == (200, {"size": len(content)})
    r = http_request(server.port, "POST", "/small", {"Content-Type": "text/plain"}, b"x" * 1001)
    assert r.status == 413
    assert http_request(server.port, "POST", "/small", {}, b"x" * 1000).json == {"size": 1000}
    pieces = [b"x" * 600, b"x" * 600]
    r = exchange(
        server.port,
        [b"POST /small HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"]
        + list(chunked(pieces)),
    )
    assert r.status == 413
    assert leftovers(temp) == []


def test_form_field_over_max_form_memory_size(app: BustAPI, serve: Serve, folders: Folders) -> None:
    temp, _ = folders
    server = serve(app)
    body = file("f", "a.bin", b"q" * 100_000) + field("notes", b"n" * (64 * 1024 + 1)) + closing()
    r = post(server.port, "/echo", body)
    assert r.status == 413
    assert leftovers(temp) == []
    ok = file("f", "a.bin", b"q") + field("notes", b"n" * (64 * 1024)) + closing()
    assert post(server.port, "/echo", ok).status == 200


def test_too_many_parts(app: BustAPI, serve: Serve, folders: Folders) -> None:
    temp, _ = folders
    server = serve(app)
    parts = [file(f"f{i}", f"{i}.bin", b"p" * 1000) for i in range(21)]
    r = post(server.port, "/echo", b"".join(parts) + closing())
    assert r.status == 400 and b"more parts" in r.body
    assert leftovers(temp) == []
    assert post(server.port, "/echo", b"".join(parts[:20]) + closing()).status == 200


@pytest.mark.parametrize(
    "content_type, body",
    [
        pytest.param("multipart/form-data", closing(), id="no-boundary"),
        pytest.param(CONTENT_TYPE, file("f", "a.bin", b"w" * 200_000), id="unterminated-part"),
        pytest.param(
            CONTENT_TYPE,
            file("f", "a.bin", b"w" * 200_000)[:-2]  # no CRLF before the next delimiter
            + b"--" + b"nope\r\n",
            id="no-closing-delimiter",
        ),
        pytest.param(
            CONTENT_TYPE,
            file("f", "a.bin", b"w" * 1000)
            + b"--" + CONTENT_TYPE.split("=", 1)[1].encode() + b"\r\n"
            + b"X-Filler: " + b"a" * 40_000 + b"\r\n\r\nvalue\r\n" + closing(),
            id="part-header-over-the-limit",
        ),
        pytest.param(
            CONTENT_TYPE,
            b"--" + CONTENT_TYPE.split("=", 1)[1].encode() + b"\r\n" + b"h" * 3 * MIB,
            id="part-header-never-ends",
        ),
    ],
)  # fmt: skip
def test_malformed_bodies_get_400(
    app: BustAPI, serve: Serve, folders: Folders, content_type: str, body: bytes
) -> None:
    temp, _ = folders
    server = serve(app)
    payload = (
        f"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    r = exchange(server.port, [payload])
    assert r.status == 400, r.body
    assert leftovers(temp) == []


def test_a_stalled_body_is_cut_and_its_files_removed(
    app: BustAPI, serve: Serve, folders: Folders
) -> None:
    temp, _ = folders
    server = serve(app, body_read_timeout=1)
    start = file("f", "a.bin", b"s" * 300_000)[:-2]
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(head("/echo", len(start) + 1000) + start)
        deadline = time.monotonic() + 10
        while not leftovers(temp) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert leftovers(temp), "the file part is being written while the body arrives"
        stream = s.makefile("rb")
        r = read_response(stream)
        assert r.status == 408 and r.headers["connection"] == "close"
        assert closed_within(s, 5)
    assert leftovers(temp) == []


def test_a_client_that_goes_away_leaves_no_temp_file(
    app: BustAPI, serve: Serve, folders: Folders
) -> None:
    temp, _ = folders
    server = serve(app)
    start = file("f", "a.bin", b"s" * 300_000)[:-2]
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(head("/echo", len(start) + 1000) + start)
        deadline = time.monotonic() + 10
        while not leftovers(temp) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert leftovers(temp)
    deadline = time.monotonic() + 10
    while leftovers(temp) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert leftovers(temp) == []


def test_streamed_body_over_the_limit_raises_413_in_the_view(app: BustAPI, serve: Serve) -> None:
    server = serve(app)
    pieces = [b"x" * 65536] * 100  # 6.4 MiB, chunked, > 4 MiB
    r = exchange(server.port, [head("/stream"), *chunked(pieces)])
    assert r.status == 413


def test_a_slow_reader_slows_the_client(folders: Folders, serve: Serve) -> None:
    """Back-pressure: while the view does not read, the server stops taking the body,
    so the client can only fill the socket buffers (a few MiB), not send 64 MiB."""
    go = threading.Event()
    app = BustAPI(__name__)

    @app.route("/slow", methods=["POST"], stream_body=True, max_content_length=1 << 30)
    def slow() -> Any:
        go.wait(30)
        return {"size": len(request.stream.read())}

    server = serve(app)
    total = 64 * MIB
    sent = 0
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(f"POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: {total}\r\n\r\n".encode())
        s.settimeout(1.0)
        block = b"b" * 65536
        try:
            while sent < total:
                sent += s.send(block[: total - sent])
        except socket.timeout:
            pass
        assert sent < 24 * MIB, f"the server took {sent} bytes while the view read nothing"
        go.set()
        s.settimeout(30)
        s.sendall(b"b" * (total - sent))
        r = read_response(s.makefile("rb"))
    assert (r.status, r.json) == (200, {"size": total})


def test_full_disk_gives_507_and_removes_the_partial_file(
    app: BustAPI, serve: Serve, tmp_path: Path
) -> None:
    """A 1 MiB tmpfs as the upload temp folder: the real engine hits ENOSPC."""
    small = tmp_path / "small-fs"
    small.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(small)], check=True)
    try:
        app.config["UPLOAD_TEMP_FOLDER"] = str(small)
        server = serve(app)
        r = post(server.port, "/echo", file("f", "a.bin", b"d" * (3 * MIB)) + closing())
        assert r.status == 507 and b"no space left" in r.body
        assert leftovers(small) == []
        assert post(server.port, "/echo", file("f", "a.bin", b"d" * 1000) + closing()).status == 200
    finally:
        subprocess.run(["umount", str(small)], check=True)


# -- memory: a 1 GiB upload with flat server memory -----------------------------------------

SERVER = """
import sys
from bustapi import BustAPI, request

temp, dest = sys.argv[1], sys.argv[2]
app = BustAPI(__name__)
app.config["UPLOAD_TEMP_FOLDER"] = temp

@app.route("/upload", methods=["POST"], max_content_length=2 << 30)
def upload():
    f = request.files["f"]
    f.save(dest)
    return {"size": f.content_length}

app.run(port=0, threads=2, io_threads=2)
"""


def peak_rss(pid: int) -> int:
    """The process's peak resident memory (VmHWM), in bytes."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc/pid/status")


def upload_generated(port: int, size: int) -> tuple[Any, str]:
    """Streams a multipart upload of ``size`` generated bytes; returns the answer and
    the content's SHA-256. The client never holds more than one 1 MiB block."""
    block = hashlib.sha256(b"seed").digest() * (MIB // 32)
    prefix, suffix = file("f", "big.bin", b"")[:-2], b"\r\n" + closing()
    digest = hashlib.sha256()
    with socket.create_connection(("127.0.0.1", port), timeout=120) as s:
        s.sendall(head("/upload", len(prefix) + size + len(suffix)) + prefix)
        left = size
        while left:
            piece = block[: min(left, len(block))]
            digest.update(piece)
            s.sendall(piece)
            left -= len(piece)
        s.sendall(suffix)
        return read_response(s.makefile("rb")), digest.hexdigest()


def test_a_1_gib_upload_leaves_server_memory_flat(tmp_path: Path) -> None:
    from conftest import start_server, stop_process

    temp, dest = tmp_path / "tmp", tmp_path / "saved.bin"
    temp.mkdir()
    script = tmp_path / "server.py"
    script.write_text(SERVER)
    proc, port, _ = start_server([sys.executable, str(script), str(temp), str(dest)])
    try:
        r, _ = upload_generated(port, 8 * MIB)  # warm up: threads, buffers, allocator arenas
        assert r.status == 200
        before = peak_rss(proc.pid)
        size = 1 << 30
        r, sent_digest = upload_generated(port, size)
        assert (r.status, r.json) == (200, {"size": size})
        growth = peak_rss(proc.pid) - before
        assert growth < 64 * MIB, f"the server's peak RSS grew by {growth / MIB:.1f} MiB"
    finally:
        stop_process(proc)
    digest = hashlib.sha256()
    with open(dest, "rb") as f:
        while chunk := f.read(4 * MIB):
            digest.update(chunk)
    assert digest.hexdigest() == sent_digest
    assert leftovers(temp) == []
