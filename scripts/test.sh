#!/usr/bin/env bash
# Builds silo and runs the whole test suite: unit tests, and integration tests that drive the built
# binary (some mount a small tmpfs, so run as root, as CI does).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
swift build --build-tests
swift test --skip-build --parallel 2>&1 | tee .build/test-output.txt
