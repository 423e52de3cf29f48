"""Faults and hostile load: the server keeps serving, loses nothing, leaks nothing."""

from __future__ import annotations

import http.client
import os
import random
import re
import resource
import socket
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any, Callable

import pytest
from bustapi import BustAPI, Response, _core, request, send_from_directory
from conftest import (
    Result,
    closed_within,
    file_slices,
    http_request,
    parse_multipart,
    raw_exchange,
    read_response,
    start_server,
    stop_process,
)


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


class PanickingResponse(Response):
    """Hands the engine a body that makes the Rust binding panic."""

    def _parts(self) -> tuple[int, list[tuple[str, str]], Any]:
        return 200, [], _core.PanicProbe()


@pytest.fixture
def files(tmp_path: Path) -> Path:
    static = tmp_path / "static"
    static.mkdir()
    (static / "big.bin").write_bytes(os.urandom(8 * 1024 * 1024))
    (static / "small.txt").write_text("small\n")
    return static


@pytest.fixture
def counted() -> list[str]:
    """Every request that reached ``/count``: the observable side effect a smuggled
    request would have."""
    return []


@pytest.fixture
def app(files: Path, counted: list[str]) -> BustAPI:
    app = BustAPI(static_folder=str(files))

    @app.route("/count", methods=["GET", "POST"])
    def count() -> str:
        counted.append(request.method)
        return "counted"

    @app.route("/hello")
    def hello() -> str:
        return "hi"

    @app.route("/raise")
    def raises() -> str:
        raise RuntimeError("boom")

    @app.route("/panic")
    def panics() -> Response:
        return PanickingResponse("x")

    @app.route("/dl/<path:name>")
    def dl(name: str) -> Any:
        return send_from_directory(str(files), name)

    return app


def test_view_exception_and_binding_panic_cost_one_request(
    app: BustAPI, serve: Callable[..., Any]
) -> None:
    port = serve(app).port
    for _ in range(3):
        assert http_request(port, "GET", "/raise").status == 500
        r = http_request(port, "GET", "/panic")
        assert r.status == 500 and b"panic" not in r.body.lower()
        assert http_request(port, "GET", "/hello").body == b"hi"


