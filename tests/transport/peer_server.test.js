// peer_server.test.js — interop (b): the C client (client_peer on sio_client) against the official
// socket.io@4 server (pingInterval 300; a ping late by PING_TIMEOUT ends the connection). The full
// run checks the token (server middleware), binary round trips and acks both ways, ≥2 pings
// answered, the extra upgrade header, the connect-to override (dialled at 127.0.0.1 while Host
// stays the URL's), congestion and drain of the send queue, and a clean client disconnect. Then failure paths: wrong token,
// nothing listening, a server that never answers (connect timeout), a server that stops pinging,
// a CONNECT reply without sid, and https (certificate checked against the URL's host under
// connect-to; untrusted or mismatched certificates refused). Then a URL with a path prefix (the
// k8s apiserver proxy form) dials <prefix>/socket.io/, and a URL with a query is refused. Last,
// http+unix:// URLs reach a server on a Unix socket (with and without a prefix), and malformed
// socket paths are refused before dialling.
// Usage: node peer_server.test.js <client_peer binary>
'use strict';
const fs = require('fs');
const http = require('http');
const https = require('https');
const net = require('net');
const os = require('os');
const path = require('path');
const { execFileSync } = require('child_process');
const { Server } = require('socket.io');
const { WebSocketServer } = require('ws');
const { fail, check, within, startProgram, slow } = require('./peers');

// How long a ping may be late before the connection counts as dead: a bound for a loaded machine
// (pings still come every 300 ms, so the cycles the tests wait for are not slowed).
const PING_TIMEOUT = 5000 * slow;

const bin = process.argv[2] || fail('usage: peer_server.test.js <client_peer>');
const TOKEN = 'peer-token';

function listen(server) {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server.address().port)));
}

// Runs the C client to completion; resolves with its exit status and output lines.
async function runClient(args, ms = 20000) {
  if (!args.includes('--connect-timeout')) args = [...args, '--connect-timeout', String(10000 * slow)];
  const p = await startProgram(bin, args, /^/);
  const status = await within(ms * slow, 'the C client to finish', p.exited);
  return { code: status.code, lines: p.lines };
}

async function full() {
  const httpServer = http.createServer();
  const io = new Server(httpServer, { pingInterval: 300, pingTimeout: PING_TIMEOUT, transports: ['websocket'] });
  const seen = { pongs: 0, bulk: 0 };
  io.use((socket, next) => (socket.handshake.auth.token === TOKEN ? next() : next(new Error('invalid token'))));
  io.on('connection', (socket) => {
    seen.id = socket.id;
    seen.header = socket.handshake.headers['x-agentix-test'];
    seen.host = socket.handshake.headers.host;
    socket.conn.on('packet', (pk) => { if (pk.type === 'pong') seen.pongs++; });
    socket.on('echo', (buf, ack) => { socket.emit('echo', buf); ack('ok', buf); });
    socket.on('plain', (a, b, ack) => ack('plain-ok', a, b));
    socket.on('bulk', (buf) => { if (Buffer.isBuffer(buf) && buf.length === 256 * 1024) seen.bulk++; });
    socket.on('ready', () => {
      socket.timeout(5000 * slow).emit('question', Buffer.from('Q'), (err, word, bin2) => {
        seen.answer = !err && word === 'answer' && Buffer.isBuffer(bin2) && bin2.toString() === 'A!';
        const t = setInterval(() => {
          if (seen.pongs >= 2) { clearInterval(t); socket.emit('done'); }
        }, 50);
      });
    });
    socket.on('disconnect', (reason) => { seen.reason = reason; });
  });
  const port = await listen(httpServer);
  const res = await runClient(['http://agentix.test:4321', '--token', TOKEN,
    '--connect-to', `agentix.test:4321:127.0.0.1:${port}`, '--header', 'X-Agentix-Test=hello']);
  await within(3000 * slow, 'the server to see the disconnect', new Promise((resolve) => {
    const t = setInterval(() => { if (seen.reason) { clearInterval(t); resolve(); } }, 20);
  }));
  check(res.code === 0, `C client exited ${res.code} after the full exchange`);
  check(res.lines.includes(`CONNECTED ${seen.id}`), 'C client saw the server\'s socket id');
  check(seen.header === 'hello', 'extra upgrade header reached the server');
  check(seen.host === 'agentix.test:4321', `Host header stays the URL's under connect-to (${seen.host})`);
  check(seen.answer === true, 'server got the C client\'s binary ack');
  check(seen.pongs >= 2, `${seen.pongs} pings answered by the C client`);
  check(seen.bulk >= 3, `${seen.bulk} bulk events arrived after congestion and drain`);
  check(seen.reason === 'client namespace disconnect', `clean disconnect (${seen.reason})`);
  check(res.lines.includes('EXIT clean'), 'C client loop closed cleanly');
  io.close();
  return port;
}

