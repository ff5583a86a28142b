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

source scripts/lib/server.sh
start_server "$silo" "$(mktemp -d)"

# Something to find: a volume with a file, so reads reach the store and not only 404s.
printf 'hello' >"$work_dir/hello.txt"
"$silo" volume create fuzz >/dev/null
"$silo" volume put fuzz "$work_dir/hello.txt" >/dev/null

schemathesis run "$SILO_SERVER/v1/openapi.json" --url "$SILO_SERVER" \
    -H "Authorization: Bearer $SILO_TOKEN" \
    --checks not_a_server_error,status_code_conformance,response_schema_conformance \
    --max-examples "$examples" --generation-deterministic --no-color

# The server survived all of it.
kill -0 "$server_pid"
echo "fuzz-api: the server answered every request without a 5xx and is still up"
