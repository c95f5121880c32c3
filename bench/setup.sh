#!/usr/bin/env sh
# Install wrk (Debian's), the load generator the benchmarks prefer (without it they fall back
# to bench/loadgen.py), and valgrind, whose callgrind bench/sidecar_instructions.py counts with.
# Everything else they use is in the project's dependencies and .[dev].
set -eu
cd "$(dirname "$0")/.."
if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
for program in wrk valgrind; do
    if ! command -v "$program" >/dev/null 2>&1; then
        $SUDO apt-get install -y "$program"
    fi
done
