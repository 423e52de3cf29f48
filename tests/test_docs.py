"""Every ```python code block in docs/*.md and README.md runs, as written.

How one block is run:

* It runs in an empty temporary directory, which is also the current directory, as a
  reader would run it in a fresh folder. A block that needs files says so: the most
  recent ```sh setup block before it on the same page (shell commands that create the
  files, shown to the reader as such) is run there first with ``bash -eu``. Nothing
  else is put in the directory, so a block needing a file it neither creates nor sets
  up fails.
* It is executed with ``exec`` in a fresh module named ``__main__``, installed as
  ``sys.modules["__main__"]`` while it runs, whose ``__file__`` lies in that work
  directory. So the block behaves as ``python app.py`` started there: ``if __name__ ==
  "__main__":`` runs, and ``BustAPI()`` / ``BustAPI(__name__)`` resolve
  ``static_folder`` against it.
* ``BustAPI.run`` is monkeypatched to a recorder, so no snippet blocks: the recorder
  checks the arguments as ``run()`` itself does (its signature, then the engine options
  through ``_configure`` on a scratch app, which raises ``TypeError`` for unknown ones
  and loads an ``ssl_context``'s files) and returns. A block whose
  ``if __name__ == "__main__":`` calls ``app.run(...)`` must reach the recorder.
* Afterwards, the ``test_*`` functions the block defines that take no arguments are
  called; a block that imports pytest (fixtures) is instead run by pytest itself, in a
  subprocess, as a test module in the work directory. If the block defines ``app`` (a
  ``BustAPI``), the app is served with ``bustapi.testing.LiveServer`` and every
  registered GET rule without parameters (from ``app.url_map``) is requested over a
  socket; each must answer with a status below 500.
* Logging configuration changed by a block is restored afterwards.

Not executed: blocks tagged ```python no-run (they use features that are not
implemented yet; remove the tag when the feature lands) and blocks in any other
language (``sh``, ``text``, ``html``, ``nginx``, ...), except ```sh setup blocks as
described above.
"""

from __future__ import annotations

import inspect
import logging
import os
import re
import subprocess
import sys
import types
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from bustapi import BustAPI
from bustapi.testing import LiveServer
from conftest import http_request

ROOT = Path(__file__).resolve().parents[1]
DOC_FILES = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]

FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<info>[^`]*)$")
RUN_FLAGS = {"": True, "no-run": False}
PYTHON_ALIASES = {"py", "python3", "pycon"}


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # 1-based line of the first code line
    info: str
    code: str
    setup: Block | None = None  # the ```sh setup block that creates its files

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def read_blocks(path: Path) -> list[Block]:
    """Fenced code blocks of a Markdown file, with their info strings."""
    blocks: list[Block] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if m is None:
            i += 1
            continue
        indent, info = m.group("indent"), m.group("info").strip()
        start = i + 1
        i = start
        while i < len(lines) and lines[i].strip() != "```":
            i += 1
        assert i < len(lines), f"{path}:{start}: unclosed code fence"
        body = [line[len(indent) :] if line.startswith(indent) else line for line in lines[start:i]]
        blocks.append(Block(path, start + 1, info, "\n".join(body) + "\n"))
        i += 1
    return blocks


def python_blocks() -> list[Block]:
    found = []
    for path in DOC_FILES:
        setup = None
        for block in read_blocks(path):
            lang, _, flags = block.info.partition(" ")
            assert lang.lower() not in PYTHON_ALIASES, f"{block.id}: tag Python as ```python"
            if lang == "sh" and flags.strip() == "setup":
                setup = block
            if lang == "python":
                assert flags.strip() in RUN_FLAGS, f"{block.id}: unknown flags {flags!r}"
                found.append(replace(block, setup=setup))
    return found


ALL_PYTHON = python_blocks()
RUNNABLE = [b for b in ALL_PYTHON if RUN_FLAGS[b.info.partition(" ")[2].strip()]]


_REAL_RUN = BustAPI.run


@pytest.fixture
def run_calls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Replaces ``BustAPI.run`` with a recorder that validates like ``run()`` and returns."""
    calls: list[dict[str, Any]] = []

    def recording_run(self: BustAPI, *args: Any, **kwargs: Any) -> None:
        bound = inspect.signature(_REAL_RUN).bind(self, *args, **kwargs)
        options = dict(bound.arguments.get("options", {}))
        # Validated as run() does, on a scratch app: the snippet's own app stays as it was
        # (plain HTTP, default limits) for exercise().
        scratch = BustAPI(static_folder=None, root_path=os.getcwd())
        scratch._configure(bound.arguments.get("threads"), options)  # raises if unknown
        calls.append(dict(bound.arguments))

    monkeypatch.setattr(BustAPI, "run", recording_run)
    return calls


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The snippet's current directory: empty, as a reader's fresh folder."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run_setup(block: Block, workdir: Path) -> None:
    """Runs the ```sh setup block the snippet relies on, as the reader would."""
    assert block.setup is not None
    proc = subprocess.run(
        ["bash", "-eu", "-c", block.setup.code],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, f"{block.setup.id}: setup failed\n{proc.stdout}\n{proc.stderr}"


@pytest.fixture
def isolated_logging() -> Iterator[None]:
    """Undoes what a snippet does to the logging configuration (``basicConfig``, levels)."""
    root, ours = logging.getLogger(), logging.getLogger("bustapi")
    saved = (list(root.handlers), root.level, list(ours.handlers), ours.level)
    yield
    root.handlers[:], root.level, ours.handlers[:], ours.level = saved


def exec_block(block: Block, workdir: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Runs the block as the main module of a script in ``workdir``; returns its globals."""
    module = types.ModuleType("__main__")
    module.__file__ = str(workdir / "app.py")
    monkeypatch.setitem(sys.modules, "__main__", module)
    # Leading newlines make tracebacks point at the Markdown file's own line numbers.
    code = compile("\n" * (block.line - 1) + block.code, str(block.path), "exec")
    exec(code, module.__dict__)
    return module.__dict__


def run_with_pytest(block: Block, workdir: Path) -> None:
    """Runs a snippet that uses pytest (fixtures) as a test module of its own."""
    test_file = workdir / f"test_snippet_{block.path.stem.replace('-', '_')}_{block.line}.py"
    test_file.write_text(block.code, encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", test_file.name],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, f"{block.id}: pytest failed\n{proc.stdout}\n{proc.stderr}"


def exercise(app: BustAPI) -> None:
    """GETs every parameterless GET rule over a real socket; none may fail with a 5xx."""
    rules = [r.rule for r in app.url_map.iter_rules() if "GET" in r.methods and "<" not in r.rule]
    with LiveServer(app) as server:
        for rule in rules:
            r = http_request(server.port, "GET", rule)
            assert r.status < 500, f"GET {rule} -> {r.status}: {r.body[:300]!r}"


@pytest.mark.usefixtures("isolated_logging")
@pytest.mark.parametrize("block", RUNNABLE, ids=[b.id for b in RUNNABLE])
def test_doc_snippet(
    block: Block,
    workdir: Path,
    run_calls: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if block.setup is not None:
        run_setup(block, workdir)
    namespace = exec_block(block, workdir, monkeypatch)
    if re.search(r"^if __name__ == .__main__.:\n\s+app\.run\(", block.code, re.M):
        assert run_calls, f"{block.id}: the __main__ block did not call app.run()"
    if re.search(r"^import pytest$", block.code, re.M):
        run_with_pytest(block, workdir)  # fixtures need pytest itself
    else:
        for name, value in list(namespace.items()):
            if name.startswith("test_") and inspect.isfunction(value):
                if not inspect.signature(value).parameters:
                    value()
    app = namespace.get("app")
    if isinstance(app, BustAPI):
        exercise(app)


def test_docs_are_found() -> None:
    pages = {p.name for p in DOC_FILES}
    assert "index.md" in pages and "README.md" in pages, pages
    assert RUNNABLE, "no runnable ```python blocks found"
    for block in ALL_PYTHON:
        compile(block.code, block.id, "exec")  # no-run blocks must still be valid Python
    setups = {b.id for path in DOC_FILES for b in read_blocks(path) if b.info == "sh setup"}
    assert setups, "no ```sh setup blocks found"
    used = {b.setup.id for b in RUNNABLE if b.setup is not None}
    assert setups == used, f"setup blocks no runnable block follows: {setups - used}"
