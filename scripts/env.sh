# Sourced by scripts/*.sh: a project-local virtualenv with the build and test tools.
# Idempotent and quiet when everything is already there.
VENV="${VENV:-$PWD/.venv}"
PYTHON_BIN="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON_BIN" -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c "import maturin, pytest, h2, ruff, mypy, cryptography" 2>/dev/null; then
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check \
    "maturin>=1.5,<2" "pytest>=7" "h2>=4" "ruff>=0.5" "mypy>=1.8" "cryptography>=41"
fi
