#!/usr/bin/env bash
# Builds silo and runs the whole test suite: unit tests, integration tests that drive the built binary
# (some mount a small tmpfs, so run as root, as CI does), and a fuzz run of the HTTP API.
#
# The run fails unless every test the build holds ran and passed: a skipped test, a test that never
# ran, or a test target of which nothing ran fails it (scripts/lib/check-test-results.py). Each suite
# has a time limit; SILO_TEST_TIMEOUT (default 60m) bounds the whole run, so a test blocked where its
# limit cannot reach it still ends the run instead of stalling CI. SILO_SCRATCH_PATH picks the build
# directory (default .build).
set -euo pipefail
cd "$(dirname "$0")/.."
scratch=${SILO_SCRATCH_PATH:-.build}
scripts/setup.sh
swift build --build-tests --scratch-path "$scratch"
rm -f "$scratch"/xunit*.xml
timeout --kill-after=60 "${SILO_TEST_TIMEOUT:-60m}" \
    swift test --skip-build --scratch-path "$scratch" --parallel --xunit-output "$scratch/xunit.xml" 2>&1 | tee "$scratch/test-output.txt"
if grep -E '^\S+ Test .*\) skipped' "$scratch/test-output.txt"; then
    echo "test.sh: tests were skipped" >&2
    exit 1
fi
swift test list --skip-build --scratch-path "$scratch" > "$scratch/test-list.txt"
scripts/lib/check-test-results.py "$scratch/test-list.txt" "$scratch"/xunit*.xml
scripts/fuzz-api.sh "$scratch/debug/silo"
# The Python package against both stores (pytest fails when it collects no test).
case $scratch in /*) binary=$scratch/debug/silo ;; *) binary=$PWD/$scratch/debug/silo ;; esac
SILO_BINARY="$binary" .build/python/bin/python -m pytest -q -p no:cacheprovider python/tests
