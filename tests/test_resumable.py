"""Resumable uploads (tus 1.0.0) over real sockets: every status the protocol
defines, concurrency, interruption, checksum, expiration, termination, restarts,
the authorize/on_complete hooks, and the finished file served with ranges.

The real tus client (tuspy) and killed processes are in test_resumable_tuspy.py."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable, Optional

import pytest
from bustapi import BustAPI, ResumableUpload, abort, request, send_file, session
from bustapi.testing import LiveServer
from conftest import Result, file_slices, http_request, read_response

TUS = {"Tus-Resumable": "1.0.0"}
OCTETS = {**TUS, "Content-Type": "application/offset+octet-stream"}
ID = re.compile(r"/files/([0-9a-f]{32})")


def make_app(folder: Path, **options: Any) -> BustAPI:
    app = BustAPI(__name__, static_folder=None)
    app.resumable_uploads("/files/", folder, **options)
    return app


class Tus:
    """A minimal tus client over fresh connections, for asserting on each exchange."""

    def __init__(self, port: int, folder: Path) -> None:
        self.port, self.folder = port, folder

    def create(self, length: Optional[int], **headers: str) -> str:
        r = self.post(length, **headers)
        assert r.status == 201, (r.status, r.body)
        m = ID.fullmatch(r.headers["location"])
        assert m, r.headers["location"]
        return m.group(1)

    def post(self, length: Optional[int], body: Optional[bytes] = None, **headers: str) -> Result:
        h = dict(TUS)
        if length is not None:
            h["Upload-Length"] = str(length)
        if body is not None:
            h["Content-Type"] = "application/offset+octet-stream"
        h.update({k.replace("_", "-"): v for k, v in headers.items()})
        return http_request(self.port, "POST", "/files/", h, body)

    def patch(self, id: str, offset: int, data: bytes, **headers: str) -> Result:
        h = {**OCTETS, "Upload-Offset": str(offset)}
        h.update({k.replace("_", "-"): v for k, v in headers.items()})
        return http_request(self.port, "PATCH", f"/files/{id}", h, data)

    def head(self, id: str) -> Result:
        return http_request(self.port, "HEAD", f"/files/{id}", TUS)

    def offset(self, id: str) -> int:
        r = self.head(id)
        assert r.status == 200, r.status
        return int(r.headers["upload-offset"])

    def partial(self, id: str) -> Path:
        return self.folder / ".tus" / id

    def stored(self) -> set[str]:
        """Every file the uploads left in the folder, hidden ones included."""
        return {str(p.relative_to(self.folder)) for p in self.folder.rglob("*") if p.is_file()}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path / "incoming"


@pytest.fixture
def tus(serve: Callable[..., LiveServer], folder: Path) -> Tus:
    return Tus(serve(make_app(folder, max_size=1 << 30)).port, folder)


def wait_until(what: Callable[[], bool], why: str, timeout: float = 20) -> None:
    """Polls a condition the server reaches on its own (no timing is asserted)."""
    deadline = time.monotonic() + timeout
    while not what():
        assert time.monotonic() < deadline, f"timed out waiting until {why}"
        time.sleep(0.01)


def sha1_header(data: bytes) -> str:
    return "sha1 " + base64.b64encode(hashlib.sha1(data).digest()).decode()


# -- discovery and version negotiation -------------------------------------------------


def test_options_advertises_version_extensions_limits_and_checksums(tus: Tus) -> None:
    for path in ("/files/", "/files/0123456789abcdef0123456789abcdef"):
        r = http_request(tus.port, "OPTIONS", path)  # no Tus-Resumable: OPTIONS needs none
        assert r.status == 204, r.status
        assert r.headers["tus-resumable"] == "1.0.0"
        assert r.headers["tus-version"] == "1.0.0"
        extensions = set(r.headers["tus-extension"].split(","))
        assert extensions == {
            "creation",
            "creation-with-upload",
            "creation-defer-length",
            "termination",
            "expiration",
            "checksum",
        }
        assert r.headers["tus-max-size"] == str(1 << 30)
        assert "sha1" in r.headers["tus-checksum-algorithm"].split(",")


@pytest.mark.parametrize("version", [None, "0.2.2", "1.0", "2.0.0"])
def test_an_unsupported_version_gets_412_with_tus_version(tus: Tus, version: Optional[str]) -> None:
    headers = {"Upload-Length": "10"}
    if version is not None:
        headers["Tus-Resumable"] = version
    r = http_request(tus.port, "POST", "/files/", headers)
    assert r.status == 412, r.status
    assert r.headers["tus-version"] == "1.0.0"
    id = tus.create(10)
    r = http_request(tus.port, "HEAD", f"/files/{id}", {k: v for k, v in headers.items()})
    assert r.status == 412 and "upload-offset" not in r.headers
    assert tus.stored() == {f".tus/{id}", f".tus/{id}.info"}, "the 412 created nothing"


# -- creation, HEAD, PATCH ------------------------------------------------------------------


def test_create_head_patch_round_trip(tus: Tus) -> None:
    meta = "filename " + base64.b64encode("vidéo.mp4".encode()).decode() + ",private"
    r = tus.post(11, Upload_Metadata=meta)
    assert r.status == 201 and r.headers["tus-resumable"] == "1.0.0"
    id = ID.fullmatch(r.headers["location"]).group(1)  # type: ignore[union-attr]
    assert r.headers["upload-offset"] == "0"
    assert r.headers["upload-expires"].endswith(" GMT")
    h = tus.head(id)
    assert h.status == 200 and h.body == b""
    assert h.headers["upload-offset"] == "0"
    assert h.headers["upload-length"] == "11"
    assert h.headers["cache-control"] == "no-store"
    assert h.headers["upload-metadata"] == meta
    assert h.headers["tus-resumable"] == "1.0.0"
    p = tus.patch(id, 0, b"hello ")
    assert p.status == 204 and p.headers["upload-offset"] == "6", (p.status, p.body)
    assert p.headers["upload-expires"].endswith(" GMT")
    assert tus.offset(id) == 6
    assert tus.patch(id, 6, b"world").headers["upload-offset"] == "11"
    assert (tus.folder / id).read_bytes() == b"hello world"
    done = tus.head(id)
    assert done.headers["upload-offset"] == done.headers["upload-length"] == "11"
    assert "upload-expires" not in done.headers, "a finished upload does not expire"


def test_ids_are_random_and_each_upload_is_separate(tus: Tus) -> None:
    ids = {tus.create(1) for _ in range(20)}
    assert len(ids) == 20


@pytest.mark.parametrize(
    "headers, status",
    [
        ({}, 400),  # neither Upload-Length nor Upload-Defer-Length
        ({"Upload-Length": "5", "Upload-Defer-Length": "1"}, 400),
        ({"Upload-Defer-Length": "2"}, 400),
        ({"Upload-Length": "-1"}, 400),
        ({"Upload-Length": "ten"}, 400),
        ({"Upload-Length": "1e3"}, 400),
        ({"Upload-Length": "99999999999999999999999"}, 400),
        ({"Upload-Length": "5", "Upload-Metadata": "name !!notbase64"}, 400),
        ({"Upload-Length": "5", "Upload-Metadata": "a YQ==,a YQ=="}, 400),
        ({"Upload-Length": str((1 << 30) + 1)}, 413),  # past max_size
    ],
)
def test_bad_creations_are_refused_and_store_nothing(
    tus: Tus, headers: dict[str, str], status: int
) -> None:
    r = http_request(tus.port, "POST", "/files/", {**TUS, **headers})
    assert r.status == status, (r.status, r.body)
    assert r.headers["tus-resumable"] == "1.0.0"
    assert tus.stored() == set()


def test_patch_statuses(tus: Tus) -> None:
    id = tus.create(10)
    url = f"/files/{id}"
    wrong_type = {**TUS, "Upload-Offset": "0", "Content-Type": "application/octet-stream"}
    assert http_request(tus.port, "PATCH", url, wrong_type, b"x").status == 415
    no_offset = {k: v for k, v in OCTETS.items()}
    assert http_request(tus.port, "PATCH", url, no_offset, b"x").status == 400
    for bad in ("-1", "x", "1.5", ""):
        assert tus.patch(id, 0, b"x", Upload_Offset=bad).status == 400, bad
    conflict = tus.patch(id, 3, b"abc")
    assert conflict.status == 409 and conflict.headers["upload-offset"] == "0"
    assert tus.patch(id, 0, b"0123456789X").status == 413, "past Upload-Length"
    unknown = "0123456789abcdef0123456789abcdef"
    assert tus.patch(unknown, 0, b"x").status == 404
    assert tus.head(unknown).status == 404 and "upload-offset" not in tus.head(unknown).headers
    assert tus.offset(id) == 0, "no refused PATCH wrote a byte"
    assert tus.partial(id).stat().st_size == 0
    # Changing a declared length is refused.
    assert tus.patch(id, 0, b"ab", Upload_Length="12").status == 400


@pytest.mark.parametrize(
    "path",
    [
        "/files/../../etc/passwd",
        "/files/%2e%2e%2fsecret",
        "/files/0123456789ABCDEF0123456789ABCDEF",
        "/files/0123456789abcdef0123456789abcde",
        "/files/0123456789abcdef0123456789abcdef/x",
        "/files/.tus",
        "/files/0123456789abcdef0123456789abcdef.info",
    ],
)
def test_only_well_formed_ids_reach_the_disk(tus: Tus, path: str) -> None:
    for method, headers, body in (
        ("HEAD", TUS, None),
        ("PATCH", {**OCTETS, "Upload-Offset": "0"}, b"x"),
        ("DELETE", TUS, None),
    ):
        r = http_request(tus.port, method, path, headers, body)
        assert r.status == 404, (method, path, r.status)
    assert tus.stored() == set()


def test_post_on_an_upload_and_patch_on_the_collection_are_405(tus: Tus) -> None:
    id = tus.create(3)
    r = http_request(tus.port, "POST", f"/files/{id}", {**TUS, "Upload-Length": "3"})
    assert r.status == 405 and "PATCH" in r.headers["allow"]
    r = http_request(tus.port, "PATCH", "/files/", {**OCTETS, "Upload-Offset": "0"}, b"x")
    assert r.status == 405 and "POST" in r.headers["allow"]


def test_a_chunked_body_past_the_length_is_refused_and_discarded(tus: Tus) -> None:
    id = tus.create(10)
    assert tus.patch(id, 0, b"abcd").status == 204
    head = (
        f"PATCH /files/{id} HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\n"
        "Content-Type: application/offset+octet-stream\r\nUpload-Offset: 4\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    ).encode()
    body = b"5\r\nefghi\r\n5\r\njklmn\r\n0\r\n\r\n"
    with socket.create_connection(("127.0.0.1", tus.port)) as s:
        s.sendall(head + body)
        r = read_response(s.makefile("rb"))
    assert r.status == 413
    assert tus.offset(id) == 4, "the whole oversized chunk was discarded"
    assert tus.partial(id).read_bytes() == b"abcd"


def test_creation_with_upload(tus: Tus, folder: Path) -> None:
    r = tus.post(10, body=b"hello")
    assert r.status == 201 and r.headers["upload-offset"] == "5", (r.status, r.body)
    id = ID.fullmatch(r.headers["location"]).group(1)  # type: ignore[union-attr]
    assert tus.patch(id, 5, b"world").headers["upload-offset"] == "10"
    assert (folder / id).read_bytes() == b"helloworld"
    # A first chunk longer than the upload is refused before anything is stored.
    assert tus.post(3, body=b"toolong").status == 413
    assert tus.stored() == {id, f".tus/{id}.info"}


def test_deferred_length(tus: Tus, folder: Path) -> None:
    id = tus.create(None, Upload_Defer_Length="1")
    h = tus.head(id)
    assert h.headers["upload-defer-length"] == "1" and "upload-length" not in h.headers
    assert tus.patch(id, 0, b"abc").headers["upload-offset"] == "3"
    assert tus.patch(id, 3, b"de", Upload_Length="2").status == 400, "below the offset"
    r = tus.patch(id, 3, b"de", Upload_Length="5")
    assert r.status == 204 and r.headers["upload-offset"] == "5"
    assert tus.head(id).headers["upload-length"] == "5"
    assert (folder / id).read_bytes() == b"abcde"


def test_method_override(tus: Tus) -> None:
    id = tus.create(3)
    r = http_request(tus.port, "POST", f"/files/{id}", {**TUS, "X-HTTP-Method-Override": "DELETE"})
    assert r.status == 204
    assert tus.head(id).status == 404


# -- checksum -----------------------------------------------------------------------------


def test_checksum_verified_and_a_mismatch_is_460_and_discarded(tus: Tus) -> None:
    id = tus.create(8)
    assert tus.patch(id, 0, b"abcd", Upload_Checksum=sha1_header(b"abcd")).status == 204
    bad = tus.patch(id, 4, b"efgh", Upload_Checksum=sha1_header(b"EFGH"))
    assert bad.status == 460, (bad.status, bad.body)
    assert tus.offset(id) == 4 and tus.partial(id).read_bytes() == b"abcd"
    sha256 = "sha256 " + base64.b64encode(hashlib.sha256(b"efgh").digest()).decode()
    assert tus.patch(id, 4, b"efgh", Upload_Checksum=sha256).status == 204
    assert tus.offset(id) == 8


@pytest.mark.parametrize("value", ["md5 XrY7u+Ae7tCTyyK7j1rNww==", "sha1", "sha1 !!!", "sha1 YQ=="])
def test_an_unusable_checksum_is_400(tus: Tus, value: str) -> None:
    id = tus.create(4)
    assert tus.patch(id, 0, b"abcd", Upload_Checksum=value).status == 400
    assert tus.offset(id) == 0


# -- interruption and concurrency -----------------------------------------------------------


def start_patch(port: int, id: str, offset: int, length: int, **headers: str) -> socket.socket:
    """Starts a PATCH of ``length`` body bytes and returns the socket; the test
    sends the body itself."""
    s = socket.create_connection(("127.0.0.1", port))
    extra = "".join(f"{k.replace('_', '-')}: {v}\r\n" for k, v in headers.items())
    s.sendall(
        (
            f"PATCH /files/{id} HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\n"
            f"Content-Type: application/offset+octet-stream\r\nUpload-Offset: {offset}\r\n"
            f"Content-Length: {length}\r\n{extra}\r\n"
        ).encode()
    )
    return s


def test_an_interrupted_patch_keeps_every_byte_that_arrived(tus: Tus, folder: Path) -> None:
    data = os.urandom(3 << 20)
    id = tus.create(len(data))
    s = start_patch(tus.port, id, 0, len(data))
    s.sendall(data[:1_234_567])
    wait_until(lambda: tus.partial(id).stat().st_size == 1_234_567, "the bytes are on disk")
    s.close()  # the client vanishes mid-body
    wait_until(lambda: tus.patch(id, 1_234_567, b"").status == 204, "the lock is released")
    assert tus.offset(id) == 1_234_567
    assert tus.patch(id, 1_234_567, data[1_234_567:]).status == 204
    assert (folder / id).read_bytes() == data


def test_an_interrupted_patch_with_a_checksum_is_discarded(tus: Tus) -> None:
    data = os.urandom(1 << 20)
    id = tus.create(len(data))
    s = start_patch(tus.port, id, 0, len(data), Upload_Checksum=sha1_header(data))
    s.sendall(data[:500_000])
    wait_until(lambda: tus.partial(id).stat().st_size == 500_000, "the bytes are on disk")
    s.close()
    # Unverifiable, so dropped: the upload is back where the PATCH started.
    wait_until(lambda: tus.patch(id, 0, b"").status == 204, "the chunk is discarded")
    assert tus.offset(id) == 0
    assert tus.patch(id, 0, data, Upload_Checksum=sha1_header(data)).status == 204


def test_concurrent_patches_never_interleave(tus: Tus, folder: Path) -> None:
    # (The refused PATCH is small: it is answered before its body is read, and a
    # large body would meet a closed connection on the client side.)
    first, second = os.urandom(1 << 20), os.urandom(1000)
    id = tus.create(len(first))
    s = start_patch(tus.port, id, 0, len(first))
    s.sendall(first[:4096])
    wait_until(lambda: tus.partial(id).stat().st_size == 4096, "the first PATCH is writing")
    for offset in (0, 4096):
        r = tus.patch(id, offset, second)
        assert r.status == 423, (offset, r.status)
    assert tus.head(id).status == 200, "HEAD still answers while a PATCH writes"
    assert tus.patch(id, 0, b"", **{"X-HTTP-Method-Override": "DELETE"}).status == 423
    s.sendall(first[4096:])
    r = read_response(s.makefile("rb"))
    s.close()
    assert r.status == 204 and r.headers["upload-offset"] == str(len(first))
    assert (folder / id).read_bytes() == first


def test_many_racing_patches_one_wins(tus: Tus, folder: Path) -> None:
    id = tus.create(64 << 10)
    payloads = [bytes([i]) * (64 << 10) for i in range(8)]
    results: list[int] = []

    def send(data: bytes) -> None:
        results.append(tus.patch(id, 0, data).status)

    threads = [threading.Thread(target=send, args=(p,)) for p in payloads]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(204) == 1, results
    assert set(results) <= {204, 409, 423}, results
    content = (folder / id).read_bytes()
    assert content in payloads, "the file is one PATCH's bytes, not a mix"


# -- termination and expiration --------------------------------------------------------------


def test_termination(tus: Tus, folder: Path) -> None:
    id = tus.create(10)
    tus.patch(id, 0, b"abc")
    r = http_request(tus.port, "DELETE", f"/files/{id}", TUS)
    assert r.status == 204 and r.headers["tus-resumable"] == "1.0.0"
    assert tus.head(id).status == 404
    assert tus.patch(id, 3, b"def").status == 404
    assert http_request(tus.port, "DELETE", f"/files/{id}", TUS).status == 404
    done = tus.create(2)
    tus.patch(done, 0, b"ok")
    assert http_request(tus.port, "DELETE", f"/files/{done}", TUS).status == 204
    assert tus.stored() == set(), "the finished file went too"


def age(folder: Path, id: str, seconds: float) -> None:
    """Makes an upload look untouched for ``seconds`` (instead of waiting)."""
    when = time.time() - seconds
    for p in (folder / ".tus" / id, folder / ".tus" / f"{id}.info"):
        os.utime(p, (when, when))


def test_expired_uploads_answer_410_then_404_and_are_removed(
    serve: Callable[..., LiveServer], folder: Path
) -> None:
    tus = Tus(serve(make_app(folder, expiration=3600)).port, folder)
    id = tus.create(10)
    tus.patch(id, 0, b"abc")
    expires = tus.head(id).headers["upload-expires"]
    assert expires.endswith(" GMT")
    age(folder, id, 3599)
    assert tus.head(id).status == 200, "not yet"
    age(folder, id, 3601)
    assert tus.head(id).status == 410
    assert tus.stored() == set()
    assert tus.head(id).status == 404
    other = tus.create(10)
    age(folder, other, 7200)
    assert tus.patch(other, 0, b"x").status == 410


def test_expired_uploads_are_swept_after_a_restart(
    serve: Callable[..., LiveServer], folder: Path
) -> None:
    first = serve(make_app(folder, expiration=3600))
    tus = Tus(first.port, folder)
    stale, fresh = tus.create(10), tus.create(10)
    first.stop()
    age(folder, stale, 7200)
    tus = Tus(serve(make_app(folder, expiration=3600)).port, folder)
    tus.create(1)  # the first creation after a start sweeps
    wait_until(lambda: not (folder / ".tus" / f"{stale}.info").exists(), "the sweep ran")
    assert not tus.partial(stale).exists()
    assert tus.offset(fresh) == 0


def test_without_expiration_nothing_expires(serve: Callable[..., LiveServer], folder: Path) -> None:
    tus = Tus(serve(make_app(folder, expiration=None)).port, folder)
    id = tus.create(10)
    age(folder, id, 10 * 365 * 86400)
    r = tus.head(id)
    assert r.status == 200 and "upload-expires" not in r.headers
    options = http_request(tus.port, "OPTIONS", "/files/")
    assert "expiration" not in options.headers["tus-extension"]


# -- restarts ------------------------------------------------------------------------------


def test_state_survives_a_restart(serve: Callable[..., LiveServer], folder: Path) -> None:
    meta = "filename " + base64.b64encode(b"a.bin").decode()
    first = serve(make_app(folder))
    tus = Tus(first.port, folder)
    id = tus.create(6, Upload_Metadata=meta)
    tus.patch(id, 0, b"abc")
    first.stop()
    calls: list[ResumableUpload] = []
    tus = Tus(serve(make_app(folder, on_complete=calls.append)).port, folder)
    h = tus.head(id)
    assert (h.headers["upload-offset"], h.headers["upload-length"]) == ("3", "6")
    assert h.headers["upload-metadata"] == meta
    assert tus.patch(id, 3, b"def").status == 204
    assert [(c.size, c.metadata) for c in calls] == [(6, {"filename": "a.bin"})]
    assert (folder / id).read_bytes() == b"abcdef"


# -- hooks ----------------------------------------------------------------------------------


def test_on_complete_is_called_exactly_once_with_path_size_and_metadata(
    serve: Callable[..., LiveServer], folder: Path
) -> None:
    calls: list[tuple[ResumableUpload, str]] = []

    def on_complete(upload: ResumableUpload) -> None:
        calls.append((upload, request.headers.get("X-Client", "")))

    tus = Tus(serve(make_app(folder, on_complete=on_complete)).port, folder)
    meta = "filename " + base64.b64encode("clip é.mp4".encode()).decode() + ",flag"
    data = os.urandom(100_000)
    id = tus.create(len(data), Upload_Metadata=meta)
    for start in range(0, len(data), 30_000):
        assert not calls, "not before the last byte"
        chunk = data[start : start + 30_000]
        assert tus.patch(id, start, chunk, X_Client="tuspy").status == 204
    # Retries of the last PATCH, and HEADs, do not complete it again.
    assert tus.patch(id, len(data), b"").status == 204
    assert tus.patch(id, 0, data).status == 409
    assert tus.offset(id) == len(data)
    assert len(calls) == 1, calls
    upload, client = calls[0]
    assert upload.id == id and client == "tuspy", "it runs in the final PATCH's request context"
    assert upload.path == str(folder.resolve() / id)
    assert upload.size == upload.length == len(data)
    assert upload.metadata == {"filename": "clip é.mp4", "flag": ""}
    assert Path(upload.path).read_bytes() == data


def test_an_empty_upload_completes_at_creation(
    serve: Callable[..., LiveServer], folder: Path
) -> None:
    calls: list[ResumableUpload] = []
    tus = Tus(serve(make_app(folder, on_complete=calls.append)).port, folder)
    r = tus.post(0)
    assert r.status == 201 and r.headers["upload-offset"] == "0"
    assert [(c.size, Path(c.path).read_bytes()) for c in calls] == [(0, b"")]
    # Creation-with-upload of a whole file completes in its POST too.
    r = tus.post(5, body=b"hello")
    assert r.status == 201 and r.headers["upload-offset"] == "5"
    assert len(calls) == 2 and Path(calls[1].path).read_bytes() == b"hello"


def test_authorize_sees_the_request_metadata_and_session(
    serve: Callable[..., LiveServer], folder: Path
) -> None:
    seen: list[tuple[ResumableUpload, Optional[str], Optional[str]]] = []

    def authorize(upload: ResumableUpload) -> Any:
        seen.append((upload, session.get("user"), request.headers.get("X-Token")))
        if session.get("user") is None:
            return "log in first", 401
        if upload.metadata.get("filetype") != "video/mp4":
            abort(403)
        if (upload.length or 0) > 1000:
            return False
        session["uploads"] = session.get("uploads", 0) + 1
        return None

    app = make_app(folder, authorize=authorize)
    app.secret_key = "test"

    @app.post("/login")
    def login() -> str:
        session["user"] = "ada"
        return "ok"

    tus = Tus(serve(app).port, folder)
    mp4 = "filetype " + base64.b64encode(b"video/mp4").decode()
    r = tus.post(10, Upload_Metadata=mp4)
    assert r.status == 401 and r.body == b"log in first", "the refusal is passed through"
    assert r.headers["tus-resumable"] == "1.0.0"
    cookie = http_request(tus.port, "POST", "/login").headers["set-cookie"].split(";")[0]
    r = tus.post(10, Cookie=cookie, Upload_Metadata="filetype " + base64.b64encode(b"x").decode())
    assert r.status == 403
    assert tus.post(2000, Cookie=cookie, Upload_Metadata=mp4).status == 403
    assert tus.stored() == set(), "no refused creation stored anything"
    r = tus.post(10, Cookie=cookie, Upload_Metadata=mp4, X_Token="t1")
    assert r.status == 201, (r.status, r.body)
    assert "set-cookie" in r.headers, "a session changed by authorize is saved"
    upload, user, token = seen[-1]
    assert (user, token, upload.length, upload.size) == ("ada", "t1", 10, 0)
    assert upload.metadata == {"filetype": "video/mp4"}
    id = ID.fullmatch(r.headers["location"]).group(1)  # type: ignore[union-attr]
    assert upload.id == id and upload.path == str(folder.resolve() / id)


def test_hooks_run_through_the_test_client(folder: Path) -> None:
    calls: list[ResumableUpload] = []
    app = make_app(folder, on_complete=calls.append, authorize=lambda u: None)
    client = app.test_client()
    r = client.post("/files/", headers={**TUS, "Upload-Length": "3"})
    assert r.status_code == 201
    r = client.patch(r.headers["Location"], headers={**OCTETS, "Upload-Offset": "0"}, data=b"abc")
    assert r.status_code == 204
    assert [c.size for c in calls] == [3]


# -- the finished file, served -----------------------------------------------------------------


@pytest.fixture
def finished(serve: Callable[..., LiveServer], folder: Path) -> Iterator[tuple[int, str, bytes]]:
    app = make_app(folder)
    app.add_static("/files", folder)

    @app.get("/download/<id>")
    def download(id: str) -> Any:
        return send_file(os.path.join(folder, id), mimetype="video/mp4")

    port = serve(app).port
    tus = Tus(port, folder)
    data = os.urandom(300_000)
    id = tus.create(len(data))
    half = tus.patch(id, 0, data[:1000])
    assert half.status == 204
    # Unfinished uploads are not served, at their URL or in the hidden folder.
    assert http_request(port, "GET", f"/files/{id}").status == 404
    assert http_request(port, "GET", f"/files/.tus/{id}").status == 404
    assert tus.patch(id, 1000, data[1000:]).status == 204
    yield port, id, data


@pytest.mark.parametrize("url", ["/files/{id}", "/download/{id}"])
@pytest.mark.parametrize(
    "range_header", [None, "bytes=0-", "bytes=1000-1999", "bytes=-500", "bytes=0-9,100-199"]
)
def test_a_finished_upload_is_served_with_ranges(
    finished: tuple[int, str, bytes], url: str, range_header: Optional[str]
) -> None:
    port, id, data = finished
    headers = {"Range": range_header} if range_header else {}
    r = http_request(port, "GET", url.format(id=id), headers)
    assert r.status == (206 if range_header else 200), r.status
    file_slices(r, data)
    if range_header is not None:
        # (HEAD at the upload URL is the protocol's: the validator comes from the GET.)
        etag = r.headers["etag"]
        again = http_request(port, "GET", url.format(id=id), {**headers, "If-Range": etag})
        assert again.status == 206


def test_a_failing_hook_is_a_500_and_a_finished_upload_stays_finished(
    serve: Callable[..., LiveServer], folder: Path
) -> None:
    calls: list[ResumableUpload] = []

    def authorize(upload: ResumableUpload) -> None:
        if upload.length == 13:
            raise ValueError("a bug in authorize")

    def on_complete(upload: ResumableUpload) -> None:
        calls.append(upload)
        raise RuntimeError("a bug in on_complete")

    app = make_app(folder, authorize=authorize, on_complete=on_complete)
    tus = Tus(serve(app).port, folder)
    assert tus.post(13).status == 500
    assert tus.stored() == set()
    id = tus.create(3)
    assert tus.patch(id, 0, b"abc").status == 500
    assert tus.offset(id) == 3 and (folder / id).read_bytes() == b"abc"
    assert tus.patch(id, 3, b"").status == 204
    assert len(calls) == 1, "not retried"


def test_before_request_hooks_run_for_the_hooks(
    serve: Callable[..., LiveServer], folder: Path
) -> None:
    app = make_app(folder, authorize=lambda upload: None)

    @app.before_request
    def api_key() -> Any:
        if request.headers.get("X-Api-Key") != "secret":
            return "an API key is required", 401
        return None

    tus = Tus(serve(app).port, folder)
    assert tus.post(3).status == 401
    assert tus.post(3, X_Api_Key="secret").status == 201
