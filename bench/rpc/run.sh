#!/bin/sh
# run.sh — bench/rpc in one run: agentix (agentix-bench-rpc against a real agentix-server and
# worker) next to its two anchors (anchors/README.md) — the physical floor (C, loopback TCP plus a
# pipe hop) and the official node socket.io server + client with the msgpack parser — then a table
# with the ratios the targets are read from:
#   sequential unary p50 within 1.5x of the floor; pipelined calls/s at least 2x node;
#   stream of 64 KiB items (1 GiB by default, like the files rows) at least 0.85x the floor's, its
#   first 128 MiB reported beside it; agentix.files download (1 GiB) at least 0.8x the same floor;
#   small-item stream and bidi echo read as ratios to the floor's same-shape variants.
# Usage: bench/rpc/run.sh <build dir> [args for all three: --n N --pipelined M --inflight W
#        --stream-items K --item-bytes B --payload P --small-items S --bidi-items D --file-bytes F;
#        each anchor gets only the ones it has rows for]
# RPC_BENCH_REPEAT=R (default 3) runs the three R times, interleaved, and reports each figure's
# median, so a burst of load from elsewhere on the machine does not decide a ratio.
# Needs the build's agentix-bench-rpc, agentix-bench-floor, agentix-server, agentix-worker and
# demo module, node, and the anchor's node_modules (scripts/setup.d/bench-npm.sh).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
build=${1:?usage: run.sh <build dir> [--n N --pipelined M --stream-items K ...]}
shift
build=$(cd "$build" && pwd)
repeat=${RPC_BENCH_REPEAT:-3}
case $repeat in ''|*[!0-9]*|0) echo "run.sh: RPC_BENCH_REPEAT must be a positive integer" >&2; exit 2;; esac
ours_all='' floor_all='' node_all='' base_all=''
# RPC_BENCH_BASE=<another build dir> (optional): that build's agentix-bench-rpc runs in the same
# loop, between the others, so a change is read against its base under the same load.
base=${RPC_BENCH_BASE:-}
[ -z "$base" ] || base=$(cd "$base" && pwd)
# Each anchor gets the arguments it has rows for (the arguments are flag/number pairs, so plain
# word splitting is enough): node has no small-item, bidi or files rows, the floor (and a base
# build, which may predate it) no files row.
strip() { # strip "flag|flag" args...
  pat=$1 out='' skip=''
  shift
  for a in "$@"; do
    if [ -n "$skip" ]; then skip=''; continue; fi
    if echo "$a" | grep -Eqx -- "$pat"; then skip=1; continue; fi
    out="$out $a"
  done
  echo "$out"
}
node_args=$(strip '--small-items|--bidi-items|--file-bytes' "$@")
floor_args=$(strip '--file-bytes' "$@")
base_args=$floor_args # a base build may predate the files row
i=0
while [ "$i" -lt "$repeat" ]; do
  ours_all="$ours_all$("$build/bench/agentix-bench-rpc" --server "$build/lib/agentix/bin/agentix-server" \
            --modules "$build/tests/modules" "$@")
"
  floor_all="$floor_all$("$build/bench/agentix-bench-floor" $floor_args)
"
  [ -z "$base" ] || base_all="$base_all$("$base/bench/agentix-bench-rpc" \
            --server "$base/lib/agentix/bin/agentix-server" --modules "$base/tests/modules" $base_args)
"
  node_all="$node_all$(node "$here/anchors/node/client.js" $node_args)
"
  i=$((i + 1))
done
printf '%s%s%s%s' "$ours_all" "$floor_all" "$node_all" "$base_all"
node - "$ours_all" "$floor_all" "$node_all" "$base_all" <<'JS'
// Each figure is the median over the runs (latencies and rates alike).
const median = (runs) => {
  const out = { ...runs[0] };
  for (const k of Object.keys(out)) {
    if (typeof out[k] !== "number") continue;
    const v = runs.map((r) => r[k]).sort((a, b) => a - b);
    out[k] = v[Math.floor(v.length / 2)];
  }
  return out;
};
const [ours, floor, nodeA, base] = process.argv.slice(2).map((s) =>
  s.trim() ? median(s.trim().split("\n").map((l) => JSON.parse(l))) : undefined);
