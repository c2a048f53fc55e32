#!/usr/bin/env bash
# Prints the settings of a running stack as export lines, under the names the Rust tests read:
#
#   scripts/stack.sh up test && eval "$(scripts/env.sh test)" && cargo test --test suite e2e::
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"

[[ $# == 1 ]] || {
  echo "usage: $0 dev|test|bench" >&2
  exit 2
}
load_profile "$1"
for service in "${SERVICES[@]}"; do
  running_pid "$service" >/dev/null ||
    echo "warning: $service of the $PROFILE stack is not running (scripts/stack.sh up $PROFILE)" >&2
done
print_exports
