#!/usr/bin/env bash
# Puts the 22 demo tokens (scripts/demo-tokens.mjs) into a Redis: the dev stack's by default.
# Every token:* key already there is removed first, so the Redis holds exactly the demo set,
# fresh and valid for another hour, however often this runs.
#
#   scripts/seed-demo-tokens.sh [REDIS_PORT]
set -euo pipefail
cd "$(dirname "$0")/.."
port=${1:-6380}
redis() { redis-cli -h 127.0.0.1 -p "$port" "$@"; }

removed=$(redis --scan --pattern 'token:*' | wc -l)
redis --scan --pattern 'token:*' | xargs -r -d '\n' redis-cli -h 127.0.0.1 -p "$port" unlink >/dev/null
node scripts/demo-tokens.mjs | redis --pipe >/dev/null
count=$(redis --scan --pattern 'token:*' | wc -l)
echo "==> seeded $count demo tokens into redis://127.0.0.1:$port (replaced $removed token:* keys)" >&2
