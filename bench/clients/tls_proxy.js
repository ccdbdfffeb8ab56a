// tls_proxy.js — the TLS front of `agentix-bench-clients --tls`: for each agentix-server port given,
// a TLS listener on 127.0.0.1 (certificate from make_test_ca.sh: a throwaway CA, a server
// certificate for localhost/127.0.0.1) whose connections are piped to that port, without Nagle on
// either side. Prints the listening ports, comma-separated and in order, on one line once all
// listen. The bench runs one of these per sandbox, so no single process fronts every handshake.
// Usage: node tls_proxy.js <cert dir> <port>...
"use strict";
const fs = require("fs");
const net = require("net");
const path = require("path");
const tls = require("tls");

const [dir, ...backends] = process.argv.slice(2);
const opts = { key: fs.readFileSync(path.join(dir, "server.key")), cert: fs.readFileSync(path.join(dir, "server.crt")) };
const listening = backends.map((port) => new Promise((resolve) => {
  const server = tls.createServer(opts, (front) => {
    front.setNoDelay(true);
    const back = net.connect(Number(port), "127.0.0.1");
    back.setNoDelay(true);
    front.pipe(back).pipe(front);
    const end = () => { front.destroy(); back.destroy(); };
    front.on("error", end);
    back.on("error", end);
    front.on("close", end);
    back.on("close", end);
  });
  server.maxConnections = 1 << 20;
  server.listen(0, "127.0.0.1", 4096, () => resolve(server.address().port));
}));
Promise.all(listening).then((ports) => console.log(ports.join(",")));
process.on("SIGTERM", () => process.exit(0));
