"""``app.run()`` as a user starts it: module-relative static folder, workers."""

from __future__ import annotations

import signal
import sys
import textwrap
from pathlib import Path

from conftest import http_request, start_server, stop_process

APP = textwrap.dedent(
    """
    import os
    from bustapi import BustAPI

    app = BustAPI(__name__)          # static_folder="static", next to this file

    @app.route("/pid")
    def pid():
        return {"pid": os.getpid()}

    if __name__ == "__main__":
        app.run(port=0, workers=2)
    """
)


def test_workers_share_the_port_and_static_is_module_relative(tmp_path: Path) -> None:
    appdir = tmp_path / "project"
    (appdir / "static").mkdir(parents=True)
    (appdir / "static" / "hello.txt").write_text("from the module's static folder\n")
    (appdir / "app.py").write_text(APP)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc, port, line = start_server([sys.executable, str(appdir / "app.py")], cwd=elsewhere)
    try:
        assert "(workers: 2)" in line, line
        r = http_request(port, "GET", "/static/hello.txt")
        assert r.status == 200 and r.body == b"from the module's static folder\n"
        pids = set()
        for _ in range(200):
            pids.add(http_request(port, "GET", "/pid").json["pid"])
            if len(pids) == 2:
                break
        assert len(pids) == 2, f"only one worker answered: {pids}"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    finally:
        stop_process(proc)
