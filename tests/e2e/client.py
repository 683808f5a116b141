#!/usr/bin/env python3
"""Clients for egressc's end-to-end tests. Each prints what it received, or EOF/ERROR.

  client.py tcp HOST PORT            send "ping\n", print the reply (or EOF)
  client.py greet HOST PORT          print the greeting the server sends first (or EOF)
  client.py raw HOST PORT            send non-TLS bytes, print the reply (or EOF)
  client.py tls-split HOST PORT SNI  TLS with the ClientHello split across two TCP segments,
                                     then GET /; prints the HTTP response body
  client.py keepalive HOST PORT H1 H2  two requests with Host H1 then H2 on one connection;
                                     prints each status line
  client.py sni-raw HOST PORT SNI    a hand-made ClientHello whose SNI is SNI with Python
                                     escapes (`evil.test\\x00.wild.test`: a NUL, which the ssl
                                     module refuses to send); prints the first reply bytes (or EOF)
"""
import socket
import ssl
import sys
import time

TIMEOUT = 5


def connect(host, port):
    s = socket.create_connection((host, int(port)), timeout=TIMEOUT)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def recv_some(s):
    try:
        data = s.recv(65536)
    except socket.timeout:
        return "TIMEOUT"
    except OSError as e:
        return "ERROR %s" % e
    return data.decode("latin-1") if data else "EOF"


def read_response(s, buf=b""):
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(65536)
        if not chunk:
            return None, buf
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    status = head.split(b"\r\n")[0].decode()
    length = 0
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v.strip())
    while len(rest) < length:
        chunk = s.recv(65536)
        if not chunk:
            break
        rest += chunk
    return (status, rest[:length].decode("latin-1")), rest[length:]


def complete(response):
    """Whether `response` holds a whole HTTP response with a content-length body."""
    head, sep, rest = response.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            return len(rest) >= int(v.strip())
    return False


def client_hello(sni):
    """A minimal TLS 1.2 ClientHello carrying `sni` (bytes) as its server name."""
    import os
    import struct

    names = b"\x00" + struct.pack("!H", len(sni)) + sni
    ext_sni = struct.pack("!HH", 0, len(names) + 2) + struct.pack("!H", len(names)) + names
    groups = struct.pack("!HHH", 10, 4, 2) + struct.pack("!H", 23)
    sigs = struct.pack("!HHH", 13, 4, 2) + struct.pack("!H", 0x0401)
    exts = ext_sni + groups + sigs
    body = (
        b"\x03\x03" + os.urandom(32) + b"\x00"
        + struct.pack("!H", 4) + b"\xc0\x2f\x00\x9c"
        + b"\x01\x00"
        + struct.pack("!H", len(exts)) + exts
    )
    hs = b"\x01" + struct.pack("!I", len(body))[1:] + body
    return b"\x16\x03\x01" + struct.pack("!H", len(hs)) + hs


def main():
    mode, host, port = sys.argv[1], sys.argv[2], sys.argv[3]
    try:
        s = connect(host, port)
    except OSError as e:
        print("ERROR connect %s" % e)
        return
    if mode == "tcp":
        s.sendall(b"ping\n")
        print(recv_some(s))
    elif mode == "greet":
        print(recv_some(s))
    elif mode == "raw":
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        print(recv_some(s))
    elif mode == "tls-split":
        sni = sys.argv[4]
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = ctx.wrap_bio(incoming, outgoing, server_hostname=sni)
        try:
            obj.do_handshake()
        except ssl.SSLWantReadError:
            pass
        hello = outgoing.read()
        cut = len(hello) // 3
        s.sendall(hello[:cut])
        time.sleep(0.3)
        s.sendall(hello[cut:])
        while True:
            try:
                obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                out = outgoing.read()
                if out:
                    s.sendall(out)
                data = s.recv(65536)
                if not data:
                    print("EOF")
                    return
                incoming.write(data)
        out = outgoing.read()
        if out:
            s.sendall(out)
        obj.write(("GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % sni).encode())
        s.sendall(outgoing.read())
        body = b""
        while not complete(body):
            try:
                body += obj.read(65536)
                continue
            except ssl.SSLWantReadError:
                pass
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                break
            data = s.recv(65536)
            if not data:
                break
            incoming.write(data)
        print(body.decode("latin-1").split("\r\n\r\n", 1)[-1].strip())
    elif mode == "sni-raw":
        sni = sys.argv[4].encode("latin-1").decode("unicode_escape").encode("latin-1")
        s.sendall(client_hello(sni))
        reply = recv_some(s)
        print(reply if reply in ("EOF", "TIMEOUT") or reply.startswith("ERROR") else "TLS reply %r" % reply[:16])
    elif mode == "keepalive":
        buf = b""
        for h in sys.argv[4:6]:
            s.sendall(("GET /get HTTP/1.1\r\nHost: %s\r\n\r\n" % h).encode())
            resp, buf = read_response(s, buf)
            if resp is None:
                print("EOF")
                return
            print(resp[0], resp[1].strip())
    s.close()


main()
