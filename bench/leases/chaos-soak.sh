#!/usr/bin/env bash
# Kill -9 soak (see tests/leases/chaos.c): 20 SIGKILLed hosts per backend, the five backends in
# parallel (tests/leases/chaos_all.sh, which CTest runs with 5); per backend one JSON line of
# figures — sandboxes alive at the kills, what still ran / existed after the short expiry + 30 s
# with no gc, and what one `agentix gc` left of the long run. Needs dockerd and the test images
# (tests/docker/README.md). Not part of the test suite.
# Usage: bench/leases/chaos-soak.sh [build dir] [kills]   (default: build/dev, 20)
set -uo pipefail
build=${1:-build/dev}
kills=${2:-20}
exec bash "$(dirname "$0")/../../tests/leases/chaos_all.sh" "$build/tests/bin/chaos" "$kills"
