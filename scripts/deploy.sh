#!/usr/bin/env bash
# Deploys the Worker to Cloudflare (docs/DEPLOY.md walks through it):
#
#   scripts/deploy.sh [--env-file FILE] [--skip-migrations]
#       1. checks prerequisites: tools, the settings (all of them, naming every one that is
#          missing or malformed), cron triggers vs SYNC_CRON/CLEANUP_CRON, `wrangler whoami`
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

REQUIRED_SECRETS=(SUPABASE_URL SUPABASE_SERVICE_ROLE_KEY UPSTASH_REDIS_REST_URL
  UPSTASH_REDIS_REST_TOKEN TOKEN_MANAGER_ADMIN_KEY TOKEN_ENCRYPTION_KEY)
OPTIONAL_SECRETS=(TOKEN_MANAGER_READ_KEY TOKEN_ENCRYPTION_PREVIOUS_KEYS SUPABASE_REST_URL)
# The order secrets are put in. Each put deploys at once, so during a key rotation the old key
# must reach TOKEN_ENCRYPTION_PREVIOUS_KEYS before the new one replaces TOKEN_ENCRYPTION_KEY.
PUT_ORDER=(SUPABASE_URL SUPABASE_REST_URL SUPABASE_SERVICE_ROLE_KEY UPSTASH_REDIS_REST_URL
  UPSTASH_REDIS_REST_TOKEN TOKEN_MANAGER_ADMIN_KEY TOKEN_MANAGER_READ_KEY
  TOKEN_ENCRYPTION_PREVIOUS_KEYS TOKEN_ENCRYPTION_KEY)
KNOWN_SETTINGS=(SUPABASE_DB_URL "${REQUIRED_SECRETS[@]}" "${OPTIONAL_SECRETS[@]}"
  CLOUDFLARE_API_TOKEN CLOUDFLARE_ACCOUNT_ID)

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

# toml_var NAME: the value wrangler.toml's [vars] gives NAME, if any.
toml_var() {
  awk -v want="$1" '/^\[/ { in_vars = ($0 == "[vars]"); next }
       in_vars && $0 ~ "^" want "[[:space:]]*=" {
         sub(/^[^=]*=[[:space:]]*"/, ""); sub(/"[[:space:]]*$/, ""); print; exit }' wrangler.toml
}

