#!/bin/bash
# SPDX-License-Identifier: MIT
# The TypeScript client's test (meson test 'typescript_client'): the committed OpenAPI
# document and the types generated from it are current (serve's own document, the same
# flags), it builds with tsc, node's test runner passes against a real serve, and both
# examples run. Needs MODELREPO_CLI; node_modules from `scripts/setup test`.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
cd "$here"
if [ ! -x node_modules/.bin/tsc ] || [ ! -x node_modules/.bin/openapi-typescript ]; then
    if [ -n "${CI:-}" ] && [ "${CI}" != false ] && [ "${CI}" != 0 ]; then
        echo "clients/typescript/node_modules is missing: scripts/setup test installs it" >&2
        exit 1
    fi
    echo "skipped: clients/typescript/node_modules is missing (scripts/setup test)"
    exit 77
fi
work="$(mktemp -d)"
trap 'kill "${serve_pid:-}" "${rt_pid:-}" 2>/dev/null || true; rm -rf "$work"' EXIT
echo w-check > "$work/writers"
echo r-check > "$work/readers"
"$MODELREPO_CLI" --source builtin: serve --listen 127.0.0.1:0 --token-file "$work/writers" \
    --read-token-file "$work/readers" > "$work/serve.out" 2> "$work/serve.err" &
serve_pid=$!
for _ in $(seq 100); do grep -q "listening on" "$work/serve.out" && break; sleep 0.1; done
base="$(sed -n 's/^listening on //p' "$work/serve.out")"
[ -n "$base" ] || { cat "$work/serve.err" >&2; exit 1; }

# 1. The committed document is serve's, and the types are openapi-typescript's of it.
curl -sf -H "Authorization: Bearer r-check" "$base/v1/openapi.json" > "$work/served.json"
python3 - "$work/served.json" openapi.json <<'PY'
import json, sys
served, committed = (json.load(open(p)) for p in sys.argv[1:3])
if served != committed:
    sys.exit("clients/typescript/openapi.json is stale: save serve's GET /v1/openapi.json "
             "there (python3 -m json.tool --indent 2) and run npm run generate")
PY
node_modules/.bin/openapi-typescript openapi.json -o "$work/schema.ts" > /dev/null 2>&1
if ! diff -q "$work/schema.ts" src/schema.ts > /dev/null; then
    echo "clients/typescript/src/schema.ts is stale: run npm run generate" >&2
    exit 1
fi
echo "openapi.json and src/schema.ts are current"

# 2. Build, test: over HTTP, then over HTTPS with a throwaway CA (node trusts it through
# NODE_EXTRA_CA_CERTS, as a service would).
node_modules/.bin/tsc -p .
MODELREPO_CLI="$MODELREPO_CLI" node --test test/
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=modelrepo client test CA" \
    -keyout "$work/ca.key" -out "$work/ca.pem" 2> /dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout "$work/server.key" \
    -out "$work/server.csr" 2> /dev/null
echo "subjectAltName=IP:127.0.0.1,DNS:localhost" > "$work/san.ext"
openssl x509 -req -in "$work/server.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" \
    -set_serial 7 -days 2 -extfile "$work/san.ext" -out "$work/server.pem" 2> /dev/null
MODELREPO_CLI="$MODELREPO_CLI" MODELREPO_TLS_CERT="$work/server.pem" \
    MODELREPO_TLS_KEY="$work/server.key" NODE_EXTRA_CA_CERTS="$work/ca.pem" node --test test/

# 3. The examples, once each, against this serve.
MODELREPO_URL="$base" MODELREPO_TOKEN=w-check node examples/priority_sync.mjs --once |
    tee "$work/sync.out"
grep -q "^applied 3" "$work/sync.out"
MODELREPO_URL="$base" MODELREPO_TOKEN=r-check node examples/realtime.mjs --listen 0 --count 1 \
    > "$work/rt.out" 2>&1 &
rt_pid=$!
for _ in $(seq 100); do grep -q "pushing stats" "$work/rt.out" && break; sleep 0.1; done
# A change once the example's stream is open (serve's metrics count it).
for _ in $(seq 100); do
    curl -sf -H "Authorization: Bearer r-check" "$base/metrics" |
        grep -q '^modelrepo_serve_streams 1' && break
    sleep 0.1
done
MODELREPO_URL="$base" MODELREPO_TOKEN=w-check node examples/priority_sync.mjs --once > /dev/null
wait "$rt_pid"
cat "$work/rt.out"
grep -q "pushed stats after status" "$work/rt.out"
echo "typescript client: all passed"
