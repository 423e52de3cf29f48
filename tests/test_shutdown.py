"""Graceful shutdown of ``app.run()``: SIGTERM / Ctrl-C let in-flight responses
finish, then the process exits cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import http_request, start_server, stop_process

APP = textwrap.dedent(
    """
    import time
    from bustapi import BustAPI

    app = BustAPI(static_folder=None)

    @app.route("/slow")
    def slow():
        open({marker!r}, "w").close()
        time.sleep(1.5)
        return "finished"

    @app.route("/hello")
    def hello():
        return {{"message": "Hello, world!"}}

    app.run(port=0)
    """
)


def start_app(tmp_path: Path) -> tuple[subprocess.Popen[str], int, Path]:
    marker = tmp_path / "in-view"
    script = tmp_path / "app.py"
    script.write_text(APP.format(marker=str(marker)))
    proc, port, _ = start_server([sys.executable, str(script)])
    return proc, port, marker


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_in_flight_request_finishes_then_exit(tmp_path: Path, sig: int) -> None:
    proc, port, marker = start_app(tmp_path)
    try:
        assert http_request(port, "GET", "/hello").status == 200
        result: dict[str, Any] = {}
        t = threading.Thread(
            target=lambda: result.setdefault("r", http_request(port, "GET", "/slow"))
        )
        t.start()
        deadline = time.monotonic() + 10
        while not marker.exists():
            assert time.monotonic() < deadline, "slow view never started"
            time.sleep(0.01)
        os.kill(proc.pid, sig)
        t.join(15)
        assert result["r"].status == 200 and result["r"].body == b"finished"
        assert proc.wait(15) == 0
        out = proc.stdout.read() if proc.stdout else ""
        assert "stopped" in out
        with pytest.raises(OSError):
            http_request(port, "GET", "/hello", timeout=2)
    finally:
        stop_process(proc, signal.SIGKILL)
