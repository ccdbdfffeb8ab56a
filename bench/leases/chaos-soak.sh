#!/usr/bin/env bash
# Kill -9 soak (see tests/leases/chaos.c): 20 SIGKILLed hosts per backend, the five backends in
# parallel; per backend one JSON line of figures — sandboxes alive at the kills, what still ran /
# existed after the short expiry + 30 s with no gc, and what one `agentix gc` left of the long run.
# Needs dockerd and the test images (tests/docker/README.md). Not part of the test suite.
# Usage: bench/leases/chaos-soak.sh [build dir] [kills]   (default: build/dev, 20)
set -uo pipefail
build=${1:-build/dev}
kills=${2:-20}
out=$(mktemp -d "${TMPDIR:-/tmp}/agx-chaos-soak.XXXXXX")
pids=()
for b in local docker e2b daytona k8s-pool; do
  "$build/tests/bin/chaos" "$b" --kills "$kills" >"$out/$b.json" 2>"$out/$b.log" &
  pids+=($!)
done
status=0
for p in "${pids[@]}"; do wait "$p" || status=1; done
for b in local docker e2b daytona k8s-pool; do
  if [ -s "$out/$b.json" ]; then cat "$out/$b.json"; else echo "{\"chaos\":\"$b\",\"failed\":true}"; fi
  grep -h "CHECK failed" "$out/$b.log" || true
done
echo "logs: $out"
exit $status
