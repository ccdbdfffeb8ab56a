#!/usr/bin/env bash
# Fails when a word of the runtime protocol (an event name, a payload or frame field, a worker
# frame type: the string macros of runtime/wire/protocol.h; a framework error type: error.h's
# AGX_REMOTE_*) is spelled as a string literal by the code that speaks the protocol — the client,
# the server, the worker, the wire library, the fleet layer and the built-in modules — instead of
# through its one definition.
# Usage: scripts/check-vocabulary.sh [source root]
set -euo pipefail
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$root"
header=runtime/wire/protocol.h
speakers="runtime/client runtime/server runtime/worker runtime/wire core/fleet"
protocol_words=$(sed -n 's/^#define AGX_[A-Z_]* "\([^"]*\)".*/\1/p' "$header" | sort -u)
error_types=$(sed -n 's/^#define AGX_REMOTE_[A-Z_]* "\([^"]*\)".*/\1/p' include/agentix/error.h)
[ -n "$protocol_words" ] && [ -n "$error_types" ] || { echo "check-vocabulary: no words found"; exit 1; }
bad=0 n=0
check() { # word, where it is defined, folders…
  local w=$1 def=$2; shift 2
  n=$((n + 1))
  hits=$(grep -rnF --include='*.c' --include='*.h' "\"$w\"" "$@" | grep -v "^$header:" |
           grep -Ev '^[^:]+:[0-9]+:[[:space:]]*(/\*|\*|//)' || true) # comments may quote them
  if [ -n "$hits" ]; then
    echo "\"$w\" is spelled outside $def:"
    echo "$hits" | sed 's/^/  /'
    bad=1
  fi
}
for w in $protocol_words; do check "$w" "$header" $speakers; done
# Error types also reach the built-in modules (agx_ctx_fail) and hosts (err->remote_type).
for w in $error_types; do check "$w" include/agentix/error.h $speakers runtime/modules; done
if [ $bad -ne 0 ]; then
  echo "check-vocabulary: FAILED (use the macros of $header)"
  exit 1
fi
echo "check-vocabulary: OK ($n words, each spelled only in $header or error.h's AGX_REMOTE_*)"
