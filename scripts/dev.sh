#!/usr/bin/env bash
# Runs the Worker locally against a local Supabase (PostgreSQL + PostgREST), Upstash
# (Redis + upstash-local) and Tradovate auth (tradovate-local), with 22 demo tokens in Redis.
#
#   scripts/dev.sh         install what is missing, start the dev stack, migrate, seed, and
#                          follow the Worker's log; Ctrl-C stops what this command started
#   scripts/dev.sh stop    stop the dev stack (the pids recorded in .state/dev/pids)
#
# Ports: Worker 8787, PostgREST 54321, PostgreSQL 54322, Redis 6380, upstash-local 8079,
# tradovate-local 8088.
# Settings: .dev.vars (written from .dev.vars.example when missing). Logs: .state/dev/logs/.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"
load_profile dev

case ${1:-up} in
  up) ;;
  stop)
    stack_down
    exit 0
    ;;
  *)
    echo "usage: $0 [stop]" >&2
    exit 2
    ;;
esac

follow_pid=""
# shellcheck disable=SC2317 # called from the traps below
shutdown() {
  trap - EXIT INT TERM
  # Stop the services even if the terminal or a pipe (dev.sh | tee) is gone.
  trap '' PIPE
  set +e
  if [[ -n $follow_pid ]]; then kill "$follow_pid" 2>/dev/null || true; fi
  if ((${#STARTED_SERVICES[@]})); then
    echo >&2
    stop_started_services
  fi
}
# shellcheck disable=SC2317
on_exit() {
  local status=$?
  ((status == 0)) || print_log_locations
  shutdown
}
trap on_exit EXIT
trap 'shutdown; exit 130' INT TERM

ensure_tools
build_local_servers
build_worker
stack_up
"$REPO_ROOT/scripts/seed-demo-tokens.sh" "$REDIS_PORT" "$TRADOVATE_URL"
# Fire the sync cron, then the renew cron, once (wrangler dev runs cron triggers only when
# asked): with .dev.vars' RENEW_BEFORE_MINUTES=85 the three demo sessions are renewed now.
if curl -fsS --max-time 60 "$WORKER_URL/__scheduled?cron=*/30+*+*+*+*" >/dev/null &&
  curl -fsS --max-time 60 "$WORKER_URL/__scheduled?cron=*/5+*+*+*+*" >/dev/null; then
  say "fired the sync and renew crons once: the demo sessions are renewed (tokenctl status, list)"
else
  say "could not fire the sync and renew crons (log: $(log_file worker)); the stack is up anyway"
fi

read_key=$(dotenv_get "$WORKER_ENV" TOKEN_MANAGER_READ_KEY)
admin_key=$(dotenv_get "$WORKER_ENV" TOKEN_MANAGER_ADMIN_KEY)
upstash_token=$(dotenv_get "$WORKER_ENV" UPSTASH_REDIS_REST_TOKEN)
cat <<EOF

  token-manager is running at $WORKER_URL
  status page   $WORKER_URL/dashboard   (sign in with the read key below)

  read key   $read_key
  admin key  $admin_key
  (dev-only keys, from .dev.vars)

  Supabase REST  $POSTGREST_URL   PostgreSQL $DATABASE_URL
  Upstash REST   $UPSTASH_URL    token $upstash_token
  Redis          $REDIS_URL   22 demo tokens (token:*), reseed: scripts/seed-demo-tokens.sh
  Tradovate auth $TRADOVATE_URL   tradovate-local: 3 demo sessions, each shared by a main account and its sub-accounts

  Try:
    curl -s -H "Authorization: Bearer $read_key" '$WORKER_URL/token-manager?action=status'
    curl -s -X POST -H "Authorization: Bearer $admin_key" '$WORKER_URL/token-manager?action=sync'
    curl -s -H "Authorization: Bearer $read_key" '$WORKER_URL/v1/accounts'      # every account's health
    curl -s -H "Authorization: Bearer $admin_key" '$WORKER_URL/v1/audit'        # who read which token
    curl -s '$WORKER_URL/__scheduled?cron=*/30+*+*+*+*'    # fire the sync cron now
    curl -s '$WORKER_URL/__scheduled?cron=*/5+*+*+*+*'     # fire the renew cron now (after a sync)
    curl -s -X POST -H "Authorization: Bearer $admin_key" '$WORKER_URL/v1/renew?dry_run=true'

  Changed src/? ./scripts/build-worker.sh   (the running Worker reloads the new build)
  Logs: ${LOG_DIR#"$REPO_ROOT"/}/    Stop: Ctrl-C here, or scripts/dev.sh stop

EOF

worker_pid=$(running_pid worker) || die "the Worker is not running (log: $(log_file worker))"
if ((${#STARTED_SERVICES[@]} == 0)); then
  echo "The dev stack was already running (scripts/dev.sh stop stops it)." >&2
  exit 0
fi
echo "---- following $(log_file worker) ----" >&2
tail -n +1 -f "$(log_file worker)" &
follow_pid=$!
# Wait while the Worker runs; Ctrl-C lands in the INT trap, which stops what we started.
while pid_alive "$worker_pid"; do
  sleep 1
done
die "the Worker exited (log: $(log_file worker))"
