"""A random-mutation fuzzer of request heads and bodies against a live coved (issue 7).

Valid requests of every kind coved serves (control plane, heartbeat, /v1 exec and files,
runtime API: /run, files, multipart, Connect, proxy; plain, chunked, gzip) are mutated a few times each —
bytes flipped, inserted, deleted, duplicated, truncated, headers added or blown up,
lengths changed — and sent on fresh connections, 16 at a time, a few thousand in all.
Every exchange must end in one of two ways:

  - a valid HTTP/1.1 response; if it is an error (4xx/5xx) its body is the README §5 error
    body (JSON, strict UTF-8, `code` = status) and it carries X-Request-ID; a mutated path
    that lands on the E2B control plane at the origin root (e2b.md §1.1: /v2/..., /v3/...,
    /sandboxes/...) gets E2B's error body instead ({"code", "message"}, e2b.md §1.3);
  - the connection closed without a byte, only when the bytes hold no whole request head with
    a well-formed request line (a head that never ends, a request line without a space:
    there is no request to answer, and libmicrohttpd closes those).

Nothing may hang (coved runs with a 1 s idle timeout; 30 s is a hang), and coved answers
/health after every batch of 100. At the end its file descriptors are back where they were:
no socket, agent connection or lingering close is left behind.

COVE_FUZZ_SEED and COVE_FUZZ_REQUESTS (default 3000) reproduce or extend a run.
"""
import base64
import gzip
import json
import os
import random
import re
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from coveharness import Coved  # noqa: E402
from httpwire import WireError, connect, read_response  # noqa: E402

HANG = 30
BATCH = 100
PARALLEL = 64

INTERESTING = [b"\x00", b"\xff", b"\xc3", b"\r", b"\n", b"\r\n", b":", b" ", b"%", b"%00",
               b"%ff", b"0", b"-1", b"18446744073709551616", b"99999999999", b"chunked",
               b"gzip", b"identity", b"{", b"}", b"\"", b"\\", b"/..", b"?", b"&", b"=",
               b"\t", b"\x7f", b"\xed\xa0\x80", b"a" * 300]
EXTRA_HEADERS = [b"Transfer-Encoding: chunked", b"Content-Encoding: gzip",
                 b"Content-Encoding: br", b"Expect: 100-continue", b"Content-Length: 5",
                 b"Content-Length: 99999999", b"Content-Length: -1", b"Connection: close",
                 b"Connection: keep-alive, Upgrade", b"Upgrade: websocket", b"Host:",
                 b"Range: bytes=0-1", b"Range: bytes=-5", b"X-Request-ID: \xff",
                 b"Content-Type: multipart/form-data; boundary=x", b"X-Access-Token:",
                 b"Authorization: Bearer x", b"X-API-Key: " + b"k" * 20000]


def chunked(body, size=7):
    out = b""
    for i in range(0, len(body), size):
        part = body[i:i + size]
        out += b"%x\r\n%s\r\n" % (len(part), part)
    return out + b"0\r\n\r\n"


