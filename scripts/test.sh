#!/usr/bin/env bash
# Builds silo and runs the whole test suite: unit tests, integration tests that drive the built binary
# (some mount a small tmpfs, so run as root, as CI does), and a fuzz run of the HTTP API.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
swift build --build-tests
swift test --skip-build --parallel 2>&1 | tee .build/test-output.txt
# A run that found no tests is a failure, not a pass.
ran=$(sed -n 's/.*Test run with \([0-9]*\) tests.*passed.*/\1/p' .build/test-output.txt | tail -1)
if [[ -z $ran || $ran -eq 0 ]]; then
    echo "test.sh: no tests ran" >&2
    exit 1
fi
scripts/fuzz-api.sh .build/debug/silo
