#!/usr/bin/env bash
# Drives a real `silo serve` with requests generated from its OpenAPI document (schemathesis, from
# PyPI): valid, malformed and hostile ones. Fails if the server ever answers 5xx, answers a status the
# document does not list, sends a body that does not match the document, or stops; and if the run did
# not reach the store: fewer than 100 answers 2xx in all, or none at all for the routes whose numbers
# once stopped the server (ranged block reads, commits). A run that only ever met 401s, 404s or 400s
# proves nothing, so it fails. (Schemathesis's own warnings, printed above the summary, say which
# operations mostly met validation errors; for a generator of hostile input that is expected.)
#
# Usage: scripts/fuzz-api.sh [SILO_BINARY] [MAX_EXAMPLES]
set -euo pipefail
cd "$(dirname "$0")/.."

silo=${1:-.build/debug/silo}
examples=${2:-25}
command -v schemathesis >/dev/null || { echo "fuzz-api: schemathesis is missing; run scripts/setup.sh" >&2; exit 1; }

source scripts/lib/server.sh
start_server "$silo" "$(mktemp -d)"

# Something to find: a volume with a small file and a file of one block, and a 4-byte block on its
# own, so that generated requests reach the store and not only 404s. Their names and hashes seed the
# generator (dictionaries below), beside the extreme numbers that once stopped the server.
printf 'hello' >"$work_dir/hello.txt"
head -c 100000 /dev/urandom >"$work_dir/big.bin"
"$silo" volume create fuzz >/dev/null
"$silo" volume put fuzz "$work_dir/hello.txt" >/dev/null
"$silo" volume put fuzz "$work_dir/big.bin" >/dev/null
big=$(sha256sum "$work_dir/big.bin" | cut -c1-64)
small=$(printf 'abcd' | sha256sum | cut -c1-64)
printf 'abcd' | curl -sf -X PUT -H "Authorization: Bearer $SILO_TOKEN" --data-binary @- "$SILO_SERVER/v1/blocks/$small"

cat >"$work_dir/schemathesis.toml" <<TOML
[dictionaries.volumes]
values = ["fuzz"]
[dictionaries.paths]
values = ["/hello.txt", "/big.bin", "/", "big.bin"]
[dictionaries.hashes]
values = ["$big", "$small"]
[dictionaries.ranges]
values = ["bytes=0-9223372036854775807", "bytes=-9223372036854775807", "bytes=9223372036854775806-9223372036854775807", "bytes=0-0", "bytes=99999-"]
[dictionaries.sizes]
values = [9223372036854775807, 8388608, 4, 0, -1]

# Reads and commits aim at what exists; deletes and renames keep their random names, so the seed
# volume stays for the rest of the run.
[[operations]]
include-method = "GET"
parameters = { "path.volume" = { dictionary = "volumes", probability = 0.8 }, "query.path" = { dictionary = "paths", probability = 0.7 }, "path.hash" = { dictionary = "hashes", probability = 0.8 }, "header.Range" = { dictionary = "ranges", probability = 0.6 } }

[[operations]]
include-operation-id = "commit"
parameters = { "path.volume" = { dictionary = "volumes", probability = 0.8 }, "body.changes[*].blocks[*]" = { dictionary = "hashes", probability = 0.8 }, "body.changes[*].size" = { dictionary = "sizes", probability = 0.5 } }

[[operations]]
include-operation-id = "findMissingBlocks"
parameters = { "body.hashes[*]" = { dictionary = "hashes", probability = 0.8 } }
TOML

status=0
schemathesis --config-file "$work_dir/schemathesis.toml" run "$SILO_SERVER/v1/openapi.json" --url "$SILO_SERVER" \
    -H "Authorization: Bearer $SILO_TOKEN" \
    --checks not_a_server_error,status_code_conformance,response_schema_conformance \
    --max-examples "$examples" --generation-deterministic --no-color \
    --report ndjson --report-ndjson-path "$work_dir/events.ndjson" || status=$?
cp "$work_dir/events.ndjson" .build/fuzz-api-events.ndjson 2>/dev/null || true

# The server survived all of it.
kill -0 "$server_pid" || { echo "fuzz-api: the server stopped during the run" >&2; exit 1; }
[[ $status -eq 0 ]] || { echo "fuzz-api: schemathesis found problems (or warned); see above" >&2; exit "$status"; }

# Answers that reached the code behind the routes, by status class.
python3 - "$work_dir/events.ndjson" <<'PY'
import json, re, sys
classes, reached = {}, {"GET /v1/blocks/": 0, "POST /commits": 0}
for line in open(sys.argv[1]):
    for method, uri, status in re.findall(r'"request":\{"method":"(\w+)","uri":"([^"]+)".*?"status_code":\s*(\d{3})', line):
        classes[status[0] + "xx"] = classes.get(status[0] + "xx", 0) + 1
        for route in reached:
            verb, path = route.split(" ")
            if method == verb and path in uri and status.startswith("2"):
                reached[route] += 1
print("fuzz-api: answers by status class:", dict(sorted(classes.items())), "2xx on", reached)
if classes.get("2xx", 0) < 100:
    sys.exit("fuzz-api: fewer than 100 answers were 2xx: the run did not reach the store")
if classes.get("5xx", 0):
    sys.exit("fuzz-api: the server answered 5xx")
for route, count in reached.items():
    if count == 0:
        sys.exit(f"fuzz-api: no request to {route} succeeded: the run did not reach that code")
PY
echo "fuzz-api: the server answered every request without a 5xx and is still up"
