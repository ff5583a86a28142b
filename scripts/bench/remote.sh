#!/usr/bin/env bash
# Benchmarks Python functions run in Silo containers (`.remote()`, `.map`) against the same function
# run by `python3 -c` in the same run (release build, root, embedded store in a scratch SILO_HOME).
# Usage: scripts/bench/remote.sh [ROUNDS]   Results go in docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-3}
scripts/setup.sh
swift build -c release --product silo >&2
work=$(mktemp -d /var/tmp/silo-bench-remote.XXXXXX)
trap 'rm -rf "$work"' EXIT
echo "remote.sh: rounds $rounds, $(nproc) cores, $(uname -r)" >&2
SILO_HOME=$work/home SILO_BINARY=$PWD/.build/release/silo .build/python/bin/python scripts/bench/remote.py "$rounds"
