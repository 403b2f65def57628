#!/usr/bin/env python3
"""Port proxy {envdUrl}/proxy/{port}/{rest} (runtime.md §5) against a real coved.

Inside one sandbox: `python3 -m http.server 8000`, an echo server on 8001 (written into the
sandbox with POST /file; it reports method, raw path, headers and body digests, echoes bodies,
answers chunked, 500, redirects) and a minimal stdlib WebSocket echo server on 8002. A second
sandbox has network.allowPublicTraffic=false. Everything goes through coved over real HTTP.

Run as root: python3 tests/integration/test_proxy.py   (binaries from $COVE_BUILD_DIR or ./build)
"""
import base64
import gzip
import hashlib
import http.client
import json
import os
import socket
import struct
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coveharness import Coved  # noqa: E402

ECHO_SERVER = r'''
import hashlib, json, sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            out = b""
            while True:
                line = self.rfile.readline()
                n = int(line.split(b";")[0].strip(), 16)
                if n == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return out
                out += self.rfile.read(n)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def send(self, status, data, ctype="application/octet-stream", extra=()):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def handle_any(self):
        p = self.path
        if p.startswith("/meta"):
            b = self.body()
            meta = {"method": self.command, "path": p, "headers": list(self.headers.items()),
                    "len": len(b), "sha256": hashlib.sha256(b).hexdigest()}
            return self.send(200, json.dumps(meta).encode(), "application/json")
        if p.startswith("/echo"):
            return self.send(200, self.body())
        if p.startswith("/chunked"):
            self.body()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(300):
                part = (b"%05d-" % i) * 997
                self.wfile.write(b"%x;ext=1\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\nX-Trailer: t\r\n\r\n")
            return
        if p.startswith("/fail"):
            self.body()
            return self.send(500, b"boom from upstream", "text/plain", [("X-Upstream", "yes")])
        if p.startswith("/redirect"):
            self.body()
            return self.send(302, b"", "text/plain", [("Location", "/login?next=%2Fhome")])
        if p.startswith("/absredirect"):
            self.body()
            return self.send(302, b"", "text/plain", [("Location", "http://example.com/x")])
        if p.startswith("/cookies"):
            self.body()
            return self.send(200, b"ok", "text/plain", [("Set-Cookie", "a=1"), ("Set-Cookie", "b=2"),
                                                        ("Content-Encoding", "gzip")])
        if p.startswith("/badheader"):
            # RFC 9112 forbids NUL and bare CR in field values: coved must refuse the head.
            self.body()
            bad = "a\x00b" if p.endswith("/nul") else "a\rSet-Cookie: evil=1"
            return self.send(200, b"x", "text/plain", [("X-Bad", bad)])
        if p.startswith("/close"):
            # No Content-Length, no chunking: the body ends when the connection closes.
            self.body()
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"until-close-" * 1000)
            self.close_connection = True
            return
        return self.send(404, b"no such echo path", "text/plain")

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = handle_any

ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
'''

WS_SERVER = r'''
import base64, hashlib, socket, struct, sys, threading
GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

def recv_exact(c, n):
    b = b""
    while len(b) < n:
        k = c.recv(n - len(b))
        if not k:
            raise EOFError
        b += k
    return b

def serve(c):
    try:
        head = b""
        while b"\r\n\r\n" not in head:
            k = c.recv(4096)
            if not k:
                return
            head += k
        lines = head.split(b"\r\n\r\n")[0].decode().split("\r\n")
        hdrs = {l.split(":", 1)[0].strip().lower(): l.split(":", 1)[1].strip() for l in lines[1:]}
        acc = base64.b64encode(hashlib.sha1((hdrs["sec-websocket-key"] + GUID).encode()).digest()).decode()
        c.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Accept: %s\r\nX-WS-Path: %s\r\n\r\n" % (acc, lines[0].split(" ")[1])).encode())
        while True:
            b0, b1 = recv_exact(c, 2)
            n = b1 & 0x7f
            if n == 126:
                n = struct.unpack(">H", recv_exact(c, 2))[0]
            elif n == 127:
                n = struct.unpack(">Q", recv_exact(c, 8))[0]
            mask = recv_exact(c, 4) if b1 & 0x80 else b"\0\0\0\0"
            data = bytes(x ^ mask[i % 4] for i, x in enumerate(recv_exact(c, n)))
            op = b0 & 0x0f
            if n < 126:
                hdr = bytes([0x80 | op, n])
            elif n < 65536:
                hdr = bytes([0x80 | op, 126]) + struct.pack(">H", n)
            else:
                hdr = bytes([0x80 | op, 127]) + struct.pack(">Q", n)
            c.sendall(hdr + data)
            if op == 8:
                return
    except (EOFError, OSError, KeyError):
        pass
    finally:
        c.close()

s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(16)
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
'''


