#!/usr/bin/env sh
# Install wrk (Debian's), the load generator the benchmarks prefer; without it they fall back
# to bench/loadgen.py. Everything else they use is in the project's dependencies and .[dev].
set -eu
cd "$(dirname "$0")/.."
if ! command -v wrk >/dev/null 2>&1; then
    if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get install -y wrk
fi
