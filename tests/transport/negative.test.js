// negative.test.js — interop (c): raw `ws` clients misbehave against the C server (echo_server on
// sio_server): bad handshakes are refused, a missing CONNECT times out, garbage and oversized
// frames close the connection (1009 for size), a missing pong closes within pingInterval +
// pingTimeout, a wrong token gets CONNECT_ERROR. The server must survive all of it and still
// serve /health and an official socket.io-client afterwards, then exit cleanly.
// Usage: node negative.test.js <echo_server binary>
'use strict';
const http = require('http');
const WebSocket = require('ws');
const { io } = require('socket.io-client');
const { fail, check, within, startProgram, stop, slow } = require('./peers');

const bin = process.argv[2] || fail('usage: negative.test.js <echo_server>');
const TOKEN = 'tok-42';
// PING_TIMEOUT is the slack a good peer's pong gets: wide enough for a loaded machine, so only the
// mute session below is closed for a missing pong.
const PING_INTERVAL = 300, PING_TIMEOUT = 2000 * slow, CONNECT_TIMEOUT = 500, MAX_PAYLOAD = 65536;
let port;

function get(path) {
  return within(5000 * slow, `GET ${path}`, new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path }, (res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, type: res.headers['content-type'], body }));
    }).on('error', reject);
  }));
}

// A raw websocket with a message queue. autoPong answers Engine.IO pings like a good client.
function raw(query = 'EIO=4&transport=websocket', path = '/socket.io/', autoPong = true) {
  const ws = new WebSocket(`ws://127.0.0.1:${port}${path}?${query}`);
  const queue = [];
  const waiting = [];
  const t0 = Date.now();
  const s = { ws, opened: false };
  s.closed = new Promise((resolve) => ws.on('close', (code) => resolve({ code, ms: Date.now() - t0 })));
  s.open = new Promise((resolve, reject) => {
    ws.on('open', () => { s.opened = true; resolve(); });
    ws.on('error', (e) => reject(e));
  });
  s.open.catch(() => {});
  ws.on('message', (data, isBinary) => {
    const m = isBinary ? data : data.toString();
    if (autoPong && m === '2') { ws.send('3'); return; }
    if (waiting.length) waiting.shift()(m); else queue.push(m);
  });
  s.next = (what = 'a message') => (queue.length ? Promise.resolve(queue.shift())
    : within(3000 * slow, what, new Promise((resolve) => waiting.push(resolve))));
  s.isClosed = (ms = 3000) => within(ms * slow, 'the server to close the websocket', s.closed);
  return s;
}

// Opens a session and completes the Socket.IO CONNECT with the token.
async function session(autoPong = true) {
  const s = raw(undefined, undefined, autoPong);
  await within(3000 * slow, 'ws open', s.open);
  const open = await s.next('the open packet');
  if (!open.startsWith('0')) fail(`expected an open packet, got ${open}`);
  s.handshake = JSON.parse(open.slice(1));
  s.ws.send(`40${JSON.stringify({ token: TOKEN })}`);
  const reply = await s.next('the CONNECT reply');
  if (!/^40\{"sid":"[A-Za-z0-9_-]+"\}$/.test(reply)) fail(`bad CONNECT reply ${reply}`);
  return s;
}

async function expectRejected(query, path) {
  const s = raw(query, path);
  let refused = false;
  try { await within(3000 * slow, 'upgrade', s.open); } catch (e) { refused = true; }
  if (!refused) await s.isClosed();
  check(refused, `upgrade refused: ${path || '/socket.io/'}?${query}`);
}

async function expectClosedAfter(what, send) {
  const s = await session();
  send(s.ws);
  const { code } = await s.isClosed();
  check(true, `closed after ${what} (code ${code})`);
  return code;
}

