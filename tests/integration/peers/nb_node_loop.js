// nb_node_loop.js DEAD_PORT LATE_PORT HEALTHY_PORT: one node event loop
// (libuv, epoll) that, all at once:
//  - runs setInterval(10 ms) and records how late each tick comes (lag = the
//    gap since the previous tick - 10 ms);
//  - net.connect()s to 127.0.0.1:DEAD_PORT, where nothing ever listens, and
//    records the error code it ends with and when;
//  - http.get()s http://127.0.0.1:LATE_PORT/ (a server that starts late);
//  - http.get()s http://127.0.0.1:HEALTHY_PORT/ every 50 ms (no agent: a new
//    connection each) and records each fetch's outcome and time.
// Once both connects are settled it runs 200 ms more, then prints one JSON
// object on stdout (times in seconds from the start, CPU from
// process.cpuUsage()), with the same fields as nb_asyncio_loop.py.
'use strict';
const http = require('http');
const net = require('net');
const { performance } = require('perf_hooks');

const [DEAD, LATE, HEALTHY] = process.argv.slice(2, 5).map(Number);
const t0 = performance.now();
const secs = () => (performance.now() - t0) / 1000;

const lags = []; // [at_s, lag_ms]
let last = performance.now();
const timer = setInterval(() => {
  const now = performance.now();
  lags.push([(now - t0) / 1000, now - last - 10]);
  last = now;
}, 10);

function get(port, cb) {
  let done = false;
  const finish = (err, body) => { if (!done) { done = true; cb(err, body); } };
  const req = http.get({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
    const chunks = [];
    res.on('data', (c) => chunks.push(c));
    res.on('end', () => {
      if (res.statusCode !== 200) finish(new Error(`HTTP ${res.statusCode}`));
      else finish(null, Buffer.concat(chunks).toString());
    });
    res.on('error', finish);
  });
  req.setTimeout(5000, () => req.destroy(new Error('timeout')));
  req.on('error', finish);
}

const fetches = []; // [done_s, ok, error]
let stopping = false;
let nextFetch = performance.now();
function fetchLoop() {
  if (stopping) return;
  get(HEALTHY, (err, body) => {
    fetches.push([secs(), !err && body.startsWith('healthy'), err ? `${err.code || ''} ${err.message}` : null]);
    nextFetch += 50;
    setTimeout(fetchLoop, Math.max(0, nextFetch - performance.now()));
  });
}
fetchLoop();

const result = {};
let pending = 2;
function settled() {
  if (--pending > 0) return;
  setTimeout(() => {
    stopping = true;
    clearInterval(timer);
    const end = result.dead_s;
    let worst = [0, 0];
    for (const l of lags) if (l[1] > worst[1]) worst = l;
    const cpu = process.cpuUsage();
    Object.assign(result, {
      ticks: lags.length,
      max_lag_ms: Math.round(Math.max(0, worst[1]) * 100) / 100,
      worst_lag_at_s: Math.round(worst[0] * 1000) / 1000,
      ticks_during: lags.filter((l) => l[0] <= end).length,
      healthy_ok: fetches.filter((f) => f[1]).length,
      healthy_fail: fetches.filter((f) => !f[1]).length,
      healthy_ok_during: fetches.filter((f) => f[1] && f[0] <= end).length,
      healthy_errors: [...new Set(fetches.filter((f) => f[2]).map((f) => f[2]))].slice(0, 3),
      cpu_user_s: cpu.user / 1e6,
      cpu_sys_s: cpu.system / 1e6,
      wall_s: Math.round(secs() * 1000) / 1000,
    });
    result.dead_s = Math.round(result.dead_s * 1000) / 1000;
    result.late_s = Math.round(result.late_s * 1000) / 1000;
    process.stdout.write(JSON.stringify(result) + '\n');
  }, 200);
}

const dead = net.connect({ host: '127.0.0.1', port: DEAD });
dead.on('connect', () => {
  result.dead_error = null;
  result.dead_s = secs();
  dead.destroy();
  settled();
});
dead.on('error', (e) => {
  result.dead_error = e.code;
  result.dead_s = secs();
  settled();
});

get(LATE, (err, body) => {
  result.late_ok = !err;
  result.late_error = err ? `${err.code || ''} ${err.message}` : null;
  result.late_body = body || null;
  result.late_s = secs();
  settled();
});
