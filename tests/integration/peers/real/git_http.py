"""git_http.py ROOT PORT [DELAY [START]]: git's smart HTTP protocol on
127.0.0.1:PORT for the repositories under ROOT, by running `git http-backend`
(CGI) for each request. Listens DELAY seconds (default 0) after START (a
time.time() value, default: now). Request bodies with Content-Length or
chunked are passed on as they came (gzip included: git http-backend inflates
them). Each answer is sent with a Content-Length and the CGI Status. Prints
"listening PORT" once it listens; runs until killed."""
import http.server
import os
import socketserver
import subprocess
import sys
import time

root = os.path.abspath(sys.argv[1])
port = int(sys.argv[2])
delay = float(sys.argv[3]) if len(sys.argv) > 3 else 0.0
start = float(sys.argv[4]) if len(sys.argv) > 4 and sys.argv[4] else time.time()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def cgi(self):
        data = self.body() if self.command == "POST" else b""
        path, _, query = self.path.partition("?")
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "GIT_PROJECT_ROOT": root,
               "GIT_HTTP_EXPORT_ALL": "1", "REQUEST_METHOD": self.command, "PATH_INFO": path,
               "QUERY_STRING": query, "REMOTE_ADDR": self.client_address[0],
               "CONTENT_TYPE": self.headers.get("Content-Type", ""),
               "CONTENT_LENGTH": str(len(data)), "SERVER_PROTOCOL": "HTTP/1.1"}
        for k, v in self.headers.items():
            if k.lower() not in ("content-type", "content-length", "transfer-encoding"):
                env["HTTP_" + k.upper().replace("-", "_")] = v
        if "Git-Protocol" in self.headers:
            env["GIT_PROTOCOL"] = self.headers["Git-Protocol"]
        p = subprocess.run(["git", "http-backend"], input=data, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        head, _, out = p.stdout.partition(b"\r\n\r\n")
        if not _:
            head, _, out = p.stdout.partition(b"\n\n")
        status, headers = 200, []
        for line in head.decode("latin-1").splitlines():
            k, _, v = line.partition(":")
            if k.lower() == "status":
                status = int(v.split()[0])
            elif k:
                headers.append((k, v.strip()))
        if p.returncode != 0 and not p.stdout:
            status, out = 500, p.stderr
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    do_GET = cgi
    do_POST = cgi

    def log_message(self, *args):
        pass


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    allow_reuse_address = True
    daemon_threads = True


left = start + delay - time.time()
if left > 0:
    time.sleep(left)
srv = Server(("127.0.0.1", port), Handler)
print("listening %d" % port, flush=True)
srv.serve_forever()
