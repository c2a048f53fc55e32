#!/usr/bin/env bash
# Benchmarks the Worker on its own stack (the bench profile: other ports, fresh data dirs
# under .state/bench) and prints one markdown table:
#
#   sync       N = 22, 1,000, 10,000 through wrangler dev: wall time, Upstash and PostgREST
#              requests counted in their own logs, rows written (the Worker's answer and SQL);
#              again with no change, and with 10% changed; the lower bound ⌈N / batch⌉ beside
#   get        p50/p99/throughput at concurrency 1 and 16, Worker vs PostgREST directly
#   crowded    N = 22 among 100,000 and 1,000,000 keys of other applications: Upstash
#              requests and Redis's own time per command (SLOWLOG)
#   deployed   N = 22 and 1,000 through a second Worker whose Upstash and PostgREST sit behind
#              delaying proxies (20 ms per round trip): sync and get wall time
#   cpu        the sync's pure work (parse, fingerprint, encrypt, serialise), native and wasm
#   bundle     index_bg.wasm raw and gzip -9, cost per crate (twiggy)
#
#   scripts/bench.sh            everything; writes the table into docs/BENCHMARKS.md and
#                               README's Benchmarks section
#   scripts/bench.sh --quick    N = 22 and few requests, debug build, no crowded or deployed
#                               case, writes nothing (CI's smoke)
#   scripts/bench.sh -- ARGS    extra arguments for the measuring program (bench/), writes nothing
#
# Speed never fails it; it fails when a check that holds at any speed does not (a second sync
# writing rows, requests missing from the logs, a failed request): `bench-smoke: P passed, F failed`.
# Stops what it started on exit, by pid.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"
load_profile bench

quick=false
extra=()
while (($#)); do
  case $1 in
    --quick) quick=true ;;
    --) shift; extra=("$@"); break ;;
    -h | --help)
      sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *) die "unknown option $1 (--quick, or -- ARGS for the measuring program)" ;;
  esac
  shift
done

started_at=$SECONDS
on_exit() {
  local status=$?
  trap - EXIT INT TERM
  trap '' PIPE
  set +e
  ((status == 0)) || print_log_locations
  stop_started_services
  say "bench.sh finished in $((SECONDS - started_at))s (exit $status)"
  exit "$status"
}
trap on_exit EXIT
trap 'exit 130' INT TERM

lock_test_profile

ensure_tools
twiggy=""
if command -v twiggy >/dev/null; then
  twiggy=$(command -v twiggy)
elif ! $quick; then
  say "installing twiggy (crates.io), for the bundle's cost per crate"
  if cargo install twiggy --locked; then twiggy=$(command -v twiggy); fi
fi
build_local_servers
build_worker

args=(--bundle "$REPO_ROOT/build/index_bg.wasm")
if [[ -n $twiggy ]]; then
  args+=(--twiggy "$twiggy")
else
  args+=(--twiggy-skip "twiggy is not installed (cargo install twiggy)")
fi
cd "$REPO_ROOT"
if $quick; then
  # Built as the tests build it (bench/tests/ makes cargo build the binary), so that after
  # test.sh nothing compiles again; `cargo build -p` would rebuild the dependencies with other
  # features. Its CPU figures mean nothing (debug).
  say "building the benchmark (cargo test --workspace --no-run: the tests' debug build)"
  cargo test --workspace --locked --no-run
  bench_bin=$REPO_ROOT/target/debug/token-manager-bench
  args+=(--quick --wasm-cpu-skip "not in --quick")
else
  say "building the benchmark (cargo build --release -p token-manager-bench)"
  cargo build --release --locked -p token-manager-bench
  bench_bin=$REPO_ROOT/target/release/token-manager-bench
  # The same pure work in wasm, run by Node (V8, as in workerd). Under target/: stack_up
  # empties .state/bench.
  wasm_dir=$REPO_ROOT/target/bench-wasm-cpu
  say "building the benchmark's wasm (wasm32-unknown-unknown, wasm-bindgen --target nodejs)"
  if cargo build --release --locked --target wasm32-unknown-unknown -p token-manager-bench --lib &&
    mkdir -p "$wasm_dir" &&
    wasm-bindgen --target nodejs --out-dir "$wasm_dir" \
      "$REPO_ROOT/target/wasm32-unknown-unknown/release/token_manager_bench.wasm"; then
    args+=(--wasm-cpu "$wasm_dir")
  else
    args+=(--wasm-cpu-skip "the wasm build of bench/ failed (see the output above)")
  fi
fi

stack_up
eval "$(print_exports)"

