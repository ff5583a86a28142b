#!/usr/bin/env bash
# The seed's `main()`, with silo containers: g's container starts and is reused; f runs in a
# container of its own and commits; g sees the file only once it reloads. Needs root.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
silo=${SILO:-silo}
volume=${1:-my-volume}

g=$("$silo" container start -v "$volume:/root/foo")     # 1. container for g starts
trap '"$silo" container stop "$g" >/dev/null 2>&1' EXIT
"$silo" container exec "$g" -- python3 "$here/g.py"
"$silo" run -v "$volume:/root/foo" -- python3 "$here/f.py"  # 2. container for f starts, commits file
"$silo" container exec "$g" -- python3 "$here/g.py"       # 3. reuses container for g, no reload
"$silo" container exec "$g" -- python3 "$here/g.py" --reload  # 4. reuses container, reloads
