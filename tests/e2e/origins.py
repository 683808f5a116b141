#!/usr/bin/env python3
"""Origin servers for egressc's end-to-end tests.

Usage: origins.py SPEC.json
SPEC: {"log": path, "cert": path, "key": path,
       "origins": [{"name": n, "addr": ip, "port": p,
                    "kind": "http"|"tls"|"greet"|"echo"|"udp"|"bulk"}]}
A "bulk" origin is HTTP/1.1 with bodies: a request body (Content-Length or chunked) is read
and counted, and answered "origin=<name> framing=<cl N|chunked> received=<bytes>"; it logs
"BULK <name> <method> framing=… received=…" per request. GET /download/cl/N and
/download/chunked/N answer N bytes with that framing.
An address with a colon is IPv6. A "udp" origin logs "ACCEPT <name>" per datagram and echoes it.
Every accepted connection is logged as "ACCEPT <name>" (flushed at once), so a test can tell
that an origin never saw a connection. Prints "READY" when every listener is bound.
"""
import json
import socket
import ssl
import sys
import threading

spec = json.load(open(sys.argv[1]))
log_lock = threading.Lock()
log = open(spec["log"], "a", buffering=1)


def note(line):
    with log_lock:
        log.write(line + "\n")
        log.flush()


def serve_http(conn, name):
    pending = b""
    while True:
        req, pending = read_request_buffered(conn, pending)
        if req is None:
            return
        line, headers = req
        if headers.get("upgrade", "").lower() == "websocket":
            # A tunnel after 101: every byte echoed back, as long as the client sends.
            conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n"
                         b"x-origin: %s\r\n\r\n" % name.encode())
            if pending:
                conn.sendall(pending)
            while True:
                data = conn.recv(4096)
                if not data:
                    return
                conn.sendall(data)
        body = ("origin=%s request=%s host=%s\n" % (name, line, headers.get("host", ""))).encode()
        conn.sendall(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: %d\r\n\r\n" % len(body) + body
        )


def read_request_buffered(conn, pending):
    data = pending
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            return None, b""
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    length = int(headers.get("content-length", "0") or 0)
    while len(rest) < length:
        chunk = conn.recv(4096)
        if not chunk:
            break
        rest += chunk
    return (lines[0], headers), rest[length:]


def read_exact(conn, pending, n, sink):
    """Read n bytes (after what is pending), giving each piece to sink; the bytes left over."""
    take = min(n, len(pending))
    sink(pending[:take])
    pending = pending[take:]
    n -= take
    while n > 0:
        chunk = conn.recv(min(n, 1 << 16))
        if not chunk:
            raise EOFError
        sink(chunk)
        n -= len(chunk)
    return pending


def read_line(conn, pending):
    while b"\r\n" not in pending:
        chunk = conn.recv(1 << 16)
        if not chunk:
            raise EOFError
        pending += chunk
    line, _, rest = pending.partition(b"\r\n")
    return line, rest


def serve_bulk(conn, name):
    pending = b""
    while True:
        while b"\r\n\r\n" not in pending:
            chunk = conn.recv(1 << 16)
            if not chunk:
                return
            pending += chunk
        head, _, pending = pending.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, target = lines[0].split(" ")[:2]
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers.setdefault(k.strip().lower(), []).append(v.strip())
        received = [0]

        def count(b):
            received[0] += len(b)
        if headers.get("transfer-encoding") == ["chunked"] and "content-length" not in headers:
            framing = "chunked"
            while True:
                size_line, pending = read_line(conn, pending)
                size = int(size_line.split(b";")[0], 16)
                pending = read_exact(conn, pending, size, count)
                _, pending = read_line(conn, pending)
                if size == 0:
                    break
        elif "transfer-encoding" not in headers and len(headers.get("content-length", [])) <= 1:
            length = int(headers.get("content-length", ["0"])[0])
            framing = "cl %d" % length if "content-length" in headers else "none"
            pending = read_exact(conn, pending, length, count)
        else:
            framing = "ambiguous"
        note("BULK %s %s framing=%s received=%d" % (name, method, framing, received[0]))
        parts = target.split("/")
        if method in ("GET", "HEAD") and len(parts) == 4 and parts[1] == "download":
            size = int(parts[3])
            piece = b"x" * (1 << 16)
            if parts[2] == "chunked":
                conn.sendall(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
                if method == "GET":
                    left = size
                    while left > 0:
                        n = min(left, len(piece))
                        conn.sendall(b"%x\r\n" % n + piece[:n] + b"\r\n")
                        left -= n
                conn.sendall(b"0\r\n\r\n")
            else:
                conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % size)
                left = size if method == "GET" else 0
                while left > 0:
                    n = min(left, len(piece))
                    conn.sendall(piece[:n])
                    left -= n
            continue
        body = ("origin=%s framing=%s received=%d\n" % (name, framing, received[0])).encode()
        conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % len(body) + body)


def handle(conn, origin, tls_ctx):
    name = origin["name"]
    note("ACCEPT " + name)
    try:
        kind = origin["kind"]
        if kind == "tls":
            conn = tls_ctx.wrap_socket(conn, server_side=True)
            serve_http(conn, name)
        elif kind == "http":
            serve_http(conn, name)
        elif kind == "bulk":
            serve_bulk(conn, name)
        elif kind == "greet":
            conn.sendall(("HELLO from %s\n" % name).encode())
            while True:
                data = conn.recv(4096)
                if not data:
                    break
                conn.sendall(data)
        else:  # echo
            while True:
                data = conn.recv(4096)
                if not data:
                    break
                conn.sendall(("%s:" % name).encode() + data)
    except (OSError, ssl.SSLError, EOFError, ValueError):
        pass
    finally:
        try:
            conn.close()
        except OSError:
            pass


def serve(origin, tls_ctx):
    family = socket.AF_INET6 if ":" in origin["addr"] else socket.AF_INET
    kind = socket.SOCK_DGRAM if origin["kind"] == "udp" else socket.SOCK_STREAM
    s = socket.socket(family, kind)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((origin["addr"], origin["port"]))
    if kind == socket.SOCK_STREAM:
        s.listen(64)
    return s


def serve_udp(s, name):
    while True:
        data, peer = s.recvfrom(65536)
        note("ACCEPT " + name)
        s.sendto(("%s:" % name).encode() + data, peer)


def main():
    tls_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls_ctx.load_cert_chain(spec["cert"], spec["key"])
    sockets = [(serve(o, tls_ctx), o) for o in spec["origins"]]
    for s, o in sockets:
        if o["kind"] == "udp":
            threading.Thread(target=serve_udp, args=(s, o["name"]), daemon=True).start()
            continue

        def loop(s=s, o=o):
            while True:
                conn, _ = s.accept()
                threading.Thread(target=handle, args=(conn, o, tls_ctx), daemon=True).start()
        threading.Thread(target=loop, daemon=True).start()
    print("READY", flush=True)
    threading.Event().wait()


main()
