"""The execution model: views run off the IO threads, so a slow view delays
neither static files nor other views."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, Callable

from bustapi import BustAPI
from conftest import http_request


def test_slow_view_does_not_block_static_or_other_views(
    tmp_path: Path, serve: Callable[..., Any]
) -> None:
    static = tmp_path / "static"
    static.mkdir()
    (static / "style.css").write_text("body { color: red }\n")
    app = BustAPI(static_folder=str(static))
    started, finished = threading.Event(), threading.Event()

    @app.route("/slow")
    def slow() -> str:
        started.set()
        time.sleep(2)
        finished.set()
        return "slow done"

    @app.route("/fast")
    def fast() -> str:
        return "fast"

    port = serve(app).port
    results: dict[str, Any] = {}
    t = threading.Thread(
        target=lambda: results.setdefault("slow", http_request(port, "GET", "/slow"))
    )
    t.start()
    assert started.wait(10), "slow view never started"

    t0 = time.monotonic()
    static_resp = http_request(port, "GET", "/static/style.css")
    static_latency = time.monotonic() - t0
    static_done_while_slow_running = not finished.is_set()
    fast_resp = http_request(port, "GET", "/fast")
    fast_done_while_slow_running = not finished.is_set()
    t.join(10)

    assert static_resp.status == 200 and static_resp.body == b"body { color: red }\n"
    assert fast_resp.status == 200 and fast_resp.body == b"fast"
    # Ordering, not timing: both answers arrived while the slow view was still sleeping.
    assert static_done_while_slow_running, (
        f"static waited for the slow view ({static_latency:.3f}s)"
    )
    assert fast_done_while_slow_running
    assert results["slow"].status == 200 and results["slow"].body == b"slow done"


def test_many_concurrent_sleeping_views_overlap(serve: Callable[..., Any]) -> None:
    app = BustAPI(static_folder=None)
    inside = 0
    peak = 0
    lock = threading.Lock()

    @app.route("/sleep")
    def sleepy() -> str:
        nonlocal inside, peak
        with lock:
            inside += 1
            peak = max(peak, inside)
        time.sleep(0.3)
        with lock:
            inside -= 1
        return "ok"

    port = serve(app, threads=8).port
    threads = [
        threading.Thread(target=http_request, args=(port, "GET", "/sleep")) for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert peak > 1, "views ran one at a time"


def test_views_that_wait_for_each_other_all_run(serve: Callable[..., Any]) -> None:
    """Four requests whose views each wait until all four are inside: the pool
    must give each its own thread although the first thread is busy (blocked)."""
    app = BustAPI(static_folder=None)
    all_inside = threading.Barrier(4, timeout=20)

    @app.route("/meet")
    def meet() -> str:
        try:
            all_inside.wait()
        except threading.BrokenBarrierError:
            return "alone"
        return "met"

    port = serve(app, threads=4).port
    bodies: list[bytes] = []
    threads = [
        threading.Thread(target=lambda: bodies.append(http_request(port, "GET", "/meet").body))
        for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert bodies == [b"met"] * 4


def test_a_burst_of_requests_is_served_while_a_view_blocks(serve: Callable[..., Any]) -> None:
    """Requests queued behind a view that blocks until they are all answered."""
    app = BustAPI(static_folder=None)
    started, release = threading.Event(), threading.Event()

    @app.route("/block")
    def block() -> str:
        started.set()
        return "released" if release.wait(30) else "timed out"

    @app.route("/fast/<int:n>")
    def fast(n: int) -> str:
        return str(n)

    port = serve(app, threads=4).port
    blocked: dict[str, Any] = {}
    t = threading.Thread(
        target=lambda: blocked.setdefault("r", http_request(port, "GET", "/block"))
    )
    t.start()
    assert started.wait(10), "the blocking view never started"

    answers: dict[int, bytes] = {}

    def fetch(n: int) -> None:
        answers[n] = http_request(port, "GET", f"/fast/{n}").body

    burst = [threading.Thread(target=fetch, args=(n,)) for n in range(20)]
    for b in burst:
        b.start()
    for b in burst:
        b.join(60)
    # The blocking view answers "timed out" if the burst could only run after it.
    release.set()
    t.join(60)
    assert answers == {n: str(n).encode() for n in range(20)}
    assert blocked["r"].status == 200 and blocked["r"].body == b"released"


def test_a_long_computation_does_not_hold_up_other_views(serve: Callable[..., Any]) -> None:
    """A view that computes (never blocks, holds the GIL but for Python's switch
    interval) until another request has been answered: that request must not wait
    for the whole computation, as it would not under Flask's threads."""
    app = BustAPI(static_folder=None)
    started, answered = threading.Event(), threading.Event()

    @app.route("/compute")
    def compute() -> str:
        started.set()
        until = time.monotonic() + 20
        n = 0
        while not answered.is_set() and time.monotonic() < until:
            n += 1  # pure Python: running, never blocked
        return "interleaved" if answered.is_set() else "held everything up"

    @app.route("/quick")
    def quick() -> str:
        answered.set()
        return "quick"

    port = serve(app).port
    result: list[bytes] = []
    t = threading.Thread(target=lambda: result.append(http_request(port, "GET", "/compute").body))
    t.start()
    assert started.wait(20)
    assert http_request(port, "GET", "/quick").body == b"quick"
    t.join(60)
    assert result == [b"interleaved"]
