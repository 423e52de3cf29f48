#!/usr/bin/env bash
# Builds and installs BustAPI (release) into .venv, then starts the video demo.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
"$VENV/bin/python" -m pip install -q --disable-pip-version-check .
exec "$VENV/bin/python" -m bustapi demo "$@"
