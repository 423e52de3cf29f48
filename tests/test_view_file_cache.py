"""Files sent by views (``send_file``, ``send_from_directory``) come from the engine's
open-file cache, as static files do: one descriptor kept per hot file, and never a stale,
replaced or escaped file served from it. Over real sockets against the built extension."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

from bustapi import BustAPI, send_file, send_from_directory
from conftest import http_request

BIG = bytes(range(256)) * 1024  # 256 KiB: above the cache's inline size, read from disk


def fds_on(path: Path) -> int:
    """How many of this process's descriptors (the server runs in it) are open on ``path``."""
    n = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") == str(path):
                n += 1
        except OSError:
            pass
    return n


def make_app(root: Path) -> BustAPI:
    app = BustAPI(__name__)

    @app.route("/send/<name>")
    def send(name: str) -> Any:
        return send_file(str(root / name))

    @app.route("/dir/<path:name>")
    def from_dir(name: str) -> Any:
        return send_from_directory(str(root), name)

    return app


def test_a_hot_file_keeps_one_descriptor_and_is_not_reopened(
    tmp_path: Path, serve: Callable[..., Any]
) -> None:
    video = tmp_path / "clip.mp4"
    video.write_bytes(BIG)
    port = serve(make_app(tmp_path)).port
    assert fds_on(video) == 0
    for i in range(5):
        r = http_request(
            port, "GET", "/send/clip.mp4", {"Range": f"bytes={i * 1000}-{i * 1000 + 9}"}
        )
        assert r.status == 206 and r.body == BIG[i * 1000 : i * 1000 + 10]
        assert r.headers["content-type"] == "video/mp4"
    # Without the cache each response opens and closes the file: none would stay open.
    assert fds_on(video) == 1
    whole = http_request(port, "GET", "/dir/clip.mp4")
    assert whole.status == 200 and whole.body == BIG
    assert whole.headers["content-type"] == "video/mp4"


def test_a_replaced_file_is_served_new(tmp_path: Path, serve: Callable[..., Any]) -> None:
    f = tmp_path / "a.bin"
    f.write_bytes(BIG)
    port = serve(make_app(tmp_path)).port
    for route in ("/send/a.bin", "/dir/a.bin"):
        f.write_bytes(BIG)
        first = http_request(port, "GET", route)
        assert first.body == BIG
        # Replaced by rename (a new inode), as deploy tools and editors do.
        new = bytes(reversed(BIG))
        tmp = tmp_path / "a.tmp"
        tmp.write_bytes(new)
        tmp.rename(f)
        r = http_request(port, "GET", route)
        assert r.body == new
        assert r.headers["etag"] != first.headers["etag"] or r.headers[
            "last-modified"
        ] != first.headers.get("last-modified")


def test_a_file_rewritten_in_place_is_served_new(tmp_path: Path, serve: Callable[..., Any]) -> None:
    f = tmp_path / "small.txt"
    f.write_bytes(b"first version\n")  # small: its bytes are cached too
    port = serve(make_app(tmp_path)).port
    assert http_request(port, "GET", "/send/small.txt").body == b"first version\n"
    with open(f, "r+b") as w:  # same length, same inode: only mtime/ctime change
        w.write(b"FIRST")
    assert http_request(port, "GET", "/send/small.txt").body == b"FIRST version\n"
    f.write_bytes(b"longer second version\n")
    assert http_request(port, "GET", "/send/small.txt").body == b"longer second version\n"


def test_a_deleted_file_is_404_at_once(tmp_path: Path, serve: Callable[..., Any]) -> None:
    f = tmp_path / "gone.bin"
    f.write_bytes(BIG)
    port = serve(make_app(tmp_path)).port
    assert http_request(port, "GET", "/send/gone.bin").status == 200
    assert http_request(port, "GET", "/dir/gone.bin").status == 200
    f.unlink()
    assert http_request(port, "GET", "/send/gone.bin").status == 404
    assert http_request(port, "GET", "/dir/gone.bin").status == 404
    assert fds_on(f) == 0 or all(
        "(deleted)" not in os.readlink(f"/proc/self/fd/{fd}") for fd in os.listdir("/proc/self/fd")
    )


def test_a_symlink_repointed_outside_the_root_is_refused(
    tmp_path: Path, serve: Callable[..., Any]
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "inside.bin").write_bytes(BIG)
    secret = tmp_path / "secret.bin"
    secret.write_bytes(b"secret" * 50_000)
    link = root / "link.bin"
    link.symlink_to(root / "inside.bin")
    port = serve(make_app(root)).port
    assert http_request(port, "GET", "/dir/link.bin").body == BIG
    link.unlink()
    link.symlink_to(secret)
    r = http_request(port, "GET", "/dir/link.bin")
    assert r.status == 404 and b"secret" not in r.body
    # And two roots sharing a relative name never share an entry.
    other = tmp_path / "other"
    other.mkdir()
    (other / "inside.bin").write_bytes(b"other root\n")
    app2 = BustAPI(__name__)

    @app2.route("/dir/<path:name>")
    def from_other(name: str) -> Any:
        return send_from_directory(str(other), name)

    port2 = serve(app2).port
    assert http_request(port2, "GET", "/dir/inside.bin").body == b"other root\n"
    assert http_request(port, "GET", "/dir/inside.bin").body == BIG
