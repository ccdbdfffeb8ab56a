#!/usr/bin/env bash
# Kill -9 soak (see tests/leases/chaos.c): 20 SIGKILLed hosts per backend, one backend after the
# other; per backend one JSON line of figures — sandboxes alive at the kills, what still ran /
# existed after the short expiry + 30 s with no gc, and what one `agentix gc` left of the long
# run. One at a time, unlike CI's chaos_all (5 kills, the five at once): with 20 kills each on two
# cores, the five together put dockerd tens of seconds behind on container starts (a container a
# dead host created starts that late, then runs its expiry from its start), which measures the
# daemon's backlog rather than what the hosts left. Needs dockerd and the test images
# (tests/docker/README.md). Not part of the test suite.
# Usage: bench/leases/chaos-soak.sh [build dir] [kills]   (default: build/dev, 20)
set -uo pipefail
build=${1:-build/dev}
kills=${2:-20}
status=0
for b in local docker e2b daytona k8s-pool; do
  log=$(mktemp "${TMPDIR:-/tmp}/agx-soak-$b.XXXXXX")
  if "$build/tests/bin/chaos" "$b" --kills "$kills" 2>"$log"; then
    rm -f "$log"
  else
    status=1
    grep -h "CHECK failed" "$log" || true
    echo "log: $log"
  fi
done
exit $status
