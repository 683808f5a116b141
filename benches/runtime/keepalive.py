# The instruction counts' client: N requests, one after another, on one kept-alive
# connection, each like wrk's (`GET PATH`, `Host: HOST:PORT`); fails on any status but 200.
#   python3 keepalive.py http://HOST:PORT/PATH N
import socket
import sys
from urllib.parse import urlsplit

url, n = urlsplit(sys.argv[1]), int(sys.argv[2])
request = ("GET %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (url.path or "/", url.netloc)).encode()
conn = socket.create_connection((url.hostname, url.port or 80), timeout=60)
buf = b""
for _ in range(n):
    conn.sendall(request)
    while True:
        end = buf.find(b"\r\n\r\n")
        if end >= 0:
            head = buf[:end].decode("latin-1")
            length = 0
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            if len(buf) >= end + 4 + length:
                if not head.startswith("HTTP/1.1 200"):
                    sys.exit("not 200: " + head.splitlines()[0])
                buf = buf[end + 4 + length:]
                break
        data = conn.recv(65536)
        if not data:
            sys.exit("the proxy closed the connection")
        buf += data
