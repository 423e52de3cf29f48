"""The access log of ``python -m bustapi serve``: plain lines in a file or a pipe,
the live throughput line (and its terminal escape codes) only on a terminal."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from conftest import http_request, start_server, stop_process

ACCESS_LINE = re.compile(r'127\.0\.0\.1 "GET /a\.txt HTTP/1\.1" 200 5 - [\d.]+ms')


def make_share(tmp_path: Path) -> Path:
    share = tmp_path / "share"
    share.mkdir()
    (share / "a.txt").write_text("hello")
    return share


def serve_folder(share: Path, stderr: int) -> tuple[subprocess.Popen[str], int]:
    """``python -m bustapi serve share`` with its stderr on ``stderr`` (a pipe or a pty)."""
    argv = [sys.executable, "-m", "bustapi", "serve", str(share), "--port", "0"]
    proc, port, _ = start_server(argv, stderr=stderr)
    return proc, port


def test_log_to_a_pipe_has_no_terminal_codes(tmp_path: Path) -> None:
    share = make_share(tmp_path)
    proc, port = serve_folder(share, subprocess.PIPE)
    try:
        for _ in range(3):
            assert http_request(port, "GET", "/a.txt").body == b"hello"
        # Long enough for the live line to have been drawn, had it been enabled.
        time.sleep(1.5)
    finally:
        stop_process(proc)
    assert proc.stderr is not None
    log = proc.stderr.read()
    assert len(ACCESS_LINE.findall(log)) == 3, log
    assert "\x1b" not in log and "\r" not in log, repr(log)
    assert "open connections" not in log


def test_live_stats_asked_for_but_stderr_is_a_file(tmp_path: Path) -> None:
    """``live_stats=True`` cannot draw on a file: the engine checks, not only the CLI."""
    share = make_share(tmp_path)
    script = tmp_path / "app.py"
    script.write_text(
        textwrap.dedent(
            f"""
            from bustapi import BustAPI
            app = BustAPI(__name__, static_folder={str(share)!r}, static_url_path="/s")
            app.run(port=0, access_log=True, live_stats=True)
            """
        )
    )
    log = tmp_path / "stderr.log"
    with open(log, "w") as err:
        proc, port, _ = start_server([sys.executable, str(script)], stderr=err)
    try:
        assert http_request(port, "GET", "/s/a.txt").body == b"hello"
        time.sleep(1.5)
    finally:
        stop_process(proc)
    text = log.read_text()
    assert re.search(r'"GET /s/a\.txt HTTP/1\.1" 200 5', text), text
    assert "\x1b" not in text and "open connections" not in text, repr(text)


def read_until(fd: int, pattern: re.Pattern[bytes], seen: bytearray, seconds: float) -> bool:
    """Reads ``fd`` into ``seen`` until ``pattern`` matches it (or ``seconds`` pass)."""
    deadline = time.monotonic() + seconds
    while not pattern.search(seen):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            return False
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # the pty closed
            return False
        if not chunk:
            return False
        seen += chunk
    return True


def test_a_terminal_gets_the_live_line(tmp_path: Path) -> None:
    share = make_share(tmp_path)
    controller, terminal = pty.openpty()
    proc, port = serve_folder(share, terminal)
    os.close(terminal)
    try:
        seen = bytearray()
        live = re.compile(rb"\r\x1b\[Kserving [\d.]+ \w+/s, \d+ open connections")
        assert read_until(controller, live, seen, 15), bytes(seen)
        assert http_request(port, "GET", "/a.txt").body == b"hello"
        # The access line erases the live line it is written over.
        erased = re.compile(rb"\r\x1b\[K" + ACCESS_LINE.pattern.encode())
        assert read_until(controller, erased, seen, 15), bytes(seen)
    finally:
        stop_process(proc)
        os.close(controller)
