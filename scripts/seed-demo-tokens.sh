#!/usr/bin/env bash
# Puts the 22 demo tokens (scripts/demo-tokens.mjs) into a Redis: the dev stack's by default.
# Re-running replaces them with fresh ones, valid for another hour.
#
#   scripts/seed-demo-tokens.sh [REDIS_PORT]
set -euo pipefail
cd "$(dirname "$0")/.."
port=${1:-6380}
node scripts/demo-tokens.mjs | redis-cli -h 127.0.0.1 -p "$port" --pipe >/dev/null
count=$(redis-cli -h 127.0.0.1 -p "$port" --scan --pattern 'token:*' | wc -l)
echo "==> seeded demo tokens into redis://127.0.0.1:$port ($count token:* keys)" >&2
