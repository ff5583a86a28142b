#!/usr/bin/env bash
# Compares two silo binaries (release builds of two commits) on a mount's hot paths, in one run so
# the VM's swings hit both alike: a cold walk with stat over a tree of small files (read-only
# mount, page cache dropped) and a cold served read (no passthrough, empty content cache) of a 512 MiB
# file. Prints each best of ROUNDS and the ratio new/old. For changes that must not slow a mount.
#
# Each binary gets a store of its own holding the same files (a newer build may have moved the store's
# format on, which an older one refuses to open).
#
# Usage (root): scripts/bench/compare.sh OLD_SILO NEW_SILO [ROUNDS] [FILES]   (work under $BENCH_DIR)
set -euo pipefail
old=$1 new=$2 rounds=${3:-5} files=${4:-50000}
work=$(mktemp -d "${BENCH_DIR:-/var/tmp}/silo-bench-compare.XXXXXX")
trap 'for m in $work/m-*; do umount -l $m 2>/dev/null || true; done; rm -rf $work' EXIT
python3 - "$work" "$files" <<'PY'
import os, sys
root, n = sys.argv[1] + "/tree", int(sys.argv[2])
for i in range(n):
    d = f"{root}/d{i // 1000}"
    os.makedirs(d, exist_ok=True)
    with open(f"{d}/f{i}", "w") as f: f.write("x" * (i % 100))
PY
head -c $((512 << 20)) /dev/urandom > $work/big
for bin in old new; do
  SILO_HOME=$work/home-$bin ${!bin} volume create v >/dev/null
  SILO_HOME=$work/home-$bin ${!bin} volume put v $work/tree /tree >/dev/null
  SILO_HOME=$work/home-$bin ${!bin} volume put v $work/big /big >/dev/null
done
best() { sort -n | head -1; }
for bin in old new; do : > $work/find-$bin; : > $work/read-$bin; done
for r in $(seq $rounds); do
  for bin in old new; do
    b=${!bin}
    export SILO_HOME=$work/home-$bin
    mkdir -p $work/m-$bin
    sync; echo 3 > /proc/sys/vm/drop_caches
    $b mount v $work/m-$bin --read-only >/dev/null
    s=$(date +%s.%N); find $work/m-$bin/tree -type f -printf '%s\n' > /dev/null; e=$(date +%s.%N)
    echo "$e - $s" | bc >> $work/find-$bin
    $b umount $work/m-$bin >/dev/null
    sync; echo 3 > /proc/sys/vm/drop_caches
    rm -rf $SILO_HOME/cache
    $b mount v $work/m-$bin --read-only --no-passthrough >/dev/null
    s=$(date +%s.%N); cat $work/m-$bin/big > /dev/null; e=$(date +%s.%N)
    echo "$e - $s" | bc >> $work/read-$bin
    $b umount $work/m-$bin >/dev/null
  done
done
for what in find read; do
  o=$(best < $work/$what-old); n=$(best < $work/$what-new)
  echo "$what: old best $o s, new best $n s, new/old $(echo "scale=3; $n / $o" | bc)"
done
