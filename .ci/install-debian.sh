#!/usr/bin/env bash
# Install Debian packages the test suite needs, when a file they provide is missing:
#   bash .ci/install-debian.sh NAME CHECK_PATH PACKAGE...
# e.g. the headless browser of the JupyterLab browser test (tests/test_explorer_browser.py) and Tux Paint's
# stamps of the object-motion set (tests/test_objects.py). Idempotent: does nothing when CHECK_PATH exists.
# Fails loudly (non-zero exit, message on stderr) when the packages cannot be installed, so CI never
# silently skips the tests that need them.
set -euo pipefail

NAME=$1
CHECK=$2
shift 2

if [ -e "$CHECK" ]; then
    echo "install-$NAME: $CHECK already present"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "install-$NAME: error: need root (or sudo) to apt-get install $*" >&2
        exit 1
    fi
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-$NAME: error: apt-get not found; install $* by hand (needed: $CHECK)" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
LOG=/tmp/install-$NAME.log
if ! { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends "$@"; } >"$LOG" 2>&1; then
    echo "install-$NAME: error: 'apt-get install $*' failed; last lines of $LOG:" >&2
    tail -n 20 "$LOG" >&2
    exit 1
fi

if [ ! -e "$CHECK" ]; then
    echo "install-$NAME: error: $* installed but $CHECK is missing" >&2
    exit 1
fi
echo "install-$NAME: installed $* ($CHECK)"
