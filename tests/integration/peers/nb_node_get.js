// nb_node_get.js PORT [HOST]: a node HTTP client (http.get: libuv's
// non-blocking connect, waited for with epoll). Prints the response body to
// stdout and exits 0; on an error prints "error: CODE: MESSAGE" to stderr and
// exits 1. Prints "connecting" to stderr just before the request.
'use strict';
const http = require('http');

const port = Number(process.argv[2]);
const host = process.argv[3] || '127.0.0.1';
process.stderr.write('connecting\n');
const req = http.get({ host, port, path: '/', agent: false }, (res) => {
  const chunks = [];
  res.on('data', (c) => chunks.push(c));
  res.on('end', () => {
    if (res.statusCode !== 200) {
      process.stderr.write(`error: HTTP ${res.statusCode}\n`);
      process.exitCode = 1;
      return;
    }
    process.stdout.write(Buffer.concat(chunks));
  });
});
req.on('error', (e) => {
  process.stderr.write(`error: ${e.code}: ${e.message}\n`);
  process.exitCode = 1;
});
