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
