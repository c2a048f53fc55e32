#!/usr/bin/env bash
# Starts, stops or shows the local stack of a profile: PostgreSQL, PostgREST, Redis,
# upstash-local and the Worker under wrangler dev.
#
#   scripts/stack.sh up dev|test|bench     install what is missing, build, start what is not running
#   scripts/stack.sh down dev|test|bench   stop the services recorded in .state/<profile>/pids
#   scripts/stack.sh status dev|test|bench
#
# `up test` starts from empty data dirs; then `eval "$(scripts/env.sh test)"` and run
# `cargo test` against it. dev.sh and test.sh do all of this for you.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"

usage() {
  echo "usage: $0 up|down|status dev|test|bench" >&2
  exit 2
}

[[ $# == 2 ]] || usage
action=$1
load_profile "$2"
if [[ $PROFILE != dev && $action != status ]]; then lock_test_profile; fi

case $action in
  up)
    ensure_tools
    build_local_servers
    build_worker
    # On failure, stop what this command started; on success leave it running.
    trap 'status=$?; if ((status != 0)); then stop_started_services; print_log_locations; fi' EXIT
    stack_up
    ;;
  down) stack_down ;;
  status) stack_status ;;
  *) usage ;;
esac