def test_clients_vanishing_mid_download_release_everything(
    app: BustAPI, serve: Callable[..., Any]
) -> None:
    port = serve(app).port
    # Warm up: the static mount's and the views' file caches each keep one descriptor
    # per hot file, by design.
    for path in ("/static/big.bin", "/dl/big.bin"):
        assert http_request(port, "GET", path, {"Range": "bytes=0-0"}).status == 206
    time.sleep(0.2)
    baseline = open_fds()

    def vanish(i: int) -> None:
        s = socket.create_connection(("127.0.0.1", port))
        path = "/static/big.bin" if i % 2 else "/dl/big.bin"
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        s.recv(65536)  # the download has started
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()  # reset: gone mid-stream

    threads = [threading.Thread(target=vanish, args=(i,)) for i in range(200)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    deadline = time.monotonic() + 10
    while open_fds() > baseline and time.monotonic() < deadline:
        time.sleep(0.1)
    assert open_fds() <= baseline, f"descriptors leaked: {open_fds()} > {baseline}"
    assert http_request(port, "GET", "/static/small.txt").body == b"small\n"


def test_file_truncated_during_download(
    files: Path, app: BustAPI, serve: Callable[..., Any], capfd: pytest.CaptureFixture[str]
) -> None:
    victim = files / "victim.bin"
    victim.write_bytes(os.urandom(64 * 1024 * 1024))
    port = serve(app).port
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/static/victim.bin")
    resp = conn.getresponse()
    announced = int(resp.getheader("Content-Length"))
    first = resp.read(1024 * 1024)
    os.truncate(victim, 2 * 1024 * 1024)  # the file shrinks under the server
    with pytest.raises(http.client.IncompleteRead) as info:
        resp.read()
    got = len(first) + len(info.value.partial)
    assert got < announced
    conn.close()
    assert http_request(port, "GET", "/hello").body == b"hi"
    assert http_request(port, "GET", "/static/victim.bin").headers["content-length"] == str(2 << 20)
    assert "file shrank while streaming" in capfd.readouterr().err


# Pipelined behind every smuggling probe: must never run, because after a 400 for
# doubtful framing the server closes instead of reading on.
HIDDEN = b"GET /count HTTP/1.1\r\nHost: x\r\n\r\n"

SMUGGLING = {
    "cl-and-te": b"POST /count HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "duplicate-cl": b"POST /count HTTP/1.1\r\nHost: x\r\n"
    b"Content-Length: 5\r\nContent-Length: 6\r\n\r\n",
    "obs-fold": b"GET /count HTTP/1.1\r\nHost: x\r\nX-A: a\r\n folded\r\n\r\n",
    "te-not-chunked": b"POST /count HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
    "te-chunked-twice": b"POST /count HTTP/1.1\r\nHost: x\r\n"
    b"Transfer-Encoding: chunked, chunked\r\n\r\n",
    "cl-not-a-number": b"POST /count HTTP/1.1\r\nHost: x\r\nContent-Length: 5x\r\n\r\n",
    "cl-signed": b"POST /count HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nhello",
    "space-before-colon": b"GET /count HTTP/1.1\r\nHost : x\r\n\r\n",
    "no-host": b"GET /count HTTP/1.1\r\n\r\n",
    "two-hosts": b"GET /count HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
}

# Bodies that one framing reads as data and the other as a second request.
HIDDEN_IN_BODY = {
    # By Content-Length the rest is body; by chunked coding it is a second request.
    "cl-covers-te": b"POST /count HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n%s" % (5 + len(HIDDEN), HIDDEN),
    # By chunked coding the chunk is body; by Content-Length: 0 it is a second request.
    "te-covers-cl": b"POST /count HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
    b"Content-Length: 0\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(HIDDEN), HIDDEN),
    # Whichever Content-Length wins, one reading puts the hidden request after the body.
    "cl-twice": b"POST /count HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
    b"Content-Length: %d\r\n\r\n%s" % (len(HIDDEN), HIDDEN),
}


def one_answer_then_close(port: int, payload: bytes) -> Result:
    """Sends ``payload`` and reads exactly one response, then requires the server to
    close the connection without sending another byte."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(payload)
        stream = s.makefile("rb")
        r = read_response(stream, payload.split(b" ", 1)[0].decode())
        try:
            rest = stream.read()
        except ConnectionResetError:  # closed with our bytes unread: a reset is a close
            rest = b""
        assert rest == b"", f"more after the {r.status}: {rest[:200]!r}"
    return r


@pytest.mark.parametrize(
    "name",
    list(SMUGGLING),
)
def test_smuggling_inputs_are_refused(
    app: BustAPI, serve: Callable[..., Any], counted: list[str], name: str
) -> None:
    port = serve(app).port
    r = one_answer_then_close(port, SMUGGLING[name] + HIDDEN)
    assert (r.status, r.headers["connection"]) == (400, "close"), r
    assert counted == [], "the refused request, or the one pipelined behind it, ran"
    # The server itself is fine.
    assert http_request(port, "GET", "/count").body == b"counted"


@pytest.mark.parametrize(
    "name",
    list(HIDDEN_IN_BODY),
)
def test_smuggled_second_request_is_never_answered(
    app: BustAPI, serve: Callable[..., Any], counted: list[str], name: str
) -> None:
    port = serve(app).port
    r = one_answer_then_close(port, HIDDEN_IN_BODY[name])
    assert (r.status, r.headers["connection"]) == (400, "close"), r
    assert counted == [], "a request hidden in the body was executed"


def served_content(r: Result, files: dict[int, bytes]) -> bytes:
    """The file a 200 or 206 GET response is part of, told by its full size."""
    if r.status == 200:
        size = int(r.headers["content-length"])
    else:
        size = int((r.headers.get("content-range") or parse_multipart(r)[0][1]).rsplit("/", 1)[1])
    assert size in files, f"{r.status} of something that is no file here ({size} bytes)"
    return files[size]


def check_answer(method: str, r: Result, files: dict[int, bytes]) -> None:
    """What a fuzzed request's answer must be beyond "below 500": framing that agrees
    with the bytes, and file bytes that are the file's."""
    assert r.status < 500
    if method == "HEAD" or r.status not in (200, 206):
        assert r.body == b"" or r.status >= 300
    if r.status == 416:
        assert re.fullmatch(r"bytes \*/(\d+)", r.headers["content-range"])
        assert int(r.headers["content-range"][8:]) in files
    elif r.status in (200, 206) and method == "GET":
        file_slices(r, served_content(r, files))
    elif r.status == 206:  # HEAD: the same head a GET would get
        length = int(r.headers["content-length"])
        m = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+)", r.headers.get("content-range", ""))
        if m:
            assert int(m.group(2)) - int(m.group(1)) + 1 == length and int(m.group(3)) in files
        else:
            assert r.headers["content-type"].startswith("multipart/byteranges")
    elif r.status == 200 and method == "HEAD":
        assert int(r.headers["content-length"]) in files