def corpus(key, sid, token):
    """The seed requests: (head lines, body). Nothing here deletes or pauses the sandbox,
    creates sandboxes (no valid key on create) or stops coved."""
    k = [b"X-API-Key: " + key]
    t = [b"X-Access-Token: " + token]
    e = b"/envd/" + sid
    js = [b"Content-Type: application/json"]
    run = json.dumps({"cmd": "echo", "args": ["fuzz"]}).encode()
    mp = (b"--xx\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f.txt\"\r\n"
          b"Content-Type: text/plain\r\n\r\nhello\r\n--xx--\r\n")
    connect_hdr = js + [b"Connect-Protocol-Version: 1"]
    return [
        (b"GET /health", [], b""),
        (b"GET /api/v1/sandboxes", k, b""),
        (b"GET /api/v1/sandboxes/" + sid, k, b""),
        (b"GET /api/v1/sandboxes?state=running&metadata=a%3Db", k, b""),
        (b"GET /api/v1/sandboxes/" + sid + b"/logs?limit=5", k, b""),
        (b"POST /api/v1/sandboxes", [b"X-API-Key: not-a-key"] + js,
         b'{"templateID": "base", "timeout": 60}'),
        (b"POST /api/v1/sandboxes/" + sid + b"/timeout", k + js, b'{"timeout": 600}'),
        (b"POST /api/v1/sandboxes/" + sid + b"/refreshes", k, b""),
        (b"POST /api/v1/sandboxes/" + sid + b"/heartbeat", t + js, b'{"status": "healthy"}'),
        (b"POST /api/v1/sandboxes/nosuchsandboxxxxxxx/heartbeat", js, b'{"status": "error"}'),
        (b"POST " + e + b"/run", t + js, run),
        (b"POST " + e + b"/run", t + js + [b"Content-Encoding: gzip"], gzip.compress(run)),
        (b"POST " + e + b"/run", t + js + [b"Transfer-Encoding: chunked"], chunked(run)),
        (b"GET " + e + b"/files?path=/etc/hostname", t, b""),
        (b"GET " + e + b"/files/content?path=/etc/hostname", t, b""),
        (b"POST " + e + b"/files?path=/tmp/fuzz.bin", t + [b"Content-Type: application/octet-stream"],
         os.urandom(64)),
        (b"POST " + e + b"/files?path=/tmp/fz", t + [b"Content-Type: multipart/form-data; boundary=xx"],
         mp),
        (b"POST " + e + b"/files", t + js,
         json.dumps({"path": "/tmp/fz.json", "data": base64.b64encode(b"x").decode()}).encode()),
        (b"POST " + e + b"/filesystem.Filesystem/ListDir", t + connect_hdr, b'{"path": "/tmp"}'),
        (b"POST " + e + b"/filesystem.Filesystem/Stat", t + connect_hdr, b'{"path": "/etc"}'),
        (b"POST " + e + b"/process.Process/List", t + connect_hdr, b"{}"),
        (b"OPTIONS " + e + b"/files", [], b""),
        (b"GET " + e + b"/health", [], b""),
        (b"GET /v1/sandboxes/" + sid, k, b""),
        (b"POST /v1/sandboxes/" + sid + b"/exec", k + js, b'{"command": "echo fuzz"}'),
        (b"PUT /v1/sandboxes/" + sid + b"/files?path=/tmp/v1fz", k, b"v1 bytes"),
        (b"GET /v1/sandboxes/" + sid + b"/files?path=/etc/hostname", k, b""),
        (b"GET " + e + b"/proxy/8099/x?y=1", t, b""),
        (b"POST " + e + b"/proxy/8099/x", t + [b"Transfer-Encoding: chunked"], chunked(b"abc")),
    ]


REQUEST_LINE = re.compile(rb"^[A-Z]+ [!-~]+ HTTP/1\.[01]$")


# e2b.md §1.1 step 6: the first path segments that send a request at the origin root to the
# E2B control plane (src/coved/http/routing.c, http_e2b_control_path).
E2B_ROOTS = {b"sandboxes", b"v2", b"v3", b"templates", b"volumes", b"teams", b"secrets",
             b"volumecontent", b"snapshots", b"api-keys", b"access-tokens", b"nodes"}


def e2b_control_path(data):
    """Whether the request line's path is one the E2B control plane answers."""
    parts = data.split(b"\r\n", 1)[0].split(b" ")
    if len(parts) < 2:
        return False
    # Mutations may drop or double the leading slash: coved routes by segments either way.
    segs = [seg for seg in parts[1].split(b"?", 1)[0].split(b"/") if seg]
    return bool(segs) and segs[0] in E2B_ROOTS


def must_answer(data):
    """A whole head whose request line is well-formed deserves an answer."""
    at = data.find(b"\r\n\r\n")
    if at < 0:
        return False
    return bool(REQUEST_LINE.match(data[:at].split(b"\r\n")[0]))


def build(method_path, headers, body, close):
    lines = [method_path + b" HTTP/1.1", b"Host: 127.0.0.1"] + list(headers)
    if body and not any(h.lower().startswith(b"transfer-encoding") for h in headers):
        lines.append(b"Content-Length: %d" % len(body))
    if close:
        lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def mutate(rng, data):
    n = rng.randint(1, 4)
    for _ in range(n):
        op = rng.randrange(9)
        i = rng.randrange(len(data) + 1)
        if op == 0 and data:  # flip a byte
            i = min(i, len(data) - 1)
            data = data[:i] + bytes([data[i] ^ (1 << rng.randrange(8))]) + data[i + 1:]
        elif op == 1:  # insert something interesting
            data = data[:i] + rng.choice(INTERESTING) + data[i:]
        elif op == 2:  # insert random bytes
            data = data[:i] + os.urandom(rng.randint(1, 16)) + data[i:]
        elif op == 3 and data:  # delete a range
            j = min(len(data), i + rng.randint(1, 32))
            data = data[:i] + data[j:]
        elif op == 4 and data:  # duplicate a range
            j = min(len(data), i + rng.randint(1, 64))
            data = data[:i] + data[i:j] + data[i:]
        elif op == 5:  # truncate
            data = data[:i]
        elif op == 6:  # an extra header line
            at = data.find(b"\r\n")
            if at > 0:
                data = data[:at + 2] + rng.choice(EXTRA_HEADERS) + b"\r\n" + data[at + 2:]
        elif op == 7:  # a header value blown up
            at = data.find(b": ")
            if at > 0:
                data = data[:at + 2] + b"v" * rng.choice([100, 5000, 20000, 70000]) + data[at + 2:]
        elif op == 8:  # another Content-Length
            at = data.find(b"Content-Length: ")
            if at >= 0:
                end = data.find(b"\r\n", at)
                data = (data[:at + 16] + str(rng.choice([0, 1, 7, 100, 1 << 20, 1 << 40]))
                        .encode() + data[end:])
    return data


