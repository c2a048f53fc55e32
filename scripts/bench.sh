#!/usr/bin/env bash
# Benchmarks the Worker on its own stack (the bench profile: other ports, fresh data dirs
# under .state/bench) and prints one markdown table:
#
#   sync       N = 22, 1,000, 10,000 through wrangler dev: wall time, Upstash and PostgREST
#              requests counted in their own logs, rows written (the Worker's answer and SQL);
#              again with no change, and with 10% changed; the lower bound ⌈N / batch⌉ beside
#   get        p50/p99/throughput at concurrency 1 and 16, Worker vs PostgREST directly
#   cpu        the sync's pure work (parse, fingerprint, encrypt, serialise), native and wasm
#   bundle     index_bg.wasm raw and gzip -9, cost per crate (twiggy)
#
#   scripts/bench.sh            everything; writes docs/BENCHMARKS.md and README's Benchmarks
#   scripts/bench.sh --quick    N = 22 and few requests, debug build, writes nothing (CI's smoke)
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
      sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'
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

# docs/BENCHMARKS.md: the table with when, where and how; README: the table between markers.
commit=$(git rev-parse --short HEAD)
git diff --quiet HEAD -- src Cargo.toml Cargo.lock migrations wrangler.toml || commit="$commit + uncommitted changes"
cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
when="$(date -u '+%Y-%m-%d %H:%M UTC'), commit $commit, ${cpu_model:-unknown CPU} ($(nproc) cores, shared)"
# shellcheck disable=SC2016 # the backticks are markdown
{
  printf '# Benchmarks\n\n'
  printf 'Measured by `./scripts/bench.sh` on %s.\n' "$when"
  printf 'Node %s, wrangler %s (`wrangler dev`, local workerd), %s, PostgREST 12.0.2, %s.\n\n' \
    "$(node --version)" "$(node -p 'require("./node_modules/wrangler/package.json").version')" \
    "$("$(pg_bin_dir)/postgres" --version)" "$(redis-server --version | awk '{ print "Redis " $3 }' | tr -d 'v=')"
  cat "$table"
  cat "$REPO_ROOT/bench/METHOD.md"
} >"$REPO_ROOT/docs/BENCHMARKS.md"
# shellcheck disable=SC2016 # the backticks are markdown
{
  printf 'Measured by `./scripts/bench.sh` on %s; how, and what the figures mean: [docs/BENCHMARKS.md](docs/BENCHMARKS.md).\n\n' "$when"
  cat "$table"
} >"$STATE_DIR/readme-section.md"
awk -v section="$STATE_DIR/readme-section.md" '
  /^<!-- bench:end -->$/ { skipping = 0 }
  !skipping { print }
  /^<!-- bench:start -->$/ {
    while ((getline line < section) > 0) print line
    skipping = 1
  }
' "$REPO_ROOT/README.md" >"$STATE_DIR/README.md"
grep -q '^<!-- bench:end -->$' "$STATE_DIR/README.md" || die "README.md lacks the <!-- bench:start --> / <!-- bench:end --> markers"
cp "$STATE_DIR/README.md" "$REPO_ROOT/README.md"
say "wrote docs/BENCHMARKS.md and README.md's Benchmarks section"
