#!/usr/bin/env bash
# Benchmarks the embedded store (release build): one-file commit time as volumes grow to 1M files,
# put of 10k small files against cp -r, and SHA-256 throughput. Results go in docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/setup.sh
swift build -c release --product silo-bench >&2
bench=.build/release/silo-bench
$bench hash
$bench put --files "${PUT_FILES:-10000}"
$bench commit --files "${COMMIT_FILES:-1000,100000,1000000}"
