#!/usr/bin/env bash
# Fails on any #include that goes up a layer. The layers and what each may include are the table
# in docs/ARCHITECTURE.md between the "layers: begin/end" markers — the one place they are kept;
# this script reads them from there, so the doc and the check cannot drift apart.
#
# A file belongs to the row whose path is the longest prefix of its own. It may include files of
# its own layer and of the layers its row lists under "may include"; a quoted include without a
# '/' is a file beside it. Every file of core/, runtime/, backends/, cli/, include/ and examples/
# must belong to a row. Given a build's library folder too, it checks calls as well as includes:
# the support libraries a row builds (the **agx_…** names in bold in its "builds into" column) may
# call into the libraries of the layers they may include, never into another's; the public API's
# functions count as the layers "runtime API" and "host API".
# Usage: scripts/check-layers.sh [source root [build libdir]]
set -euo pipefail
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
libdir=${2:-}
doc="$root/docs/ARCHITECTURE.md"

declare -A path_layer=() allowed=() archives=()
rows=0
while IFS='|' read -r _ layer paths _lib may _; do
  layer=$(echo "$layer" | xargs)
  case "$layer" in ''|layer|---*) continue ;; esac
  rows=$((rows + 1))
  # `a/{b,c}.h`, `d/` → brace-expanded paths (eval only sees what the doc's table holds)
  for p in $(echo "$paths" | grep -o '`[^`]*`' | tr -d '`'); do
    for e in $(eval "echo $p"); do path_layer[$e]=$layer; done
  done
  allowed[$layer]="|$layer|$(echo "$may" | sed 's/ *, */|/g; s/^ *//; s/ *$//')|"
  archives[$layer]=$(echo "$_lib" | { grep -o '\*\*agx_[a-z_]*\*\*' || true; } | tr -d '*' | sort -u | tr '\n' ' ')
done < <(sed -n '/<!-- layers: begin -->/,/<!-- layers: end -->/p' "$doc" | grep '^|')
[ "$rows" -gt 0 ] || { echo "check-layers: no layer table found in $doc"; exit 1; }

layer_of() { # path relative to root → its layer, by the longest matching row path
  local f=$1 best="" bestlen=0 p
  for p in "${!path_layer[@]}"; do
    if [[ $f == "$p" || ( $p == */ && $f == "$p"* ) ]] && [ ${#p} -gt $bestlen ]; then
      best=${path_layer[$p]}; bestlen=${#p}
    fi
  done
  echo "$best"
}

bad=0 files=0
cd "$root"
while IFS= read -r f; do
  files=$((files + 1))
  own=$(layer_of "$f")
  if [ -z "$own" ]; then
    echo "$f: not in the layer table of docs/ARCHITECTURE.md"; bad=1; continue
  fi
  while IFS= read -r inc; do
    [[ $inc == */* ]] || continue # beside the file
    target=$inc
    [ -e "$target" ] || target="include/$inc"
    [ -e "$target" ] || [ -e "$target.in" ] || [[ $inc == agentix/* ]] || {
      echo "$f: includes \"$inc\", which is no file of the tree"; bad=1; continue; }
    tl=$(layer_of "$target")
    [ -n "$tl" ] || tl=$(layer_of "$target.in")
    if [ -z "$tl" ]; then
      echo "$f: includes \"$inc\", which is in no layer"; bad=1
    elif [[ ${allowed[$own]} != *"|$tl|"* ]]; then
      echo "$f ($own) includes \"$inc\" ($tl): not allowed by the layer table"; bad=1
    fi
  done < <(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f")
done < <(find core runtime backends cli include examples -type f \( -name '*.c' -o -name '*.h' -o -name '*.h.in' \) | sort)

# Calls: what a layer's archives leave undefined must not be defined by a layer it may not use.
calls=0
if [ -n "$libdir" ]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  exported() { nm -D --defined-only "$libdir/$1" | awk 'NF == 3 {print $3}' | sort -u; }
  exported libagentix-runtime.so >"$tmp/api.runtime"
  exported libagentix.so | comm -23 - "$tmp/api.runtime" >"$tmp/api.host"
  for layer in "${!archives[@]}"; do
    for a in ${archives[$layer]}; do
      if [ ! -f "$libdir/lib$a.a" ]; then
        echo "check-layers: $libdir/lib$a.a missing (layer $layer)"; bad=1; continue
      fi
      nm --defined-only -g "$libdir/lib$a.a" | awk 'NF == 3 {print $3}' | sort -u >"$tmp/def.$a"
      nm -u "$libdir/lib$a.a" | awk '{print $2}' | sort -u >"$tmp/und.$a"
    done
  done
  for low in "${!archives[@]}"; do
    for a in ${archives[$low]}; do
      [ -f "$tmp/und.$a" ] || continue
      cp "$tmp/und.$a" "$tmp/calls"
      for api in runtime host; do # the public API is reached through its headers' layers
        [[ ${allowed[$low]} == *"|$api API|"* ]] &&
          comm -23 "$tmp/calls" "$tmp/api.$api" >"$tmp/rest" && mv "$tmp/rest" "$tmp/calls"
      done
      for high in "${!archives[@]}"; do
        [[ ${allowed[$low]} == *"|$high|"* ]] && continue
        for b in ${archives[$high]}; do
          [ -f "$tmp/def.$b" ] || continue
          calls=$((calls + 1))
          up=$(comm -12 "$tmp/calls" "$tmp/def.$b" | tr '\n' ' ')
          if [ -n "$up" ]; then
            echo "$a ($low) calls into $b ($high): $up"; bad=1
          fi
        done
      done
    done
  done
fi

if [ $bad -ne 0 ]; then
  echo "check-layers: FAILED ($files files, $rows layers; see docs/ARCHITECTURE.md)"
  exit 1
fi
echo "check-layers: OK ($files files, $rows layers, no include goes up a layer;" \
     "$calls library pairs without an upward call)"
