#!/usr/bin/env bash
# Benchmarks containers (release build, root, embedded store): the time from `silo run` to the
# command's first instruction with 1 and with 4 volumes attached, against `unshare -m` starting the
# same command; and the round trip of `silo container exec ID -- true`, against `nsenter` into the
# same namespace. Each figure is best of ROUNDS. Results go in docs/benchmarks.md.
#
# Usage: scripts/bench/container.sh [ROUNDS]   (work files go under $BENCH_DIR, default /var/tmp)
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-10}
scripts/setup.sh
swift build -c release --product silo >&2
silo=$PWD/.build/release/silo
source scripts/lib/timing.sh

work=$(mktemp -d "${BENCH_DIR:-/var/tmp}/silo-bench-container.XXXXXX")
container=""
cleanup() {
    [ -z "$container" ] || "$silo" container stop "$container" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
export SILO_HOME=$work/home
for n in 1 2 3 4; do "$silo" volume create "v$n" >/dev/null; done

# The command's first instruction: `date` prints the clock as it starts; the gap from just before the
# launch is the start-up time.
first_instruction() {
    local start now
    start=$(date +%s%N)
    now=$("$@" date +%s%N)
    awk -v a="$start" -v b="$now" 'BEGIN { printf "%.4f\n", (b - a) / 1e9 }'
}
one=(-v v1:/vol/v1)
four=(-v v1:/vol/v1 -v v2:/vol/v2 -v v3:/vol/v3 -v v4:/vol/v4)
declare -a base run1 run4 exec_times nsenter_times
for round in $(seq 1 "$rounds"); do
    base+=("$(first_instruction unshare --mount --propagation private --)")
    run1+=("$(first_instruction "$silo" run "${one[@]}" --)")
    run4+=("$(first_instruction "$silo" run "${four[@]}" --)")
done
container=$("$silo" container start "${one[@]}")
pid=$("$silo" container list --json | python3 -c 'import json, sys; print(json.load(sys.stdin)[0]["pid"])')
for round in $(seq 1 "$rounds"); do
    exec_times+=("$(seconds "$silo" container exec "$container" -- true)")
    nsenter_times+=("$(seconds nsenter --target "$pid" --mount -- true)")
done

echo "containers, embedded store, best of $rounds (baseline in the same run)"
report "silo run, 1 volume, to first instruction" "$(best "${run1[@]}")" "$(best "${base[@]}")" 0
report "silo run, 4 volumes, to first instruction" "$(best "${run4[@]}")" "$(best "${base[@]}")" 0
report "silo container exec round trip" "$(best "${exec_times[@]}")" "$(best "${nsenter_times[@]}")" 0
