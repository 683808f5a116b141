"""An HTTP proxy in front of a Pipy repo that fails the first commit (PATCH) with 500.

Usage: failing_proxy.py LISTEN_PORT REPO_PORT. Every other request is forwarded unchanged
to 127.0.0.1:REPO_PORT (one upstream connection per request). Prints "ready" when listening.
"""
import http.client
import http.server
import sys

LISTEN, REPO = int(sys.argv[1]), int(sys.argv[2])
state = {"failed": False}


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def forward(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        if self.command == "PATCH" and not state["failed"]:
            state["failed"] = True
            reply = b"commit failed on purpose"
            self.send_response(500)
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)
            return
        up = http.client.HTTPConnection("127.0.0.1", REPO, timeout=10)
        up.request(self.command, self.path, body=body)
        resp = up.getresponse()
        data = resp.read()
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        up.close()

    do_GET = do_POST = do_PATCH = do_DELETE = forward

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", LISTEN), Handler)
print("ready", flush=True)
server.serve_forever()