LENGTHS = {
    # hyper frames these by Transfer-Encoding and drops Content-Length before the
    # engine sees the head; a proxy in front may have framed them by length.
    "cl-then-te": b"Content-Length: 40\r\nTransfer-Encoding: chunked\r\n",
    "te-then-cl": b"Transfer-Encoding: chunked\r\nContent-Length: 40\r\n",
    "cl-te-in-one-head-twice": b"Content-Length: 40\r\nTransfer-Encoding: chunked\r\n"
    b"Content-Length: 40\r\n",
}


@pytest.mark.parametrize("name", list(LENGTHS))
@pytest.mark.parametrize("after", [b"", b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"])
def test_content_length_with_transfer_encoding_is_400_and_closes(
    files: Path, serve: Callable[..., Any], name: str, after: bytes
) -> None:
    """Both length fields: exactly one answer, 400 with Connection: close, and
    neither the request nor one hidden behind it ever reaches a view, also when
    an ordinary request came first on the connection."""
    app = BustAPI(static_folder=str(files))
    hits: list[str] = []

    @app.route("/count", methods=["GET", "POST"])
    def count() -> str:
        hits.append("x")
        return str(len(hits))

    @app.route("/hello")
    def hello() -> str:
        return "hi"

    port = serve(app).port
    payload = (
        after + b"POST /count HTTP/1.1\r\nHost: x\r\n" + LENGTHS[name] + b"\r\n0\r\n\r\n" + HIDDEN
    )
    out = raw_exchange(port, payload)
    statuses = re.findall(rb"HTTP/1\.1 \d{3} [^\r]*", out)
    assert statuses == ([b"HTTP/1.1 200 OK"] if after else []) + [b"HTTP/1.1 400 Bad Request"]
    last = out[out.rindex(b"HTTP/1.1 400") :]
    assert b"connection: close" in last.lower()
    assert b"Content-Length and Transfer-Encoding" in last
    assert hits == [], "the request, or the one hidden behind it, ran"
    assert http_request(port, "GET", "/count").body == b"1"


@pytest.mark.parametrize("sendfile", [True, False])
def test_random_requests_get_exact_answers(
    files: Path, app: BustAPI, serve: Callable[..., Any], sendfile: bool
) -> None:
    """Thousands of randomly built Range / If-* headers and paths: every request gets
    an answer below 500 on a connection that stays usable, whose Content-Length and
    Content-Range agree with the bytes sent, and whose file bytes are the file's
    (whole, one slice, or every multipart part)."""
    mid = random.Random(5).randbytes(600_001)  # several read chunks; above the cache's inline size
    (files / "mid.bin").write_bytes(mid)
    contents = {6: b"small\n", len(mid): mid, 8 * 1024 * 1024: (files / "big.bin").read_bytes()}
    port = serve(app, sendfile=sendfile).port
    rng = random.Random(20261125)
    etag = http_request(port, "GET", "/static/small.txt").headers["etag"]
    pieces = ["0", "1", "5", "-", ",", " ", "bytes", "=", "-1", "9" * 23, "18446744073709551616",
              "7-3", ";", "\t", "a", "*", etag, "W/", '"', "items"]  # fmt: skip
    path_bits = ["static", "dl", "small.txt", "big.bin", "..", "%2e", "%2f", "%00", "%", "%zz",
                 ".", ".env", "a", "%c0%af", "\\", "%5c", "~", "//", "?x=1", "%C3%A9",
                 "%ff"]  # fmt: skip
    files_at = ["/static/small.txt", "/dl/small.txt", "/static/mid.bin", "/dl/mid.bin"]
    # Offsets where reads, chunks and the inline cache change hands.
    points = [0, 1, 5, 65535, 65536, 262143, 262144, 524288, len(mid) - 1, len(mid), 10**30]
    dates = ["Mon, 01 Jan 1990 00:00:00 GMT", "garbage", "", "Thu, 01 Jan 1970 00:00:00 GMT",
             "Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT",
             "9" * 40]  # fmt: skip
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    stream = sock.makefile("rb")
    for i in range(3000):
        if rng.random() < 0.5:
            path = rng.choice(files_at)
        else:
            path = "/" + "/".join(rng.choice(path_bits) for _ in range(rng.randint(1, 4)))
        headers = {}
        if rng.random() < 0.25:
            headers["Range"] = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 8)))
        elif rng.random() < 0.35:  # well-formed, at offsets that matter
            specs = [rng.choice(["{}-{}", "{}-", "-{}"]).format(*sorted(rng.choices(points, k=2)))
                     for _ in range(rng.randint(1, 4))]  # fmt: skip
            headers["Range"] = "bytes=" + rng.choice([",", ", "]).join(specs)
        elif rng.random() < 0.55:  # disjoint, in order: mostly multipart answers
            cuts = points[:-1] + [rng.randrange(len(mid)) for _ in range(6)]
            cuts = sorted(rng.sample(cuts, 2 * rng.randint(1, 4)))
            specs = [f"{a}-{b}" for a, b in zip(cuts[::2], cuts[1::2])]
            headers["Range"] = "bytes=" + ",".join(specs)
        for name in ("If-Match", "If-None-Match", "If-Range"):
            if rng.random() < 0.15:
                headers[name] = rng.choice([etag, "*", f"W/{etag}", '"x"', "", rng.choice(dates)])
        for name in ("If-Modified-Since", "If-Unmodified-Since"):
            if rng.random() < 0.15:
                headers[name] = rng.choice(dates)
        method = rng.choice(["GET", "GET", "HEAD"])
        head = f"{method} {path} HTTP/1.1\r\nHost: x\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        what = f"request {i}: {method} {path!r} {headers}"
        try:
            sock.sendall(head.encode() + b"\r\n")
            r = read_response(stream, method)
        except OSError as e:
            pytest.fail(f"{what} dropped the connection: {e!r}")
        try:
            check_answer(method, r, contents)
        except AssertionError as e:
            raise AssertionError(f"{what} -> {r.status} {r.headers}: {e}") from None
        if r.headers.get("connection", "").lower() == "close":
            sock.close()
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            stream = sock.makefile("rb")
    sock.close()


