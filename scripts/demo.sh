#!/usr/bin/env bash
# Builds and installs BustAPI (release) into .venv, then starts the video demo.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

# maturin directly rather than `pip install .`, which hides the build's output: the
# first release build compiles ~100 crates, and cargo's progress shows it is working.
echo "Building BustAPI (release; the first build takes a minute or two, later ones seconds)"
wheels="$(mktemp -d)"
trap 'rm -rf "$wheels"' EXIT
"$VENV/bin/maturin" build --release --locked --interpreter "$VENV/bin/python" --out "$wheels"
# --force-reinstall: same version number, new code; --no-deps: BustAPI has none.
"$VENV/bin/python" -m pip install -q --disable-pip-version-check --force-reinstall --no-deps \
  "$wheels"/bustapi-*.whl
rm -rf "$wheels"  # by hand: exec below skips the EXIT trap
trap - EXIT
exec "$VENV/bin/python" -m bustapi demo "$@"
