#!/usr/bin/env bash
# Install the headless browser the JupyterLab browser test drives (tests/test_explorer_browser.py).
#
# Idempotent: does nothing when /usr/bin/chromium already exists. Uses Debian's `chromium` package
# because Playwright's own browser download needs internet access the lab machines do not have.
# Fails loudly (non-zero exit, message on stderr) when the browser cannot be installed, so CI never
# silently skips the browser test.
set -euo pipefail

CHROMIUM=/usr/bin/chromium

if [ -x "$CHROMIUM" ]; then
    echo "install-browser: $CHROMIUM already present ($("$CHROMIUM" --version 2>/dev/null || echo 'version unknown'))"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "install-browser: error: need root (or sudo) to apt-get install chromium" >&2
        exit 1
    fi
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-browser: error: apt-get not found; install Chromium at $CHROMIUM by hand" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
if ! { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core; } \
    >/tmp/install-browser.log 2>&1; then
    echo "install-browser: error: 'apt-get install chromium' failed; last lines of /tmp/install-browser.log:" >&2
    tail -n 20 /tmp/install-browser.log >&2
    exit 1
fi

if [ ! -x "$CHROMIUM" ]; then
    echo "install-browser: error: chromium package installed but $CHROMIUM is missing" >&2
    exit 1
fi
echo "install-browser: installed $("$CHROMIUM" --version 2>/dev/null || echo chromium)"
