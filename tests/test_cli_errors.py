"""Starting and stopping servers as a user does: the start-up line, signals from a
shell, clear one-line errors, and ``--help``."""

from __future__ import annotations

import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Optional

import click
import pytest
from bustapi.cli import _make_cli
from conftest import self_signed_cert, start_server, stop_process

HELLO = textwrap.dedent(
    """
    from bustapi import BustAPI

    app = BustAPI(__name__, static_folder=None)

    @app.route("/")
    def index():
        return "hello"
    """
)


def bustapi(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bustapi", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def assert_one_clear_line(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert result.returncode != 0, result
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])


# -- 2: the start-up line names the scheme actually served --------------------------


def test_https_start_up_line_says_https(tmp_path: Path) -> None:
    pytest.importorskip("cryptography")
    cert, key = self_signed_cert(tmp_path)
    script = tmp_path / "app.py"
    script.write_text(HELLO + f"\napp.run(port=0, ssl_context=({str(cert)!r}, {str(key)!r}))\n")
    proc, port, line = start_server([sys.executable, str(script)])
    try:
        assert f"https://127.0.0.1:{port}/" in line, line
        # ... and that URL really answers over TLS.
        ctx = ssl.create_default_context(cafile=str(cert))
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                tls.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                assert tls.recv(4096).startswith(b"HTTP/1.1 200")
    finally:
        stop_process(proc)


def test_plain_start_up_line_says_http(tmp_path: Path) -> None:
    script = tmp_path / "app.py"
    script.write_text(HELLO + "\napp.run(port=0)\n")
    proc, port, line = start_server([sys.executable, str(script)])
    stop_process(proc)
    assert f"http://127.0.0.1:{port}/" in line, line


# -- 3: SIGINT stops a server started in the background by a shell ------------------