async function expectEnd(what, args, expectSpec) {
  const res = await runClient([...args, '--expect', expectSpec]);
  check(res.code === 0, `${what}: the C client reported ${expectSpec} and exited cleanly`);
}

async function main() {
  const httpServer = http.createServer();
  const io = new Server(httpServer, { pingInterval: 300, pingTimeout: PING_TIMEOUT, transports: ['websocket'] });
  io.use((socket, next) => (socket.handshake.auth.token === TOKEN ? next() : next(new Error('invalid token'))));
  const port = await listen(httpServer);

  await full();
  await expectEnd('wrong token', [`http://127.0.0.1:${port}`, '--token', 'nope'], 'PROTOCOL:invalid token');
  await expectEnd('no token', [`http://127.0.0.1:${port}/`], 'PROTOCOL:invalid token');
  io.close();

  // Nothing listening.
  const closed = await listen(net.createServer());
  const probe = net.createServer();
  await new Promise((r) => probe.listen(0, '127.0.0.1', r));
  const freePort = probe.address().port;
  await new Promise((r) => probe.close(r));
  await expectEnd('nothing listening', [`http://127.0.0.1:${freePort}`], 'UNAVAILABLE:');

  // Accepts TCP, never answers the upgrade.
  const mute = net.createServer(() => {});
  const mutePort = await listen(mute);
  await expectEnd('connect timeout', [`http://127.0.0.1:${mutePort}`, '--connect-timeout', '500'], 'TIMEOUT:');
  mute.close();
  void closed;

  // A server that opens the session and then never pings.
  const quiet = new WebSocketServer({ host: '127.0.0.1', port: 0, path: '/socket.io/' });
  await new Promise((r) => quiet.on('listening', r));
  let quietPath;
  quiet.on('connection', (ws, req) => {
    quietPath = req.url;
    ws.send('0{"sid":"quietsid","upgrades":[],"pingInterval":200,"pingTimeout":200,"maxPayload":1000000}');
    ws.on('message', (m) => { if (m.toString().startsWith('40')) ws.send('40{"sid":"abc"}'); });
  });
  await expectEnd('server stops pinging', [`http://127.0.0.1:${quiet.address().port}`], 'TIMEOUT:no ping');
  check(quietPath === '/socket.io/?EIO=4&transport=websocket', `C client dials ${quietPath}`);
  quiet.close();

  // A v2-style CONNECT reply without sid.
  const old = new WebSocketServer({ host: '127.0.0.1', port: 0, path: '/socket.io/' });
  await new Promise((r) => old.on('listening', r));
  old.on('connection', (ws) => {
    ws.send('0{"sid":"oldsid","upgrades":[],"pingInterval":25000,"pingTimeout":20000}');
    ws.on('message', () => ws.send('40'));
  });
  await expectEnd('CONNECT reply without sid', [`http://127.0.0.1:${old.address().port}`], 'PROTOCOL:no sid');
  old.close();
}

// A self-signed certificate for agentix.test, made with the openssl CLI (from ca-certificates).
function makeCert() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agx-tls-'));
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2',
    '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem'),
    '-subj', '/CN=agentix.test', '-addext', 'subjectAltName=DNS:agentix.test'], { stdio: 'ignore' });
  return { dir, key: path.join(dir, 'key.pem'), cert: path.join(dir, 'cert.pem') };
}

async function tls() {
  const pem = makeCert();
  const server = https.createServer({ key: fs.readFileSync(pem.key), cert: fs.readFileSync(pem.cert) });
  const io = new Server(server, { pingInterval: 300, pingTimeout: PING_TIMEOUT, transports: ['websocket'] });
  let host;
  io.on('connection', (socket) => { host = socket.handshake.headers.host; socket.emit('done'); });
  const port = await listen(server);
  const to = (name) => ['--connect-to', `${name}:4433:127.0.0.1:${port}`];
  await expectEnd('https with the CA', ['https://agentix.test:4433', ...to('agentix.test'), '--ca-file', pem.cert], 'OK');
  check(host === 'agentix.test:4433', `https Host header ${host}`);
  await expectEnd('https, untrusted certificate', ['https://agentix.test:4433', ...to('agentix.test')], 'UNAVAILABLE:TLS');
  await expectEnd('https, name mismatch', ['https://other.test:4433', ...to('other.test'), '--ca-file', pem.cert], 'UNAVAILABLE:TLS');
  io.close();
  // https under a path prefix: the same dial, the prefix in the request line.
  const server2 = https.createServer({ key: fs.readFileSync(pem.key), cert: fs.readFileSync(pem.cert) });
  const io2 = new Server(server2, { path: '/pfx/socket.io/', transports: ['websocket'] });
  let url;
  io2.on('connection', (socket) => { url = socket.request.url; socket.emit('done'); });
  const port2 = await listen(server2);
  await expectEnd('https with a path prefix', ['https://agentix.test:4433/pfx',
    '--connect-to', `agentix.test:4433:127.0.0.1:${port2}`, '--ca-file', pem.cert], 'OK');
  check(url === '/pfx/socket.io/?EIO=4&transport=websocket', `https dialled ${url} under the prefix`);
  io2.close();
  fs.rmSync(pem.dir, { recursive: true, force: true });
}