# The cron expressions of [triggers], one a line.
toml_crons() {
  awk '/^\[/ { in_triggers = ($0 == "[triggers]"); next }
       in_triggers && /^crons[[:space:]]*=/ {
         line = $0; sub(/^[^[]*\[/, "", line); sub(/\][^]]*$/, "", line)
         n = split(line, parts, ",")
         for (i = 1; i <= n; i++) { gsub(/^[[:space:]]*"|"[[:space:]]*$/, "", parts[i]); if (parts[i] != "") print parts[i] } }' wrangler.toml
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

check_url() {
  local name=$1
  is_set "$name" || return 0
  if [[ ! ${!name} =~ ^https?://[^/[:space:]]+ ]]; then
    problem "$name is not an http(s) URL (e.g. https://<project>.supabase.co)"
  elif [[ ${!name} != https://* && $command == deploy && $dry_run == false ]]; then
    problem "$name must be https:// for a deployed Worker"
  fi
}

check_api_keys() {
  local name=$1 key i=0
  is_set "$name" || return 0
  IFS=, read -ra keys <<<"${!name}"
  for key in "${keys[@]}"; do
    key=$(printf '%s' "$key" | tr -d '[:space:]')
    [[ -n $key ]] || continue
    i=$((i + 1))
    ((${#key} >= 32)) || problem "$name: key #$i is shorter than 32 characters (openssl rand -base64 32)"
  done
  ((i > 0)) || problem "$name holds no key"
}

check_aes_keys() {
  local name=$1 key i=0 bytes
  is_set "$name" || return 0
  IFS=, read -ra keys <<<"${!name}"
  for key in "${keys[@]}"; do
    key=$(printf '%s' "$key" | tr -d '[:space:]')
    [[ -n $key ]] || continue
    i=$((i + 1))
    bytes=$(printf '%s' "$key" | base64 -d 2>/dev/null | wc -c) || bytes=0
    ((bytes == 32)) || problem "$name: key #$i is not base64 of 32 bytes (openssl rand -base64 32)"
  done
}

check_settings() {
  local name
  for name in "${REQUIRED_SECRETS[@]}"; do
    if ! is_set "$name" && ! in_list "$name" "${REMOTE_SECRETS[@]}" && ! in_list "$name" "${TOML_VARS[@]}"; then
      if [[ $name == SUPABASE_URL ]] && is_set SUPABASE_REST_URL; then continue; fi
      # A dry run cannot tell whether the Worker has it; its plan lists it as missing.
      [[ $dry_run == true ]] && continue
      if [[ $REMOTE_KNOWN == true ]]; then
        problem "$name is not set (environment or --env-file) and the Worker has no such secret yet"
      else
        problem "$name is not set (environment or --env-file)"
      fi
    fi
  done
  check_url SUPABASE_URL
  check_url SUPABASE_REST_URL
  check_url UPSTASH_REDIS_REST_URL
  check_api_keys TOKEN_MANAGER_ADMIN_KEY
  check_api_keys TOKEN_MANAGER_READ_KEY
  check_aes_keys TOKEN_ENCRYPTION_KEY
  check_aes_keys TOKEN_ENCRYPTION_PREVIOUS_KEYS
  if is_set TOKEN_MANAGER_ADMIN_KEY && is_set TOKEN_MANAGER_READ_KEY &&
    [[ $TOKEN_MANAGER_ADMIN_KEY == "$TOKEN_MANAGER_READ_KEY" ]]; then
    problem "TOKEN_MANAGER_READ_KEY equals TOKEN_MANAGER_ADMIN_KEY: give read-only callers their own key"
  fi
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

# SYNC_CRON and CLEANUP_CRON (wrangler.toml [vars], else the defaults in src/config.rs) must be
# among the cron triggers, or the scheduled runs would only log that they match nothing.
check_crons() {
  local sync cleanup
  mapfile -t CRONS < <(toml_crons)
  sync=$(toml_var SYNC_CRON)
  cleanup=$(toml_var CLEANUP_CRON)
  SYNC_CRON_EXPR=${sync:-$(sed -n 's/^pub const DEFAULT_SYNC_CRON: &str = "\(.*\)";/\1/p' src/config.rs)}
  CLEANUP_CRON_EXPR=${cleanup:-$(sed -n 's/^pub const DEFAULT_CLEANUP_CRON: &str = "\(.*\)";/\1/p' src/config.rs)}
  ((${#CRONS[@]} > 0)) || problem "wrangler.toml has no [triggers] crons: sync and cleanup would never run on schedule"
  in_list "$SYNC_CRON_EXPR" "${CRONS[@]}" ||
    problem "the sync cron \"$SYNC_CRON_EXPR\" (SYNC_CRON) is not in wrangler.toml [triggers] crons"
  in_list "$CLEANUP_CRON_EXPR" "${CRONS[@]}" ||
    problem "the cleanup cron \"$CLEANUP_CRON_EXPR\" (CLEANUP_CRON) is not in wrangler.toml [triggers] crons"
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

dbmate() {
  local url=$SUPABASE_DB_URL
  "$DBMATE" --url "$url" --migrations-dir "$REPO_ROOT/migrations" \
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
    elif in_list "$name" "${REQUIRED_SECRETS[@]}"; then
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
  local worker cron job
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
  for cron in "${CRONS[@]}"; do
    job="no job: matches neither SYNC_CRON nor CLEANUP_CRON"
    [[ $cron == "$SYNC_CRON_EXPR" ]] && job=sync
    [[ $cron == "$CLEANUP_CRON_EXPR" ]] && job=cleanup
    printf '      %-20s %s\n' "$cron" "$job"
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
check_crons
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
