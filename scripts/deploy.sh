#!/usr/bin/env bash
# Deploys the Worker to Cloudflare (docs/DEPLOY.md walks through it):
#
#   scripts/deploy.sh [--env-file FILE] [--skip-migrations]
#       1. checks prerequisites: tools, the settings (all of them, naming every one that is
#          missing or malformed, by the Worker's own rules: `cargo xtask config-check`), cron
#          triggers vs SYNC_CRON/CLEANUP_CRON, `wrangler whoami`
#       2. builds the bundle into dist/ (wrangler deploy --dry-run --outdir dist)
#       3. applies pending migrations to the database at SUPABASE_DB_URL (dbmate)
#       4. puts the Worker's secrets (wrangler secret put, the value on stdin, never echoed)
#       5. wrangler deploy
#   scripts/deploy.sh --dry-run [--env-file FILE]
#       builds dist/ and prints what a deploy would do; touches nothing remote and needs no
#       login (with SUPABASE_DB_URL set, it reads which migrations are pending: dbmate status)
#   scripts/deploy.sh migrate [--env-file FILE]
#       step 3 alone: applies pending migrations to SUPABASE_DB_URL; a rerun applies nothing
#
# Settings come from the environment, else from --env-file FILE (KEY=VALUE lines as in
# .dev.vars; `export ` and quotes allowed; the file is read, never executed):
#   SUPABASE_DB_URL                 Postgres connection string (migrations only; not uploaded)
#   SUPABASE_URL                    https://<project>.supabase.co
#   SUPABASE_SERVICE_ROLE_KEY       Supabase service_role key
#   UPSTASH_REDIS_REST_URL          https://<db>.upstash.io
#   UPSTASH_REDIS_REST_TOKEN        Upstash REST token
#   TOKEN_MANAGER_ADMIN_KEY         admin API key(s), comma-separated, 32+ characters each
#   TOKEN_MANAGER_READ_KEY          read API key(s) (optional but recommended)
#   TOKEN_ENCRYPTION_KEY            base64 of 32 bytes (openssl rand -base64 32)
#   TOKEN_ENCRYPTION_PREVIOUS_KEYS  optional: earlier encryption keys, comma-separated
#   SUPABASE_REST_URL               optional: PostgREST URL if not SUPABASE_URL/rest/v1
#   ALERT_WEBHOOK_URL               optional: alert webhook URL(s), comma-separated (README "Alerts")
#   ALERT_WEBHOOK_SECRET            optional: signs the alert bodies
# A secret that is set neither here nor there but already exists on Cloudflare is kept.
# Names that wrangler.toml sets under [vars] are not put as secrets (Cloudflare refuses both).
# Cloudflare credentials: `npx wrangler login`, or CLOUDFLARE_API_TOKEN (+ CLOUDFLARE_ACCOUNT_ID).
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"

export WRANGLER_SEND_METRICS=false CLOUDFLARE_CF_FETCH_ENABLED=false WRANGLER_SEND_ERROR_REPORTS=false
WRANGLER=$REPO_ROOT/node_modules/.bin/wrangler
DBMATE=$REPO_ROOT/node_modules/.bin/dbmate
# Where applied migrations are recorded: the same table as the local stacks (scripts/lib.sh).
MIGRATIONS_TABLE=supabase_migrations.schema_migrations

# The settings deploy.sh puts as secrets, in the order it puts them. Each put deploys at once,
# so during a key rotation the old key must reach TOKEN_ENCRYPTION_PREVIOUS_KEYS before the new
# one replaces TOKEN_ENCRYPTION_KEY. Which are required, and what a valid value is, only the
# Worker's code says (src/config.rs, asked through `cargo xtask config-check`).
PUT_ORDER=(SUPABASE_URL SUPABASE_REST_URL SUPABASE_SERVICE_ROLE_KEY UPSTASH_REDIS_REST_URL
  UPSTASH_REDIS_REST_TOKEN TOKEN_MANAGER_ADMIN_KEY TOKEN_MANAGER_READ_KEY
  TOKEN_ENCRYPTION_PREVIOUS_KEYS TOKEN_ENCRYPTION_KEY ALERT_WEBHOOK_URL ALERT_WEBHOOK_SECRET)
