#!/usr/bin/env bash
# Drives a real `silo serve` with requests generated from its OpenAPI document (schemathesis, from
# PyPI): valid, malformed and hostile ones. Fails if the server ever answers 5xx, answers a status the
# document does not list, or sends a body that does not match the document.
#
# Usage: scripts/fuzz-api.sh [SILO_BINARY] [MAX_EXAMPLES]
set -euo pipefail
cd "$(dirname "$0")/.."

silo=${1:-.build/debug/silo}
examples=${2:-25}
command -v schemathesis >/dev/null || { echo "fuzz-api: schemathesis is missing; run scripts/setup.sh" >&2; exit 1; }

work=$(mktemp -d)
server_pid=
cleanup() {
    [[ -n $server_pid ]] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# The server prints its address once it listens; reading that line is the wait.
mkfifo "$work/out"
"$silo" serve --data "$work/data" --listen 127.0.0.1:0 --log-level error >"$work/out" 2>"$work/server.log" &
server_pid=$!
exec 3<"$work/out"
read -r line <&3
url=${line##* }
token=$(cat "$work/data/admin-token")

# Something to find: a volume with a file, so reads reach the store and not only 404s.
printf 'hello' >"$work/hello.txt"
SILO_SERVER=$url SILO_TOKEN=$token "$silo" volume create fuzz >/dev/null
SILO_SERVER=$url SILO_TOKEN=$token "$silo" volume put fuzz "$work/hello.txt" >/dev/null

schemathesis run "$url/v1/openapi.json" --url "$url" \
    -H "Authorization: Bearer $token" \
    --checks not_a_server_error,status_code_conformance,response_schema_conformance \
    --max-examples "$examples" --generation-deterministic --no-color

# The server survived all of it.
kill -0 "$server_pid"
echo "fuzz-api: the server answered every request without a 5xx and is still up"
