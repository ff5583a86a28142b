#!/usr/bin/env bash
# Builds silo and runs the main job on the embedded store (no server, no configuration): the seed's
# reload example, two containers on one volume, printed as the seed prints it; then a short tour of
# the `silo volume` commands. Containers and mounts need root and /dev/fuse.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "demo.sh: containers need root; run it as root" >&2; exit 1; }
scripts/setup.sh
swift build --product silo >&2
silo="$PWD/.build/debug/silo"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
say() { printf '\n$ %s\n' "$*"; }
run() { say "silo $*"; "$silo" "$@"; }

printf '%s\n' "The seed's reload example: g's container is reused, f commits, g sees bar.txt only after reload()"
"$silo" volume delete silo-demo --yes >/dev/null 2>&1 || true
say "examples/seed-reload/main.sh silo-demo"
SILO="$silo" examples/seed-reload/main.sh silo-demo
run volume history silo-demo

mkdir -p "$work/checkpoints/epoch-1"
echo '{"lr": 0.001, "epochs": 3}' > "$work/checkpoints/config.json"
head -c $((20 * 1024 * 1024)) /dev/urandom > "$work/checkpoints/epoch-1/model.bin"
"$silo" volume delete silo-demo-files --yes >/dev/null 2>&1 || true
run volume create silo-demo-files
run volume put silo-demo-files "$work/checkpoints" /checkpoints
run volume ls silo-demo-files /checkpoints
echo '{"lr": 0.0005, "epochs": 3}' > "$work/checkpoints/config.json"
run volume put silo-demo-files "$work/checkpoints/config.json" /checkpoints/config.json --force
run volume get silo-demo-files /checkpoints/config.json - --version 1
run run -v silo-demo-files:/data:ro -- sh -c 'cat /data/checkpoints/config.json; cmp /data/checkpoints/epoch-1/model.bin '"$work"'/checkpoints/epoch-1/model.bin && echo "model.bin in the container matches the original"'
run volume diff silo-demo-files 1 2
printf '\nThe store is under %s; remove the demo volumes with: silo volume delete silo-demo --yes; silo volume delete silo-demo-files --yes\n' "${SILO_HOME:-$HOME/.local/share/silo}"
