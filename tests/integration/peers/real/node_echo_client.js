// node_echo_client.js PORT N CONC: N requests to node_echo_server.js on
// 127.0.0.1:PORT, CONC at a time, half with a keep-alive agent and half with
// a new connection each (agent: false). Request i is a POST /echo of a body
// of (i * 7919) % 65536 + 1 bytes derived from i, or, every fifth, a GET
// /data/SIZE; each answer is checked (status, length, content, the server's
// x-sha256 of what it received). Prints one line of JSON:
//   {"ok":OK,"bad":BAD,"errors":ERR,"bytes":B,"digest":"sha256 over all answers in order"}
// and exits 0 if all N were right, 1 otherwise (the first problems on stderr).
'use strict';
const http = require('http');
const crypto = require('crypto');

const port = Number(process.argv[2]);
const n = Number(process.argv[3]);
const conc = Number(process.argv[4]);
const keepAgent = new http.Agent({ keepAlive: true, maxSockets: conc });

function pattern(len) {
  const b = Buffer.allocUnsafe(len);
  for (let i = 0; i < len; i++) b[i] = (i * 31 + (i >> 8)) & 0xff;
  return b;
}
function bodyOf(i) {
  const len = (i * 7919) % 65536 + 1;
  return crypto.createHash('sha512').update(String(i)).digest().toString('hex').repeat(Math.ceil(len / 128)).slice(0, len);
}
const sha = (b) => crypto.createHash('sha256').update(b).digest('hex');

let ok = 0, bad = 0, errors = 0, bytes = 0, next = 0, done = 0, complained = 0;
const answers = new Array(n);
function complain(msg) { if (complained++ < 5) process.stderr.write(msg + '\n'); }

function one(i) {
  const agent = i % 2 === 0 ? keepAgent : false;
  const get = i % 5 === 4;
  const size = (i * 104729) % 200000;
  const body = get ? null : Buffer.from(bodyOf(i));
  const opts = { host: '127.0.0.1', port, agent, method: get ? 'GET' : 'POST',
                 path: get ? `/data/${size}` : '/echo',
                 headers: get ? {} : { 'content-type': 'application/octet-stream', 'content-length': body.length } };
  const req = http.request(opts, (res) => {
    const chunks = [];
    res.on('data', (c) => chunks.push(c));
    res.on('end', () => {
      const got = Buffer.concat(chunks);
      const want = get ? pattern(size) : body;
      if (res.statusCode === 200 && got.equals(want) && (get || res.headers['x-sha256'] === sha(body))) ok++;
      else { bad++; complain(`request ${i}: status ${res.statusCode}, ${got.length} bytes, want ${want.length}`); }
      bytes += got.length;
      answers[i] = sha(got);
      finish();
    });
  });
  req.on('error', (e) => { errors++; complain(`request ${i}: ${e.code}: ${e.message}`); answers[i] = 'error'; finish(); });
  if (body) req.end(body); else req.end();
}
function finish() {
  done++;
  if (next < n) one(next++);
  else if (done === n) {
    keepAgent.destroy();
    const digest = crypto.createHash('sha256').update(answers.join('\n')).digest('hex');
    process.stdout.write(JSON.stringify({ ok, bad, errors, bytes, digest }) + '\n');
    process.exitCode = ok === n ? 0 : 1;
  }
}
for (; next < Math.min(conc, n); next++) one(next);