async function main() {
  const srv = await startProgram(bin, ['--port', '0', '--ping-interval', String(PING_INTERVAL),
    '--ping-timeout', String(PING_TIMEOUT), '--connect-timeout', String(CONNECT_TIMEOUT),
    '--max-payload', String(MAX_PAYLOAD), '--token', TOKEN]);
  port = Number(srv.ready[1]);

  // HTTP side.
  const h = await get('/health');
  check(h.status === 200 && /application\/json/.test(h.type), '/health answers 200 application/json');
  const hb = JSON.parse(h.body);
  check(hb.status === 'ok' && typeof hb.version === 'string' && hb.version.length > 0, `/health body ${h.body}`);
  check((await get('/nope')).status === 404, 'other paths are 404');
  check((await get('/socket.io/?EIO=4&transport=polling')).status === 404, 'polling is not served');

  // Handshake rejections.
  await expectRejected('EIO=3&transport=websocket');
  await expectRejected('transport=websocket');
  await expectRejected('EIO=4');
  await expectRejected('EIO=4&transport=polling');
  await expectRejected('EIO=4&transport=websocket&sid=abc');
  await expectRejected('EIO=4&transport=websocket', '/other/');

  // The open packet.
  const good = await session();
  const hs = good.handshake;
  check(typeof hs.sid === 'string' && Array.isArray(hs.upgrades) && hs.upgrades.length === 0 &&
    hs.pingInterval === PING_INTERVAL && hs.pingTimeout === PING_TIMEOUT && hs.maxPayload === MAX_PAYLOAD,
    `open packet ${JSON.stringify(hs)}`);
  good.ws.send('40/nope,');
  check(await good.next() === '44/nope,{"message":"Invalid namespace"}', 'unknown namespace gets CONNECT_ERROR');
  good.ws.send('421["plain"]');
  check(await good.next() === '431["plain"]', 'the connection stays usable after a bad namespace (ack 431)');
  good.ws.close();
  await good.isClosed();

  // No CONNECT within the connect timeout.
  const idle = raw();
  await within(3000 * slow, 'ws open', idle.open);
  const { ms } = await idle.isClosed(CONNECT_TIMEOUT + 5000);
  check(ms >= CONNECT_TIMEOUT * 0.8, `closed ${ms} ms after open without CONNECT`);

  // Wrong or missing token.
  for (const auth of ['40{"token":"wrong"}', '40', '40{"token":7}']) {
    const s = raw();
    await within(3000 * slow, 'ws open', s.open);
    await s.next('the open packet');
    s.ws.send(auth);
    check(await s.next() === '44{"message":"invalid token"}', `${auth} gets CONNECT_ERROR invalid token`);
    await s.isClosed();
  }

  // Garbage.
  await expectClosedAfter('4abc', (ws) => ws.send('4abc'));
  await expectClosedAfter('42{}', (ws) => ws.send('42{}'));
  await expectClosedAfter('a reserved event name', (ws) => ws.send('42["connect"]'));
  await expectClosedAfter('a binary frame without header', (ws) => ws.send(Buffer.from([1, 2, 3])));
  await expectClosedAfter('text while an attachment is pending', (ws) => {
    ws.send('451-["x",{"_placeholder":true,"num":0}]');
    ws.send('42["y"]');
  });
  await expectClosedAfter('11 attachments', (ws) => ws.send('4511-["x"]'));
  await expectClosedAfter('a bad placeholder', (ws) => ws.send('451-["x",{"_placeholder":true,"num":3}]'));
  await expectClosedAfter('truncated JSON', (ws) => ws.send('42["e",'));
  await expectClosedAfter('an unknown engine.io type', (ws) => ws.send('9'));
  await expectClosedAfter('a ping from the client', (ws) => ws.send('2'));
  await expectClosedAfter('an empty frame', (ws) => ws.send(''));
  await expectClosedAfter('a second CONNECT', (ws) => ws.send(`40${JSON.stringify({ token: TOKEN })}`));
  {
    const s = raw();
    await within(3000 * slow, 'ws open', s.open);
    await s.next('the open packet');
    s.ws.send('42["early"]');
    await s.isClosed();
    check(true, 'closed after an event before CONNECT');
  }

  // Oversized frames close with 1009.
  const big = await expectClosedAfter('an oversized text frame', (ws) => ws.send(`42["e","${'a'.repeat(MAX_PAYLOAD)}"]`));
  check(big === 1009, `oversized text frame closed with ${big}`);
  const bigBin = await expectClosedAfter('an oversized attachment', (ws) => {
    ws.send('451-["echo",{"_placeholder":true,"num":0}]');
    ws.send(Buffer.alloc(MAX_PAYLOAD + 1));
  });
  check(bigBin === 1009, `oversized binary frame closed with ${bigBin}`);
  // Fragmented message over the limit (each fragment small).
  const frag = await expectClosedAfter('an oversized fragmented message', (ws) => {
    const part = 'b'.repeat(20000);
    ws.send('42["e","', { fin: false });
    for (let i = 0; i < 4; i++) ws.send(part, { fin: false });
    ws.send('"]', { fin: true });
  });
  check(frag === 1009, `oversized fragmented message closed with ${frag}`);

  // Missing pong.
  const mute = await session(false);
  const t0 = Date.now();
  await mute.isClosed(2 * (PING_INTERVAL + PING_TIMEOUT) / slow + 10000); /* scaled by slow */
  const waited = Date.now() - t0;
  // Not before the pong was due (timers may fire late on a loaded machine, never early).
  check(waited >= PING_INTERVAL + PING_TIMEOUT - 50, `closed ${waited} ms after CONNECT with no pong`);
  await srv.waitLine(/^CLOSE TIMEOUT no pong within/);
  check(true, 'server reported the pong timeout');

  // A fragmented but valid message, and a ping/pong-answering session still works.
  const fine = await session();
  fine.ws.send('42["frag', { fin: false });
  fine.ws.send('mented"', { fin: false });
  fine.ws.send(']', { fin: true });
  await srv.waitLine(/^EVENT fragmented ack=-1/);
  check(true, 'a fragmented message is reassembled');
  fine.ws.send('41');
  await fine.isClosed();

  // The server survived: an official client still gets served.
  const sock = io(`http://127.0.0.1:${port}`, { transports: ['websocket'], reconnection: false, auth: { token: TOKEN } });
  await within(5000 * slow, 'socket.io-client connect', new Promise((resolve, reject) => {
    sock.on('connect', resolve);
    sock.on('connect_error', reject);
  }));
  const back = await within(5000 * slow, 'echo ack', new Promise((resolve) => sock.emit('echo', Buffer.from('still alive'), (ok, b) => resolve(b))));
  check(Buffer.isBuffer(back) && back.toString() === 'still alive', 'server still serves a good client');
  sock.disconnect();
  check((await get('/health')).status === 200, '/health still answers');

  const status = await stop(srv);
  check(status.code === 0, `server exited ${status.code} after SIGTERM`);
}

main().then(() => process.exit(0), (e) => fail(e.stack || String(e)));
