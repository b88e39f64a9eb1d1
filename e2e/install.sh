#!/usr/bin/env bash
# Installs Debian's Chromium and its matching chromedriver for the browser tests of dstar-e2e.
# Idempotent: does nothing when both binaries are already there. Needs root (or sudo).
set -euo pipefail

chromium="${DSTAR_E2E_CHROMIUM:-/usr/bin/chromium}"
chromedriver="${DSTAR_E2E_CHROMEDRIVER:-/usr/bin/chromedriver}"

if [ -x "$chromium" ] && [ -x "$chromedriver" ]; then
    echo "e2e/install.sh: $chromium and $chromedriver already present"
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    sudo=()
elif command -v sudo >/dev/null 2>&1; then
    sudo=(sudo)
else
    echo "e2e/install.sh: need root or sudo to install chromium and chromium-driver" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update
"${sudo[@]}" apt-get install -y chromium chromium-driver

for bin in "$chromium" "$chromedriver"; do
    if [ ! -x "$bin" ]; then
        echo "e2e/install.sh: $bin is still missing after apt-get install" >&2
        exit 1
    fi
done
echo "e2e/install.sh: installed $("$chromium" --version 2>/dev/null || echo chromium) and $("$chromedriver" --version)"
