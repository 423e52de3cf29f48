"""``python -m bustapi demo``, as the README's Quick start starts it."""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

from conftest import http_request, start_server, stop_process


def test_demo_logs_the_range_requests_it_describes(tmp_path: Path) -> None:
    # The demo page tells the user that every seek is a 206; the access log shows it.
    log = tmp_path / "stderr.log"
    with open(log, "w") as err:
        proc, port, _ = start_server(
            [sys.executable, "-m", "bustapi", "demo", "--port", "0"], tmp_path, err
        )
    try:
        r = http_request(port, "GET", "/video/sample", {"Range": "bytes=100-199"})
        assert r.status == 206 and len(r.body) == 100
        assert http_request(port, "GET", "/static/video.mp4", {"Range": "bytes=0-"}).status == 206
        patterns = [
            r'127\.0\.0\.1 "GET /video/sample HTTP/1\.1" 206 100 bytes=100-199 [\d.]+ms',
            r'127\.0\.0\.1 "GET /static/video\.mp4 HTTP/1\.1" 206 \d+ bytes=0- [\d.]+ms',
        ]
        deadline = time.monotonic() + 10
        while not all(re.search(p, log.read_text()) for p in patterns):
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
    finally:
        stop_process(proc)