// A server under a path prefix, as behind the k8s apiserver's pods/<name>:<port>/proxy.
async function prefix() {
  const PREFIX = '/api/v1/namespaces/ns/pods/name:8000/proxy';
  const httpServer = http.createServer();
  const io = new Server(httpServer, { path: `${PREFIX}/socket.io/`, transports: ['websocket'] });
  let url;
  io.on('connection', (socket) => { url = socket.request.url; socket.emit('done'); });
  const port = await listen(httpServer);
  for (const tail of [PREFIX, `${PREFIX}/`]) {
    url = undefined;
    await expectEnd(`path prefix ${tail}`, [`http://127.0.0.1:${port}${tail}`], 'OK');
    check(url === `${PREFIX}/socket.io/?EIO=4&transport=websocket`, `C client dialled ${url} under the prefix`);
  }
  for (const bad of [`${PREFIX}?x=1`, `${PREFIX}#f`, '/a b', `/${'p'.repeat(2000)}`]) {
    const res = await runClient([`http://127.0.0.1:${port}${bad}`]);
    check(res.code !== 0 && res.lines.some((l) => l.startsWith('CONNECT-ERROR INVALID_ARGUMENT')),
      `URL path ${bad.slice(0, 60)} refused before dialling`);
  }
  io.close();
}

// A server on a Unix socket, reached with http+unix://<percent-encoded path>[/prefix].
async function unixSocket() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agx-unix-'));
  const sock = path.join(dir, 'rt.sock');
  const enc = encodeURIComponent(sock);
  for (const pfx of ['', '/pfx']) {
    const httpServer = http.createServer();
    const io = new Server(httpServer, { path: `${pfx}/socket.io/`, transports: ['websocket'] });
    let seen;
    io.on('connection', (socket) => {
      seen = { url: socket.request.url, host: socket.handshake.headers.host };
      socket.emit('done');
    });
    await new Promise((r) => httpServer.listen(sock, r));
    await expectEnd(`Unix socket${pfx ? ' under a prefix' : ''}`, [`http+unix://${enc}${pfx}`], 'OK');
    check(seen && seen.url === `${pfx}/socket.io/?EIO=4&transport=websocket`, `dialled ${seen && seen.url} on the socket`);
    check(seen && seen.host === 'localhost', `Host header on a Unix socket: ${seen && seen.host}`);
    if (!pfx) { // a symlink to the live socket (as sandbox code could plant) is not followed
      const link = path.join(dir, 'planted.sock');
      fs.symlinkSync(sock, link);
      await expectEnd('symlink to a socket', [`http+unix://${encodeURIComponent(link)}`], 'UNAVAILABLE:symlink');
      const plain = path.join(dir, 'plain');
      fs.writeFileSync(plain, 'x');
      await expectEnd('a file that is not a socket', [`http+unix://${encodeURIComponent(plain)}`], 'UNAVAILABLE:not a socket');
    }
    io.close();
    await new Promise((r) => httpServer.close(r));
  }
  await expectEnd('Unix socket nobody listens on', [`http+unix://${enc}`], 'UNAVAILABLE:');
  for (const bad of ['http+unix://relative.sock', 'http+unix://%2Fa%00b', 'http+unix://%zz',
    `http+unix://%2F${'x'.repeat(2000)}`, 'http+unix://']) {
    const res = await runClient([bad]);
    check(res.code !== 0 && res.lines.some((l) => l.startsWith('CONNECT-ERROR INVALID_ARGUMENT')),
      `socket URL ${bad.slice(0, 40)} refused before dialling`);
  }
  fs.rmSync(dir, { recursive: true, force: true });
}

main().then(() => tls()).then(() => prefix()).then(() => unixSocket())
  .then(() => process.exit(0), (e) => fail(e.stack || String(e)));
