# Sourced by scripts/*.sh: a project-local virtualenv with the build tool (maturin).
# Idempotent and quiet when everything is already there. The caller may set VENV:
# scripts/demo.sh uses .venv (a release build), scripts/test.sh .venv-test (a debug
# build with test-only features), so running the tests never slows the demo down.
VENV="${VENV:-$PWD/.venv}"
# `maturin develop` installs into $VIRTUAL_ENV, and without it into a `.venv` it finds
# in the current directory: that would be the demo's, whatever VENV says.
export VIRTUAL_ENV="$VENV"
PYTHON_BIN="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON_BIN" -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c "import maturin" 2>/dev/null; then
  # The same range as [build-system] requires in pyproject.toml.
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check "maturin>=1.5,<2"
fi