KNOWN_SETTINGS=(SUPABASE_DB_URL "${PUT_ORDER[@]}" CLOUDFLARE_API_TOKEN CLOUDFLARE_ACCOUNT_ID)

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
}

# ---------------------------------------------------------------------------------------------
# Arguments

command=deploy dry_run=false skip_migrations=false env_file=""
while (($#)); do
  case $1 in
    migrate) command=migrate ;;
    --dry-run) dry_run=true ;;
    --skip-migrations) skip_migrations=true ;;
    --env-file)
      [[ $# -ge 2 ]] || die "--env-file needs a file name"
      env_file=$2
      shift
      ;;
    --env-file=*) env_file=${1#--env-file=} ;;
    -h | --help) usage ;;
    *)
      echo "error: unknown argument '$1'" >&2
      usage
      ;;
  esac
  shift
done
cd "$REPO_ROOT"

# ---------------------------------------------------------------------------------------------
# Settings: the environment, else the env file. SOURCE_OF[NAME] says where each came from.

declare -A SOURCE_OF=() FROM_FILE=()

is_known_setting() {
  local name
  for name in "${KNOWN_SETTINGS[@]}"; do [[ $name == "$1" ]] && return 0; done
  return 1
}

load_env_file() {
  local file=$1 line name value n=0 label
  [[ -f $file && -r $file ]] || die "--env-file $file: no such readable file"
  label=${file##*/}
  while IFS= read -r line || [[ -n $line ]]; do
    n=$((n + 1))
    line=${line%$'\r'}
    [[ $line =~ ^[[:space:]]*(#|$) ]] && continue
    line=${line#export }
    if [[ ! $line =~ ^[[:space:]]*([A-Za-z_][A-Za-z0-9_]*)[[:space:]]*=(.*)$ ]]; then
      die "$file line $n is not KEY=VALUE (the value is not shown)"
    fi
    name=${BASH_REMATCH[1]} value=${BASH_REMATCH[2]}
    if [[ $value =~ ^\"(.*)\"[[:space:]]*$ || $value =~ ^\'(.*)\'[[:space:]]*$ ]]; then
      value=${BASH_REMATCH[1]}
    else
      value=${value%"${value##*[![:space:]]}"} # trailing blanks
    fi
    if ! is_known_setting "$name"; then
      skip "$file: ignoring $name (not a setting deploy.sh uses)"
      continue
    fi
    # The environment wins over the file (a name twice in the file: the last one wins).
    if [[ -n ${!name:-} && -z ${FROM_FILE[$name]:-} ]]; then
      continue
    fi
    printf -v "$name" '%s' "$value"
    export "${name?}"
    FROM_FILE[$name]=1
    SOURCE_OF[$name]=$label
  done <"$file"
}

record_environment_sources() {
  local name
  for name in "${KNOWN_SETTINGS[@]}"; do
    if [[ -n ${!name:-} ]]; then SOURCE_OF[$name]=environment; fi
  done
}

record_environment_sources
[[ -z $env_file ]] || load_env_file "$env_file"

is_set() { [[ -n ${!1:-} ]]; }

# The names wrangler.toml sets under [vars].
toml_vars() {
  awk '/^\[/ { in_vars = ($0 == "[vars]"); next }
       in_vars && match($0, /^[A-Za-z_][A-Za-z0-9_]*[[:space:]]*=/) {
         name = substr($0, 1, RLENGTH); sub(/[[:space:]]*=$/, "", name); print name }' wrangler.toml
}

in_list() {
  local want=$1 item
  shift
  for item in "$@"; do [[ $item == "$want" ]] && return 0; done
  return 1
}

# ---------------------------------------------------------------------------------------------
# Checks. Each problem is appended to PROBLEMS; nothing prints a value.

PROBLEMS=()
problem() { PROBLEMS+=("$*"); }

# Asks the Worker's configuration code (src/config.rs, through `cargo xtask config-check`)
# about the settings as the deployed Worker would see them: wrangler.toml's [vars], then the
# environment (the env file is loaded into it); secrets the Worker already has are --kept.
# Fills MISSING_SETTINGS, CRONS and CRON_JOB, and adds each problem to PROBLEMS.
MISSING_SETTINGS=() CRONS=() CRON_JOB=()
check_settings() {
  local args=(config-check) name out kind message status=0
  for name in "${REMOTE_SECRETS[@]}"; do is_set "$name" || args+=(--kept "$name"); done
  [[ $dry_run == false ]] || args+=(--allow-missing)
  out=$(cd "$REPO_ROOT" && cargo run --quiet --locked -p xtask -- "${args[@]}") || status=$?
  ((status <= 1)) || die "cargo xtask config-check failed (exit $status)"
  while IFS=$'\t' read -r kind name message; do
    case $kind in
      missing)
        MISSING_SETTINGS+=("$name")
        # A dry run cannot tell whether the Worker has it; its plan lists it as missing.
        [[ $dry_run == true ]] || problem "$message"
        ;;
      invalid) problem "$message" ;;
      cron)
        CRONS+=("$name")
        CRON_JOB+=("$message")
        ;;
    esac
  done <<<"$out"
  if [[ $skip_migrations == false ]]; then
    check_db_url
  fi
}

check_db_url() {
  if ! is_set SUPABASE_DB_URL; then
    if [[ $dry_run == false ]]; then
      problem "SUPABASE_DB_URL is not set: the Postgres connection string of the Supabase project (or pass --skip-migrations)"
    fi
  elif [[ ! $SUPABASE_DB_URL =~ ^postgres(ql)?:// ]]; then
    problem "SUPABASE_DB_URL is not a postgres:// or postgresql:// connection string"
  fi
}

report_problems() {
  ((${#PROBLEMS[@]} == 0)) && return 0
  printf 'error: cannot deploy yet; fix these %d problem(s):\n' "${#PROBLEMS[@]}" >&2
  printf '  - %s\n' "${PROBLEMS[@]}" >&2
  printf 'settings are read from the environment or --env-file FILE; see docs/DEPLOY.md\n' >&2
  exit 1
}

# `wrangler whoami --json`: fails when not logged in. Prints the accounts it can deploy to.
check_login() {
  local json summary
  say "checking the Cloudflare login (wrangler whoami)"
  if ! json=$("$WRANGLER" whoami --json 2>/dev/null); then
    problem "wrangler is not logged in to Cloudflare: run \`npx wrangler login\` (or set CLOUDFLARE_API_TOKEN and CLOUDFLARE_ACCOUNT_ID)"
    return
  fi
  # shellcheck disable=SC2016 # JavaScript, not shell
  if summary=$(node -e '
    const u = JSON.parse(require("fs").readFileSync(0, "utf8").replace(/^[^{]*/, ""));
    const accounts = (u.accounts || []).map(a => `${a.name} (${a.id})`);
    console.log(`${u.authType || "logged in"}${u.email ? " as " + u.email : ""}; accounts: ${accounts.join(", ") || "none"}`);
    process.exit(accounts.length > 1 && !process.env.CLOUDFLARE_ACCOUNT_ID ? 3 : accounts.length ? 0 : 4);
  ' <<<"$json"); then
    skip "$summary"
  else
    local rc=$?
    skip "$summary"
    case $rc in
      3) problem "the login reaches several Cloudflare accounts: set CLOUDFLARE_ACCOUNT_ID to the one to deploy to" ;;
      4) problem "the Cloudflare login reaches no account: check the API token's permissions (Workers Scripts: Edit)" ;;
      *) problem "could not read \`wrangler whoami --json\`" ;;
    esac
  fi
}

# Names of the Worker's secrets on Cloudflare (empty if the Worker does not exist yet).
REMOTE_SECRETS=() REMOTE_KNOWN=false
read_remote_secrets() {
  local json
  if json=$("$WRANGLER" secret list --format json 2>/dev/null); then
    REMOTE_KNOWN=true
    # shellcheck disable=SC2016 # JavaScript, not shell
    mapfile -t REMOTE_SECRETS < <(node -e '
      const text = require("fs").readFileSync(0, "utf8");
      for (const s of JSON.parse(text.slice(text.indexOf("[")))) console.log(s.name);
    ' <<<"$json" 2>/dev/null || true)
  fi
}

# ---------------------------------------------------------------------------------------------
# Steps

ensure_deploy_tools() {
  say "checking tools"
  ensure_node
  command -v cargo >/dev/null || die "cargo is needed (rustup)"
  ensure_wasm_target
  ensure_worker_build
  ensure_wasm_bindgen
  ensure_npm_packages
  [[ -x $WRANGLER ]] || die "$WRANGLER is missing: npm install"
  [[ -x $DBMATE ]] || die "$DBMATE is missing: npm install"
}

# The bundle wrangler would upload, built by wrangler.toml's [build] command.
build_bundle() {
  say "building the Worker bundle (wrangler deploy --dry-run --outdir dist)"
  rm -rf dist
  "$WRANGLER" deploy --dry-run --outdir dist
  local wasm
  wasm=$(find dist -maxdepth 1 -name '*.wasm' -print -quit)
  [[ -s dist/index.js && -n $wasm ]] || die "wrangler built no dist/index.js and .wasm"
  BUNDLE_SUMMARY="dist/index.js ($(du -h dist/index.js | cut -f1)), $wasm ($(du -h "$wasm" | cut -f1))"
}

# The connection string (it holds the database password) goes through the environment, never
# on a command line where `ps` would show it: dbmate reads it from the variable --env names.
dbmate() {
  export SUPABASE_DB_URL
  "$DBMATE" --env SUPABASE_DB_URL --migrations-dir "$REPO_ROOT/migrations" \
    --migrations-table "$MIGRATIONS_TABLE" --no-dump-schema "$@"
}

# Applies pending migrations; prints each one applied, or that none was pending.
migrate() {
  is_set SUPABASE_DB_URL || die "SUPABASE_DB_URL is not set: the Postgres connection string of the Supabase project (environment or --env-file)"
  check_db_url
  report_problems
  [[ -x $DBMATE ]] || die "$DBMATE is missing: npm install"
  say "applying pending migrations (dbmate, table $MIGRATIONS_TABLE)"
  local out
  if ! out=$(dbmate migrate 2>&1); then
    printf '%s\n' "$out" | sed 's/^/    /' >&2
    die "migrations failed; nothing after the failing one was applied (each runs in a transaction)"
  fi
  if grep -q '^Applying:' <<<"$out"; then
    printf '%s\n' "$out" | sed 's/^/    /' >&2
    say "migrations applied: $(grep -c '^Applying:' <<<"$out")"
  else
    say "migrations applied: 0 (the database is up to date)"
  fi
}

# Lists the migrations and, with SUPABASE_DB_URL, which are pending (read-only).
plan_migrations() {
  local files status
  mapfile -t files < <(cd migrations && ls -1 -- *.sql)
  if [[ $skip_migrations == true ]]; then
    echo "  migrations: skipped (--skip-migrations); ${#files[@]} in migrations/"
  elif is_set SUPABASE_DB_URL; then
    if status=$(dbmate status 2>&1); then
      echo "  migrations: dbmate status of SUPABASE_DB_URL (${SOURCE_OF[SUPABASE_DB_URL]}):"
      printf '%s\n' "$status" | sed '/^$/d; s/^/      /'
    else
      echo "  migrations: could not read their status from SUPABASE_DB_URL:"
      printf '%s\n' "$status" | sed 's/^/      /'
      problem "SUPABASE_DB_URL: dbmate status failed (see above)"
    fi
  else
    echo "  migrations: ${#files[@]} in migrations/ (set SUPABASE_DB_URL to see which are pending):"
    printf '      %s\n' "${files[@]}"
  fi
}

# SECRETS_TO_PUT: the secrets set locally (and not [vars]); the plan says what happens to each.
plan_secrets() {
  local name
  SECRETS_TO_PUT=()
  echo "  secrets (wrangler secret put, value on stdin):"
  for name in "${PUT_ORDER[@]}"; do
    if in_list "$name" "${TOML_VARS[@]}"; then
      printf '      %-32s not put: wrangler.toml sets it under [vars]\n' "$name"
    elif is_set "$name"; then
      SECRETS_TO_PUT+=("$name")
      printf '      %-32s put (from %s)\n' "$name" "${SOURCE_OF[$name]}"
    elif in_list "$name" "${REMOTE_SECRETS[@]}"; then
      printf '      %-32s kept: already a secret of the Worker\n' "$name"
    elif in_list "$name" "${MISSING_SETTINGS[@]}"; then
      if [[ $dry_run == true ]]; then
        printf '      %-32s MISSING (required, unless the Worker already has it: a dry run does not ask)\n' "$name"
      else
        printf '      %-32s MISSING (required)\n' "$name"
      fi
    else
      printf '      %-32s not set (optional)\n' "$name"
    fi
  done
  if ! is_set TOKEN_MANAGER_READ_KEY && ! in_list TOKEN_MANAGER_READ_KEY "${REMOTE_SECRETS[@]}"; then
    echo "      note: without TOKEN_MANAGER_READ_KEY every caller needs the admin key"
  fi
}

print_plan() {
  local worker i job
  worker=$(sed -n 's/^name *= *"\(.*\)"/\1/p' wrangler.toml | head -n 1)
  echo
  if [[ $dry_run == true ]]; then
    echo "deploy plan for Worker \"$worker\" (dry run: nothing remote is touched)"
  else
    echo "deploy plan for Worker \"$worker\""
  fi
  echo "  bundle: ${BUNDLE_SUMMARY:-not built}"
  plan_migrations
  plan_secrets
  echo "  cron triggers (wrangler.toml [triggers]):"
  for i in "${!CRONS[@]}"; do
    job=${CRON_JOB[$i]}
    [[ $job != none ]] || job="no job: matches none of SYNC_CRON, CLEANUP_CRON, RENEW_CRON"
    printf '      %-20s %s\n' "${CRONS[$i]}" "$job"
  done
  echo "  then: wrangler deploy (the bundle above, wrangler.toml's [vars], [triggers] and [observability])"
  echo
}

put_secrets() {
  local name
  ((${#SECRETS_TO_PUT[@]})) || {
    say "no secrets to put"
    return
  }
  for name in "${SECRETS_TO_PUT[@]}"; do
    say "wrangler secret put $name"
    # printf is a builtin: the value is in no process's argv; wrangler reads it from stdin.
    printf '%s' "${!name}" | "$WRANGLER" secret put "$name" >/dev/null ||
      die "wrangler secret put $name failed (rerun to retry; secrets already put stay put)"
  done
}

# wrangler deploy without rebuilding: a copy of wrangler.toml without [build] (the bundle in
# build/ is the one just built and checked), as the local stacks run it.
# With --dry-run as argument: the same command, checked without uploading.
deploy_worker() {
  local config message
  STATE_DIR=$REPO_ROOT/.state/deploy
  mkdir -p "$STATE_DIR"
  config=$(write_wrangler_config "$REPO_ROOT")
  message="token-manager $(git -C "$REPO_ROOT" describe --always --dirty 2>/dev/null || echo unknown)"
  if [[ ${1:-} == --dry-run ]]; then
    say "checking the final step: wrangler deploy --dry-run (config without [build])"
    "$WRANGLER" deploy --config "$config" --message "$message" --dry-run >"$STATE_DIR/final-dry-run.log" 2>&1 || {
      show_log_tail "$STATE_DIR/final-dry-run.log"
      die "wrangler deploy would fail"
    }
    return
  fi
  say "wrangler deploy ($message)"
  "$WRANGLER" deploy --config "$config" --message "$message"
}

# ---------------------------------------------------------------------------------------------

if [[ $command == migrate ]]; then
  migrate
  exit 0
fi

mapfile -t TOML_VARS < <(toml_vars)
if [[ $dry_run == true ]]; then
  ensure_deploy_tools
  build_bundle
  deploy_worker --dry-run
  check_settings
  print_plan
  if ((${#PROBLEMS[@]})); then
    echo "a deploy would stop on these problem(s) first:"
    printf '  - %s\n' "${PROBLEMS[@]}"
  fi
  say "dry run done: dist/ holds the bundle; nothing remote was touched"
  exit 0
fi

ensure_deploy_tools
check_login
# Logged in: secrets the Worker already has need not be set again.
((${#PROBLEMS[@]})) || read_remote_secrets
check_settings
report_problems
build_bundle
print_plan
if [[ $skip_migrations == false ]]; then migrate; fi
put_secrets
deploy_worker
say "deployed; watch it with: npx wrangler tail (or Workers Logs in the dashboard)"
