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
  client.py http-raw HOST PORT REQ   send REQ (Python escapes) as it is; print what comes back
  client.py h2c HOST PORT MODE METHOD PATH AUTHORITY [NAME VALUE]...
                                     one cleartext HTTP/2 request (MODE `prior`: prior knowledge;
                                     `upgrade`: an HTTP/1.1 request with Upgrade: h2c, whose
                                     answer comes on stream 1); prints STATUS and the body, the
                                     HTTP/1 status line if there was no upgrade, or EOF/RESET
  client.py cap HOST PORT K X S       K+X SOCKS5 greetings at once to a server capped at K
                                     connections; waits S seconds idle; prints SERVED n OF K+X,
                                     then IDLE CLOSED m; THEN SERVED w (those that waited)
  client.py ws HOST PORT H N         a WebSocket upgrade with Host H, then "ping\n" once a second,
                                     N times; prints TUNNEL UP FOR N MESSAGES, or CLOSED after k
Every text argument takes Python escapes and `((N*S))`, S repeated N times (long strings).
  client.py socks HOST PORT THOST TPORT
                                     SOCKS5 CONNECT (no auth) to THOST:TPORT (a domain, with
                                     Python escapes, or an IPv4 address), then "ping\n"; prints
                                     the reply, or REFUSED with the SOCKS reply code
  client.py h2connect HOST PORT TARGET IDENTITY [authority-only]
                                     an h2c CONNECT stream to TARGET (`-` IDENTITY: no identity
                                     header; authority-only: RFC 9113 form without :path), then
                                     "ping\n"; prints the reply, or the status
  client.py h1connect HOST PORT TARGET  an HTTP/1.1 CONNECT; prints the reply
  client.py tls:MODE HOST PORT CERTDIR ARGS...
                                     MODE (socks, h2connect, tcp, ...) inside TLS with the client
                                     certificate CERTDIR/tls.crt and tls.key (`-`: none); the
                                     server's certificate is not checked; TLS-ERROR when the
                                     handshake fails
  client.py udp HOST PORT            one UDP datagram "ping\n"; prints the reply or TIMEOUT
  client.py icmp HOST                one ICMP echo request (raw socket); prints ECHO REPLY or TIMEOUT
  client.py idle HOST PORT [SEND]    connect, send SEND (escapes) if given, and wait up to 20 s;
                                     prints CLOSED after N s (or OPEN)
  client.py trickle HOST PORT HEAD   send the request head HEAD (escapes) one byte every 0.5 s;
                                     prints CLOSED after N s with what came back (or COMPLETE)
  client.py hold HOST PORT SECS      "ping\n", print the reply; wait SECS; again on the same
                                     connection
  client.py ka-wait HOST PORT H SECS GET /get with Host H, print the status; wait SECS; again on
                                     the same connection
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


def expand(text):
    """`((N*S))` -> S repeated N times."""
    import re
    return re.sub(r"\(\((\d+)\*(.*?)\)\)", lambda m: m.group(2) * int(m.group(1)), text)


def unescape(text):
    return expand(text).encode("latin-1").decode("unicode_escape").encode("latin-1")


def udp(host, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2)
    try:
        s.sendto(b"ping\n", (host, int(port)))
        print(s.recv(65536).decode("latin-1"))
    except socket.timeout:
        print("TIMEOUT")
    except OSError as e:
        print("ERROR %s" % e)


