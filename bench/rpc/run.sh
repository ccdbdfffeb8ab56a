#!/bin/sh
# run.sh — bench/rpc in one run: agentix (agentix-bench-rpc against a real agentix-server and
# worker) next to its two anchors (anchors/README.md) — the physical floor (C, loopback TCP plus a
# pipe hop) and the official node socket.io server + client with the msgpack parser — then a table
# with the ratios the targets are read from:
#   sequential unary p50 within 1.5x of the floor; pipelined calls/s at least 2x node;
#   stream at least 1 GB/s (1000 MB/s) for 64 KiB items.
# Usage: bench/rpc/run.sh <build dir> [extra args for all three, e.g. --n 5000]
# Needs the build's agentix-bench-rpc, agentix-bench-floor, agentix-server, agentix-worker and
# demo module, node, and the anchor's node_modules (scripts/setup.d/bench-npm.sh).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
build=${1:?usage: run.sh <build dir> [--n N --pipelined M --stream-items K ...]}
shift
build=$(cd "$build" && pwd)
ours_json=$("$build/bench/agentix-bench-rpc" --server "$build/lib/agentix/bin/agentix-server" \
            --modules "$build/tests/modules" "$@")
floor_json=$("$build/bench/agentix-bench-floor" "$@")
node_json=$(node "$here/anchors/node/client.js" "$@")
printf '%s\n%s\n%s\n' "$ours_json" "$floor_json" "$node_json"
node - "$ours_json" "$floor_json" "$node_json" <<'JS'
const [ours, floor, nodeA] = process.argv.slice(2).map((s) => JSON.parse(s));
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
