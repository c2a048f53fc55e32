#!/usr/bin/env bash
# Checks scripts/deploy.sh without a Cloudflare account:
#   1. `deploy.sh --dry-run` builds the bundle (dist/index.js and the .wasm) and prints the
#      plan (pending migrations, secret names, cron triggers) without any secret value
#   2. `deploy.sh migrate` on a fresh database (deploy_check, on the test stack's Postgres)
#      applies every migration, and a second run applies nothing
#   3. `deploy.sh migrate` on the stack's own database, already migrated, applies nothing
#   4. a deploy with missing or malformed settings and no login stops before touching
#      anything, naming each problem (by the Worker's own rules), without printing a value
# Needs the test stack's Postgres: run from scripts/test.sh, or
#   scripts/stack.sh up test && eval "$(scripts/env.sh test)" && scripts/test-deploy.sh
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

[[ -n ${TM_TEST_DATABASE_URL:-} ]] ||
  die "TM_TEST_DATABASE_URL is not set: run scripts/test.sh, or scripts/stack.sh up test && eval \"\$(scripts/env.sh test)\""
PG_BIN=$(pg_bin_dir) || die "PostgreSQL client not found under /usr/lib/postgresql"

CHECK_DB=deploy_check
SERVER_URL=${TM_TEST_DATABASE_URL%/*}
CHECK_DB_URL="$SERVER_URL/$CHECK_DB?sslmode=disable"
STACK_DB_URL="$TM_TEST_DATABASE_URL?sslmode=disable"
WORK=$(mktemp -d)
passed=0 failed=0

psql_server() { "$PG_BIN/psql" "$SERVER_URL/postgres" -X -q -v ON_ERROR_STOP=1 "$@"; }
drop_check_db() { psql_server -c "drop database if exists $CHECK_DB with (force)" >/dev/null 2>&1 || true; }

cleanup() {
  drop_check_db
  rm -rf "$WORK"
}
trap cleanup EXIT

pass() {
  passed=$((passed + 1))
  printf 'ok    %s\n' "$1"
}
fail() {
  failed=$((failed + 1))
  printf 'FAIL  %s\n' "$1"
  [[ -z ${2:-} || ! -s $2 ]] || sed 's/^/      | /' "$2" | tail -n 40
}

# Only the settings given here: none from the caller's environment.
clean_env=(env -u SUPABASE_DB_URL -u SUPABASE_URL -u SUPABASE_REST_URL -u SUPABASE_SERVICE_ROLE_KEY
  -u UPSTASH_REDIS_REST_URL -u UPSTASH_REDIS_REST_TOKEN -u TOKEN_MANAGER_ADMIN_KEY
  -u TOKEN_MANAGER_READ_KEY -u TOKEN_ENCRYPTION_KEY -u TOKEN_ENCRYPTION_PREVIOUS_KEYS
  -u ALERT_WEBHOOK_URL -u ALERT_WEBHOOK_SECRET
  -u CLOUDFLARE_API_TOKEN -u CLOUDFLARE_ACCOUNT_ID -u CLOUDFLARE_API_KEY -u CLOUDFLARE_EMAIL)

# Distinct made-up values, so that any of them in the output is a leak.
secret_values=(
  "https://check-$(random_key | tr -dc 'a-z0-9' | head -c 12).supabase.co"
  "service-role-$(random_key)"
  "https://check-$(random_key | tr -dc 'a-z0-9' | head -c 12).upstash.io"
  "upstash-$(random_key)"
  "$(random_key)"
  "$(random_key)"
  "$(random_aes_key)"
)
cat >"$WORK/prod.env" <<EOF
# made up by scripts/test-deploy.sh
SUPABASE_DB_URL=$CHECK_DB_URL
SUPABASE_URL=${secret_values[0]}
SUPABASE_SERVICE_ROLE_KEY="${secret_values[1]}"
export UPSTASH_REDIS_REST_URL=${secret_values[2]}
UPSTASH_REDIS_REST_TOKEN='${secret_values[3]}'
TOKEN_MANAGER_ADMIN_KEY=${secret_values[4]}
TOKEN_MANAGER_READ_KEY=${secret_values[5]}
TOKEN_ENCRYPTION_KEY=${secret_values[6]}
EOF

leaks() {
  local file=$1 value
  for value in "${secret_values[@]}"; do
    if grep -qF -- "$value" "$file"; then
      echo "a secret value appears in the output"
      return 0
    fi
  done
  return 1
}

migration_count=$(find migrations -maxdepth 1 -name '*.sql' | wc -l)
say "deploy checks (migrations: $migration_count; database $CHECK_DB on ${SERVER_URL##*@})"
drop_check_db
psql_server -c "create database $CHECK_DB" >/dev/null

# 1. The dry run: bundle and plan.
out=$WORK/dry-run.log
if "${clean_env[@]}" scripts/deploy.sh --dry-run --env-file "$WORK/prod.env" >"$out" 2>&1; then
  wasm=$(find dist -maxdepth 1 -name '*.wasm' -size +1k -print -quit)
  if [[ ! -s dist/index.js || -z $wasm ]]; then
    fail "deploy.sh --dry-run: dist/ lacks index.js or the .wasm" "$out"
  elif leaks "$out"; then
    fail "deploy.sh --dry-run printed a secret value" "$out"
  elif ! grep -q "Pending: $migration_count" "$out" ||
    ! grep -qE 'TOKEN_ENCRYPTION_KEY +put \(from prod.env\)' "$out" ||
    ! grep -qE 'TOKEN_ENCRYPTION_PREVIOUS_KEYS +not set \(optional\)' "$out" ||
    ! grep -qE '\*/30 \* \* \* \* +sync' "$out" || ! grep -qE '0 2 \* \* \* +cleanup' "$out" ||
    ! grep -q 'nothing remote was touched' "$out"; then
    fail "deploy.sh --dry-run: the plan lacks pending migrations, secret names or crons" "$out"
  else
    pass "deploy.sh --dry-run: $(basename "$wasm") and index.js in dist/; plan without secret values"
  fi
else
  fail "deploy.sh --dry-run failed" "$out"
fi

# 2. A fresh database: everything, then nothing.
out1=$WORK/migrate-1.log out2=$WORK/migrate-2.log
if ! "${clean_env[@]}" SUPABASE_DB_URL="$CHECK_DB_URL" scripts/deploy.sh migrate >"$out1" 2>&1; then
  fail "deploy.sh migrate on a fresh database failed" "$out1"
elif ! "${clean_env[@]}" scripts/deploy.sh migrate --env-file "$WORK/prod.env" >"$out2" 2>&1; then
  fail "deploy.sh migrate, second run, failed" "$out2"
else
  first=$(grep -c '^ *Applying:' "$out1" || true)
  second=$(grep -c '^ *Applying:' "$out2" || true)
  tables=$("$PG_BIN/psql" "$SERVER_URL/$CHECK_DB" -X -At -c "select count(*) from pg_tables
    where schemaname = 'public' and tablename in ('tradovate_tokens', 'token_key_mappings', 'sync_runs')")
  if [[ $first != "$migration_count" || $second != 0 || $tables != 3 ]] ||
    ! grep -q 'migrations applied: 0' "$out2"; then
    fail "deploy.sh migrate: first run applied $first of $migration_count, second applied $second, tables $tables/3" "$out2"
  else
    pass "deploy.sh migrate: a fresh database gets $first migrations, a second run applies none"
  fi
fi

# 3. The stack's database, migrated by scripts/lib.sh: the same record, so nothing to apply.
out=$WORK/migrate-stack.log
if "${clean_env[@]}" SUPABASE_DB_URL="$STACK_DB_URL" scripts/deploy.sh migrate >"$out" 2>&1 &&
  grep -q 'migrations applied: 0' "$out" && ! grep -q 'Applying:' "$out"; then
  pass "deploy.sh migrate: the stack's database (migrated by the stack) gets nothing"
else
  fail "deploy.sh migrate on the stack's database applied something or failed" "$out"
fi

# 4. Prerequisites: no login (an empty wrangler config dir), settings missing or malformed.
out=$WORK/prerequisites.log
cat >"$WORK/bad.env" <<EOF
SUPABASE_DB_URL=$SERVER_URL/deploy_check_must_not_exist?sslmode=disable
SUPABASE_URL=${secret_values[0]}
UPSTASH_REDIS_REST_URL=not-a-url-${secret_values[3]}
UPSTASH_REDIS_REST_TOKEN=${secret_values[3]}
TOKEN_MANAGER_ADMIN_KEY=short-${secret_values[4]:0:8}
TOKEN_ENCRYPTION_KEY=${secret_values[5]}
EOF
mkdir -p "$WORK/xdg"
if "${clean_env[@]}" XDG_CONFIG_HOME="$WORK/xdg" scripts/deploy.sh --env-file "$WORK/bad.env" >"$out" 2>&1; then
  fail "deploy.sh with bad settings and no login did not stop" "$out"
else
  missing=()
  # The messages are the Worker's own (src/config.rs through cargo xtask config-check).
  for expected in 'wrangler is not logged in' 'setting SUPABASE_SERVICE_ROLE_KEY is missing' \
    'setting UPSTASH_REDIS_REST_URL is invalid' 'setting TOKEN_MANAGER_ADMIN_KEY is invalid' \
    'setting TOKEN_ENCRYPTION_KEY is invalid'; do
    grep -qF -- "$expected" "$out" || missing+=("$expected")
  done
  if ((${#missing[@]})); then
    fail "deploy.sh prerequisites: not reported: ${missing[*]}" "$out"
  elif leaks "$out" || grep -q "${secret_values[4]:0:8}" "$out"; then
    fail "deploy.sh prerequisites printed a secret value" "$out"
  elif grep -qE '^==> (applying pending migrations|wrangler secret put|building the Worker)' "$out"; then
    fail "deploy.sh went on past failed prerequisites" "$out"
  else
    pass "deploy.sh without login and with bad settings stops first, naming each problem"
  fi
fi

printf 'deploy-checks: %d passed, %d failed\n' "$passed" "$failed"
((failed == 0))
