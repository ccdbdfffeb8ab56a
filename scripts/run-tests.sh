#!/usr/bin/env bash
# Sets up the machine and runs the whole test suite: a release build (unit, integration, interop,
# docker, install and valgrind tests), the same suite under ASan+UBSan, the client, engine and
# transport tests under ThreadSanitizer, and a short libFuzzer run of every decoder. Exits
# non-zero if anything fails. Used by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
jobs=$(nproc)

bash scripts/setup-deps.sh

status=0
run_suite() { # name, cmake args...
  local name=$1; shift
  echo "=== build: $name"
  cmake -S "$root" -B "$root/build/$name" "$@" >/dev/null
  cmake --build "$root/build/$name" -j"$jobs"
  echo "=== test: $name"
  if ! ctest --test-dir "$root/build/$name" --output-on-failure -j"$jobs" ${CTEST_ARGS:-}; then
    status=1
  fi
}

run_suite release -DCMAKE_BUILD_TYPE=RelWithDebInfo
run_suite asan -DCMAKE_BUILD_TYPE=Debug -DAGX_SANITIZE=ON
run_suite tsan -DCMAKE_BUILD_TYPE=Debug -DAGX_TSAN=ON
run_suite fuzz -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=clang -DAGX_FUZZ=ON

if [ $status -ne 0 ]; then
  echo "run-tests: FAILED (see the CTest output above)"
fi
exit $status