@pytest.mark.parametrize(
    "command",
    [["app.py"], ["-m", "bustapi", "serve", ".", "--port", "0"]],
    ids=["app.run", "serve"],
)
def test_sigint_stops_a_server_a_shell_started_with_sigint_ignored(
    tmp_path: Path, command: list[str]
) -> None:
    # A non-interactive shell starts `cmd &` with SIGINT ignored, and Python then
    # installs no KeyboardInterrupt handler; `wait` returns the server's status.
    probe = "import signal; print(signal.getsignal(signal.SIGINT) is signal.SIG_IGN)"
    inherited = subprocess.run(
        ["bash", "-c", f"{sys.executable} -c '{probe}' & wait"], capture_output=True, text=True
    )
    assert inherited.stdout.strip() == "True", "the premise of this test does not hold"
    (tmp_path / "app.py").write_text(HELLO + "\napp.run(port=0)\n")
    argv = " ".join([sys.executable, *command])
    shell = subprocess.Popen(
        ["bash", "-c", f"{argv} & echo pid=$!; wait $!"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert shell.stdout is not None
        first = shell.stdout.readline()
        pid = int(first.removeprefix("pid=").strip())
        for _ in range(5):
            if "serving on" in shell.stdout.readline():
                break
        else:
            raise AssertionError("no start-up line")
        os.kill(pid, signal.SIGINT)
        assert shell.wait(20) == 0, "the server did not exit cleanly on SIGINT"
        assert "stopped" in shell.stdout.read()
    finally:
        stop_process(shell, signal.SIGKILL)


# -- 5: one clear line and a non-zero exit, not a traceback -------------------------


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


def test_port_in_use_serve(tmp_path: Path, busy_port: int) -> None:
    result = bustapi("serve", ".", "--port", str(busy_port), cwd=tmp_path)
    assert_one_clear_line(result, f"127.0.0.1:{busy_port}", "in use")


def test_port_in_use_run(tmp_path: Path, busy_port: int) -> None:
    (tmp_path / "hello.py").write_text(HELLO)
    result = bustapi("run", "hello:app", "--port", str(busy_port), cwd=tmp_path)
    assert_one_clear_line(result, f"127.0.0.1:{busy_port}", "in use")


def test_port_in_use_app_run(tmp_path: Path, busy_port: int) -> None:
    (tmp_path / "app.py").write_text(HELLO + f"\napp.run(port={busy_port})\n")
    result = subprocess.run(
        [sys.executable, "app.py"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert_one_clear_line(result, f"127.0.0.1:{busy_port}", "in use")


@pytest.mark.parametrize(
    "target, words",
    [
        ("nosuchmodule:app", ["nosuchmodule", "no module"]),
        ("nosuchpackage.sub:app", ["nosuchpackage.sub", "no module"]),
        ("missing_file.py:app", ["missing_file.py", "no such file"]),
        ("hello:nothere", ["hello", "nothere"]),
        ("hello:index", ["hello:index", "not a BustAPI application"]),
    ],
)
def test_run_bad_target(tmp_path: Path, target: str, words: list[str]) -> None:
    (tmp_path / "hello.py").write_text(HELLO)
    assert_one_clear_line(bustapi("run", target, cwd=tmp_path), *words)


def test_run_keeps_the_traceback_of_a_broken_app(tmp_path: Path) -> None:
    """An import error *inside* the user's module is their bug: the traceback
    that points at the line is what helps, so it is kept."""
    (tmp_path / "broken.py").write_text("import not_installed_anywhere\n")
    result = bustapi("run", "broken:app", cwd=tmp_path)
    assert result.returncode != 0
    assert "Traceback" in result.stderr and "broken.py" in result.stderr


def test_serve_missing_folder(tmp_path: Path) -> None:
    assert_one_clear_line(bustapi("serve", "nope", cwd=tmp_path), "nope", "not a directory")


# -- --help shows every option with its default ------------------------------------


def option_blocks(help_text: str) -> dict[str, str]:
    """``{"--port": "-p, --port INTEGER Port to listen on ... (default: 8000)", ...}``:
    each option's entry in click's help, its wrapped lines joined, keyed by every
    name it has."""
    blocks: dict[str, str] = {}
    names: list[str] = []
    for line in help_text.splitlines():
        if re.match(r"  -", line):
            names = re.findall(r"(?<![\w-])(--?[\w-]+)", line.split("  ")[1])
            for name in names:
                blocks[name] = line.strip()
        elif line.startswith("   ") and names:
            for name in names:
                blocks[name] += " " + line.strip()
        else:
            names = []
    return blocks


@pytest.mark.parametrize("command", [None, "serve", "run", "demo", "routes", "shell"])
def test_help_shows_every_option_with_its_default(tmp_path: Path, command: Optional[str]) -> None:
    args = [command] if command else []
    result = bustapi(*args, "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    blocks = option_blocks(result.stdout)
    group = _make_cli()
    cmd = group.commands[command] if command else group
    for param in cmd.params:
        if not isinstance(param, click.Option) or param.name == "help":
            continue
        label = param.opts[-1]
        assert label in blocks, (command, label, result.stdout)
        entry = blocks[label]
        if isinstance(param.default, (str, int, float)) and not isinstance(param.default, bool):
            assert f"(default: {param.default})" in entry, (command, entry)
        else:  # a flag, or no default (click >= 8.3 says so with a sentinel)
            assert "(default: " in entry, (command, entry)


def test_https_server_logs_whether_kernel_tls_is_available(tmp_path: Path) -> None:
    """Issue 13: kernel TLS is detected and logged once, so an operator knows
    file bodies over HTTPS are encrypted in user space and why."""
    pytest.importorskip("cryptography")
    cert, key = self_signed_cert(tmp_path)
    script = tmp_path / "app.py"
    script.write_text(HELLO + f"\napp.run(port=0, ssl_context=({str(cert)!r}, {str(key)!r}))\n")
    ulps = Path("/proc/sys/net/ipv4/tcp_available_ulp")
    available = ulps.exists() and "tls" in ulps.read_text().split()
    env = {**os.environ, "BUSTAPI_LOG": "info"}
    proc = subprocess.Popen(
        [sys.executable, str(script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        seen: list[str] = []
        while not any("https://" in line for line in seen) and len(seen) < 5:
            seen.append(proc.stdout.readline())
        assert "https://" in seen[-1], seen
        # One answered request: the accept loop (which logs first) is running.
        port = int(re.search(r":(\d+)/", seen[-1]).group(1))  # type: ignore[union-attr]
        ctx = ssl.create_default_context(cafile=str(cert))
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                tls.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                assert tls.recv(4096).startswith(b"HTTP/1.1 200")
    finally:
        stop_process(proc)
    out = "".join(seen) + (proc.stdout.read() if proc.stdout else "")
    lines = [line for line in out.splitlines() if "kernel TLS" in line]
    assert len(lines) == 1, out
    assert ("unavailable" not in lines[0]) == available, lines[0]
