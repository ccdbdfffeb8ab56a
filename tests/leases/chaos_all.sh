#!/usr/bin/env bash
# Kill -9 chaos on every backend at once (tests/leases/chaos.c): the five chaos programs run in
# parallel, so their settle waits overlap and the run costs about one; each prints one JSON line of
# figures counted with its backend's own view. Fails if any backend fails; its CHECK lines follow.
# CTest runs it with 5 kills per backend (chaos_all); bench/leases/chaos-soak.sh with 20.
# Usage: tests/leases/chaos_all.sh CHAOS_PROGRAM KILLS
set -uo pipefail
chaos=$1
kills=$2
out=$(mktemp -d "${TMPDIR:-/tmp}/agx-chaos.XXXXXX")
pids=()
for b in local docker e2b daytona k8s-pool; do
  "$chaos" "$b" --kills "$kills" >"$out/$b.json" 2>"$out/$b.log" &
  pids+=($!)
done
status=0
failed=()
i=0
for b in local docker e2b daytona k8s-pool; do
  if wait "${pids[$i]}"; then failed+=(""); else failed+=("$b"); status=1; fi
  i=$((i + 1))
done
i=0
for b in local docker e2b daytona k8s-pool; do
  if [ -s "$out/$b.json" ]; then cat "$out/$b.json"; else echo "{\"chaos\":\"$b\",\"failed\":true}"; fi
  grep -h "CHECK failed" "$out/$b.log" || true
  # A failing backend's log ends with what it left and why (chaos.c describe_leftovers).
  if [ -n "${failed[$i]}" ]; then echo "--- $b.log (last 80 lines)"; tail -n 80 "$out/$b.log"; fi
  i=$((i + 1))
done
if [ $status -eq 0 ]; then rm -rf "$out"; else echo "logs: $out"; fi
exit $status
