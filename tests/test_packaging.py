"""Packaging facts a user relies on: one version, a complete ``test`` extra, test-only
code kept out of release builds, and tests that leave the demo's environment alone."""

from __future__ import annotations

import ast
import re
import sys
from importlib.metadata import distribution, packages_distributions, version
from pathlib import Path

import bustapi
from bustapi import _core

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11
    from pip._vendor import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
CARGO = tomllib.loads((ROOT / "Cargo.toml").read_text(encoding="utf-8"))
PY_CARGO = tomllib.loads((ROOT / "crates/bustapi-py/Cargo.toml").read_text(encoding="utf-8"))


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    m = re.match(r"[A-Za-z0-9._-]+", requirement)
    assert m, requirement
    return normalise(m.group())


def test_one_version_source() -> None:
    cargo_version = CARGO["workspace"]["package"]["version"]
    assert "version" not in PYPROJECT["project"], "pyproject.toml must take Cargo's version"
    assert "version" in PYPROJECT["project"]["dynamic"]
    assert bustapi.__version__ == cargo_version
    assert version("bustapi") == cargo_version  # the installed distribution's metadata


def third_party_imports() -> dict[str, Path]:
    """Top-level modules imported anywhere under tests/, outside the standard library
    and the project itself, with one file importing each."""
    local = {p.stem for p in (ROOT / "tests").glob("*.py")} | {"bustapi"}
    # Packages that live in the tests themselves (Flask's tutorial app, flaskr).
    local |= {p.parent.name for p in (ROOT / "tests").rglob("__init__.py")}
    found: dict[str, Path] = {}
    for path in sorted((ROOT / "tests").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            elif (  # pytest.importorskip("module")
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "importorskip"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                names = [str(node.args[0].value)]
            for name in names:
                top = name.partition(".")[0]
                # pip: only this file's fallback TOML parser, and every venv has it.
                if top not in sys.stdlib_module_names and top not in local | {"pip"}:
                    found.setdefault(top, path)
    return found


def tools_of_the_test_command() -> set[str]:
    """The programs and ``-m`` modules scripts/test.sh runs from its environment."""
    lines = (ROOT / "scripts" / "test.sh").read_text(encoding="utf-8").splitlines()
    script = "\n".join(line for line in lines if not line.lstrip().startswith("#"))
    tools = set(re.findall(r'"\$VENV/bin/([\w-]+)"', script))
    tools |= {m.partition(".")[0] for m in re.findall(r"\s-m ([\w.]+)", script)}
    # The interpreter, the build tool (scripts/env.sh) and pip come with the environment.
    return tools - {"python", "maturin", "pip"}


def test_test_extra_installs_everything_the_tests_need() -> None:
    extra = {requirement_name(r) for r in PYPROJECT["project"]["optional-dependencies"]["test"]}
    # bustapi's own dependencies (click, Jinja2, ...) come with it.
    extra |= {requirement_name(r) for r in PYPROJECT["project"]["dependencies"]}
    providers = packages_distributions()
    needed: dict[str, str] = {}
    for module, path in third_party_imports().items():
        assert module in providers, f"{path.name} imports {module!r}, which nothing installed"
        for dist in providers[module]:
            needed[normalise(dist)] = f"{path.name} imports {module}"
    for tool in tools_of_the_test_command():
        for dist in providers.get(tool, [tool]):
            needed[normalise(dist)] = f"scripts/test.sh runs {tool}"
    assert {"pytest", "h2", "cryptography", "playwright", "ruff", "mypy"} <= needed.keys()
    missing = {dist: why for dist, why in needed.items() if dist not in extra}
    assert not missing, f"add to [project.optional-dependencies] test: {missing}"


def test_panic_probe_only_in_test_builds() -> None:
    # The test build (scripts/test.sh) has it, so the fault tests can use it ...
    assert hasattr(_core, "PanicProbe")
    # ... and nothing a release build uses turns the feature on.
    assert "panic-probe" in PY_CARGO["features"]
    assert "panic-probe" not in PY_CARGO["features"].get("default", [])
    assert "panic-probe" not in PYPROJECT["tool"]["maturin"].get("features", [])
    assert "--features panic-probe" in (ROOT / "scripts" / "test.sh").read_text()
    assert "panic-probe" not in (ROOT / "scripts" / "demo.sh").read_text()


def test_tests_leave_the_demo_environment_alone() -> None:
    # The tests install a debug build with test-only features; in the demo's .venv that
    # would make `python -m bustapi serve` slow after a test run.
    demo_venv = (ROOT / ".venv").resolve()
    assert Path(sys.prefix).resolve() != demo_venv, "run the tests with scripts/test.sh"
    # And the bustapi under test is installed in the interpreter that runs the tests
    # (maturin develop picks its target from VIRTUAL_ENV, not from the interpreter).
    installed = Path(str(distribution("bustapi").locate_file(""))).resolve()
    assert installed.is_relative_to(Path(sys.prefix).resolve()), installed
