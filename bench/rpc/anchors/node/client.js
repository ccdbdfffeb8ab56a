// client.js — the Node anchor of bench/rpc: starts server.js in a second process, connects with
// socket.io-client (msgpack parser, websocket transport only, 127.0.0.1) and measures
//   - unary: sequential round trips of a 64-byte payload acked back (p50/p99 latency, µs);
//   - pipelined: calls/s with 64 calls in flight;
//   - stream: MB/s of 64 KiB items pushed by the server, 64 unacked at most.
// Prints one JSON line. Usage: node client.js [--n N] [--pipelined M] [--stream-items K]
//   [--payload BYTES] [--inflight W] [--item-bytes B]
"use strict";
const path = require("path");
const { spawn } = require("child_process");
let io, parser;
try {
  ({ io } = require("socket.io-client"));
  parser = require("socket.io-msgpack-parser");
} catch (e) {
  console.error(`node anchor: ${e.message.split("\n")[0]}; install the anchor with scripts/setup.d/bench-npm.sh`);
  process.exit(1);
}

const CALL_TIMEOUT_MS = 30000;

function parseArgs(argv) {
  // streamItems: 1 GiB of 64 KiB items, as STREAM_ITEMS_DEFAULT in bench/rpc/rows.h
  const opts = { n: 2000, pipelined: 20000, streamItems: 16384, payload: 64, inflight: 64, itemBytes: 65536 };
  const names = { "--n": "n", "--pipelined": "pipelined", "--stream-items": "streamItems",
    "--payload": "payload", "--inflight": "inflight", "--item-bytes": "itemBytes" };
  for (let i = 2; i < argv.length; i += 2) {
    const key = names[argv[i]];
    const value = Number(argv[i + 1]);
    if (!key || !Number.isInteger(value) || value < 0 || value > 1e8) {
      throw new Error(`bad argument ${argv[i]} ${argv[i + 1] ?? ""}; see the usage at the top of client.js`);
    }
    opts[key] = value;
  }
  if (opts.n < 1 || opts.inflight < 1 || opts.payload < 1 || opts.itemBytes < 1) {
    throw new Error("--n, --inflight, --payload and --item-bytes must be at least 1");
  }
  return opts;
}

function startServer() {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(__dirname, "server.js"), "0"], {
      stdio: ["ignore", "pipe", "inherit", "ipc"],
    });
    let out = "";
    const timer = setTimeout(() => reject(new Error("server.js did not report its port within 10 s")), 10000);
    child.on("exit", (code) => reject(new Error(`server.js exited with ${code} before listening`)));
    child.stdout.on("data", (d) => {
      out += d;
      const nl = out.indexOf("\n");
      if (nl >= 0) {
        clearTimeout(timer);
        resolve({ child, port: JSON.parse(out.slice(0, nl)).port });
      }
    });
  });
}

function connect(port) {
  return new Promise((resolve, reject) => {
    const socket = io(`http://127.0.0.1:${port}`, { transports: ["websocket"], parser, reconnection: false, timeout: 10000 });
    socket.on("connect", () => resolve(socket));
    socket.on("connect_error", reject);
  });
}

function call(socket, payload) {
  return new Promise((resolve, reject) => {
    socket.timeout(CALL_TIMEOUT_MS).emit("rpc", payload, (err, reply) => (err ? reject(err) : resolve(reply)));
  });
}

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function unary(socket, n, payload) {
  for (let i = 0; i < Math.min(200, n); i++) await call(socket, payload); // warm-up
  const us = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    const reply = await call(socket, payload);
    us[i] = Number(process.hrtime.bigint() - t0) / 1000;
    if (!Buffer.isBuffer(reply) || reply.length !== payload.length) throw new Error("echo mismatch");
  }
  us.sort();
  return { p50: percentile(us, 50), p99: percentile(us, 99) };
}

function pipelined(socket, total, inflight, payload) {
  return new Promise((resolve, reject) => {
    if (total === 0) return resolve(0);
    let sent = 0;
    let done = 0;
    const t0 = process.hrtime.bigint();
    const send = () => {
      sent++;
      socket.timeout(CALL_TIMEOUT_MS).emit("rpc", payload, (err) => {
        if (err) return reject(err);
        done++;
        if (done === total) return resolve(total / (Number(process.hrtime.bigint() - t0) / 1e9));
        if (sent < total) send();
      });
    };
    while (sent < Math.min(inflight, total)) send();
  });
}

function stream(socket, count, size, window) {
  return new Promise((resolve, reject) => {
    if (count === 0) return resolve(0);
    let bytes = 0;
    const onItem = (item, ack) => {
      bytes += item.length;
      ack();
    };
    socket.on("item", onItem);
    const t0 = process.hrtime.bigint();
    socket.timeout(CALL_TIMEOUT_MS * 10).emit("stream", { count, size, window }, (err) => {
      socket.off("item", onItem);
      if (err) return reject(err);
      resolve(bytes / 1e6 / (Number(process.hrtime.bigint() - t0) / 1e9));
    });
  });
}

async function main() {
  const opts = parseArgs(process.argv);
  const { child, port } = await startServer();
  child.removeAllListeners("exit");
  let socket;
  try {
    socket = await connect(port);
    const payload = Buffer.alloc(opts.payload, 0x61);
    const lat = await unary(socket, opts.n, payload);
    const cps = await pipelined(socket, opts.pipelined, opts.inflight, payload);
    const mbps = await stream(socket, opts.streamItems, opts.itemBytes, opts.inflight);
    const round = (x) => Math.round(x * 10) / 10;
    console.log(JSON.stringify({
      anchor: "node-socket.io",
      versions: { node: process.versions.node, "socket.io-client": require("socket.io-client/package.json").version },
      transport: "websocket",
      parser: "msgpack",
      payload_bytes: opts.payload,
      unary_calls: opts.n,
      unary_p50_us: round(lat.p50),
      unary_p99_us: round(lat.p99),
      pipelined_calls: opts.pipelined,
      inflight: opts.inflight,
      pipelined_calls_per_s: Math.round(cps),
      stream_items: opts.streamItems,
      stream_item_bytes: opts.itemBytes,
      stream_mb_per_s: round(mbps),
    }));
  } finally {
    if (socket) socket.close();
    child.kill("SIGTERM");
  }
}

main().catch((e) => {
  console.error(`node anchor: ${e.stack || e}`);
  process.exit(1);
});
