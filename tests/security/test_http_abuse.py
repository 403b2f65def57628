"""An HTTP server that one client, or ten thousand idle ones, cannot take down (issue 7).

An unauthenticated network client tries what it can against coved's port: hold ten thousand
idle connections, open more than its share, stall a request body, announce or stream a body
past the limit, send a gzip bomb or a body that is not gzip, and probe sandbox IDs through
the heartbeat route. Every probe asserts the refusal (status, error body, closed connection,
coved's memory and file descriptors), and that coved still serves everyone else. Deadlines
here only detect a hang; nothing asserts how fast an answer came.
"""
import gzip
import json
import os
import resource
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from coveharness import Coved  # noqa: E402
from httpwire import assert_error_body, connect, read_response, wait_closed  # noqa: E402

HANG = 60  # seconds after which a missing answer counts as a hang


def deadline(s=HANG):
    return time.monotonic() + s


def proc_status(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def nofile_soft(pid):
    with open("/proc/%d/limits" % pid) as f:
        for line in f:
            if line.startswith("Max open files"):
                return int(line.split()[3])
    raise KeyError("Max open files")


def head(method, path, headers=(), key=None):
    h = b"%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n" % (method.encode(), path.encode())
    if key:
        h += b"X-API-Key: " + key.encode() + b"\r\n"
    for k, v in headers:
        h += k.encode() + b": " + (v if isinstance(v, bytes) else v.encode()) + b"\r\n"
    return h + b"\r\n"


class TenThousandIdleConnections(unittest.TestCase):
    """Issue 7 item 3: ~1,010 idle connections used to lock everyone out (select())."""

    N = 10000
    PER_SOURCE = 1000  # under the default per-client cap (1024): many idle clients

    def test_keyed_client_works_while_ten_thousand_idle_connections_are_open(self):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard < self.N + 1000:
            self.skipTest("RLIMIT_NOFILE hard limit %d is below %d" % (hard, self.N + 1000))
        # coved starts with the usual soft limit of 1024 and raises its own; this process
        # needs room for ten thousand sockets of its own.
        resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))
        cd = Coved()
        try:
            cd.start()
        finally:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        socks = []
        try:
            self.assertGreater(nofile_soft(cd.proc.pid), self.N)
            for i in range(self.N):
                socks.append(connect(cd.port, source="127.0.0.%d" % (10 + i // self.PER_SOURCE)))
            # Every one of them is still open: the server has closed none.
            time.sleep(1)
            for s in socks:
                s.setblocking(False)
                try:
                    self.assertNotEqual(s.recv(1), b"", "coved closed an idle connection")
                except BlockingIOError:
                    pass
            # No thread per connection.
            self.assertLess(len(os.listdir("/proc/%d/task" % cd.proc.pid)), 100)

            # A keyed client still creates a sandbox and runs a command.
            sb = cd.create()
            out = sb.run("echo", "still here")
            self.assertEqual(out["stdout"], "still here\n")
            # Sandboxes get the open-file limit coved was started with, not its raised one.
            self.assertEqual(sb.sh("ulimit -n")["stdout"].strip(), "1024")
            # And one more connection is accepted.
            s = connect(cd.port, source="127.0.0.200")
            s.sendall(head("GET", "/health"))
            resp, _ = read_response(s, deadline())
            s.close()
            self.assertEqual(resp.status, 200)
        finally:
            for s in socks:
                s.close()
            cd.__exit__(None, None, None)


class Limits(unittest.TestCase):
    """One coved with a short idle timeout and a small per-client cap."""

    CAP = 16
    IDLE = 2

    @classmethod
    def setUpClass(cls):
        cls.cd = Coved(extra_args=["--idle-timeout", str(cls.IDLE),
                                   "--max-connections-per-client", str(cls.CAP)]).start()
        try:
            cls.sb = cls.cd.create()
        except Exception:
            cls.cd.__exit__(None, None, None)
            raise
        cls.key = cls.cd.api_key

    @classmethod
    def tearDownClass(cls):
        cls.cd.__exit__(None, None, None)

    def assert_alive(self):
        st, body, _ = self.cd.request("GET", "/health", auth=False, timeout=HANG)
        self.assertEqual(st, 200, body)

    def exchange(self, data, source=None, wait=HANG):
        s = connect(self.cd.port, source=source)
        try:
            s.sendall(data)
            return read_response(s, deadline(wait))
        finally:
            s.close()

    # -- per-client cap --

    def test_per_client_cap_refuses_the_connection_over_it(self):
        held = [connect(self.cd.port, source="127.0.0.30") for _ in range(self.CAP)]
        try:
            # Those are served.
            held[0].sendall(head("GET", "/health"))
            resp, _ = read_response(held[0], deadline())
            self.assertEqual(resp.status, 200)
            # One more from the same address is closed at once, unanswered.
            extra = connect(self.cd.port, source="127.0.0.30")
            try:
                extra.sendall(head("GET", "/health"))
            except OSError:
                pass
            resp, rd = read_response(extra, deadline())
            extra.close()
            self.assertIsNone(resp)
            self.assertTrue(rd.closed, "the connection over the cap was not closed")
            # Another client is not affected.
            resp, _ = self.exchange(head("GET", "/health"), source="127.0.0.31")
            self.assertEqual(resp.status, 200)
        finally:
            for s in held:
                s.close()
        # The cap counts open connections: once they are closed, the address is served again.
        for _ in range(100):
            resp, _ = self.exchange(head("GET", "/health"), source="127.0.0.30")
            if resp is not None:
                break
            time.sleep(0.1)
        self.assertEqual(resp.status, 200)

    # -- idle timeout and 408 --

    def test_stalled_body_gets_408_and_the_connection_closes(self):
        s = connect(self.cd.port)
        try:
            s.sendall(head("POST", "/api/v1/sandboxes",
                           [("Content-Type", "application/json"), ("Content-Length", "100")],
                           key=self.key) + b'{"templateID": ')
            resp, rd = read_response(s, deadline())
            self.assertIsNotNone(resp, "no answer to a stalled body")
            doc = assert_error_body(self, resp, 408)
            self.assertEqual(doc["error"]["code"], "DEADLINE_EXCEEDED")
            self.assertEqual(resp.header("connection"), "close")
            self.assertTrue(rd.closed or wait_closed(s, deadline()))
        finally:
            s.close()
        self.assert_alive()

    def test_stalled_runtime_upload_gets_408_with_cors(self):
        s = connect(self.cd.port)
        try:
            s.sendall(head("POST", "/envd/%s/files?path=/tmp/stalled" % self.sb.id,
                           [("X-Access-Token", self.sb.token),
                            ("Content-Type", "application/octet-stream"),
                            ("Content-Length", "1000")]) + b"x" * 10)
            resp, _ = read_response(s, deadline())
            doc = assert_error_body(self, resp, 408)
            self.assertEqual(doc["error"]["code"], "DEADLINE_EXCEEDED")
            self.assertEqual(resp.header("access-control-allow-origin"), "*")
        finally:
            s.close()
        # The half upload was discarded.
        self.assertNotIn("stalled", self.sb.sh("ls /tmp")["stdout"])

    def test_idle_keep_alive_connection_is_closed(self):
        s = connect(self.cd.port)
        try:
            s.sendall(head("GET", "/health"))
            resp, _ = read_response(s, deadline())
            self.assertEqual(resp.status, 200)
            self.assertIsNone(resp.header("connection"))  # kept alive
            # Nothing more from the client: the server closes it, and says nothing.
            resp, rd = read_response(s, deadline())
            self.assertIsNone(resp)
            self.assertTrue(rd.closed)
            self.assertEqual(rd.buf, b"")
        finally:
            s.close()

    # -- body limits --

    def test_content_length_over_the_limit_is_refused_before_the_body(self):
        for path, hdrs in [("/api/v1/sandboxes", []),
                           ("/envd/%s/run" % self.sb.id, [("X-Access-Token", self.sb.token)]),
                           ("/envd/%s/files?path=/tmp/big" % self.sb.id,
                            [("X-Access-Token", self.sb.token),
                             ("Content-Type", "application/octet-stream")])]:
            size = 2 << 30 if "files" in path else 100 << 20
            s = connect(self.cd.port)
            try:
                # Only the head: the answer must come without a byte of the body.
                s.sendall(head("POST", path, hdrs + [("Content-Length", str(size))],
                               key=self.key))
                resp, _ = read_response(s, deadline())
                self.assertIsNotNone(resp, path)
                doc = assert_error_body(self, resp, 413)
                self.assertEqual(doc["error"]["code"], "PAYLOAD_TOO_LARGE")
                self.assertIn("request body too large", doc["message"])
                self.assertTrue(wait_closed(s, deadline()))
            finally:
                s.close()
        self.assert_alive()

    def stream_until_answer(self, data_head, piece, limit):
        """Sends data_head, then piece after piece (whole pieces: chunk framing stays valid),
        reading between them, until an answer comes. Returns (raw answer, body bytes sent)."""
        s = connect(self.cd.port)
        sent = 0
        # What the kernel may hold of a stream that nobody has read yet: our send buffer and
        # coved's receive buffer, which autotuning grows up to tcp_rmem's maximum. A slow coved
        # (a sanitizer build on a loaded machine) answers while that much is still in flight.
        with open("/proc/sys/net/ipv4/tcp_rmem") as f:
            rmem_max = int(f.read().split()[2])
        slack = 3 * limit + s.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) + rmem_max
        try:
            s.sendall(data_head)
            s.setblocking(False)
            buf = b""
            pending = b""
            end = deadline()
            while time.monotonic() < end:
                try:
                    buf += s.recv(65536)
                except BlockingIOError:
                    pass
                except ConnectionResetError:
                    break
                if b"\r\n\r\n" in buf:
                    break
                if sent > limit + slack:
                    self.fail("%d bytes past the %d-byte limit and no answer" % (sent, limit))
                if not pending:
                    pending = piece
                try:
                    n = s.send(pending)
                    pending = pending[n:]
                    sent += n
                except BlockingIOError:
                    time.sleep(0.001)
                except (BrokenPipeError, ConnectionResetError):
                    break
            s.settimeout(HANG)
            rest = b""
            try:
                while True:
                    d = s.recv(65536)
                    if not d:
                        break
                    rest += d
            except (ConnectionResetError, socket.timeout):
                pass
            raw = buf + rest
            self.assertIn(b"\r\n\r\n", raw, "no answer")
            return raw, sent
        finally:
            s.close()

    def parse_raw(self, raw):
        h, _, body = raw.partition(b"\r\n\r\n")
        lines = h.split(b"\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(b":")
            headers[k.decode().lower()] = v.strip().decode()
        n = int(headers["content-length"])
        return status, headers, json.loads(body[:n])

    def test_endless_chunked_body_gets_413_after_the_limit(self):
        limit = 8 << 20  # README §3.1: JSON bodies
        chunk = b"%x\r\n%s\r\n" % (65536, b"a" * 65536)
        for path, hdrs in [("/api/v1/sandboxes", []),
                           ("/envd/%s/run" % self.sb.id, [("X-Access-Token", self.sb.token)])]:
            raw, sent = self.stream_until_answer(
                head("POST", path, hdrs + [("Transfer-Encoding", "chunked")], key=self.key),
                chunk, limit)
            status, headers, doc = self.parse_raw(raw)
            self.assertEqual(status, 413, doc)
            self.assertEqual(doc["error"]["code"], "PAYLOAD_TOO_LARGE")
            self.assertEqual(headers.get("connection"), "close")
            self.assertGreaterEqual(sent, limit)  # read up to the limit, then refused
        self.assert_alive()

    def test_gzip_bomb_is_cut_at_the_limit(self):
        # 1 GiB of zeros as 64 concatenated gzip members of 16 MiB each (~1 MB on the wire).
        member = gzip.compress(b"\0" * (16 << 20), 9)
        bomb = member * 64
        self.assertLess(len(bomb), 2 << 20)
        pid = self.cd.proc.pid
        hwm_before = proc_status(pid, "VmHWM")
        for path, hdrs in [("/api/v1/sandboxes", []),
                           ("/envd/%s/run" % self.sb.id, [("X-Access-Token", self.sb.token)])]:
            s = connect(self.cd.port)
            try:
                s.sendall(head("POST", path, hdrs + [("Content-Encoding", "gzip"),
                                                     ("Content-Length", str(len(bomb)))],
                               key=self.key))
                try:
                    s.sendall(bomb)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # refused early: the answer is still there to read
                resp, _ = read_response(s, deadline())
                doc = assert_error_body(self, resp, 413)
                self.assertEqual(doc["error"]["code"], "PAYLOAD_TOO_LARGE")
            finally:
                s.close()
        # Decoding stopped at the 8 MiB limit: coved's peak memory did not follow the bomb.
        self.assertLess(proc_status(pid, "VmHWM") - hwm_before, 64 << 10,
                        "coved's peak RSS grew by more than 64 MiB")
        self.assert_alive()

    def test_body_that_is_not_gzip_is_answered_at_once(self):
        for path, hdrs in [("/api/v1/sandboxes", []),
                           ("/envd/%s/run" % self.sb.id, [("X-Access-Token", self.sb.token)])]:
            # Announced, all sent.
            resp, _ = self.exchange(
                head("POST", path, hdrs + [("Content-Encoding", "gzip"),
                                           ("Content-Length", "12")], key=self.key)
                + b"not gzip at all"[:12])
            doc = assert_error_body(self, resp, 400)
            self.assertIn("gzip", doc["message"])
            # Streamed and never ending: answered after the first bytes, not at the end.
            raw, _ = self.stream_until_answer(
                head("POST", path, hdrs + [("Content-Encoding", "gzip"),
                                           ("Transfer-Encoding", "chunked")], key=self.key),
                b"%x\r\n%s\r\n" % (4096, b"z" * 4096), 1 << 20)
            status, _, doc = self.parse_raw(raw)
            self.assertEqual(status, 400, doc)
        # A gzip stream that stops in the middle.
        whole = gzip.compress(json.dumps({"templateID": "base"}).encode())
        resp, _ = self.exchange(
            head("POST", "/api/v1/sandboxes", [("Content-Encoding", "gzip"),
                                               ("Content-Length", str(len(whole) - 8))],
                 key=self.key) + whole[:-8])
        assert_error_body(self, resp, 400)
        # Another encoding: 415 at the head.
        resp, _ = self.exchange(head("POST", "/api/v1/sandboxes",
                                     [("Content-Encoding", "br"), ("Content-Length", "4")],
                                     key=self.key) + b"abcd")
        assert_error_body(self, resp, 415)
        self.assert_alive()

    def test_gzip_within_the_limit_still_works(self):
        data = gzip.compress(json.dumps({"cmd": "echo", "args": ["gz"]}).encode())
        resp, _ = self.exchange(head("POST", "/envd/%s/run" % self.sb.id,
                                     [("X-Access-Token", self.sb.token),
                                      ("Content-Type", "application/json"),
                                      ("Content-Encoding", "gzip"),
                                      ("Content-Length", str(len(data))),
                                      ("Connection", "close")]) + data)
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(resp.json()["stdout"], "gz\n")

    # -- heartbeat: no ID oracle --

    def test_heartbeat_without_credentials_says_nothing_about_the_id(self):
        path = "/api/v1/sandboxes/%s/heartbeat"
        body = b'{"status": "healthy"}'
        missing = "x" * len(self.sb.id)
        for hdrs in ([], [("X-Access-Token", "wrong")], [("X-API-Key", "wrong")],
                     [("X-Access-Token", self.sb.token + "x")]):
            answers = []
            for sid in (self.sb.id, missing):
                resp, _ = self.exchange(
                    head("POST", path % sid, hdrs + [("Content-Type", "application/json"),
                                                     ("Content-Length", str(len(body))),
                                                     ("Connection", "close")]) + body)
                doc = assert_error_body(self, resp, 401)
                answers.append((resp.status, doc["message"], doc["error"]))
            self.assertEqual(answers[0], answers[1], hdrs)
        # The sandbox's own token still works, and an API key still sees 404 for a missing ID.
        st, doc, _ = self.cd.request("POST", path % self.sb.id, {"status": "healthy"},
                                     headers={"X-Access-Token": self.sb.token}, auth=False)
        self.assertEqual(st, 200, doc)
        st, doc, _ = self.cd.request("POST", path % missing, {"status": "healthy"})
        self.assertEqual(st, 404, doc)


class Workers(unittest.TestCase):
    """Blocking work never holds the server threads, and is bounded per sandbox."""

    @classmethod
    def setUpClass(cls):
        cls.cd = Coved(extra_args=["--http-threads", "1",
                                   "--max-active-requests-per-sandbox", "2"]).start()
        try:
            cls.sb = cls.cd.create()
        except Exception:
            cls.cd.__exit__(None, None, None)
            raise

    @classmethod
    def tearDownClass(cls):
        cls.cd.__exit__(None, None, None)

    def test_long_calls_do_not_block_the_server_thread_and_are_bounded_per_sandbox(self):
        sb = self.cd.create()
        results = []

        def long_run():
            # Until it gets in: a probe below may hold the second slot for a moment.
            end = deadline()
            while True:
                st, _, _ = sb.rt("POST", "/run", {"cmd": "sleep", "args": ["600"]},
                                 timeout=HANG)
                if st != 429 or time.monotonic() > end:
                    break
            results.append(st)

        threads = [threading.Thread(target=long_run) for _ in range(2)]
        for t in threads:
            t.start()
        try:
            # Once both long calls hold their sandbox's two slots, a third call is refused,
            # not queued.
            end = deadline()
            while True:
                st, body, _ = sb.rt("POST", "/run", {"cmd": "true"}, timeout=HANG)
                if st == 429 or time.monotonic() > end:
                    break
                time.sleep(0.05)
            self.assertEqual(st, 429, body)
            self.assertEqual(body["error"]["code"], "RESOURCE_EXHAUSTED")
            self.assertIn("too many requests in progress for sandbox", body["message"])
            # The single server thread still answers everyone else.
            st, body, _ = self.cd.request("GET", "/health", auth=False, timeout=HANG)
            self.assertEqual(st, 200)
            st, body, _ = self.cd.api("GET", "/sandboxes/" + sb.id, timeout=HANG)
            self.assertEqual(st, 200, body)
            st, out = self.sb.rt("POST", "/run", {"cmd": "echo", "args": ["other"]},
                                 timeout=HANG)[:2]
            self.assertEqual((st, out["stdout"]), (200, "other\n"))
            self.assertEqual(results, [])  # the long calls were running all along
        finally:
            sb.delete()  # ends the long calls
            for t in threads:
                t.join(HANG)
        self.assertEqual(len(results), 2)

    def test_open_streams_hold_no_worker(self):
        from coveharness import ProcessStream
        # Three streams on a sandbox whose runtime API may have two blocking calls at once:
        # an open stream waits on the poller, not on a worker.
        streams = []
        try:
            for _ in range(3):
                streams.append(ProcessStream(self.sb, {"process": {"cmd": "sleep",
                                                                   "args": ["30"]}}))
            for ps in streams:
                self.assertTrue(ps.start["pid"])
            st, body, _ = self.cd.request("GET", "/health", auth=False, timeout=HANG)
            self.assertEqual(st, 200)
            self.assertEqual(self.sb.run("echo", "free")["stdout"], "free\n")
        finally:
            for ps in streams:
                ps.close()


if __name__ == "__main__":
    unittest.main()
