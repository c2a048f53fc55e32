#!/usr/bin/env bash
# Runs every test: unit, integration against the real local services, and end-to-end through
# wrangler dev. Starts its own stack (the test profile: other ports, fresh data dirs under
# .state/test) and stops it on exit, whether the tests pass or not; a running dev stack is
# left alone.
#
#   scripts/test.sh                    cargo test --workspace --locked
#   scripts/test.sh -- --nocapture     extra arguments go to cargo test
#   scripts/test.sh -p tokenctl        (-p replaces --workspace)
#
# The tests read the stack's settings from TM_TEST_* variables (scripts/env.sh lists them).
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"
load_profile test
# CI builds each clone once: incremental compilation data would only fill its disk.
if [[ ${CI:-} == true ]]; then export CARGO_INCREMENTAL=0; fi

started_at=$SECONDS
on_exit() {
  local status=$?
  trap - EXIT INT TERM
  # Stop the services even if the terminal or a pipe (test.sh | tee) is gone.
  trap '' PIPE
  set +e
  if ((status != 0)); then
    print_log_locations
  fi
  stop_started_services
  say "test.sh finished in $((SECONDS - started_at))s (exit $status)"
  exit "$status"
}
trap on_exit EXIT
trap 'exit 130' INT TERM

lock_test_profile

ensure_tools
build_local_servers
build_worker
# Compile the tests before starting the stack, so a compile error costs no service start.
say "building tests (cargo test --workspace --locked --no-run)"
(cd "$REPO_ROOT" && cargo test --workspace --locked --no-run)

stack_up
eval "$(print_exports)"

# --workspace unless the arguments pick packages (-p NAME) themselves.
scope=(--workspace)
for arg in "$@"; do
  [[ $arg == -- ]] && break
  if [[ $arg == -p* || $arg == --package* ]]; then scope=(); fi
done
say "running tests (cargo test ${scope[*]} --locked --no-fail-fast $*)"
cd "$REPO_ROOT"
# cargo runs the test binaries one after another (they share the stack); --no-fail-fast
# runs them all even after a failure, so one run shows every failing test.
# 9>&-: a process a test leaves behind must not keep holding the test stack's lock.
if ! cargo test "${scope[@]}" --locked --no-fail-fast "$@" 9>&-; then
  show_log_tail "$(log_file worker)" 30
  die "tests failed; the logs of the services are listed below"
fi
((${#scope[@]} == 0)) || "$REPO_ROOT/scripts/test-deploy.sh" 9>&- # deploy.sh: dry run and migrations
((${#scope[@]} == 0)) || "$REPO_ROOT/scripts/bench.sh" --quick 9>&- # benchmark smoke test (N = 22)
