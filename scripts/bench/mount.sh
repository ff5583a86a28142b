#!/usr/bin/env bash
# Benchmarks `silo mount` on the embedded store (release build, root) against two baselines measured
# in the same run: the local disk itself, and libfuse3's `passthrough_ll` example (Debian's fuse3
# 3.14, built here from the source Debian ships in libfuse3-dev) serving the same files from that disk.
#
# Rows: attach time for 1k, 100k and 1M-file volumes; stat of every file of a 100k-file tree; a 2 GiB
# sequential read cold (page cache dropped, machine's content cache empty), warm (the file kept whole
# in the content cache, page cache dropped) and from the page cache; 2 GiB written into a writable
# mount; one changed file committed in a 100k-file volume. Each figure is best of ROUNDS. Results go
# in docs/benchmarks.md.
#
# Usage: scripts/bench/mount.sh [ROUNDS]   (work files go under $BENCH_DIR, default /var/tmp)
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-3}
scripts/setup.sh
source scripts/lib/packages.sh
install_packages fuse3 libfuse3-dev gcc libc6-dev pkg-config
swift build -c release --product silo >&2
silo=$PWD/.build/release/silo
source scripts/lib/timing.sh

work=$(mktemp -d "${BENCH_DIR:-/var/tmp}/silo-bench-mount.XXXXXX")
cleanup() {
    for m in "$work"/mnt-* "$work"/ll-*; do umount -l "$m" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
export SILO_HOME=$work/home
drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }

passthrough_ll=$work/passthrough_ll
gcc -O2 -o "$passthrough_ll" /usr/share/doc/libfuse3-dev/examples/passthrough_ll.c $(pkg-config --cflags --libs fuse3)
# passthrough_ll returns once its mount is in place; cache=always is its fastest read setting.
ll_mount() { mkdir -p "$work/ll-$2"; "$passthrough_ll" -o source="$1" -o cache=always "$work/ll-$2"; }
ll_umount() { fusermount3 -u "$work/ll-$1"; }

# Trees of 1k, 100k and 1M small files, and a 2 GiB file.
python3 - "$work" <<'PY'
import os, sys
work = sys.argv[1]
for count in (1000, 100000, 1000000):
    for i in range(count):
        d = f"{work}/tree{count}/d{i // 1000}"
        if i % 1000 == 0: os.makedirs(d)
        with open(f"{d}/f{i}", "w") as f: f.write(str(i))
PY
size=$((2 * 1024 * 1024 * 1024))
head -c $size /dev/urandom >"$work/big.bin"
"$silo" volume create big >/dev/null && "$silo" volume put big "$work/big.bin" /big.bin >/dev/null
for count in 1000 100000 1000000; do
    "$silo" volume create "t$count" >/dev/null && "$silo" volume put "t$count" "$work/tree$count" /tree >/dev/null
done

