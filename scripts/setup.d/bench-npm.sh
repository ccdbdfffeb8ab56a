#!/usr/bin/env bash
# Installs the Node anchor of the RPC benchmark (bench/rpc/anchors/node: socket.io, socket.io-client
# and socket.io-msgpack-parser, pinned by its package-lock.json) when node_modules is missing.
set -euo pipefail
dir="$(cd "$(dirname "$0")/../.." && pwd)/bench/rpc/anchors/node"
[ -d "$dir/node_modules" ] && exit 0
command -v npm >/dev/null 2>&1 || { echo "bench-npm: npm is not installed (see scripts/setup-deps.sh)" >&2; exit 1; }
echo "bench-npm: npm ci in $dir"
(cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
