#!/usr/bin/env bash
# Install what tests/test_browser.py needs: the system Chromium (Debian package
# `chromium`) and the Python `playwright` module. Idempotent: when both are already
# present it only checks and prints, without touching apt or pip.
#
# We drive the system Chromium through Playwright's `executable_path`, so
# `playwright install` (which downloads Playwright's own browser builds) is NOT run.
# ffmpeg is not needed either: the test clip is committed
# (python/bustapi/demo/static/video.mp4; see python/bustapi/demo/make_video.sh).
#
# Usage: PYTHON=.venv/bin/python scripts/install_browser.sh   (default PYTHON=python3)
set -euo pipefail

python="${PYTHON:-python3}"

if ! command -v chromium >/dev/null 2>&1; then
    echo "chromium not found; installing the Debian package" >&2
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        sudo="sudo"
    fi
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium
fi

if ! "$python" -c "import playwright" >/dev/null 2>&1; then
    echo "Python module playwright not found for $python; installing it with pip" >&2
    "$python" -m pip install --quiet playwright
fi

chromium_path="$(command -v chromium)"
echo "chromium: $chromium_path ($("$chromium_path" --version 2>/dev/null || echo 'version unknown'))"
echo "playwright: $("$python" -c 'from importlib.metadata import version; print(version("playwright"))') for $python"
