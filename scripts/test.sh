#!/usr/bin/env bash
# Sets up everything the test suite needs on a fresh machine, then runs it.
# Used by the README and by .ci/run: one command, the same everywhere.
set -euo pipefail
cd "$(dirname "$0")/.."

python -m pip install --quiet --disable-pip-version-check -e '.[test]'

# Headless Chromium for the browser tests: Debian's package, driven by Playwright.
if ! command -v chromium >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && apt-get install -y -qq chromium >/dev/null
    else
        sudo apt-get update -qq && sudo apt-get install -y -qq chromium >/dev/null
    fi
fi

ruff check .
python -m pytest "$@"
