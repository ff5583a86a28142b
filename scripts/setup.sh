#!/usr/bin/env bash
# Installs what building and testing silo needs beyond the Swift toolchain: OpenSSL's libcrypto headers
# (SHA-256), pkg-config, fuse3 (fusermount3, for mounts without root), the system tools containers use, python3 (the tests' programs inside mounts and
# containers), and schemathesis (PyPI) for the API fuzz run. Idempotent; quiet when everything
# is already there.
set -euo pipefail
source "$(dirname "$0")/lib/packages.sh"
# fuse3's fusermount3 mounts for users without root; util-linux (unshare, nsenter) and coreutils
# (env --chdir) run containers, and are part of every Debian system already; strace lets a test see
# which directories the store fsyncs; e2fsprogs makes the ext4 disk the POSIX comparison runs on where
# the temporary directory is not ext4 already; iproute2 makes the second "machine" (a network
# namespace) the shared-volume tests run mounts in; the Python lock and cache libraries (Debian's
# packages of PyPI's flufl.lock, filelock and diskcache) are what the shared-volume tests run.
install_packages libssl-dev pkg-config fuse3 util-linux coreutils strace e2fsprogs iproute2 \
    python3-flufl.lock python3-filelock python3-diskcache python3-venv python3-wheel python3-pytest python3-aiofiles
command -v python3 >/dev/null || install_packages python3
if ! python3 -c 'import schemathesis' 2>/dev/null; then
    echo "installing schemathesis" >&2
    python3 -m pip install --quiet --disable-pip-version-check 'schemathesis==4.32.5'
fi
command -v swift >/dev/null || { echo "swift is not on PATH; install the Swift 6.3 toolchain" >&2; exit 1; }
# The Python package (python/), installed from the repo into a virtualenv that also sees the
# system's packages (pytest, and the lock and cache libraries above); editable, so it is always
# the repo's own. Standard library only at run time: nothing is downloaded.
repo=$(cd "$(dirname "$0")/.." && pwd)
venv=$repo/.build/python
if [ ! -x "$venv/bin/python" ] || ! (cd / && "$venv/bin/python" -c 'import silo') 2>/dev/null; then
    /usr/bin/python3 -m venv --system-site-packages "$venv"  # Debian's, whose packages apt installs
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-build-isolation --no-deps -e "$repo/python"
fi
