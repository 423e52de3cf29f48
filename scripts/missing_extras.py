"""Prints, one per line, the requirements of an extra in pyproject.toml (default:
``test``) whose distribution this interpreter does not have installed.

scripts/test.sh installs what this prints, so the ``test`` extra is the one list of
what the tests and the test command need: ``pip install -e .[test]`` installs the same.
Only presence is checked (versions are pip's business when it installs).
"""

from __future__ import annotations

import re
import sys
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11: pip vendors the same parser
    from pip._vendor import tomli as tomllib  # type: ignore[no-redef]


def extra(name: str) -> list[str]:
    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    return list(project["optional-dependencies"][name])


def missing(requirements: list[str]) -> list[str]:
    absent = []
    for requirement in requirements:
        name = re.match(r"[A-Za-z0-9._-]+", requirement)
        assert name, f"unparsable requirement {requirement!r}"
        try:
            distribution(name.group())
        except PackageNotFoundError:
            absent.append(requirement)
    return absent


if __name__ == "__main__":
    for requirement in missing(extra(sys.argv[1] if len(sys.argv) > 1 else "test")):
        print(requirement)
