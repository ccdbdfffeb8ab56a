#!/usr/bin/env bash
# The main job: installs what is needed, builds agentix, and runs examples/hello — a C host that
# creates a real sandbox on the `local` backend (or --backend NAME), makes real remote calls into it
# (agentix.bash::run and a user module's unary, stream and bidi functions) and deletes it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-deps.sh --build
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build/release -j"$(nproc)" --target hello-host agentix-server agentix-worker \
  agentix-backend-local agxmod_agentix_bash agxmod_agentix_files
exec build/release/examples/hello/hello-host "$@"