def start_bg(sb, script_path, args, log):
    sb.sh("nohup python3 %s %s >%s 2>&1 </dev/null &" % (script_path, args, log))


class ProxyTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cd = Coved.for_class(cls)
        try:
            cls.sb = cls.cd.create()
            sb = cls.sb
            # Served files: a small one and a 3 MB random one (checksummed).
            sb.sh("mkdir -p /tmp/www && echo hello-proxy > /tmp/www/hello.txt && "
                  "head -c 3145728 /dev/urandom > /tmp/www/blob.bin")
            cls.blob_sha = sb.sh("sha256sum /tmp/www/blob.bin")["stdout"].split()[0]
            for path, text in (("/tmp/echo_srv.py", ECHO_SERVER), ("/tmp/ws_srv.py", WS_SERVER)):
                st, out, _ = sb.rt("POST", "/file?path=" + path, text.encode(),
                                   headers={"Content-Type": "application/octet-stream"})
                assert st in (200, 204), (st, out)
            sb.sh("cd /tmp/www && nohup python3 -m http.server 8000 --bind 127.0.0.1 "
                  ">/tmp/hs.log 2>&1 </dev/null &")
            start_bg(sb, "/tmp/echo_srv.py", "8001", "/tmp/echo.log")
            start_bg(sb, "/tmp/ws_srv.py", "8002", "/tmp/ws.log")
            # Wait until the three listen (from inside the sandbox).
            sb.sh("for i in $(seq 100); do python3 -c 'import socket,sys\n"
                  "for p in (8000, 8001, 8002): socket.create_connection((\"127.0.0.1\", p), 1).close()'"
                  " 2>/dev/null && exit 0; sleep 0.05; done; exit 1")
        except BaseException:
            cls.cd.__exit__(None, None, None)
            raise

    @classmethod
    def tearDownClass(cls):
        cls.cd.__exit__(None, None, None)

    # -- helpers --
    def px(self, port, rest):
        return "%s/proxy/%d%s" % (self.sb.prefix, port, rest)

    def req(self, method, path, body=None, headers=None, timeout=60):
        c = http.client.HTTPConnection("127.0.0.1", self.cd.port, timeout=timeout)
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        hdrs = r.getheaders()
        c.close()
        return r.status, data, hdrs

    def meta(self, method="GET", rest="/meta", body=None, headers=None):
        st, data, hdrs = self.req(method, self.px(8001, rest), body, headers)
        self.assertEqual(st, 200, data)
        return json.loads(data), hdrs

    @staticmethod
    def hget(hdrs, name):
        return [v for k, v in hdrs if k.lower() == name.lower()]

    # -- plain HTTP --
    def test_directory_listing_without_token(self):
        st, data, hdrs = self.req("GET", self.px(8000, "/"))
        self.assertEqual(st, 200)
        self.assertIn(b"hello.txt", data)
        self.assertIn(b"blob.bin", data)
        self.assertEqual(self.hget(hdrs, "Access-Control-Allow-Origin"), ["*"])

    def test_file_download_checksum(self):
        st, data, hdrs = self.req("GET", self.px(8000, "/blob.bin"))
        self.assertEqual(st, 200)
        self.assertEqual(len(data), 3145728)
        self.assertEqual(hashlib.sha256(data).hexdigest(), self.blob_sha)
        self.assertEqual(self.hget(hdrs, "Content-Length"), ["3145728"])

    def test_request_passthrough(self):
        body = b"x" * 1000
        m, _ = self.meta("PUT", "/meta/a%2Fb/c%20d?x=1&y=a+b&z=%2B&flag&e=", body,
                         {"X-Access-Token": self.sb.token, "X-Traffic-Access-Token": "t",
                          "X-Custom": "keep me", "Content-Type": "text/plain",
                          "X-Forwarded-For": "10.9.8.7", "Keep-Alive": "timeout=5",
                          "Connection": "keep-alive, X-Drop-Me", "X-Drop-Me": "1"})
        self.assertEqual(m["method"], "PUT")
        self.assertEqual(m["path"], "/meta/a%2Fb/c%20d?x=1&y=a+b&z=%2B&flag&e=")
        self.assertEqual(m["len"], 1000)
        self.assertEqual(m["sha256"], hashlib.sha256(body).hexdigest())
        h = {}
        for k, v in m["headers"]:
            h.setdefault(k.lower(), []).append(v)
        self.assertEqual(h["host"], ["localhost:8001"])
        self.assertEqual(h["x-custom"], ["keep me"])
        self.assertEqual(h["content-type"], ["text/plain"])
        self.assertEqual(h["content-length"], ["1000"])
        self.assertEqual(h["x-forwarded-host"], ["127.0.0.1:%d" % self.cd.port])
        self.assertEqual(h["x-forwarded-proto"], ["http"])
        self.assertEqual(h["x-forwarded-for"], ["10.9.8.7, 127.0.0.1"])
        self.assertEqual(h["x-forwarded-prefix"], ["/envd/%s/proxy/8001" % self.sb.id])
        for gone in ("x-access-token", "x-traffic-access-token", "keep-alive", "x-drop-me"):
            self.assertNotIn(gone, h)
        self.assertEqual(h["connection"], ["close"])

    def test_all_methods(self):
        for method in ("GET", "POST", "DELETE", "PATCH", "OPTIONS"):
            m, _ = self.meta(method, "/meta/m")
            self.assertEqual(m["method"], method)
        st, data, hdrs = self.req("HEAD", self.px(8001, "/echo"))
        self.assertEqual(st, 200)
        self.assertEqual(data, b"")
        # HEAD keeps the upstream's Content-Length (MHD sends no body).
        st, data, hdrs = self.req("HEAD", self.px(8000, "/hello.txt"))
        self.assertEqual((st, data), (200, b""))
        self.assertEqual(self.hget(hdrs, "Content-Length"), ["12"])

    def test_big_body_both_ways(self):
        body = os.urandom(3 * 1024 * 1024 + 17)
        st, data, _ = self.req("POST", self.px(8001, "/echo"), body,
                               {"Content-Type": "application/octet-stream"})
        self.assertEqual(st, 200)
        self.assertEqual(len(data), len(body))
        self.assertEqual(data, body)

    def test_chunked_request_body(self):
        parts = [os.urandom(50000) for _ in range(40)]
        c = http.client.HTTPConnection("127.0.0.1", self.cd.port, timeout=60)
        c.request("POST", self.px(8001, "/meta/chunked-up"), body=iter(parts), encode_chunked=True)
        r = c.getresponse()
        m = json.loads(r.read())
        c.close()
        self.assertEqual(r.status, 200)
        whole = b"".join(parts)
        self.assertEqual(m["len"], len(whole))
        self.assertEqual(m["sha256"], hashlib.sha256(whole).hexdigest())

    def test_gzip_request_body_passes_raw(self):
        raw = gzip.compress(b"not decoded by coved" * 100)
        m, _ = self.meta("POST", "/meta/gz", raw, {"Content-Encoding": "gzip"})
        self.assertEqual(m["sha256"], hashlib.sha256(raw).hexdigest())
        m, _ = self.meta("POST", "/meta/br", b"\x01\x02\x03", {"Content-Encoding": "br"})
        self.assertEqual(m["len"], 3)
        self.assertIn(["Content-Encoding", "br"], m["headers"])

    def test_chunked_response(self):
        st, data, hdrs = self.req("GET", self.px(8001, "/chunked"))
        self.assertEqual(st, 200)
        want = b"".join((b"%05d-" % i) * 997 for i in range(300))
        self.assertEqual(len(data), len(want))
        self.assertEqual(data, want)

    def test_until_close_response(self):
        st, data, _ = self.req("GET", self.px(8001, "/close"))
        self.assertEqual(st, 200)
        self.assertEqual(data, b"until-close-" * 1000)

    def test_upstream_500_passes_through(self):
        st, data, hdrs = self.req("POST", self.px(8001, "/fail"), b"{}")
        self.assertEqual(st, 500)
        self.assertEqual(data, b"boom from upstream")
        self.assertEqual(self.hget(hdrs, "X-Upstream"), ["yes"])
        self.assertEqual(self.hget(hdrs, "Content-Type"), ["text/plain"])

    def test_response_headers_unchanged(self):
        st, data, hdrs = self.req("GET", self.px(8001, "/cookies"))
        self.assertEqual(st, 200)
        self.assertEqual(data, b"ok")  # Content-Encoding: gzip passed as is, body untouched
        self.assertEqual(self.hget(hdrs, "Set-Cookie"), ["a=1", "b=2"])
        self.assertEqual(self.hget(hdrs, "Content-Encoding"), ["gzip"])
        self.assertEqual(len(self.hget(hdrs, "Date")), 1)

    def test_nul_or_bare_cr_in_response_header_is_502(self):
        for kind in ("nul", "cr"):
            st, data, hdrs = self.req("GET", self.px(8001, "/badheader/" + kind))
            self.assertEqual(st, 502, (kind, data))
            self.assertIn("sent an invalid HTTP response", json.loads(data)["message"])
            self.assertEqual(self.hget(hdrs, "X-Bad"), [])

    def test_location_rewrite(self):
        st, _, hdrs = self.req("GET", self.px(8001, "/redirect"))
        self.assertEqual(st, 302)
        self.assertEqual(self.hget(hdrs, "Location"),
                         ["/envd/%s/proxy/8001/login?next=%%2Fhome" % self.sb.id])
        st, _, hdrs = self.req("GET", self.px(8001, "/absredirect"))
        self.assertEqual(self.hget(hdrs, "Location"), ["http://example.com/x"])

    def test_missing_slash_redirects(self):
        st, _, hdrs = self.req("GET", self.px(8000, "?a=1&b=x+y"))
        self.assertEqual(st, 308)
        self.assertEqual(self.hget(hdrs, "Location"), [self.px(8000, "/?a=1&b=x+y")])
        st, _, hdrs = self.req("POST", self.px(8000, ""))
        self.assertEqual(st, 308)
        self.assertEqual(self.hget(hdrs, "Location"), [self.px(8000, "/")])

    def test_bad_ports(self):
        for port in ("0", "70000", "65536", "abc", "-1"):
            st, data, _ = self.req("GET", "%s/proxy/%s/" % (self.sb.prefix, port))
            self.assertEqual(st, 400, (port, data))
            self.assertEqual(json.loads(data)["error"]["code"], "INVALID_ARGUMENT")

    def test_closed_port(self):
        st, data, hdrs = self.req("GET", self.px(8009, "/x"))
        self.assertEqual(st, 502)
        b = json.loads(data)
        self.assertEqual(b["message"], "nothing is listening on port 8009 in sandbox '%s'" % self.sb.id)
        self.assertEqual(b["error"]["code"], "BAD_GATEWAY")
        self.assertEqual(self.hget(hdrs, "Access-Control-Allow-Origin"), ["*"])

    @unittest.skipUnless(os.environ.get("COVE_TEST_SLOW"), "takes 60 s; set COVE_TEST_SLOW=1")
    def test_no_answer_is_504(self):
        self.sb.sh("nohup python3 -c 'import socket,time\n"
                   "s=socket.socket(); s.bind((\"127.0.0.1\", 8004)); s.listen(4)\n"
                   "c=s.accept(); time.sleep(120)' >/dev/null 2>&1 </dev/null & sleep 0.3")
        t0 = time.monotonic()
        st, data, _ = self.req("GET", self.px(8004, "/"), timeout=90)
        self.assertEqual(st, 504, data)
        self.assertGreaterEqual(time.monotonic() - t0, 59)
        self.assertEqual(json.loads(data)["error"]["code"], "GATEWAY_TIMEOUT")

    def test_unknown_sandbox(self):
        st, _, _ = self.req("GET", "/envd/nosuchsandbox/proxy/8000/")
        self.assertEqual(st, 404)

    # -- credentials --
    def test_private_traffic_needs_token(self):
        sb2 = self.cd.create(network={"allowPublicTraffic": False})
        try:
            sb2.sh("mkdir -p /tmp/w2 && echo private > /tmp/w2/p.txt && cd /tmp/w2 && "
                   "nohup python3 -m http.server 8000 --bind 127.0.0.1 >/dev/null 2>&1 </dev/null &")
            sb2.sh("for i in $(seq 100); do python3 -c 'import socket; "
                   "socket.create_connection((\"127.0.0.1\", 8000), 1)' 2>/dev/null && exit 0; "
                   "sleep 0.05; done; exit 1")
            path = sb2.prefix + "/proxy/8000/p.txt"
            st, data, hdrs = self.req("GET", path)
            self.assertEqual(st, 401, data)
            self.assertEqual(self.hget(hdrs, "Access-Control-Allow-Origin"), ["*"])
            st, _, _ = self.req("GET", path, headers={"X-Traffic-Access-Token": "wrong"})
            self.assertEqual(st, 401)
            st, data, _ = self.req("GET", path, headers={"X-Traffic-Access-Token": sb2.token})
            self.assertEqual((st, data), (200, b"private\n"))
            st, data, _ = self.req("GET", path, headers={"X-Access-Token": sb2.token})
            self.assertEqual((st, data), (200, b"private\n"))
        finally:
            sb2.delete()

    # -- WebSocket --
    def ws_roundtrip(self, sock, payload, opcode=1):
        mask = os.urandom(4)
        n = len(payload)
        if n < 126:
            hdr = bytes([0x80 | opcode, 0x80 | n])
        elif n < 65536:
            hdr = bytes([0x80 | opcode, 0x80 | 126]) + struct.pack(">H", n)
        else:
            hdr = bytes([0x80 | opcode, 0x80 | 127]) + struct.pack(">Q", n)
        sock.sendall(hdr + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))
        b0, b1 = self.recv_exact(sock, 2)
        n = b1 & 0x7f
        if n == 126:
            n = struct.unpack(">H", self.recv_exact(sock, 2))[0]
        elif n == 127:
            n = struct.unpack(">Q", self.recv_exact(sock, 8))[0]
        self.assertFalse(b1 & 0x80, "server frames are not masked")
        return b0 & 0x0f, self.recv_exact(sock, n)

    @staticmethod
    def recv_exact(sock, n):
        b = b""
        while len(b) < n:
            k = sock.recv(n - len(b))
            if not k:
                raise EOFError("closed after %d of %d bytes" % (len(b), n))
            b += k
        return b

    def test_websocket_echo(self):
        key = base64.b64encode(os.urandom(16)).decode()
        s = socket.create_connection(("127.0.0.1", self.cd.port), timeout=30)
        try:
            s.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
                       "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
                       "\r\n" % (self.px(8002, "/ws?room=1"), self.cd.port, key)).encode())
            head = b""
            while b"\r\n\r\n" not in head:
                k = s.recv(1)
                self.assertTrue(k, "closed before the 101: %r" % head)
                head += k
            lines = head.decode().split("\r\n")
            self.assertIn(" 101 ", lines[0] + " ")
            hdrs = {}
            for l in lines[1:]:
                if ":" in l:
                    hdrs.setdefault(l.split(":", 1)[0].strip().lower(), []).append(l.split(":", 1)[1].strip())
            want = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")
                                                 .encode()).digest()).decode()
            self.assertEqual(hdrs["sec-websocket-accept"], [want])
            self.assertEqual([v.lower() for v in hdrs["upgrade"]], ["websocket"])
            self.assertEqual(hdrs["x-ws-path"], ["/ws?room=1"])
            self.assertEqual(self.ws_roundtrip(s, b"hello through the proxy"),
                             (1, b"hello through the proxy"))
            big = os.urandom(200000)
            self.assertEqual(self.ws_roundtrip(s, big, opcode=2), (2, big))
            op, _ = self.ws_roundtrip(s, struct.pack(">H", 1000), opcode=8)
            self.assertEqual(op, 8)
            s.settimeout(10)
            self.assertEqual(s.recv(10), b"")  # the tunnel closes after the upstream does
        finally:
            s.close()
        # The connection thread is free again: a plain request still works.
        st, _, _ = self.req("GET", self.px(8000, "/hello.txt"))
        self.assertEqual(st, 200)

    # -- isolation --
    def test_sandbox_cannot_reach_host_loopback(self):
        ls = socket.socket()
        ls.bind(("127.0.0.1", 0))
        ls.listen(4)
        ls.settimeout(0.5)
        port = ls.getsockname()[1]
        try:
            out = self.sb.sh("python3 -c 'import socket\n"
                             "try:\n socket.create_connection((\"127.0.0.1\", %d), 2); print(\"CONNECTED\")\n"
                             "except OSError as e: print(\"FAILED\", e)'" % port)
            self.assertIn("FAILED", out["stdout"])
            with self.assertRaises(socket.timeout):
                ls.accept()
        finally:
            ls.close()
        # coved's own threads are back in the host namespace: the API still answers.
        st, _, _ = self.cd.request("GET", "/health", auth=False)
        self.assertEqual(st, 200)

    def test_many_sequential_requests(self):
        c = http.client.HTTPConnection("127.0.0.1", self.cd.port, timeout=30)
        for i in range(50):
            c.request("GET", self.px(8000, "/hello.txt"))
            r = c.getresponse()
            self.assertEqual((r.status, r.read()), (200, b"hello-proxy\n"))
        c.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
