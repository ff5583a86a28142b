#!/usr/bin/env bash
# Builds silo and walks through a volume's life on the embedded store (no server, no configuration):
# create, put a directory, list, read back, change a file, and look at the history.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
swift build --product silo >&2
silo=".build/debug/silo"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
say() { printf '\n$ %s\n' "$*"; }
run() { say "silo $*"; "$silo" "$@"; }

mkdir -p "$work/checkpoints/epoch-1"
echo '{"lr": 0.001, "epochs": 3}' > "$work/checkpoints/config.json"
head -c $((20 * 1024 * 1024)) /dev/urandom > "$work/checkpoints/epoch-1/model.bin"

"$silo" volume delete silo-demo --yes >/dev/null 2>&1 || true
run volume create silo-demo
run volume put silo-demo "$work/checkpoints" /checkpoints
run volume ls silo-demo /checkpoints
run volume get silo-demo /checkpoints/config.json -
echo '{"lr": 0.0005, "epochs": 3}' > "$work/checkpoints/config.json"
run volume put silo-demo "$work/checkpoints/config.json" /checkpoints/config.json --force
run volume get silo-demo /checkpoints/config.json - --version 1
run volume get silo-demo /checkpoints "$work/restored"
cmp "$work/checkpoints/epoch-1/model.bin" "$work/restored/epoch-1/model.bin" && echo "restored model.bin matches the original"
run volume diff silo-demo 1 2
run volume history silo-demo
printf '\nThe store is under %s; remove the demo volume with: silo volume delete silo-demo --yes\n' "${SILO_HOME:-$HOME/.local/share/silo}"