def test_idle_and_slowloris_crowd_does_not_starve_normal_requests(
    app: BustAPI, serve: Callable[..., Any]
) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < 6000:
        pytest.skip(f"open-files hard limit {hard} is too low for 2,200 client sockets")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    port = serve(app, header_read_timeout=2.0).port
    idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(2000)]
    slow = []
    for _ in range(200):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\nX-Drip: ")
        slow.append(s)
    try:
        latencies = []
        for i in range(200):
            t0 = time.monotonic()
            path = "/hello" if i % 2 else "/static/small.txt"
            assert http_request(port, "GET", path, timeout=5).status == 200
            latencies.append(time.monotonic() - t0)
        latencies.sort()
        print(f"p95 with 2,200 hostile connections: {latencies[189] * 1000:.1f} ms")
        # The slowloris connections are cut by the header timeout.
        still_open = [s for s in slow if not closed_within(s, 10)]
        assert not still_open, f"{len(still_open)} slowloris connections were never cut"
    finally:
        for s in idle + slow:
            s.close()


EMFILE_APP = textwrap.dedent(
    """
    import resource
    from bustapi import BustAPI
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
    app = BustAPI(static_folder=None)

    @app.route("/hello")
    def hello():
        return "hi"

    app.run(port=0)
    """
)


def test_out_of_descriptors_is_survived(tmp_path: Path) -> None:
    script = tmp_path / "app.py"
    script.write_text(EMFILE_APP)
    log = tmp_path / "stderr.log"
    with open(log, "w") as err:
        proc, port, _ = start_server([sys.executable, str(script)], stderr=err)
    try:
        assert http_request(port, "GET", "/hello").body == b"hi"
        hog = []
        for _ in range(100):  # more than the server's 64 descriptors
            hog.append(socket.create_connection(("127.0.0.1", port)))
        time.sleep(0.5)
        for s in hog:
            s.close()
        time.sleep(0.5)
        assert proc.poll() is None, "the server died when it ran out of descriptors"
        assert http_request(port, "GET", "/hello", timeout=10).body == b"hi"
        assert "accept failed" in log.read_text(), "the test never drove the server to EMFILE"
    finally:
        stop_process(proc)