class Fuzz(unittest.TestCase):
    def test_mutated_requests_get_valid_answers_and_coved_survives(self):
        seed = int(os.environ.get("COVE_FUZZ_SEED", "0")) or random.randrange(1, 1 << 31)
        total = int(os.environ.get("COVE_FUZZ_REQUESTS", "3000"))
        print("fuzz seed %d, %d requests" % (seed, total), file=sys.stderr)
        rng = random.Random(seed)
        with Coved(extra_args=["--idle-timeout", "1", "--max-sandboxes", "2"]) as cd:
            sb = cd.create()
            seeds = corpus(cd.api_key.encode(), sb.id.encode(), sb.token.encode())
            fds_before = len(os.listdir("/proc/%d/fd" % cd.proc.pid))
            cases = []
            for _ in range(total):
                mp, hdrs, body = rng.choice(seeds)
                raw = build(mp, hdrs, body, close=rng.random() < 0.5)
                cases.append(mutate(rng, raw) if rng.random() < 0.95 else raw)

            stats = {"replies": 0, "errors": 0, "closed": 0}
            failures = []
            lock = threading.Lock()

            def one(data):
                s = connect(cd.port, timeout=HANG)
                try:
                    try:
                        s.sendall(data)
                    except OSError:
                        pass  # refused early: the answer may still be there
                    head_req = data.startswith(b"HEAD ")
                    try:
                        resp, rd = read_response(s, time.monotonic() + HANG, head_req)
                    except WireError as e:
                        return "not HTTP: %s" % e
                    if resp is None:
                        if rd.hung:
                            return "no answer within %d s" % HANG
                        if rd.buf:
                            return "cut answer %r" % rd.buf[:200]
                        if must_answer(data):
                            return "closed without an answer"
                        with lock:
                            stats["closed"] += 1
                        return None
                    with lock:
                        stats["replies"] += 1
                    if resp.status >= 400:
                        with lock:
                            stats["errors"] += 1
                        if head_req:
                            return None
                        try:
                            doc = resp.json()
                        except (ValueError, UnicodeDecodeError):
                            return "error %d without a JSON body: %r" % (resp.status,
                                                                        resp.body[:200])
                        if e2b_control_path(data):
                            if doc.get("code") != resp.status or \
                                    not isinstance(doc.get("message"), str):
                                return "E2B error body %r" % doc
                            return None
                        if doc.get("code") != resp.status or "error" not in doc:
                            return "error body %r" % doc
                        if resp.header("x-request-id") != doc.get("request_id"):
                            return "X-Request-ID %r vs %r" % (resp.header("x-request-id"),
                                                             doc.get("request_id"))
                    return None
                finally:
                    s.close()

            done = [0]
            progress = threading.Condition(lock)
            queue = list(reversed(cases))

            def worker():
                while True:
                    with lock:
                        if not queue:
                            return
                        data = queue.pop()
                    why = one(data)
                    with lock:
                        if why:
                            failures.append((why, data[:300]))
                        done[0] += 1
                        progress.notify_all()

            ts = [threading.Thread(target=worker) for _ in range(PARALLEL)]
            for t in ts:
                t.start()
            # After every batch of 100 exchanges (while the next ones go on): coved is alive
            # and answers.
            for b in range(BATCH, total + BATCH, BATCH):
                with lock:
                    while done[0] < min(b, total):
                        progress.wait()
                self.assertIsNone(cd.proc.poll(), "coved died (seed %d)" % seed)
                st, body, _ = cd.request("GET", "/health", auth=False, timeout=HANG)
                self.assertEqual(st, 200, "coved stopped answering after %d requests (seed %d)"
                                 % (b, seed))
            for t in ts:
                t.join()
            print("fuzz: %(replies)d replies (%(errors)d errors), %(closed)d closed unanswered"
                  % stats, file=sys.stderr)
            self.assertEqual(failures[:5], [], "seed %d: %d bad exchanges" % (seed, len(failures)))
            self.assertGreater(stats["replies"], total * 3 // 4)

            # The sandbox still works, and nothing was left open: every connection, agent
            # call and lingering close is gone once the lingering time (30 s) has passed.
            self.assertEqual(sb.run("echo", "ok")["stdout"], "ok\n")
            end = time.monotonic() + 60
            while time.monotonic() < end:
                fds = len(os.listdir("/proc/%d/fd" % cd.proc.pid))
                if fds <= fds_before + 2:
                    break
                time.sleep(1)
            self.assertLessEqual(fds, fds_before + 2, "coved holds %d fds, %d before"
                                 % (fds, fds_before))


if __name__ == "__main__":
    unittest.main()
