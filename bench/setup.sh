#!/usr/bin/env sh
# Install what bench/upstream_clients.py uses when present: Debian's wrk, and uvloop,
# httptools, httpx-aiohttp and pyreqwest in the project's venv. The benchmark itself installs nothing.
set -eu
cd "$(dirname "$0")/.."
if ! command -v wrk >/dev/null 2>&1; then
    if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get install -y wrk
fi
.venv/bin/pip install --quiet uvloop httptools httpx-aiohttp pyreqwest aiohttp
