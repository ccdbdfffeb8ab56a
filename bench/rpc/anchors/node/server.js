// server.js — the Node anchor's server side for bench/rpc: a Socket.IO v4 server (msgpack parser,
// websocket transport only) on 127.0.0.1 that answers every "rpc" event by acking its payload, and
// serves "stream" requests by emitting items under a window of unacked items (the same flow-control
// shape agentix uses). Prints {"port":N} on stdout once listening; client.js starts it.
"use strict";
const http = require("http");
let Server, parser;
try {
  ({ Server } = require("socket.io"));
  parser = require("socket.io-msgpack-parser");
} catch (e) {
  console.error(`node anchor: ${e.message.split("\n")[0]}; install the anchor with scripts/setup.d/bench-npm.sh`);
  process.exit(1);
}

const port = Number(process.argv[2] || 0);
const httpServer = http.createServer((req, res) => {
  res.writeHead(404);
  res.end();
});
const io = new Server(httpServer, {
  parser,
  transports: ["websocket"],
  serveClient: false,
  maxHttpBufferSize: 64 * 1024 * 1024,
});

io.on("connection", (socket) => {
  socket.on("rpc", (payload, ack) => {
    if (typeof ack === "function") ack(payload);
  });
  // {count, size, window}: emits `count` items of `size` bytes, at most `window` unacked.
  socket.on("stream", (req, done) => {
    const count = Math.max(0, Math.min(Number(req.count) || 0, 1e7));
    const size = Math.max(1, Math.min(Number(req.size) || 65536, 16 * 1024 * 1024));
    const window = Math.max(1, Math.min(Number(req.window) || 64, 4096));
    const item = Buffer.alloc(size, 0x5a);
    let sent = 0;
    let acked = 0;
    const pump = () => {
      while (sent < count && sent - acked < window) {
        sent++;
        socket.emit("item", item, () => {
          acked++;
          if (acked === count) done({ count });
          else pump();
        });
      }
    };
    if (count === 0) done({ count });
    else pump();
  });
});

httpServer.listen(port, "127.0.0.1", () => {
  process.stdout.write(JSON.stringify({ port: httpServer.address().port }) + "\n");
});
const stop = () => io.close(() => process.exit(0));
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
process.on("disconnect", stop);
