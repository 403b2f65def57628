"""coveharness — start a real coved on loopback with a temp data dir, and talk to it.

    with Coved() as cd:
        st, body, headers = cd.api("POST", "/api/v1/sandboxes", {"waitReady": True})

Binaries come from $COVE_BUILD_DIR (set by tests/run.py) or ./build. Every Coved purges its
data dir (all sandboxes, cgroups, mounts) and stops the daemon on exit.

In a test class, start it with `cls.cd = Coved.for_class(cls)` (or `Coved.for_test(self)` in
setUp): it is then stopped and purged even when the rest of the setup fails (unittest runs
class cleanups after a failed setUpClass, where it skips tearDownClass). Whatever a test
process still has running when it exits is stopped and purged too (atexit), so nothing a test
started outlives it. close() is idempotent: a tearDownClass that also calls it is harmless.

Networking: a Coved runs with `--network none` (sandboxes get loopback only) unless the test
passes `netns=`, the name of a network namespace the test made (netfixture.Internet's host
namespace): coved then runs inside it (`nsenter --net`) with the network settings the test gives
in extra_args, and the harness opens its HTTP connections there. So no test's coved ever touches
this machine's own network.
"""
import atexit
import ctypes
import http.client
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("COVE_BUILD_DIR", os.path.join(ROOT, "build"))
COVED = os.path.join(BUILD, "coved")
# Data dirs live on a disk-backed filesystem: each sandbox's disk is an image file there, and
# coved admits sandboxes against its free space (a tmpfs /tmp would make both RAM, and small).
DATA_PARENT = os.environ.get("COVE_TEST_DATA_PARENT") or (
    "/var/tmp" if os.path.isdir("/var/tmp") else tempfile.gettempdir())


CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def socket_in_netns(netns, family=socket.AF_INET, kind=socket.SOCK_STREAM):
    """A socket created inside network namespace `netns` (a name under /run/netns): this thread
    enters it for the socket() call only, as coved's proxy does (STYLE.md §0)."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    target = os.open("/run/netns/" + netns, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if _libc.setns(target, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns " + netns)
        try:
            return socket.socket(family, kind)
        finally:
            if _libc.setns(own, CLONE_NEWNET) != 0:
                os.abort()  # this thread would go on inside the test's namespace
    finally:
        os.close(own)
        os.close(target)


class NetnsHTTPConnection(http.client.HTTPConnection):
    def __init__(self, netns, host, port, timeout):
        super().__init__(host, port, timeout=timeout)
        self.netns = netns

    def connect(self):
        sock = socket_in_netns(self.netns)
        try:
            sock.settimeout(self.timeout)
            sock.connect((self.host, self.port))
            # as http.client's own connect does: it sends a request's head and body in two
            # writes, which Nagle's algorithm would hold for the server's delayed ACK (40 ms)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            sock.close()
            raise
        self.sock = sock


_live = []  # every Coved started and not yet closed, for the atexit net


@atexit.register
def _close_leftovers():
    for cd in list(_live):
        cd.close()


# What ASan, LSan and UBSan print first in a report.
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Coved:
    def __init__(self, extra_args=None, api_key=None, data_dir=None, preexec_fn=None, netns=None,
                 port=None):
        """preexec_fn runs in the child before coved is exec'd (e.g. to start it with signals
        ignored or blocked, as `nohup` does). netns: see the module's docstring."""
        self.api_key = api_key or "test-key-" + os.urandom(8).hex()
        self.own_dir = data_dir is None
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="cove-test-", dir=DATA_PARENT)
        self.netns = netns
        self.port = port or (free_port() if not netns else 49982)
        self.extra_args = list(extra_args or [])
        if not netns and "--network" not in self.extra_args:
            self.extra_args += ["--network", "none"]
        self.preexec_fn = preexec_fn
        self.proc = None
        self.log = None
        self.closed = False
        self.log_path = os.path.join(self.data_dir, "coved.log")

    @classmethod
    def for_class(cls, test_class, **kw):
        """Starts a Coved for a TestCase class (call it in setUpClass): a class cleanup closes
        it, also when setUpClass fails after this call."""
        cd = cls(**kw)
        test_class.addClassCleanup(cd.close)
        return cd.start()

    @classmethod
    def for_test(cls, test, **kw):
        """The same for one test (call it in setUp or in the test)."""
        cd = cls(**kw)
        test.addCleanup(cd.close)
        return cd.start()

    # -- process --
    def start(self, wait=True):
        """Starts coved (and waits for /health). If it does not come up, whatever was started
        is stopped and purged before the error is raised."""
        try:
            return self._start(wait)
        except BaseException:
            self.close()
            raise

    def _start(self, wait):
        env = dict(os.environ, COVE_API_KEY=self.api_key)
        self.closed = False
        if self not in _live:
            _live.append(self)
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            self.wrap([COVED, "--listen", "127.0.0.1:%d" % self.port, "--data-dir", self.data_dir] + self.extra_args),
            stdout=self.log, stderr=self.log, env=env, preexec_fn=self.preexec_fn)
        if wait:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError("coved exited %d:\n%s" % (self.proc.returncode, self.read_log()))
                try:
                    st, _, _ = self.request("GET", "/health", auth=False, timeout=2)
                    if st == 200:
                        return self
                except OSError:
                    pass
                time.sleep(0.05)
            raise RuntimeError("coved did not come up:\n" + self.read_log())
        return self

    def read_log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.log.close()
        self.collect_sanitizer_reports()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self.log:
            self.log.close()
            self.collect_sanitizer_reports()

    def collect_sanitizer_reports(self):
        """In a sanitizer run (tests/run.py --sanitizers sets COVE_SANITIZER_REPORTS), copies
        the sanitizer reports that coved and its cove-runtime helpers wrote to this log
        (UBSan's go to stderr) into the reports directory, where run.py fails the module."""
        out_dir = os.environ.get("COVE_SANITIZER_REPORTS")
        if not out_dir or not self.proc:
            return
        try:
            with open(self.log_path, errors="replace") as f:
                text = f.read()
        except OSError:
            return
        marks = [text.find(m) for m in SANITIZER_MARKS if m in text]
        if not marks:
            return
        start = text.rfind("\n", 0, min(marks)) + 1
        path = os.path.join(out_dir, "coved-log.%d" % self.proc.pid)
        with open(path, "w") as f:
            f.write("coved log %s:\n%s" % (self.log_path, text[start:start + 20000]))

    def wrap(self, argv):
        """argv run where this coved runs (inside its network namespace, if any)."""
        if not self.netns:
            return list(argv)
        return ["nsenter", "--net=/run/netns/" + self.netns, "--"] + list(argv)

    def purge(self):
        subprocess.run(self.wrap([COVED, "purge", "--data-dir", self.data_dir] + self.extra_args),
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)

    def connection(self, timeout):
        if self.netns:
            return NetnsHTTPConnection(self.netns, "127.0.0.1", self.port, timeout)
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def close(self):
        """Stops coved, purges its data dir (sandboxes, cgroups, mounts) and removes the dir
        when this Coved made it. Idempotent."""
        if self.closed:
            return
        self.closed = True
        if self in _live:
            _live.remove(self)
        try:
            self.stop()
        finally:
            if os.path.isdir(self.data_dir):
                self.purge()
            if self.own_dir:
                shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *a):
        self.close()

    # -- HTTP --
    def request(self, method, path, body=None, headers=None, auth=True, timeout=120, raw=False):
        """Returns (status, parsed JSON or bytes, headers dict with lower-case names)."""
        conn = self.connection(timeout)
        h = dict(headers or {})
        if auth and "X-API-Key" not in h and "Authorization" not in h:
            h["X-API-Key"] = self.api_key
        data = body
        if body is not None and not isinstance(body, (bytes, bytearray, str)):
            data = json.dumps(body)
            h.setdefault("Content-Type", "application/json")
        if isinstance(data, str):
            data = data.encode()
        conn.request(method, path, body=data, headers=h)
        resp = conn.getresponse()
        payload = resp.read()
        hdrs = {k.lower(): v for k, v in resp.getheaders()}
        conn.close()
        if not raw and hdrs.get("content-type", "").startswith("application/json") and payload:
            return resp.status, json.loads(payload), hdrs
        return resp.status, payload, hdrs

    def wait_teardown(self, timeout=60):
        """Waits until no deleted sandbox's teardown runs any more: a delete answers once the
        sandbox is frozen and its record gone, and its processes, network, cgroups and disk go
        right after (docs/operations.md, "Delete, teardown")."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            st, b, _ = self.request("GET", "/admin/pool/status")
            if st == 200 and b["data"]["deleting"] == 0:
                return
            time.sleep(0.02)
        raise AssertionError("teardown of deleted sandboxes did not finish: %s" % (b,))

    def add_key(self, team_id, role="user", team_name=None):
        """A new API key of team_id (the team is made if missing), written into the store
        directly: keys and teams have no public route yet. Returns the key."""
        import hashlib
        import sqlite3
        key = "test-%s-%s" % (role, os.urandom(8).hex())
        db = sqlite3.connect(os.path.join(self.data_dir, "cove.db"), timeout=30)
        try:
            db.execute("INSERT OR IGNORE INTO teams (id, name, created_at) VALUES (?, ?, 0)",
                       (team_id, team_name or team_id))
            db.execute("INSERT INTO api_keys (id, key_hash, team_id, role, last4, created_at)"
                       " VALUES (?, ?, ?, ?, ?, 0)",
                       ("key_" + os.urandom(8).hex(), hashlib.sha256(key.encode()).hexdigest(),
                        team_id, role, key[-4:]))
            db.commit()
        finally:
            db.close()
        return key

    def v1(self, method, path, body=None, key=None, **kw):
        """A /v1 API call (v1-api.md), as the default admin key or `key`."""
        headers = dict(kw.pop("headers", None) or {})
        if key is not None:
            headers["X-API-Key"] = key
        return self.request(method, "/v1" + path, body, headers=headers, **kw)

    def api(self, method, path, body=None, **kw):
        return self.request(method, "/api/v1" + path, body, **kw)

    def create(self, **fields):
        fields.setdefault("waitReady", True)
        st, body, _ = self.api("POST", "/sandboxes", fields)
        if st != 201:
            raise AssertionError("create failed: %s %s\n%s" % (st, body, self.read_log()))
        return Sandbox(self, body)


class Sandbox:
    """Runtime API of one sandbox (runtime.md), through coved's /envd/{id} front."""

    def __init__(self, cd, obj):
        self.cd = cd
        self.obj = obj
        self.id = obj["sandboxID"]
        self.token = obj["envdAccessToken"]
        self.prefix = "/envd/" + self.id

    def rt(self, method, path, body=None, headers=None, token=True, **kw):
        h = dict(headers or {})
        if token:
            h.setdefault("X-Access-Token", self.token)
        return self.cd.request(method, self.prefix + path, body, headers=h, auth=False, **kw)

    def run(self, cmd, *args, **fields):
        body = {"cmd": cmd, "args": list(args)}
        body.update(fields)
        st, out, _ = self.rt("POST", "/run", body)
        if st != 200:
            raise AssertionError("run %s failed: %s %s" % (cmd, st, out))
        return out

    def sh(self, line, **fields):
        return self.run("sh", "-c", line, **fields)

    def rpc(self, method, msg, headers=None):
        h = {"Content-Type": "application/json", "Connect-Protocol-Version": "1"}
        h.update(headers or {})
        return self.rt("POST", "/" + method, json.dumps(msg).encode(), headers=h)

    def stream(self, method, msg, timeout=60):
        """Server-streaming RPC: returns (status, [messages], end_payload_or_None)."""
        h = {"Content-Type": "application/connect+json", "Connect-Protocol-Version": "1"}
        st, data, hdrs = self.rt("POST", "/" + method, json.dumps(msg).encode(), headers=h,
                                 raw=True, timeout=timeout)
        if st != 200:
            return st, json.loads(data) if data else None, None
        return st, *parse_envelopes(data)

    def delete(self):
        return self.cd.api("DELETE", "/sandboxes/" + self.id)


