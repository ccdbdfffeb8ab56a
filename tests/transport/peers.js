// peers.js — helpers shared by the transport interop scripts: start a C test program (optionally
// under the wrapper in $AGX_TEST_WRAPPER, e.g. valgrind), read its line protocol, and fail loudly.
'use strict';
const { spawn } = require('child_process');

const children = [];

// Fails the test; programs it started are killed so nothing outlives the test.
function fail(msg) {
  console.error(`FAIL: ${msg}`);
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  process.exit(1);
}

// Whatever happens, no program started here outlives the test (CTest would wait for its pipes).
process.on('exit', () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});
process.on('unhandledRejection', (e) => fail(e && e.stack ? e.stack : String(e)));

function check(cond, msg) {
  if (!cond) fail(msg);
  console.log(`ok - ${msg}`);
}

// Resolves with the value of promise, or fails the test after ms.
function within(ms, what, promise) {
  let t;
  const timeout = new Promise((_, rej) => { t = setTimeout(() => rej(new Error(`timed out: ${what}`)), ms); });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(t));
}

// Slower under valgrind: every wait scales by this, and so do the heartbeat timeouts the peers
// grant (a program under memcheck can take longer than 200 ms to answer a ping).
const slow = process.env.AGX_TEST_WRAPPER ? 10 : 1;

// Starts a C program; resolves once it printed a line matching ready (default /^PORT (\d+)/).
function startProgram(bin, args, ready = /^PORT (\d+)/) {
  const wrapper = (process.env.AGX_TEST_WRAPPER || '').split(' ').filter(Boolean);
  const argv = [...wrapper, bin, ...args];
  const proc = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(proc);
  const lines = [];
  const waiters = [];
  let buf = '';
  const exited = new Promise((resolve) => proc.on('exit', (code, sig) => resolve({ code, sig })));
  proc.stdout.on('data', (d) => {
    buf += d.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      console.log(`  [${bin.split('/').pop()}] ${line}`);
      lines.push(line);
      for (const w of waiters.slice()) {
        const m = line.match(w.re);
        if (m) { waiters.splice(waiters.indexOf(w), 1); w.resolve(m); }
      }
    }
  });
  // Waits for a line matching re printed after `from` (an index into lines; default: any line).
  function waitLine(re, ms = 5000, from = 0) {
    for (let k = from; k < lines.length; k++) {
      const m = lines[k].match(re);
      if (m) return Promise.resolve(m);
    }
    return within(ms * slow, `a line matching ${re}`, new Promise((resolve) => waiters.push({ re, resolve })));
  }
  const p = { proc, lines, waitLine, exited };
  return waitLine(ready, 10000).then((m) => { p.ready = m; return p; });
}

// SIGTERM, then the exit status (fails after ms).
async function stop(p, ms = 10000) {
  p.proc.kill('SIGTERM');
  return within(ms * slow, 'the program to exit', p.exited);
}

function sleep(ms) { return new Promise((r) => setTimeout(r, ms)); }

module.exports = { fail, check, within, startProgram, stop, sleep, slow };
