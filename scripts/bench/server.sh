#!/usr/bin/env bash
# Benchmarks transfers through `silo serve` on loopback (release build): put and get of one 1 GiB file
# and of 10,000 files of 1 KiB, each as a ratio to `cp` of the same data on the same local disk, timed
# in the same run (best of N; every copy ends with sync, as put's blocks are fsynced).
# Results go in docs/benchmarks.md.
#
# Usage: scripts/bench/server.sh [ROUNDS]   (work files go under $BENCH_DIR, default /var/tmp)
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-3}
scripts/setup.sh
swift build -c release --product silo >&2
silo=$PWD/.build/release/silo

source scripts/lib/server.sh
source scripts/lib/timing.sh
start_server "$silo" "$(mktemp -d "${BENCH_DIR:-/var/tmp}/silo-bench-server.XXXXXX")"
work=$work_dir

head -c $((1024 * 1024 * 1024)) /dev/urandom >"$work/big.bin"
mkdir "$work/small"
for i in $(seq 0 9999); do head -c 1024 /dev/urandom >"$work/small/f$i"; done
sync

copy_big() { rm -rf "$work/copy"; cp "$work/big.bin" "$work/copy" && sync; }
copy_small() { rm -rf "$work/copy"; cp -r "$work/small" "$work/copy" && sync; }
put_big() { "$silo" volume put "b$1" "$work/big.bin" /big.bin; }
get_big() { rm -rf "$work/got"; "$silo" volume get "b$1" /big.bin "$work/got" && sync; }
put_small() { "$silo" volume put "s$1" "$work/small" /small; }
get_small() { rm -rf "$work/got"; "$silo" volume get "s$1" /small "$work/got" && sync; }

declare -a cb cs pb gb ps gs
for round in $(seq 1 "$rounds"); do
    # Fresh volumes each round: a put into a volume that already holds the blocks would only dedup.
    "$silo" volume delete "b$((round - 1))" --yes >/dev/null 2>&1 || true
    "$silo" volume create "b$round" >/dev/null
    "$silo" volume create "s$round" >/dev/null
    cb+=("$(seconds copy_big)")
    pb+=("$(seconds put_big "$round")")
    gb+=("$(seconds get_big "$round")")
    cs+=("$(seconds copy_small)")
    ps+=("$(seconds put_small "$round")")
    gs+=("$(seconds get_small "$round")")
done
# The data came back as it went in.
get_big "$rounds" && cmp "$work/big.bin" "$work/got"
get_small "$rounds" && diff -r "$work/small" "$work/got" >/dev/null

echo "server transfers on loopback, best of $rounds (ratio < 1: faster than cp)"
report "put 1 GiB file" "$(best "${pb[@]}")" "$(best "${cb[@]}")" $((1024 * 1024 * 1024))
report "get 1 GiB file" "$(best "${gb[@]}")" "$(best "${cb[@]}")" $((1024 * 1024 * 1024))
report "put 10k x 1 KiB files" "$(best "${ps[@]}")" "$(best "${cs[@]}")" $((10000 * 1024))
report "get 10k x 1 KiB files" "$(best "${gs[@]}")" "$(best "${cs[@]}")" $((10000 * 1024))
