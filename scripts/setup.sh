#!/usr/bin/env bash
# Installs what building and testing silo needs beyond the Swift toolchain: OpenSSL's libcrypto headers
# (SHA-256), pkg-config, and schemathesis (PyPI) for the API fuzz run. Idempotent; quiet when everything
# is already there.
set -euo pipefail
missing=()
for package in libssl-dev pkg-config; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if ! python3 -c 'import schemathesis' 2>/dev/null; then
    echo "installing schemathesis" >&2
    python3 -m pip install --quiet --disable-pip-version-check 'schemathesis==4.32.5'
fi
command -v swift >/dev/null || { echo "swift is not on PATH; install the Swift 6.3 toolchain" >&2; exit 1; }
