#!/usr/bin/env bash
# Admission control at scale (see tests/leases/admission_load.c): 2,000 tasks on the e2b backend
# against the E2B fake, which answers 429 with Retry-After above 6 creates/s; admission's cap 100
# and 5 creates/s, 150 threads, each task holding its sandbox 25 s so the cap binds. Prints one
# JSON line (peak live, creates in the busiest second, create requests per sandbox, 429s) and
# fails if a target is missed. About 7 minutes; not part of the test suite.
# Usage: bench/leases/admission.sh [build dir]   (default: build/dev)
set -euo pipefail
build=${1:-build/dev}
exec "$build/tests/bin/test_admission" --tasks 2000 --cap 100 --rate 5 --fake-limit 6 \
  --threads 150 --hold-ms 25000
