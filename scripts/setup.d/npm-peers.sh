#!/usr/bin/env bash
# Installs the official Socket.IO npm peers (socket.io, socket.io-client, ws) pinned by
# tests/transport/package-lock.json, used by the transport interop tests. Runs `npm ci` only when
# node_modules is missing, so repeated setup is free. Called by scripts/setup-deps.sh.
set -euo pipefail
dir="$(cd "$(dirname "$0")/../../tests/transport" && pwd)"
if [ ! -d "$dir/node_modules" ]; then
  echo "npm-peers: installing the Socket.IO peers in $dir"
  (cd "$dir" && npm ci --no-audit --no-fund)
fi
