// peer_client.test.js — interop (a): the C server (echo_server on sio_server) against the official
// socket.io-client@4 with transports:["websocket"]. Checks connect (client id == server sid),
// binary round trips both ways, acks both ways, ≥2 ping/pong cycles at a 300 ms interval, a clean
// client disconnect, a graceful server shutdown with a client still connected, and a clean exit.
// Usage: node peer_client.test.js <echo_server binary>
'use strict';
const crypto = require('crypto');
const { io } = require('socket.io-client');
const { fail, check, within, startProgram, stop, slow } = require('./peers');

const bin = process.argv[2] || fail('usage: peer_client.test.js <echo_server>');
const TOKEN = 's3cret';

function connect(port) {
  const sock = io(`http://127.0.0.1:${port}`, {
    transports: ['websocket'], reconnection: false, auth: { token: TOKEN }, timeout: 5000 * slow,
  });
  return within(10000 * slow, 'connect', new Promise((resolve, reject) => {
    sock.on('connect', () => resolve(sock));
    sock.on('connect_error', (e) => reject(e));
  }));
}

// Emits with an ack and resolves with all of the ack's arguments (emitWithAck keeps only one).
function request(sock, ev, ...args) {
  return within(10000 * slow, `ack of ${ev}`, new Promise((resolve) => sock.emit(ev, ...args, (...a) => resolve(a))));
}

function once(sock, ev) {
  return within(5000 * slow, `event ${ev}`, new Promise((resolve) => sock.once(ev, (...a) => resolve(a))));
}

async function main() {
  const srv = await startProgram(bin, ['--port', '0', '--ping-interval', '300',
    '--ping-timeout', String(5000 * slow) /* a bound: pings still come every 300 ms */, '--token', TOKEN]);
  const port = Number(srv.ready[1]);
  let pings = 0;

  const sock = await connect(port);
  sock.io.on('ping', () => { pings++; });
  const [, sid] = await srv.waitLine(/^CONNECT (\S+)/);
  check(sock.id === sid, `client id ${sock.id} equals the server's sid`);
  check(sock.io.engine.transport.name === 'websocket', 'the session runs on websocket');

  // Binary round trip, large enough to span many lws receive chunks.
  const payload = crypto.randomBytes(3 * 1024 * 1024 + 17);
  const echoed = once(sock, 'echo');
  const [ok, back] = await request(sock, 'echo', payload);
  check(ok === 'ok' && Buffer.isBuffer(back) && back.equals(payload), 'binary ack carries the bytes back');
  const [ev] = await echoed;
  check(Buffer.isBuffer(ev) && ev.equals(payload), 'binary event echoed back by the server');
  const small = Buffer.from([0, 1, 2, 255]);
  const [ok2, back2] = await request(sock, 'echo', small);
  check(ok2 === 'ok' && back2.equals(small), 'small binary round trip');
  const empty = Buffer.alloc(0);
  const [ok3, back3] = await request(sock, 'echo', empty);
  check(ok3 === 'ok' && back3.length === 0, 'empty attachment round trip');

  // Client → server ack on a plain event.
  const [name] = await request(sock, 'plain', 1, { a: [2] });
  check(name === 'plain', 'server acked a plain event');

  // Server → client: the server asks, the client acks, the server forwards the ack as "answer".
  sock.on('question', (a, n, cb) => cb(`reply-${a}`, n + 1));
  const answered = once(sock, 'answer');
  sock.emit('ask', 'hi', 41);
  const answer = await answered;
  check(answer[0] === 'reply-hi' && answer[1] === 42, 'server got the client\'s ack');

  // Heartbeat: the server pings, socket.io-client answers.
  await within(10000 * slow, 'two pings', new Promise((resolve) => {
    const t = setInterval(() => { if (pings >= 2) { clearInterval(t); resolve(); } }, 50);
  }));
  check(pings >= 2, `${pings} pings received and answered`);
  check(sock.connected, 'still connected after the ping cycles');

  // Clean client disconnect.
  const from = srv.lines.length;
  sock.disconnect();
  await srv.waitLine(/^CLOSE UNAVAILABLE the peer disconnected/, 5000, from);
  check(true, 'server saw the clean disconnect');

  // Graceful shutdown with a client still connected: it gets a server-side disconnect.
  const sock2 = await connect(port);
  const gone = once(sock2, 'disconnect');
  const status = await stop(srv);
  const [reason] = await gone;
  check(reason === 'io server disconnect', `client told of the shutdown (${reason})`);
  check(status.code === 0, `server exited ${status.code} after SIGTERM`);
  check(srv.lines.includes('EXIT clean'), 'the loop drained and closed cleanly');
}

main().then(() => process.exit(0), (e) => fail(e.stack || String(e)));
