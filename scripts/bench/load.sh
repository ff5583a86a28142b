#!/usr/bin/env bash
# Small requests under another workspace's huge commits: one `silo serve` (release build, loopback),
# five workspaces. In workspace A one client puts a directory of 60,000 small files (one commit of
# 60k entries) again and again; 49 wrk connections meanwhile list volumes and directories and look up
# entries with the tokens of workspaces B to E (and A). The same wrk load is run first with nothing
# else going on: the baseline of the same run. Prints latency percentiles of both and the ratio.
# Results go in docs/benchmarks.md.
#
# Usage: scripts/bench/load.sh [SECONDS]   (work files go under $BENCH_DIR, default /var/tmp)
set -euo pipefail
cd "$(dirname "$0")/../.."
duration=${1:-30}
scripts/setup.sh
source scripts/lib/packages.sh
install_packages wrk
swift build -c release --product silo >&2
silo=$PWD/.build/release/silo

source scripts/lib/server.sh
start_server "$silo" "$(mktemp -d "${BENCH_DIR:-/var/tmp}/silo-bench-load.XXXXXX")"
work=$work_dir

# Five workspaces, each with a volume of a few files to list and look up.
printf 'x' >"$work/one.txt"
tokens=()
for workspace in wa wb wc wd we; do
    token=$("$silo" token create --workspace "$workspace" --name load)
    tokens+=("$token")
    SILO_TOKEN=$token "$silo" volume create v >/dev/null
    for i in 1 2 3; do SILO_TOKEN=$token "$silo" volume put v "$work/one.txt" "/f$i.txt" >/dev/null; done
done
mkdir "$work/many"
for i in $(seq 0 59999); do printf '%d' "$i" >"$work/many/f$i"; done

cat >"$work/requests.lua" <<LUA
local tokens = { "${tokens[1]}", "${tokens[2]}", "${tokens[3]}", "${tokens[4]}", "${tokens[0]}" }
local paths = { "/v1/volumes", "/v1/volumes/v/list?path=/", "/v1/volumes/v/entry?path=/f2.txt", "/v1/volumes/v" }
local n = 0
request = function()
    n = n + 1
    local token = tokens[(n % #tokens) + 1]
    return wrk.format("GET", paths[(n % #paths) + 1], { ["Authorization"] = "Bearer " .. token })
end
LUA

load() { wrk -t 2 -c 49 -d "${duration}s" --latency -s "$work/requests.lua" "$SILO_SERVER" | sed -n '/Latency Distribution/,/Requests\/sec/p'; }

echo "== baseline: 49 connections of small requests, nothing else (${duration} s)"
load

echo "== the same while workspace wa commits 60,000 files at a time, again and again"
(
    round=0
    while [[ ! -e $work/stop ]]; do
        round=$((round + 1))
        SILO_TOKEN=${tokens[0]} "$silo" volume put v "$work/many" "/many$round" >/dev/null
        echo "$round" >"$work/commits"
    done
) &
committer=$!
# Let the first commit get under way before measuring.
until [[ -s $work/commits ]] || ! kill -0 "$committer" 2>/dev/null; do sleep 0.5; done
load
touch "$work/stop"
wait "$committer"
echo "60k-file commits completed in workspace wa: $(cat "$work/commits") (during both the warm-up and the measurement)"
