// anchor_node.js — the node anchor of bench/clients: the official socket.io-client holding N
// connections to the same agentix-server sandboxes from ONE node process, measured the way
// clients_run.c measures agentix: the first S connects one after another, the rest W at a time,
// then one `unary` demo::echo call on each (the agentix wire format: a binary msgpack attachment,
// PROTOCOL.md §1), then held; prints threads, RSS and fds per held connection, CPU per connect,
// latencies and failures as one JSON line.
// Usage: node --expose-gc anchor_node.js <targets file> <N> <inflight> <seq> <CA file or ->
// (the targets file has one "url token" line per sandbox). socket.io-client comes from the
// bench/rpc anchor's node_modules (scripts/setup.d/bench-npm.sh).
"use strict";
const fs = require("fs");
const path = require("path");
let io;
try {
  ({ io } = require(path.join(__dirname, "../rpc/anchors/node/node_modules/socket.io-client")));
} catch (e) {
  console.error(`node anchor: ${e.message.split("\n")[0]}; install it with scripts/setup.d/bench-npm.sh`);
  process.exit(1);
}

const TIMEOUT_MS = 60000;
const [targetsFile, nArg, inflightArg, seqArg, caArg] = process.argv.slice(2);
const targets = fs.readFileSync(targetsFile, "utf8").trim().split("\n").map((l) => {
  const [url, token] = l.trim().split(/\s+/);
  return { url, token };
});
const N = Number(nArg), inflight = Number(inflightArg), seq = Math.min(Number(seqArg), N);
const ca = caArg && caArg !== "-" ? fs.readFileSync(caArg) : undefined;

// ---- the smallest msgpack encoder the `unary` payload needs ----
function mpStr(s) {
  const b = Buffer.from(s, "utf8");
  if (b.length < 32) return Buffer.concat([Buffer.from([0xa0 | b.length]), b]);
  return Buffer.concat([Buffer.from([0xd9, b.length]), b]);
}
function mpUint(n) {
  if (n < 128) return Buffer.from([n]);
  const b = Buffer.alloc(5);
  b[0] = 0xce;
  b.writeUInt32BE(n, 1);
  return b;
}
function unaryPayload(callId, i) {
  return Buffer.concat([Buffer.from([0x85]), mpStr("call_id"), mpStr(callId), mpStr("target"),
    mpStr("demo::echo"), mpStr("shape"), mpStr("unary"), mpStr("args"), Buffer.from([0x91]),
    mpUint(i), mpStr("kwargs"), Buffer.from([0x80])]);
}

// ---- measurements ----
const statusField = (key) => {
  const m = fs.readFileSync("/proc/self/status", "utf8").match(new RegExp(`^${key}:\\s*(\\d+)`, "m"));
  return m ? Number(m[1]) : 0;
};
const fds = () => fs.readdirSync("/proc/self/fd").length;
const cpuUs = () => {
  const u = process.cpuUsage();
  return u.user + u.system;
};
const nowUs = () => Number(process.hrtime.bigint()) / 1000;
const pct = (arr, p) => {
  if (!arr.length) return 0;
  const s = Float64Array.from(arr).sort();
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};
const gc = () => { if (global.gc) global.gc(); };

let failures = 0, firstError = "";
const fail = (what, e) => {
  failures++;
  if (!firstError) firstError = `${what}: ${e && e.message ? e.message : e}`.replace(/["\\\n]/g, "'");
};

function connect(i) {
  const t = targets[i % targets.length];
  return new Promise((resolve) => {
    const t0 = nowUs();
    const socket = io(t.url, { transports: ["websocket"], auth: { token: t.token }, forceNew: true,
      multiplex: false, reconnection: false, timeout: TIMEOUT_MS, ca });
    socket.once("connect", () => resolve({ socket, us: nowUs() - t0 }));
    socket.once("connect_error", (e) => { fail("connect", e); socket.close(); resolve({ socket: null, us: nowUs() - t0 }); });
  });
}

function call(socket, i) {
  return new Promise((resolve) => {
    const t0 = nowUs();
    const timer = setTimeout(() => { fail("call", "timeout"); done(); }, TIMEOUT_MS);
    const onResult = () => { clearTimeout(timer); done(); };
    const onError = (b) => { clearTimeout(timer); fail("call", "unary:error"); done(); };
    function done() {
      socket.off("unary:result", onResult);
      socket.off("unary:error", onError);
      resolve(nowUs() - t0);
    }
    socket.on("unary:result", onResult);
    socket.on("unary:error", onError);
    socket.emit("unary", unaryPayload("c" + i, i % 100000));
  });
}

// Runs f(i) for i in [from, to) with at most w in flight.
async function windowed(from, to, w, f) {
  let next = from;
  const lane = async () => { while (next < to) await f(next++); };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(w, to - from)) }, lane));
}

async function main() {
  const sockets = new Array(N).fill(null), connUs = new Array(N).fill(0), callUs = [];
  gc();
  const threads0 = statusField("Threads"), fds0 = fds(), rss0 = process.memoryUsage().rss;
  const cpu0 = cpuUs();
  const one = async (i) => { const r = await connect(i); sockets[i] = r.socket; connUs[i] = r.us; };
  for (let i = 0; i < seq; i++) await one(i);
  const w0 = nowUs();
  await windowed(seq, N, inflight, one);
  const wall = (nowUs() - w0) / 1e6;
  const cpu1 = cpuUs();
  await windowed(0, N, inflight, async (i) => { if (sockets[i]) callUs.push(await call(sockets[i], i)); });
  await new Promise((r) => setTimeout(r, 1000));
  gc();
  const rss1 = process.memoryUsage().rss, threads1 = statusField("Threads"), fds1 = fds();
  const r1 = (x) => Math.round(x * 10) / 10;
  console.log(JSON.stringify({
    side: "node", "socket.io-client": require(path.join(__dirname, "../rpc/anchors/node/node_modules/socket.io-client/package.json")).version,
    node: process.versions.node, tls: !!ca, n: N, sandboxes: targets.length, inflight,
    threads: threads1, engine_threads: threads1 - threads0,
    rss_per_conn_kib: r1((rss1 - rss0) / 1024 / N), cpu_per_connect_us: r1((cpu1 - cpu0) / N),
    seq_connect_p50_us: r1(pct(connUs.slice(0, seq), 50)), seq_connect_p99_us: r1(pct(connUs.slice(0, seq), 99)),
    connect_p50_us: r1(pct(connUs.slice(seq), 50)), connect_p99_us: r1(pct(connUs.slice(seq), 99)),
    connect_wall_s: Math.round(wall * 1000) / 1000, call_p50_us: r1(pct(callUs, 50)),
    fds_per_conn: Math.round(((fds1 - fds0) / N) * 100) / 100, failures, first_error: firstError,
  }));
  for (const s of sockets) if (s) s.close();
  process.exit(0);
}

main().catch((e) => {
  console.error(`node anchor: ${e.stack || e}`);
  process.exit(1);
});