console.log(`\nmedians of ${process.env.RPC_BENCH_REPEAT || 3} runs each`);
const f = (x) => (x === undefined ? "-" : String(x));
const r = (a, b) => (a && b ? (a / b).toFixed(2) + "x" : "-");
const rows = [
  ["unary p50 (us, seq)", ours.unary_p50_us, floor.unary_p50_us, nodeA.unary_p50_us,
   `ours/floor ${r(ours.unary_p50_us, floor.unary_p50_us)} (target <= 1.50x)`],
  ["unary p99 (us, seq)", ours.unary_p99_us, floor.unary_p99_us, nodeA.unary_p99_us,
   `ours/floor ${r(ours.unary_p99_us, floor.unary_p99_us)}`],
  [`pipelined calls/s (${ours.inflight} in flight)`, ours.pipelined_calls_per_s,
   floor.pipelined_calls_per_s, nodeA.pipelined_calls_per_s,
   `ours/node ${r(ours.pipelined_calls_per_s, nodeA.pipelined_calls_per_s)} (target >= 2.00x)`],
  [`stream MB/s (${ours.stream_item_bytes} B items)`, ours.stream_mb_per_s, floor.stream_mb_per_s,
   nodeA.stream_mb_per_s, `ours/floor ${r(ours.stream_mb_per_s, floor.stream_mb_per_s)} (target >= 0.85x)`],
  ["  its first 128 MiB (MB/s)", ours.stream_first_mb_per_s, floor.stream_first_mb_per_s, undefined,
   `ours/floor ${r(ours.stream_first_mb_per_s, floor.stream_first_mb_per_s)}`],
  ["stream small items/s (16 B)", ours.stream_small_items_per_s, floor.stream_small_items_per_s,
   undefined, `ours/floor ${r(ours.stream_small_items_per_s, floor.stream_small_items_per_s)}`],
  ["bidi echo items/s (32 out)", ours.bidi_items_per_s, floor.bidi_items_per_s, undefined,
   `ours/floor ${r(ours.bidi_items_per_s, floor.bidi_items_per_s)}`],
  [`files download MB/s (${(ours.files_download_bytes / 2 ** 30).toFixed(2)} GiB)`,
   ours.files_download_mb_per_s, floor.stream_mb_per_s, undefined,
   `ours/floor stream ${r(ours.files_download_mb_per_s, floor.stream_mb_per_s)} (target >= 0.80x)`],
  ["files upload MB/s (same size)", ours.files_upload_mb_per_s, floor.stream_mb_per_s, undefined,
   `ours/floor stream ${r(ours.files_upload_mb_per_s, floor.stream_mb_per_s)}`],
];
const w = [34, 12, 12, 12];
const pad = (s, n) => String(s).padEnd(n);
console.log("\n" + pad("measure", w[0]) + pad("agentix", w[1]) + pad("floor-c", w[2]) +
            pad("node", w[3]) + "ratio");
for (const row of rows)
  console.log(pad(row[0], w[0]) + pad(f(row[1]), w[1]) + pad(f(row[2]), w[2]) +
              pad(f(row[3]), w[3]) + row[4]);
const met = (ok) => (ok ? "met" : "MISSED");
console.log(`\ntargets: p50 ${met(ours.unary_p50_us <= 1.5 * floor.unary_p50_us)}, ` +
            `pipelined ${met(ours.pipelined_calls_per_s >= 2 * nodeA.pipelined_calls_per_s)}, ` +
            `stream ${met(ours.stream_mb_per_s >= 0.85 * floor.stream_mb_per_s)}, ` +
            `files ${met(ours.files_download_mb_per_s >= 0.8 * floor.stream_mb_per_s)}`);
if (base) {
  const keys = [["unary p50 (us, seq)", "unary_p50_us"], ["pipelined calls/s", "pipelined_calls_per_s"],
                ["stream MB/s", "stream_mb_per_s"], ["stream small items/s", "stream_small_items_per_s"],
                ["bidi echo items/s", "bidi_items_per_s"], ["files download MB/s", "files_download_mb_per_s"],
                ["files upload MB/s", "files_upload_mb_per_s"]];
  console.log("\nagainst RPC_BENCH_BASE (same runs): measure, base, this build, base/floor, this/floor");
  for (const [name, k] of keys)
    console.log(pad(name, w[0]) + pad(f(base[k]), w[1]) + pad(f(ours[k]), w[2]) +
                pad(r(base[k], floor[k] ?? floor.stream_mb_per_s), w[3]) +
                r(ours[k], floor[k] ?? floor.stream_mb_per_s));
}
JS
