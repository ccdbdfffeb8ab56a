#!/usr/bin/env bash
# Fails when a word of the runtime protocol (an event name, a payload or frame field, a worker
# frame type, a framework error type: the string macros of runtime/wire/protocol.h) is spelled as
# a string literal by the code that speaks the protocol — the client, the server, the worker, the
# wire library and the fleet layer — instead of through protocol.h, its one definition.
# Usage: scripts/check-vocabulary.sh [source root]
set -euo pipefail
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$root"
header=runtime/wire/protocol.h
words=$(sed -n 's/^#define AGX_[A-Z_]* "\([^"]*\)".*/\1/p' "$header" | sort -u)
[ -n "$words" ] || { echo "check-vocabulary: no words found in $header"; exit 1; }
bad=0 n=0
for w in $words; do
  n=$((n + 1))
  hits=$(grep -rnF --include='*.c' --include='*.h' "\"$w\"" runtime/client runtime/server \
           runtime/worker runtime/wire core/fleet | grep -v "^$header:" |
           grep -Ev '^[^:]+:[0-9]+:[[:space:]]*(/\*|\*|//)' || true) # comments may quote them
  if [ -n "$hits" ]; then
    echo "the protocol word \"$w\" is spelled outside $header:"
    echo "$hits" | sed 's/^/  /'
    bad=1
  fi
done
if [ $bad -ne 0 ]; then
  echo "check-vocabulary: FAILED (use the macros of $header)"
  exit 1
fi
echo "check-vocabulary: OK ($n words, each spelled only in $header)"
