// node_echo_server.js PORT: an HTTP server on 127.0.0.1:PORT.
//   POST /echo      answers 200 with the request body, as is, and the header
//                   x-sha256: the hex sha256 of the body it received;
//   GET /data/N     answers N bytes of a fixed pattern (N <= 4 MB);
//   GET /stats      answers {"connections":C,"requests":R} (counted since start;
//                   this request included);
//   anything else   404.
// Prints "listening PORT" once it listens; runs until killed (SIGTERM: closes
// and exits 0).
'use strict';
const http = require('http');
const crypto = require('crypto');

const port = Number(process.argv[2]);
let connections = 0;
let requests = 0;

function pattern(n) {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + (i >> 8)) & 0xff;
  return b;
}

const server = http.createServer((req, res) => {
  requests++;
  if (req.method === 'POST' && req.url === '/echo') {
    const h = crypto.createHash('sha256');
    const chunks = [];
    req.on('data', (c) => { h.update(c); chunks.push(c); });
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      res.writeHead(200, { 'content-type': 'application/octet-stream',
                           'content-length': body.length, 'x-sha256': h.digest('hex') });
      res.end(body);
    });
    return;
  }
  const m = /^\/data\/(\d+)$/.exec(req.url);
  if (req.method === 'GET' && m && Number(m[1]) <= 4 << 20) {
    const body = pattern(Number(m[1]));
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length });
    res.end(body);
    return;
  }
  if (req.method === 'GET' && req.url === '/stats') {
    const body = JSON.stringify({ connections, requests });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
    res.end(body);
    return;
  }
  res.writeHead(404, { 'content-length': 0 });
  res.end();
});
server.on('connection', () => { connections++; });
server.keepAliveTimeout = 30000;
server.listen(port, '127.0.0.1', () => { process.stdout.write(`listening ${port}\n`); });
process.on('SIGTERM', () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
});
