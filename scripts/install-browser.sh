#!/usr/bin/env bash
# Install Debian's Chromium for the browser tests, unless it is already there.
# Idempotent and quiet; says what to do when apt cannot install it.
set -euo pipefail

CHROMIUM=/usr/bin/chromium

if [[ -x "$CHROMIUM" ]]; then
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-browser: $CHROMIUM is missing and there is no apt-get;" \
        "install Chromium with this system's package manager" >&2
    exit 1
fi

SUDO=()
if [[ "$(id -u)" != 0 ]]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO=(sudo)
    else
        echo "install-browser: installing Chromium needs root; run as root" \
            "or install the 'chromium' package by hand" >&2
        exit 1
    fi
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
echo "install-browser: installing chromium with apt (about 100 MB)" >&2
if ! "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >"$log" 2>&1 ||
    ! "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq chromium >>"$log" 2>&1; then
    cat "$log" >&2
    echo "install-browser: apt could not install chromium (output above);" \
        "check the package sources and the network, then run this again" >&2
    exit 1
fi

if [[ ! -x "$CHROMIUM" ]]; then
    echo "install-browser: apt finished but $CHROMIUM is still missing" >&2
    exit 1
fi
echo "install-browser: $("$CHROMIUM" --version 2>/dev/null || echo chromium) ready" >&2
