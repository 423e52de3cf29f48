#!/usr/bin/env bash
# The whole test suite: what the README's Quick start and CI (.ci/run) both run.
# Needs only Rust and Python 3; everything else is installed on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
# Not the demo's .venv: the tests install a debug build with test-only features, and
# `python -m bustapi serve` from .venv must stay the optimised build scripts/demo.sh made.
VENV="$PWD/.venv-test"
source scripts/env.sh

step() { printf '\n== %s\n' "$*"; }

step "Test tools: the test extra of pyproject.toml"
mapfile -t missing < <("$VENV/bin/python" scripts/missing_extras.py test)
if [ "${#missing[@]}" -gt 0 ]; then
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check "${missing[@]}"
fi

step "Rust: format, lint, unit + property tests"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# Again with the test-only features (PanicProbe), which release builds leave out.
cargo clippy --workspace --all-targets --all-features --locked -- -D warnings
cargo test --workspace --locked
# The engine as macOS and the BSDs build it (file bodies copied, no sendfile or
# TCP_CORK), linted and tested here too; only bustapi-server is rebuilt.
cargo clippy -p bustapi-server --all-targets --locked --no-default-features -- -D warnings
cargo test -p bustapi-server --locked --no-default-features

step "Build the extension into .venv-test (debug, with the test-only PanicProbe)"
"$VENV/bin/maturin" develop --locked -q --features panic-probe

step "Python: lint, types"
"$VENV/bin/ruff" check python tests examples bench scripts
"$VENV/bin/ruff" format --check python tests examples bench scripts
"$VENV/bin/mypy" python/bustapi examples scripts
# The hand-written stubs of the Rust extension against the module actually built.
"$VENV/bin/python" -m mypy.stubtest bustapi._core

step "Browser for the video tests"
PYTHON="$VENV/bin/python" bash scripts/install_browser.sh

step "Python: end-to-end tests over real sockets"
# The browser test must run in CI, never be skipped for a missing browser.
BUSTAPI_REQUIRE_BROWSER=1 "$VENV/bin/python" -m pytest -q "$@"

step "Flask's tutorial app (flaskr) and its own 24 tests, imports changed to bustapi"
(cd tests/flask_compat/flaskr_tutorial && "$VENV/bin/python" -m pytest -q -p no:cacheprovider tests)
