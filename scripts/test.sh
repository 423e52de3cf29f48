#!/usr/bin/env bash
# The whole test suite: what the README's Quick start and CI (.ci/run) both run.
# Needs only Rust and Python 3; everything else is installed on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

step() { printf '\n== %s\n' "$*"; }

step "Rust: format, lint, unit + property tests"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
# The engine as macOS and the BSDs build it (file bodies copied, no sendfile or
# TCP_CORK), linted and tested here too; only bustapi-server is rebuilt.
cargo clippy -p bustapi-server --all-targets --locked --no-default-features -- -D warnings
cargo test -p bustapi-server --locked --no-default-features

step "Build the extension into .venv"
"$VENV/bin/maturin" develop --locked -q

step "Python: lint, types"
"$VENV/bin/ruff" check python tests examples bench
"$VENV/bin/ruff" format --check python tests examples bench
"$VENV/bin/mypy" python/bustapi examples

step "Browser for the video tests"
PYTHON="$VENV/bin/python" bash scripts/install_browser.sh

step "Python: end-to-end tests over real sockets"
# The browser test must run in CI, never be skipped for a missing browser.
BUSTAPI_REQUIRE_BROWSER=1 "$VENV/bin/python" -m pytest -q "$@"
