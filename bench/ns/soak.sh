#!/usr/bin/env bash
# soak.sh — the ns backend's long create/delete soak (not in CI; CI runs 100 cycles): N sequential
# create → delete cycles, half with network none and half private, on agx-test-busybox:1, then the
# leftovers counted from the kernel (mounts in /proc/self/mountinfo, the cgroup trees, the process
# table, `ip link` and pins, the state dir) — the same program and checks as CTest test_ns_cycles,
# with figures per mode: wall time, cycles/s, create and delete p50/p95, the host's descriptors
# and RSS before and after. Needs what `ctest -L ns` needs (root, cgroups, pasta, dockerd).
# Usage: bench/ns/soak.sh BUILD_DIR [N]   (default N = 1000)
set -euo pipefail
build=${1:?usage: bench/ns/soak.sh BUILD_DIR [N]}
n=${2:-1000}
prog=$build/tests/bin/test_ns
[ -x "$prog" ] || { echo "soak.sh: $prog not built (cmake --build $build --target test_ns)" >&2; exit 2; }
echo "soak: $n cycles ($((n / 2)) per network mode)"
AGX_NS_CYCLES=$((n / 2)) exec "$prog" cycles
