"""Every ```python code block in docs/*.md and README.md runs, as written.

How one block is run:

* It is executed with ``exec`` in a fresh module named ``__main__``, installed as
  ``sys.modules["__main__"]`` while it runs, whose ``__file__`` lies in a temporary
  work directory that is also the current directory. So the block behaves as
  ``python app.py`` started in that directory: ``if __name__ == "__main__":`` runs, and
  ``BustAPI()`` / ``BustAPI(__name__)`` resolve ``static_folder`` against it. The work
  directory holds the files the snippets refer to (``WORK_FILES``).
* ``BustAPI.run`` is monkeypatched to a recorder, so no snippet blocks: the recorder
  checks the arguments as ``run()`` itself does (its signature, then the engine options
  through ``app._configure``, which raises ``TypeError`` for unknown ones) and returns.
* Afterwards, the ``test_*`` functions the block defines that take no arguments are
  called. If the block defines ``app`` (a ``BustAPI``), the app is served with
  ``bustapi.testing.LiveServer`` and every registered GET rule without parameters
  (from ``app.url_map``) is requested over a socket; each must answer with a status
  below 500.

Not executed: blocks tagged ```python no-run (they use features that are not
implemented yet; remove the tag when the feature lands) and blocks in any other
language (``sh``, ``text``, ``html``, ``nginx``, ...).
"""

from __future__ import annotations

import inspect
import re
import shutil
import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from bustapi import BustAPI
from bustapi.testing import LiveServer
from conftest import http_request

ROOT = Path(__file__).resolve().parents[1]
DOC_FILES = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]
VIDEO = ROOT / "python" / "bustapi" / "demo" / "static" / "video.mp4"

# Files the snippets mention, relative to the work directory: bytes, or a Path to copy.
WORK_FILES: dict[str, bytes | Path] = {
    "static/video.mp4": VIDEO,
    "static/style.css": b"body { font-family: sans-serif; }\n",
    "secure_storage/videos/intro.mp4": VIDEO,
    "data/dataset.csv": b"id,name\n1,ada\n2,grace\n",
    "downloads/report.pdf": b"%PDF-1.4 report\n",
    "downloads/r\u00e9sum\u00e9 \u20ac.pdf": b"%PDF-1.4 resume\n",
    "downloads/.secrets": b"API_KEY=do-not-serve\n",
    "releases/app-1.0.tar.gz": bytes(range(256)) * 64,
}

FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<info>[^`]*)$")
RUN_FLAGS = {"": True, "no-run": False}
PYTHON_ALIASES = {"py", "python3", "pycon", "python3-no-run"}


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # 1-based line of the first code line
    info: str
    code: str

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
        for block in read_blocks(path):
            lang, _, flags = block.info.partition(" ")
            assert lang.lower() not in PYTHON_ALIASES, f"{block.id}: tag Python as ```python"
            if lang == "python":
                assert flags.strip() in RUN_FLAGS, f"{block.id}: unknown flags {flags!r}"
                found.append(block)
    return found


ALL_PYTHON = python_blocks()
RUNNABLE = [b for b in ALL_PYTHON if RUN_FLAGS[b.info.partition(" ")[2].strip()]]


@dataclass
class RunCall:
    app: BustAPI
    arguments: dict[str, Any]


_REAL_RUN = BustAPI.run


@pytest.fixture
def run_calls(monkeypatch: pytest.MonkeyPatch) -> list[RunCall]:
    """Replaces ``BustAPI.run`` with a recorder that validates like ``run()`` and returns."""
    calls: list[RunCall] = []

    def recording_run(self: BustAPI, *args: Any, **kwargs: Any) -> None:
        bound = inspect.signature(_REAL_RUN).bind(self, *args, **kwargs)
        options = dict(bound.arguments.get("options", {}))
        self._configure(bound.arguments.get("threads"), options)  # TypeError if unknown
        calls.append(RunCall(self, dict(bound.arguments)))

    monkeypatch.setattr(BustAPI, "run", recording_run)
    return calls


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for rel, content in WORK_FILES.items():
        target = tmp_path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, Path):
            shutil.copyfile(content, target)
        else:
            target.write_bytes(content)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def exec_block(block: Block, workdir: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Runs the block as the main module of a script in ``workdir``; returns its globals."""
    module = types.ModuleType("__main__")
    module.__file__ = str(workdir / "app.py")
    monkeypatch.setitem(sys.modules, "__main__", module)
    # Leading newlines make tracebacks point at the Markdown file's own line numbers.
    code = compile("\n" * (block.line - 1) + block.code, str(block.path), "exec")
    exec(code, module.__dict__)
    return module.__dict__


def exercise(app: BustAPI) -> None:
    """GETs every parameterless GET rule over a real socket; none may fail with a 5xx."""
    rules = [rule for rule, _, methods in app.url_map if "GET" in methods and "<" not in rule]
    with LiveServer(app) as server:
        for rule in rules:
            r = http_request(server.port, "GET", rule)
            assert r.status < 500, f"GET {rule} -> {r.status}: {r.body[:300]!r}"


@pytest.mark.parametrize("block", RUNNABLE, ids=[b.id for b in RUNNABLE])
def test_doc_snippet(
    block: Block, workdir: Path, run_calls: list[RunCall], monkeypatch: pytest.MonkeyPatch
) -> None:
    namespace = exec_block(block, workdir, monkeypatch)
    for name, value in list(namespace.items()):
        if name.startswith("test_") and callable(value) and inspect.isfunction(value):
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
