"""The seed's examples run unchanged (imported as they are, served over a socket)."""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path
from typing import Any, Callable

import pytest
from conftest import http_request

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
VIDEO = Path(__file__).resolve().parents[1] / "python" / "bustapi" / "demo" / "static" / "video.mp4"


def load(name: str, directory: Path = EXAMPLES) -> Any:
    """Imports ``examples/<name>.py``; with ``directory``, from a copy placed there
    (the app's root_path, where send_file's relative paths start, as in Flask)."""
    if directory != EXAMPLES:
        shutil.copy(EXAMPLES / f"{name}.py", directory / f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"example_{name}", directory / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.app


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder laid out as the seed expects, holding the example (``python app.py``
    from its own folder: the process cwd and the app's root_path alike)."""
    (tmp_path / "secure_storage" / "videos").mkdir(parents=True)
    (tmp_path / "secure_storage" / "videos" / "intro.mp4").write_bytes(VIDEO.read_bytes())
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "dataset.csv").write_text("id,name\n1,ada\n2,grace\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_hello_example(serve: Callable[..., Any]) -> None:
    port = serve(load("hello")).port
    r = http_request(port, "GET", "/")
    assert r.status == 200 and r.json == {"message": "Hello, world!"}


def test_dynamic_streaming_example(workdir: Path, serve: Callable[..., Any]) -> None:
    port = serve(load("dynamic_streaming", workdir)).port
    size = VIDEO.stat().st_size
    r = http_request(port, "GET", "/video/intro", {"Range": "bytes=0-"})
    assert r.status == 206 and r.headers["content-type"] == "video/mp4"
    assert r.headers["content-range"] == f"bytes 0-{size - 1}/{size}"
    r = http_request(port, "HEAD", "/video/intro")
    assert r.status == 200 and r.headers["accept-ranges"] == "bytes" and r.body == b""
    assert http_request(port, "GET", "/video/missing").status == 404


def test_file_response_example(workdir: Path, serve: Callable[..., Any]) -> None:
    port = serve(load("file_response", workdir)).port
    r = http_request(port, "GET", "/download")
    assert r.status == 200 and r.body == b"id,name\n1,ada\n2,grace\n"
    assert r.headers["content-disposition"] == 'attachment; filename="custom_name.csv"'
    assert r.headers["content-type"] == "text/csv; charset=utf-8"


def test_static_streaming_example_uses_module_directory(
    workdir: Path, serve: Callable[..., Any]
) -> None:
    app = load("static_streaming")
    # Like Flask: relative to the module that created the app, not to the cwd.
    assert app.static_folder == os.path.join(str(EXAMPLES), "static")
    port = serve(app).port
    assert b"<video" in http_request(port, "GET", "/").body


def test_seed_app_example(workdir: Path, serve: Callable[..., Any]) -> None:
    port = serve(load("seed_app", workdir)).port
    r = http_request(port, "GET", "/video/intro", {"Range": "bytes=100-199"})
    assert r.status == 206 and r.body == VIDEO.read_bytes()[100:200]
    assert http_request(port, "GET", "/download").status == 200