mount_at() { mkdir -p "$work/mnt-$2"; "$silo" mount "$1" "$work/mnt-$2" "${@:3}"; }
attach() { mount_at "$1" a && stat "$work/mnt-a/tree" && umount -l "$work/mnt-a"; }
ll_attach() { ll_mount "$1" a && stat "$work/ll-a/d0" && ll_umount a; }
declare -a a1 a100 a1m l1 l100 l1m s_local s_ll s_mount c_local c_ll c_mount warm_mount p_local p_ll p_mount
declare -a w_local w_ll w_mount commit_times
for round in $(seq 1 "$rounds"); do
    a1+=("$(seconds attach t1000)")
    a100+=("$(seconds attach t100000)")
    a1m+=("$(seconds attach t1000000)")
    l1+=("$(seconds ll_attach "$work/tree1000")")
    l100+=("$(seconds ll_attach "$work/tree100000")")
    l1m+=("$(seconds ll_attach "$work/tree1000000")")

    # stat of every file of the 100k tree (fresh mounts: nothing cached).
    mount_at t100000 s --read-only
    ll_mount "$work/tree100000" s
    drop_caches
    s_local+=("$(seconds find "$work/tree100000" -type f -printf '%s\n')")
    drop_caches
    s_ll+=("$(seconds find "$work/ll-s" -type f -printf '%s\n')")
    drop_caches
    s_mount+=("$(seconds find "$work/mnt-s/tree" -type f -printf '%s\n')")
    umount -l "$work/mnt-s"
    ll_umount s

    # 2 GiB read: cold (nothing cached anywhere), warm (kept whole by the cold read; page cache
    # dropped), then from the page cache.
    rm -rf "$SILO_HOME/cache"
    mount_at big r --read-only
    ll_mount "$work" r
    drop_caches
    c_local+=("$(seconds cat "$work/big.bin")")
    drop_caches
    c_ll+=("$(seconds cat "$work/ll-r/big.bin")")
    drop_caches
    c_mount+=("$(seconds cat "$work/mnt-r/big.bin")")
    drop_caches
    warm_mount+=("$(seconds cat "$work/mnt-r/big.bin")")
    cat "$work/big.bin" "$work/ll-r/big.bin" >/dev/null
    p_local+=("$(seconds cat "$work/big.bin")")
    p_ll+=("$(seconds cat "$work/ll-r/big.bin")")
    p_mount+=("$(seconds cat "$work/mnt-r/big.bin")")
    umount -l "$work/mnt-r"
    ll_umount r

    # 2 GiB written and fsynced.
    mount_at big w
    mkdir -p "$work/writes"
    ll_mount "$work/writes" w
    w_local+=("$(seconds dd if=/dev/zero of="$work/written" bs=1M count=2048 conv=fsync)")
    rm -f "$work/written"
    w_ll+=("$(seconds dd if=/dev/zero of="$work/ll-w/written" bs=1M count=2048 conv=fsync)")
    rm -f "$work/writes/written"
    w_mount+=("$(seconds dd if=/dev/zero of="$work/mnt-w/written" bs=1M count=2048 conv=fsync)")
    umount -l "$work/mnt-w"
    ll_umount w

    # One changed file in a 100k-file volume, committed.
    mount_at t100000 c
    echo "round $round" >"$work/mnt-c/tree/d5/f5000"
    commit_times+=("$(seconds "$silo" volume commit "$work/mnt-c")")
    umount -l "$work/mnt-c"
done
"$silo" volume get t100000 /tree/d5/f5000 - | grep -q "round $rounds"
true_time=$(best "$(seconds true)" "$(seconds true)" "$(seconds true)")

row() {  # row WHAT BYTES SILO_TIMES LOCAL_TIMES LL_TIMES (each a space-separated list)
    local s l p
    s=$(best $3)
    l=$(best $4)
    p=$(best $5)
    awk -v what="$1" -v bytes="$2" -v s="$s" -v l="$l" -v p="$p" 'BEGIN {
        mbs = bytes > 0 ? sprintf(" %7.0f MB/s", bytes / s / 1e6) : "";
        printf "%-36s silo %8.4f s%s | disk %8.4f s (%5.2fx) | passthrough_ll %8.4f s (%5.2fx)\n", what, s, mbs, l, s / l, p, s / p }'
}
echo "silo mount, embedded store, best of $rounds; (Nx) = silo's time over the baseline's, same run"
row "attach, 1k-file volume" 0 "${a1[*]}" "${l1[*]}" "${l1[*]}"
row "attach, 100k-file volume" 0 "${a100[*]}" "${l100[*]}" "${l100[*]}"
row "attach, 1M-file volume" 0 "${a1m[*]}" "${l1m[*]}" "${l1m[*]}"
row "stat every file, 100k tree, cold" 0 "${s_mount[*]}" "${s_local[*]}" "${s_ll[*]}"
row "read 2 GiB, cold" $size "${c_mount[*]}" "${c_local[*]}" "${c_ll[*]}"
row "read 2 GiB, warm (content cache)" $size "${warm_mount[*]}" "${c_local[*]}" "${c_ll[*]}"
row "read 2 GiB, page cache" $size "${p_mount[*]}" "${p_local[*]}" "${p_ll[*]}"
row "write 2 GiB + fsync" $size "${w_mount[*]}" "${w_local[*]}" "${w_ll[*]}"
row "commit 1 file in 100k-file volume" 0 "${commit_times[*]}" "$true_time" "$true_time"
echo "(attach rows: the disk column is passthrough_ll's own attach; the commit row's baseline is \`true\`)"
