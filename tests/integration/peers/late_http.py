"""late_http.py PORT DELAY [START] [BODY]: an HTTP server on 127.0.0.1:PORT that
starts listening DELAY seconds after START (a time.time() value, default: now;
the test passes its own launch time so the late start does not depend on how
long this interpreter takes to start). Every GET gets 200 and BODY (default
"late_http PORT\\n"). Prints "listening PORT" once it listens. Runs until killed."""
import http.server
import socketserver
import sys
import time

port = int(sys.argv[1])
delay = float(sys.argv[2])
start = float(sys.argv[3]) if len(sys.argv) > 3 and sys.argv[3] else time.time()
body = (sys.argv[4] if len(sys.argv) > 4 else "late_http %d\n" % port).encode()

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

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
