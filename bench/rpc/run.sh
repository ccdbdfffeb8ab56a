#!/bin/sh
# run.sh — bench/rpc in one run: agentix (agentix-bench-rpc against a real agentix-server and
# worker) next to its two anchors (anchors/README.md) — the physical floor (C, loopback TCP plus a
# pipe hop) and the official node socket.io server + client with the msgpack parser — then a table
# with the ratios the targets are read from:
#   sequential unary p50 within 1.5x of the floor; pipelined calls/s at least 2x node;
#   stream at least 1 GB/s (1000 MB/s) for 64 KiB items.
# Usage: bench/rpc/run.sh <build dir> [args for all three: --n N --pipelined M --inflight W
#        --stream-items K --item-bytes B --payload P]
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
ours_all='' floor_all='' node_all=''
i=0
while [ "$i" -lt "$repeat" ]; do
  ours_all="$ours_all$("$build/bench/agentix-bench-rpc" --server "$build/lib/agentix/bin/agentix-server" \
            --modules "$build/tests/modules" "$@")
"
  floor_all="$floor_all$("$build/bench/agentix-bench-floor" "$@")
"
  node_all="$node_all$(node "$here/anchors/node/client.js" "$@")
"
  i=$((i + 1))
done
printf '%s%s%s' "$ours_all" "$floor_all" "$node_all"
node - "$ours_all" "$floor_all" "$node_all" <<'JS'
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
const [ours, floor, nodeA] = process.argv.slice(2).map((s) =>
  median(s.trim().split("\n").map((l) => JSON.parse(l))));
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
   nodeA.stream_mb_per_s, `ours ${r(ours.stream_mb_per_s, 1000)} of 1 GB/s (target >= 1.00x)`],
  ["stream small items/s", ours.stream_small_items_per_s, undefined, undefined, ""],
  ["bidi echo items/s", ours.bidi_items_per_s, undefined, undefined, ""],
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
            `stream ${met(ours.stream_mb_per_s >= 1000)}`);
JS