def parse_envelopes(data):
    msgs, end = [], None
    i = 0
    while i + 5 <= len(data):
        flags = data[i]
        (n,) = struct.unpack(">I", data[i + 1:i + 5])
        payload = data[i + 5:i + 5 + n]
        i += 5 + n
        if flags & 0x02:
            end = json.loads(payload) if payload else {}
        elif n:
            msgs.append(json.loads(payload))
    return msgs, end


def envelope(obj, flags=0):
    p = json.dumps(obj).encode()
    return bytes([flags]) + struct.pack(">I", len(p)) + p


class ProcessStream:
    """An open process.Process/Start (or Connect) stream, read envelope by envelope.

        with ProcessStream(sb, {"process": {"cmd": "cat"}}) as ps:
            pid = ps.start["pid"]
            ...sb.rpc("process.Process/SendInput", ...)
            ev = ps.next_event()      # {"data": {...}} / {"end": {...}} / None at the end
    """

    def __init__(self, sb, msg, method="process.Process/Start", timeout=60):
        # The socket timeout stays above the 15 s keepalive period: a silent stream still wakes
        # the reader, which then checks its deadline.
        self.conn = sb.cd.connection(max(timeout, 20))
        self.conn.request("POST", sb.prefix + "/" + method, body=json.dumps(msg).encode(),
                          headers={"Content-Type": "application/connect+json",
                                   "Connect-Protocol-Version": "1", "X-Access-Token": sb.token})
        self.resp = self.conn.getresponse()
        if self.resp.status != 200:
            body = self.resp.read()
            self.conn.close()
            raise AssertionError("stream %s: %s %s" % (method, self.resp.status, body[:500]))
        self.end_payload = None
        first = self.next_event()
        self.start = first.get("start") if first else None

    def next_message(self, deadline=None):
        """Next message; None at the end of the stream. With a deadline (time.monotonic()),
        raises TimeoutError once it passes (checked at every envelope, keepalives included)."""
        while True:
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError("no message before the deadline")
            h = self.resp.read(5)
            if len(h) < 5:
                return None
            (n,) = struct.unpack(">I", h[1:5])
            p = self.resp.read(n) if n else b""
            if h[0] & 0x02:
                self.end_payload = json.loads(p) if p else {}
                return None
            if n == 0:
                continue  # keepalive
            return json.loads(p)

    def next_event(self, deadline=None):
        m = self.next_message(deadline)
        return m["event"] if m else None

    def close(self):
        self.conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()