def icmp(host):
    import struct
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    s.settimeout(2)
    body = struct.pack("!BBHHH", 8, 0, 0, 0x4567, 1) + b"egressc"
    total = sum(struct.unpack("!%dH" % (len(body) // 2), body[: len(body) // 2 * 2]))
    if len(body) % 2:
        total += body[-1] << 8
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    body = body[:2] + struct.pack("!H", ~total & 0xFFFF) + body[4:]
    try:
        s.sendto(body, (host, 0))
        while True:
            data = s.recv(65536)
            if data[20] == 0:
                print("ECHO REPLY")
                return
    except socket.timeout:
        print("TIMEOUT")
    except OSError as e:
        print("ERROR %s" % e)


def wait_closed(s, limit=20, start=None):
    start = start or time.time()
    s.settimeout(limit)
    got = b""
    try:
        while True:
            data = s.recv(65536)
            if not data:
                break
            got += data
    except socket.timeout:
        print("OPEN after %d s" % limit)
        return
    except OSError:
        pass
    print("CLOSED after %d s %r" % (round(time.time() - start), got[:60]))


def socks(s, thost, tport):
    import struct
    s.sendall(b"\x05\x01\x00")
    if s.recv(2) != b"\x05\x00":
        print("REFUSED method")
        return
    try:
        addr = b"\x01" + socket.inet_aton(thost)
    except OSError:
        name = unescape(thost)
        addr = b"\x03" + bytes([len(name)]) + name
    s.sendall(b"\x05\x01\x00" + addr + struct.pack("!H", int(tport)))
    reply = s.recv(10)
    if len(reply) < 2 or reply[1] != 0:
        print("REFUSED %r" % reply[:2])
        return
    s.sendall(b"ping\n")
    print(recv_some(s))


def h2connect(s, target, identity, authority_only):
    import h2.config
    import h2.connection
    import h2.events
    # Pipy's tunnels carry :scheme and :path (which h2 validates away for CONNECT).
    config = h2.config.H2Configuration(
        client_side=True, header_encoding="utf-8", validate_outbound_headers=False
    )
    conn = h2.connection.H2Connection(config)
    conn.initiate_connection()
    headers = [(":method", "CONNECT"), (":authority", target)]
    if not authority_only:
        headers += [(":scheme", "http"), (":path", target)]
    if identity != "-":
        headers.append(("egressc-identity", identity))
    sid = conn.get_next_available_stream_id()
    conn.send_headers(sid, headers)
    s.sendall(conn.data_to_send())
    sent = False
    while True:
        try:
            data = s.recv(65536)
        except socket.timeout:
            print("TIMEOUT")
            return
        if not data:
            print("EOF")
            return
        for ev in conn.receive_data(data):
            if isinstance(ev, h2.events.ResponseReceived):
                status = dict(ev.headers).get(":status")
                if status != "200":
                    print("STATUS %s" % status)
                    return
                conn.send_data(sid, b"ping\n")
                sent = True
            elif isinstance(ev, h2.events.DataReceived) and sent:
                print(ev.data.decode("latin-1"))
                return
            elif isinstance(ev, (h2.events.StreamReset, h2.events.ConnectionTerminated)):
                print("RESET")
                return
        out = conn.data_to_send()
        if out:
            s.sendall(out)


def h2c(s, mode, method, path, authority, extra):
    import base64
    import h2.config
    import h2.connection
    import h2.events
    import h2.settings
    config = h2.config.H2Configuration(
        client_side=True, header_encoding=None, validate_outbound_headers=False,
        normalize_outbound_headers=False,
    )
    conn = h2.connection.H2Connection(config)
    conn.max_outbound_frame_size = 16384
    # Pure-Python Huffman coding of a 1 MiB name takes a minute: send it raw.
    encode = conn.encoder.encode
    conn.encoder.encode = lambda headers, huffman=True: encode(headers, huffman=False)
    fields = [(b":method", method), (b":scheme", b"http"), (b":path", path), (b":authority", authority)]
    fields += [(k, v) for k, v in extra]
    s.settimeout(TIMEOUT)
    try:
        if mode == "upgrade":
            settings = conn.initiate_upgrade_connection()
            head = b"%s %s HTTP/1.1\r\nHost: %s\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: %s\r\n" % (
                method, path, authority, settings)
            for k, v in extra:
                head += k + b": " + v + b"\r\n"
            s.sendall(head + b"\r\n")
            buf = b""
            while b"\r\n\r\n" not in buf:
                data = s.recv(65536)
                if not data:
                    print("EOF")
                    return
                buf += data
            status, _, rest = buf.partition(b"\r\n\r\n")
            line = status.split(b"\r\n")[0].decode("latin-1")
            if " 101 " not in line + " ":
                print(line, rest.decode("latin-1"))
                return
            print("UPGRADED")
            s.sendall(conn.data_to_send())
            pending = rest
            sid = 1
        else:
            conn.initiate_connection()
            sid = conn.get_next_available_stream_id()
            conn.send_headers(sid, fields, end_stream=True)
            s.sendall(conn.data_to_send())
            pending = b""
        body = b""
        while True:
            data = pending or s.recv(65536)
            pending = b""
            if not data:
                print("EOF")
                return
            for ev in conn.receive_data(data):
                if isinstance(ev, h2.events.ResponseReceived) and ev.stream_id == sid:
                    print("STATUS %s" % dict(ev.headers).get(b":status", b"?").decode())
                elif isinstance(ev, h2.events.DataReceived) and ev.stream_id == sid:
                    body += ev.data
                    conn.acknowledge_received_data(len(ev.data), sid)
                elif isinstance(ev, h2.events.StreamEnded) and ev.stream_id == sid:
                    print(body.decode("latin-1"))
                    return
                elif isinstance(ev, (h2.events.StreamReset, h2.events.ConnectionTerminated)):
                    print("RESET")
                    return
            out = conn.data_to_send()
            if out:
                s.sendall(out)
    except socket.timeout:
        print("TIMEOUT")
    except OSError as e:
        print("ERROR %s" % e)


def wrap_tls(s, certdir):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if certdir != "-":
        ctx.load_cert_chain(certdir + "/tls.crt", certdir + "/tls.key")
    return ctx.wrap_socket(s)


def main():
    mode, host = sys.argv[1], sys.argv[2]
    certdir = None
    if mode.startswith("tls:"):
        mode, certdir = mode[4:], sys.argv.pop(4)
    if mode == "udp":
        return udp(host, sys.argv[3])
    if mode == "icmp":
        return icmp(host)
    port = sys.argv[3]
    try:
        s = connect(host, port)
    except OSError as e:
        print("ERROR connect %s" % e)
        return
    if certdir is not None:
        try:
            s = wrap_tls(s, certdir)
        except (ssl.SSLError, OSError) as e:
            print("TLS-ERROR %s" % e)
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
        sni = unescape(sys.argv[4])
        s.sendall(client_hello(sni))
        reply = recv_some(s)
        print(reply if reply in ("EOF", "TIMEOUT") or reply.startswith("ERROR") else "TLS reply %r" % reply[:16])
    elif mode == "http-raw":
        s.sendall(unescape(sys.argv[4]))
        reply = recv_some(s)
        print(reply)
    elif mode == "http-pipelined":
        # Every request at once; then each response (Content-Length bodies), in order.
        s.sendall(unescape(sys.argv[4]))
        buf = b""
        for _ in range(int(sys.argv[5])):
            response, buf = read_response(s, buf)
            if response is None:
                print("EOF")
                break
            print("%s | %s" % (response[0], response[1].strip()))
    elif mode == "socks":
        socks(s, sys.argv[4], sys.argv[5])
    elif mode == "h2c":
        args = [unescape(a) for a in sys.argv[5:]]
        extra = list(zip(args[3::2], args[4::2]))
        h2c(s, sys.argv[4], args[0], args[1], args[2], extra)
    elif mode == "ws":
        s.settimeout(10)
        s.sendall(("GET /ws HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n" % sys.argv[4]).encode())
        head = b""
        while b"\r\n\r\n" not in head:
            data = s.recv(4096)
            if not data:
                print("EOF")
                return
            head += data
        if b" 101 " not in head.split(b"\r\n")[0] + b" ":
            print(head.split(b"\r\n")[0].decode("latin-1"))
            return
        n = int(sys.argv[5])
        for i in range(n):
            try:
                s.sendall(b"ping\n")
                got = s.recv(4096)
            except OSError:
                got = b""
            if not got:
                print("CLOSED after %d messages" % i)
                return
            time.sleep(1)
        origin = [l.split(b":", 1)[1].strip().decode() for l in head.split(b"\r\n")
                  if l.lower().startswith(b"x-origin:")]
        print("TUNNEL UP FOR %d MESSAGES origin=%s" % (n, origin[0] if origin else "?"))
    elif mode == "h2connect":
        h2connect(s, sys.argv[4], sys.argv[5], len(sys.argv) > 6)
    elif mode == "h1connect":
        s.sendall(("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (sys.argv[4], sys.argv[4])).encode())
        print(recv_some(s))
    elif mode == "idle":
        if len(sys.argv) > 4:
            s.sendall(unescape(sys.argv[4]))
        wait_closed(s)
    elif mode == "trickle":
        start = time.time()
        for b in unescape(sys.argv[4]):
            try:
                s.sendall(bytes([b]))
            except OSError:
                break
            time.sleep(0.5)
            if time.time() - start > 30:
                break
        else:
            print("COMPLETE")
            return
        wait_closed(s, 1, start)
    elif mode == "cap":
        # N connections more than the cap K (all open at once, each a SOCKS5 greeting): how
        # many are served within a second; then, after they idle past the idle bound, how
        # many the gateway closed, and whether a waiting one is served after.
        k, extra = int(sys.argv[4]), int(sys.argv[5])
        conns = [s] + [connect(host, port) for _ in range(k + extra - 1)]
        served = []
        for c in conns:
            c.settimeout(1)
            c.sendall(b"\x05\x01\x00")
        for c in conns:
            try:
                served.append(c.recv(2) == b"\x05\x00")
            except OSError:
                served.append(False)
        first = [c for c, ok in zip(conns, served) if ok]
        waiting = [c for c, ok in zip(conns, served) if not ok]
        print("SERVED %d OF %d" % (len(first), len(conns)), flush=True)
        time.sleep(float(sys.argv[6]))
        closed = 0
        for c in first:
            try:
                c.settimeout(0.5)
                closed += c.recv(1) == b""
            except ConnectionResetError:
                closed += 1
            except OSError:
                pass
        late = 0
        for c in waiting:
            try:
                c.settimeout(3)
                late += c.recv(2) == b"\x05\x00"
            except OSError:
                pass
        print("IDLE CLOSED %d; THEN SERVED %d" % (closed, late))
    elif mode == "hold":
        s.settimeout(30)
        for i in range(2):
            s.sendall(b"ping\n")
            print(recv_some(s), flush=True)
            if i == 0:
                time.sleep(float(sys.argv[4]))
    elif mode == "ka-wait":
        s.settimeout(30)
        buf = b""
        for i in range(2):
            s.sendall(("GET /get HTTP/1.1\r\nHost: %s\r\n\r\n" % sys.argv[4]).encode())
            resp, buf = read_response(s, buf)
            print(resp[0] if resp else "EOF", flush=True)
            if i == 0:
                time.sleep(float(sys.argv[5]))
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
