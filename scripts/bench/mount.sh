#!/usr/bin/env bash
# Benchmarks `silo mount` on the embedded store (release build, root): attach time as volumes grow,
# stat of every file of a 100k-file tree, sequential read of a 1 GiB file cold (page cache dropped;
# blocks come from the store on the same disk) and from the page cache, sequential write of 1 GiB
# into a writable mount, and a one-file commit in a 100k-file volume. Each figure is best of N and set
# against the local disk measured in the same run. Results go in docs/benchmarks.md.
#
# Usage: scripts/bench/mount.sh [ROUNDS]   (work files go under $BENCH_DIR, default /var/tmp)
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-3}
scripts/setup.sh
swift build -c release --product silo >&2
silo=$PWD/.build/release/silo
source scripts/lib/timing.sh

work=$(mktemp -d "${BENCH_DIR:-/var/tmp}/silo-bench-mount.XXXXXX")
cleanup() {
    for m in "$work"/mnt-*; do umount -l "$m" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
export SILO_HOME=$work/home
drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }

# Trees of 1k and 100k small files, and a 1 GiB file.
python3 - "$work" <<'PY'
import os, sys
work = sys.argv[1]
for count in (1000, 100000):
    for i in range(count):
        d = f"{work}/tree{count}/d{i // 1000}"
        if i % 1000 == 0: os.makedirs(d)
        with open(f"{d}/f{i}", "w") as f: f.write(str(i))
PY
head -c $((1024 * 1024 * 1024)) /dev/urandom >"$work/big.bin"
"$silo" volume create big >/dev/null && "$silo" volume put big "$work/big.bin" /big.bin >/dev/null
for count in 1000 100000; do
    "$silo" volume create "t$count" >/dev/null && "$silo" volume put "t$count" "$work/tree$count" /tree >/dev/null
done

mount_at() { mkdir -p "$work/mnt-$2"; "$silo" mount "$1" "$work/mnt-$2" "${@:3}"; }
attach() { mount_at "$1" a && stat "$work/mnt-a/tree" && umount -l "$work/mnt-a"; }
declare -a a1 a100 s_local s_mount c_local c_mount w_local w_mount p_local p_mount commit_times
for round in $(seq 1 "$rounds"); do
    a1+=("$(seconds attach t1000)")
    a100+=("$(seconds attach t100000)")

    # stat of every file of the 100k tree (a fresh mount each time: nothing cached).
    mount_at t100000 s --read-only
    drop_caches
    s_local+=("$(seconds find "$work/tree100000" -type f -printf '%s\n')")
    s_mount+=("$(seconds find "$work/mnt-s/tree" -type f -printf '%s\n')")
    umount -l "$work/mnt-s"

    # 1 GiB read: cold, then again from the page cache.
    mount_at big r --read-only
    drop_caches
    c_local+=("$(seconds cat "$work/big.bin")")
    c_mount+=("$(seconds cat "$work/mnt-r/big.bin")")
    p_local+=("$(seconds cat "$work/big.bin")")
    p_mount+=("$(seconds cat "$work/mnt-r/big.bin")")
    umount -l "$work/mnt-r"

    # 1 GiB written and fsynced.
    mount_at big w
    w_local+=("$(seconds dd if=/dev/zero of="$work/written" bs=1M count=1024 conv=fsync)")
    w_mount+=("$(seconds dd if=/dev/zero of="$work/mnt-w/written" bs=1M count=1024 conv=fsync)")
    umount -l "$work/mnt-w"
    rm -f "$work/written"

    # One changed file in a 100k-file volume, committed.
    mount_at t100000 c
    echo "round $round" >"$work/mnt-c/tree/d5/f5000"
    commit_times+=("$(seconds "$silo" volume commit "$work/mnt-c")")
    umount -l "$work/mnt-c"
done
"$silo" volume get t100000 /tree/d5/f5000 - | grep -q "round $rounds"
true_time=$(best "$(seconds true)" "$(seconds true)" "$(seconds true)")

echo "silo mount, embedded store, best of $rounds (baseline: the local disk in the same run)"
report "attach, 1k-file volume" "$(best "${a1[@]}")" "$(best "${a100[@]}")" 0
report "attach, 100k-file volume" "$(best "${a100[@]}")" "$(best "${a1[@]}")" 0
report "stat every file, 100k tree" "$(best "${s_mount[@]}")" "$(best "${s_local[@]}")" 0
report "read 1 GiB, cold" "$(best "${c_mount[@]}")" "$(best "${c_local[@]}")" $((1024 * 1024 * 1024))
report "read 1 GiB, page cache" "$(best "${p_mount[@]}")" "$(best "${p_local[@]}")" $((1024 * 1024 * 1024))
report "write 1 GiB + fsync" "$(best "${w_mount[@]}")" "$(best "${w_local[@]}")" $((1024 * 1024 * 1024))
report "commit 1 file in 100k-file volume" "$(best "${commit_times[@]}")" "$true_time" 0