# The simulated deployment (not in --quick): a second Worker whose Upstash and PostgREST URLs
# point at ports where the measuring program puts its delaying proxies (bench/src/native/wan.rs).
if ! $quick; then
  wan_upstash_port=$((UPSTASH_PORT + 10)) wan_postgrest_port=$((POSTGREST_PORT + 10))
  wan_worker_port=$((WORKER_PORT + 10))
  require_free_port "delaying proxy (Upstash)" "$wan_upstash_port"
  require_free_port "delaying proxy (PostgREST)" "$wan_postgrest_port"
  wan_env=$STATE_DIR/worker-wan.env
  (
    umask 077
    sed -e "s|^UPSTASH_REDIS_REST_URL=.*|UPSTASH_REDIS_REST_URL=http://127.0.0.1:$wan_upstash_port|" \
      -e "s|^SUPABASE_URL=.*|SUPABASE_URL=http://127.0.0.1:$wan_postgrest_port|" \
      -e "s|^SUPABASE_REST_URL=.*|SUPABASE_REST_URL=http://127.0.0.1:$wan_postgrest_port|" \
      "$WORKER_ENV" >"$wan_env"
  )
  start_worker worker-wan "$wan_worker_port" $((INSPECTOR_PORT + 10)) "$wan_env"
  export TM_BENCH_WAN_WORKER_URL=http://127.0.0.1:$wan_worker_port
  export TM_BENCH_WAN_UPSTASH_LISTEN=127.0.0.1:$wan_upstash_port
  export TM_BENCH_WAN_POSTGREST_LISTEN=127.0.0.1:$wan_postgrest_port

  # The floor of one subrequest under wrangler dev, for reading the get rows: a JavaScript
  # Worker that makes only the get's one PostgREST call (bench/js-floor/index.js).
  js_config=$STATE_DIR/js-floor.toml
  printf 'name = "token-manager-js-floor"\nmain = "%s"\n%s\n' "$REPO_ROOT/bench/js-floor/index.js" \
    "$(grep -m 1 '^compatibility_date' "$REPO_ROOT/wrangler.toml")" >"$js_config"
  start_worker js-floor $((WORKER_PORT + 20)) $((INSPECTOR_PORT + 20)) "$WORKER_ENV" "$js_config"
  export TM_BENCH_JS_FLOOR_URL=http://127.0.0.1:$((WORKER_PORT + 20))
fi

table=$STATE_DIR/table.md
say "measuring (${bench_bin#"$REPO_ROOT"/} ${args[*]} ${extra[*]})"
status=0
"$bench_bin" "${args[@]}" "${extra[@]}" >"$table" 9>&- || status=$?
printf '\n' >&2
cat "$table"
((status == 0)) || die "the benchmark failed (exit $status)"

if $quick || ((${#extra[@]})); then
  exit 0
fi

# docs/BENCHMARKS.md (which also says how it is measured) and README: the table between their
# <!-- bench:start --> / <!-- bench:end --> markers, with when and where.
commit=$(git rev-parse --short HEAD)
git diff --quiet HEAD -- src Cargo.toml Cargo.lock migrations wrangler.toml || commit="$commit + uncommitted changes"
cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
when="$(date -u '+%Y-%m-%d %H:%M UTC'), commit $commit, ${cpu_model:-unknown CPU} ($(nproc) cores, shared)"
# shellcheck disable=SC2016 # the backticks are markdown
{
  printf 'Measured by `./scripts/bench.sh` on %s; the whole run took %s s.\n' "$when" "$((SECONDS - started_at))"
  printf 'Node %s, wrangler %s (`wrangler dev`, local workerd), %s, PostgREST 12.0.2, %s.\n\n' \
    "$(node --version)" "$(node -p 'require("./node_modules/wrangler/package.json").version')" \
    "$("$(pg_bin_dir)/postgres" --version)" "$(redis-server --version | awk '{ print "Redis " $3 }' | tr -d 'v=')"
  cat "$table"
} >"$STATE_DIR/docs-section.md"
# shellcheck disable=SC2016 # the backticks are markdown
{
  printf 'Measured by `./scripts/bench.sh` on %s; how, and what the figures mean: [docs/BENCHMARKS.md](docs/BENCHMARKS.md).\n\n' "$when"
  cat "$table"
} >"$STATE_DIR/readme-section.md"
# between_markers FILE SECTION: FILE with the lines between the markers replaced by SECTION's.
between_markers() {
  local file=$1 section=$2 out
  out=$STATE_DIR/$(basename "$file")
  awk -v section="$section" '
    /^<!-- bench:end -->$/ { skipping = 0 }
    !skipping { print }
    /^<!-- bench:start -->$/ {
      while ((getline line < section) > 0) print line
      skipping = 1
    }
  ' "$file" >"$out"
  grep -q '^<!-- bench:end -->$' "$out" || die "$file lacks the <!-- bench:start --> / <!-- bench:end --> markers"
  cp "$out" "$file"
}
between_markers "$REPO_ROOT/docs/BENCHMARKS.md" "$STATE_DIR/docs-section.md"
between_markers "$REPO_ROOT/README.md" "$STATE_DIR/readme-section.md"
say "wrote the table into docs/BENCHMARKS.md and README.md's Benchmarks section"
