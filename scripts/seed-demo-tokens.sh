#!/usr/bin/env bash
# Puts the 22 demo tokens (scripts/demo-tokens.mjs) into a Redis: the dev stack's by default.
# The tokens are minted by tradovate-local (one session per main account, shared with its
# sub-accounts). Every token:* key already there is removed first, so the Redis holds exactly
# the demo set, fresh and valid for another 80 minutes, however often this runs.
#
#   scripts/seed-demo-tokens.sh [REDIS_PORT [TRADOVATE_URL]]   (defaults 6380, http://127.0.0.1:8088/v1)
set -euo pipefail
cd "$(dirname "$0")/.."
port=${1:-6380}
tradovate_url=${2:-http://127.0.0.1:8088/v1}
redis() { redis-cli -h 127.0.0.1 -p "$port" "$@"; }

# Mint first: if tradovate-local is not up, Redis is left as it was.
data=$(mktemp)
trap 'rm -f "$data"' EXIT
node scripts/demo-tokens.mjs "$tradovate_url" >"$data"
removed=$(redis --scan --pattern 'token:*' | wc -l)
redis --scan --pattern 'token:*' | xargs -r -d '\n' redis-cli -h 127.0.0.1 -p "$port" unlink >/dev/null
redis --pipe <"$data" >/dev/null
count=$(redis --scan --pattern 'token:*' | wc -l)
echo "==> seeded $count demo tokens (3 sessions from $tradovate_url) into redis://127.0.0.1:$port (replaced $removed token:* keys)" >&2
