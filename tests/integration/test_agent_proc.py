#!/usr/bin/env python3
"""cove-agent process service (runtime.md §8, §4.7) driven over the agent protocol.

Runs <build>/cove-agent (or $COVE_AGENT) on the host as root with --listen on a temp socket;
users come from the host's /etc/passwd. Run: python3 tests/integration/test_agent_proc.py
"""
import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import agentwire  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(HERE))
AGENT = os.environ.get("COVE_AGENT", os.path.join(os.environ.get("COVE_BUILD_DIR", os.path.join(ROOT, "build")), "cove-agent"))

SOCK = None
_agent = None
_tmp = None


def setUpModule():
    global SOCK, _agent, _tmp
    if os.geteuid() != 0:
        raise unittest.SkipTest("needs root")
    if not os.path.exists(AGENT):
        raise RuntimeError("no agent binary at %s (build first)" % AGENT)
    _tmp = tempfile.mkdtemp(prefix="cove-agent-proc-")
    SOCK = os.path.join(_tmp, "a.sock")
    _agent = subprocess.Popen([AGENT, "--listen", SOCK])
    for _ in range(500):
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(SOCK)
            break
        except OSError:
            time.sleep(0.01)
        finally:
            probe.close()
    else:
        raise AssertionError("agent did not start")


def tearDownModule():
    if _agent:
        # Kill what the tests may have left running, then the agent.
        try:
            for p in call("process.List")["body"]["processes"]:
                call("process.SendSignal", {"process": {"pid": p["pid"]}, "signal": "SIGKILL"})
        except Exception:
            pass
        _agent.kill()
        _agent.wait()
    if _tmp:
        shutil.rmtree(_tmp, ignore_errors=True)


def call(op, body=None, **extra):
    """Unary call; follows a `bodyFollows` reply (body JSON in D frames)."""
    with agentwire.AgentConn(SOCK) as c:
        r = c.call(op, body, **extra)
        if r.get("bodyFollows"):
            parts = []
            while True:
                k, p = c.recv()
                if k == "E":
                    break
                assert k == "D", k
                parts.append(p)
            data = b"".join(parts)
            assert len(data) == r["bodyBytes"]
            r = {"status": r["status"], "body": json.loads(data)}
        return r


def b64(s):
    return base64.b64encode(s if isinstance(s, bytes) else s.encode()).decode()


def output(msgs, key=None):
    out = b""
    for m in msgs:
        d = m["event"].get("data")
        if d and (key is None or key in d):
            out += base64.b64decode(list(d.values())[0])
    return out


def start(body, **extra):
    """Synchronous Start: (first frame, messages, end frame)."""
    with agentwire.AgentConn(SOCK) as c:
        return c.stream("process.Start", body, **extra)


class Stream:
    """A Start or Connect stream read on a thread."""

    def __init__(self, op, body, **extra):
        self.c = agentwire.AgentConn(SOCK, timeout=30)
        self.first = self.c.call(op, body, **extra)
        self.msgs = []
        self.end = None
        self.started = threading.Event()
        self.done = threading.Event()
        self.lock = threading.Lock()
        if self.first.get("status") != 200:
            self.done.set()
            return
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()
        assert self.started.wait(10), "no start event"

    def _run(self):
        try:
            while True:
                r = self.c.recv()
                if r is None:
                    break
                if "msg" in r[1]:
                    with self.lock:
                        self.msgs.append(r[1]["msg"])
                    if "start" in r[1]["msg"]["event"]:
                        self.started.set()
                elif r[1].get("end"):
                    self.end = r[1]
                    break
        except OSError:
            pass
        finally:
            self.started.set()
            self.done.set()

    @property
    def pid(self):
        return self.msgs[0]["event"]["start"]["pid"]

    @property
    def cmd_id(self):
        return self.msgs[0]["event"]["start"]["cmdId"]

    def output(self, key=None):
        with self.lock:
            return output(list(self.msgs), key)

    def wait_output(self, needle, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if needle in self.output():
                return True
            time.sleep(0.02)
        return False

    def wait(self, timeout=20):
        assert self.done.wait(timeout), "stream did not end"
        return self.msgs[-1]["event"].get("end")

    def close(self):
        self.c.close()


class AgentProcTest(unittest.TestCase):
    def test_ping(self):
        r = call("ping")
        self.assertEqual(r["status"], 200)
        self.assertEqual(r["body"]["version"], "0.1.0")
        self.assertEqual(r["body"]["pid"], _agent.pid)

    def test_unknown_op_and_user(self):
        self.assertEqual(call("process.Nope")["status"], 404)
        self.assertEqual(call("nope")["status"], 404)
        r = call("run", {"cmd": "true"}, user="no-such-user-xyz")
        self.assertEqual(r, {"status": 400, "message": "user 'no-such-user-xyz' not found"})

    def test_echo(self):
        first, msgs, end = start({"process": {"cmd": "echo", "args": ["hello", "world"]}})
        self.assertEqual(first, {"status": 200, "stream": True})
        st = msgs[0]["event"]["start"]
        self.assertGreater(st["pid"], 0)
        self.assertTrue(st["cmdId"].startswith("cmd_"))
        self.assertEqual(output(msgs, "stdout"), b"hello world\n")
        self.assertEqual(msgs[-1]["event"]["end"],
                         {"exited": True, "status": "exit status 0", "exitCode": 0, "error": None})
        self.assertEqual(end, {"end": True})

    def test_exit_code_and_stderr(self):
        _, msgs, _ = start({"process": {"cmd": "sh", "args": ["-c", "echo oops >&2; exit 3"]}})
        self.assertEqual(output(msgs, "stderr"), b"oops\n")
        e = msgs[-1]["event"]["end"]
        self.assertEqual((e["exited"], e["status"], e["exitCode"]), (True, "exit status 3", 3))

    def test_validation(self):
        for body in ({}, {"process": {}}, {"process": {"cmd": ""}}, {"process": {"cmd": 5}},
                     {"process": {"cmd": "true", "args": "x"}},
                     {"process": {"cmd": "true"}, "tag": ""},
                     {"process": {"cmd": "true"}, "tag": "x" * 129},
                     {"process": {"cmd": "true"}, "pty": {"size": {"cols": 0, "rows": 10}}},
                     {"process": {"cmd": "true"}, "pty": {"size": {"cols": 10, "rows": 1001}}},
                     {"process": {"cmd": "true"}, "timeoutMs": 1.5},
                     {"process": {"cmd": "true", "envs": {"A": 1}}}):
            first, _, _ = start(body)
            self.assertEqual(first["status"], 400, body)
        first, _, _ = start({"process": {"cmd": "/no/such/binary"}})
        self.assertEqual(first["status"], 400)
        first, _, _ = start({"process": {"cmd": "no-such-cmd-xyz"}})
        self.assertEqual(first["status"], 400)
        self.assertIn("not found", first["message"])
        first, _, _ = start({"process": {"cmd": "true", "cwd": "/no/such/dir"}})
        self.assertEqual(first["status"], 400)

    def test_env_and_cwd(self):
        _, msgs, _ = start({"process": {"cmd": "sh", "args": ["-c", "echo $HOME:$USER:$FOO:$BAR:$PATH; pwd"],
                                        "envs": {"BAR": "b"}, "cwd": "/tmp"}},
                           env={"FOO": "f", "BAR": "x"})
        lines = output(msgs).decode().splitlines()
        self.assertEqual(lines[0].split(":")[:4], ["/root", "root", "f", "b"])
        self.assertIn("/usr/bin", lines[0])
        self.assertEqual(lines[1], "/tmp")
        # workdir is the default cwd
        _, msgs, _ = start({"process": {"cmd": "pwd"}}, workdir="/usr")
        self.assertEqual(output(msgs), b"/usr\n")

    def test_cat_stdin(self):
        s = Stream("process.Start", {"process": {"cmd": "cat"}})
        sel = {"pid": s.pid}
        self.assertEqual(call("process.SendInput", {"process": sel, "input": {"stdin": b64("ping\n")}}),
                         {"status": 200, "body": {}})
        self.assertTrue(s.wait_output(b"ping\n"))
        # padding is optional
        self.assertEqual(call("process.SendInput", {"process": sel, "input": {"stdin": "cG9uZwo"}})["status"], 200)
        self.assertEqual(call("process.SendInput", {"process": sel, "input": {"pty": b64("x")}})["status"], 400)
        self.assertEqual(call("process.SendInput", {"process": sel, "input": {}})["status"], 400)
        self.assertEqual(call("process.CloseStdin", {"process": sel})["status"], 200)
        end = s.wait()
        self.assertEqual(end["exitCode"], 0)
        self.assertEqual(s.output("stdout"), b"ping\npong\n")
        s.close()

    def test_stdin_false_and_closed(self):
        s = Stream("process.Start", {"process": {"cmd": "sleep", "args": ["30"]}, "stdin": False})
        r = call("process.SendInput", {"process": {"pid": s.pid}, "input": {"stdin": b64("x")}})
        self.assertEqual(r, {"status": 400, "message": "stdin of process %d is closed" % s.pid})
        call("process.SendSignal", {"process": {"pid": s.pid}, "signal": "SIGKILL"})
        s.wait()
        s.close()
        s = Stream("process.Start", {"process": {"cmd": "sleep", "args": ["30"]}})
        self.assertEqual(call("process.CloseStdin", {"process": {"pid": s.pid}})["status"], 200)
        self.assertEqual(call("process.CloseStdin", {"process": {"pid": s.pid}})["status"], 200)
        r = call("process.SendInput", {"process": {"pid": s.pid}, "input": {"stdin": b64("x")}})
        self.assertEqual(r["status"], 400)
        call("process.SendSignal", {"process": {"pid": s.pid}, "signal": 9})
        s.wait()
        s.close()

    def test_signals(self):
        cases = [("SIGKILL", "signal: killed", 137), ("SIGNAL_SIGTERM", "signal: terminated", 143),
                 (2, "signal: interrupt", 130), ("SIGHUP", "signal: hangup", 129)]
        for sig, status, code in cases:
            s = Stream("process.Start", {"process": {"cmd": "sleep", "args": ["30"]}})
            r = call("process.SendSignal", {"process": {"pid": s.pid}, "signal": sig})
            self.assertEqual(r["status"], 200, sig)
            end = s.wait()
            self.assertEqual(end, {"exited": False, "status": status, "exitCode": code, "error": None})
            s.close()
            # finished → 404
            r = call("process.SendSignal", {"process": {"pid": s.pid}, "signal": "SIGKILL"})
            self.assertEqual(r["status"], 404)
        s = Stream("process.Start", {"process": {"cmd": "sleep", "args": ["30"]}})
        for bad in ("SIGNAL_UNSPECIFIED", "", "SIGSTOP", 19, None):
            r = call("process.SendSignal", {"process": {"pid": s.pid}, "signal": bad})
            self.assertEqual(r["status"], 400, bad)
        call("process.SendSignal", {"process": {"pid": s.pid}, "signal": "SIGKILL"})
        s.wait()
        s.close()

    def test_signal_hits_group(self):
        s = Stream("process.Start", {"process": {"cmd": "sh", "args": ["-c", "sleep 30 & echo $!; wait"]}})
        self.assertTrue(s.wait_output(b"\n"))
        child = int(s.output().decode().strip())
        call("process.SendSignal", {"process": {"pid": s.pid}, "signal": "SIGTERM"})
        s.wait()
        s.close()
        time.sleep(0.1)
        try:
            with open("/proc/%d/stat" % child) as f:
                state = f.read().split()[2]
        except FileNotFoundError:
            state = "gone"
        self.assertIn(state, ("gone", "Z"))

    def test_timeout(self):
        t0 = time.time()
        _, msgs, _ = start({"process": {"cmd": "sleep", "args": ["10"]}, "timeoutMs": 300})
        self.assertLess(time.time() - t0, 5)
        self.assertEqual(msgs[-1]["event"]["end"],
                         {"exited": False, "status": "signal: killed", "exitCode": 137,
                          "error": "process timed out after 300 ms"})
        _, msgs, _ = start({"process": {"cmd": "sleep", "args": ["10"]}, "timeout": 0.2})
        self.assertEqual(msgs[-1]["event"]["end"]["error"], "process timed out after 200 ms")

    def test_tags(self):
        s = Stream("process.Start", {"process": {"cmd": "sleep", "args": ["30"]}, "tag": "svc-a"})
        first, _, _ = start({"process": {"cmd": "true"}, "tag": "svc-a"})
        self.assertEqual(first, {"status": 409, "message": "tag 'svc-a' is in use"})
        lst = call("process.List")["body"]["processes"]
        mine = [p for p in lst if p["pid"] == s.pid]
        self.assertEqual(mine, [{"pid": s.pid, "tag": "svc-a", "cmdId": s.cmd_id,
                                 "config": {"cmd": "sleep", "args": ["30"], "envs": {}, "cwd": "/root"}}])
        r = call("process.SendSignal", {"process": {"tag": "svc-a"}, "signal": "SIGKILL"})
        self.assertEqual(r["status"], 200)
        s.wait()
        s.close()
        # the tag is free again
        first, msgs, _ = start({"process": {"cmd": "true"}, "tag": "svc-a"})
        self.assertEqual(first["status"], 200)

    def test_selectors(self):
        for sel in ({}, {"pid": 1, "tag": "x"}, {"pid": 0}, {"pid": "1"}, {"tag": 5}):
            r = call("process.SendSignal", {"process": sel, "signal": "SIGKILL"})
            self.assertEqual(r["status"], 400, sel)
            r = call("process.Connect", {"process": sel})
            self.assertEqual(r["status"], 400, sel)
        self.assertEqual(call("process.CloseStdin", {})["status"], 400)
        for op, extra in (("process.SendSignal", {"signal": "SIGKILL"}), ("process.CloseStdin", {}),
                          ("process.SendInput", {"input": {"stdin": ""}}),
                          ("process.Update", {"pty": {"size": {"cols": 10, "rows": 10}}}),
                          ("process.Connect", {})):
            for sel in ({"pid": 999999}, {"tag": "no-such-tag"}):
                r = call(op, dict(extra, process=sel))
                self.assertEqual(r["status"], 404, (op, sel))
                self.assertIn("process not found", r["message"])

    def test_fanout_and_connect(self):
        s = Stream("process.Start", {"process": {"cmd": "cat"}, "tag": "fan"})
        a = Stream("process.Connect", {"process": {"tag": "fan"}})
        b = Stream("process.Connect", {"process": {"pid": s.pid}})
        for x in (a, b):
            self.assertEqual(x.msgs[0], s.msgs[0])  # same start event
        call("process.SendInput", {"process": {"tag": "fan"}, "input": {"stdin": b64("one\n")}})
        for x in (s, a, b):
            self.assertTrue(x.wait_output(b"one\n"))
        # a subscriber leaving does not stop the process nor the others
        a.close()
        call("process.SendInput", {"process": {"tag": "fan"}, "input": {"stdin": b64("two\n")}})
        for x in (s, b):
            self.assertTrue(x.wait_output(b"one\ntwo\n"))
        # the Start client leaving does not stop it either
        s.close()
        time.sleep(0.1)
        self.assertIn(s.pid, [p["pid"] for p in call("process.List")["body"]["processes"]])
        call("process.SendInput", {"process": {"tag": "fan"}, "input": {"stdin": b64("three\n")}})
        self.assertTrue(b.wait_output(b"one\ntwo\nthree\n"))
        # Connect gets no replay
        c = Stream("process.Connect", {"process": {"tag": "fan"}})
        call("process.CloseStdin", {"process": {"tag": "fan"}})
        for x in (b, c):
            self.assertEqual(x.wait()["status"], "exit status 0")
            self.assertEqual(x.end, {"end": True})
        self.assertEqual(c.output(), b"")
        self.assertEqual(len(c.msgs), 2)
        b.close()
        c.close()
        # Connect to the finished process: start, end, end of stream
        with agentwire.AgentConn(SOCK) as conn:
            first, msgs, end = conn.stream("process.Connect", {"process": {"pid": s.pid}})
        self.assertEqual(first["status"], 200)
        self.assertEqual(msgs[0], s.msgs[0])
        self.assertEqual(msgs[1]["event"]["end"]["status"], "exit status 0")
        self.assertEqual(len(msgs), 2)
        self.assertEqual(end, {"end": True})

    def test_get_result(self):
        s = Stream("process.Start", {"process": {"cmd": "sh", "args": ["-c", "cat; printf 'e\\377' >&2; exit 4"]}})
        self.assertEqual(call("process.GetResult", {"cmdId": s.cmd_id}),
                         {"status": 404, "message": "process not finished"})
        self.assertEqual(call("process.GetResult", {})["status"], 400)
        self.assertEqual(call("process.GetResult", {"cmdId": "cmd_nope"}),
                         {"status": 404, "message": "process not found"})
        call("process.SendInput", {"process": {"pid": s.pid}, "input": {"stdin": b64("data\n")}})
        call("process.CloseStdin", {"process": {"pid": s.pid}})
        s.wait()
        r = call("process.GetResult", {"cmdId": s.cmd_id})
        self.assertEqual(r["status"], 200)
        body = r["body"]
        self.assertEqual(body["exitCode"], 4)
        self.assertEqual(body["stdout"], "data\n")
        self.assertEqual(body["stderr"], "e\ufffd")
        self.assertLessEqual(abs(body["startedAtUnix"] - time.time()), 10)
        s.close()

    def test_result_available_right_after_end(self):
        for _ in range(20):
            _, msgs, _ = start({"process": {"cmd": "echo", "args": ["x"]}})
            r = call("process.GetResult", {"cmdId": msgs[0]["event"]["start"]["cmdId"]})
            self.assertEqual(r["status"], 200)
            self.assertEqual(r["body"]["stdout"], "x\n")

    def test_list(self):
        s = Stream("process.Start", {"process": {"cmd": "sleep", "args": ["30"], "envs": {"K": "V"}, "cwd": "/tmp/../usr"}})
        lst = call("process.List")["body"]["processes"]
        self.assertEqual(lst, sorted(lst, key=lambda p: p["pid"]))
        mine = [p for p in lst if p["pid"] == s.pid][0]
        self.assertEqual(mine["config"], {"cmd": "sleep", "args": ["30"], "envs": {"K": "V"}, "cwd": "/usr"})
        self.assertNotIn("tag", mine)
        self.assertEqual(mine["cmdId"], s.cmd_id)
        call("process.SendSignal", {"process": {"pid": s.pid}, "signal": "SIGKILL"})
        s.wait()
        s.close()
        self.assertNotIn(s.pid, [p["pid"] for p in call("process.List")["body"]["processes"]])

    def test_pty(self):
        _, msgs, _ = start({"process": {"cmd": "tty"}, "pty": {"size": {"cols": 80, "rows": 24}}})
        self.assertTrue(all("pty" in m["event"]["data"] for m in msgs if "data" in m["event"]))
        self.assertRegex(output(msgs).decode(), r"^/dev/pts/\d+\r?\n$")
        _, msgs, _ = start({"process": {"cmd": "sh", "args": ["-c", "stty size; echo $TERM"]},
                            "pty": {"size": {"cols": 100, "rows": 30}}})
        self.assertEqual(output(msgs).decode().split(), ["30", "100", "xterm-256color"])

        s = Stream("process.Start", {"process": {"cmd": "sh"}, "pty": {"size": {"cols": 100, "rows": 30}}})
        sel = {"process": {"pid": s.pid}}
        self.assertEqual(call("process.CloseStdin", sel)["status"], 400)
        call("process.SendInput", dict(sel, input={"pty": b64("stty size\n")}))
        self.assertTrue(s.wait_output(b"30 100"))
        r = call("process.Update", dict(sel, pty={"size": {"cols": 120, "rows": 40}}))
        self.assertEqual(r["status"], 200)
        self.assertEqual(call("process.Update", dict(sel, pty={"size": {"cols": 0, "rows": 40}}))["status"], 400)
        call("process.SendInput", dict(sel, input={"stdin": b64("stty size\n")}))
        self.assertTrue(s.wait_output(b"40 120"))
        call("process.SendInput", dict(sel, input={"pty": b64("exit 7\n")}))
        self.assertEqual(s.wait()["exitCode"], 7)
        r = call("process.GetResult", {"cmdId": s.cmd_id})
        self.assertIn("40 120", r["body"]["stdout"])
        self.assertEqual(r["body"]["stderr"], "")
        s.close()
        # Update on a non-PTY process
        s = Stream("process.Start", {"process": {"cmd": "sleep", "args": ["30"]}})
        r = call("process.Update", {"process": {"pid": s.pid}, "pty": {"size": {"cols": 10, "rows": 10}}})
        self.assertEqual(r["status"], 400)
        call("process.SendSignal", {"process": {"pid": s.pid}, "signal": "SIGKILL"})
        s.wait()
        s.close()

    def test_user(self):
        _, msgs, _ = start({"process": {"cmd": "id", "args": ["-u"]}}, user="nobody")
        self.assertEqual(output(msgs), b"65534\n")
        r = call("run", {"cmd": "sh", "args": ["-c", "id -u; id -g; echo $USER"]}, user="nobody")
        self.assertEqual(r["body"]["stdout"], "65534\n65534\nnobody\n")
        r = call("run", {"cmd": "sh", "args": ["-c", "echo x > /root/cove-nobody-test"]}, user="nobody")
        self.assertNotEqual(r["body"]["exit_code"], 0)

    def test_run(self):
        r = call("run", {"cmd": "cat", "stdin": "hello"})
        self.assertEqual(r["status"], 200)
        body = r["body"]
        self.assertEqual((body["stdout"], body["stderr"], body["exit_code"]), ("hello", "", 0))
        self.assertNotIn("error", body)
        self.assertIsInstance(body["duration_ms"], int)
        r = call("run", {"cmd": "sh", "args": ["-c", "printf '\\377x'; echo e >&2; exit 5"], "env": {"A": "1"}})
        self.assertEqual(r["body"]["stdout"], "\ufffdx")
        self.assertEqual((r["body"]["stderr"], r["body"]["exit_code"]), ("e\n", 5))
        r = call("run", {"cmd": "sh", "args": ["-c", "echo $A; pwd"], "env": {"A": "1"}, "cwd": "/tmp"})
        self.assertEqual(r["body"]["stdout"], "1\n/tmp\n")
        # no stdin → empty
        r = call("run", {"cmd": "cat"})
        self.assertEqual(r["body"]["stdout"], "")

    def test_run_errors(self):
        t0 = time.time()
        r = call("run", {"cmd": "sh", "args": ["-c", "sleep 10 & sleep 10"], "timeoutMs": 300})
        self.assertLess(time.time() - t0, 5)
        self.assertEqual(r["body"]["exit_code"], 124)
        self.assertEqual(r["body"]["error"], "command timed out after 300 ms")
        r = call("run", {"cmd": "no-such-cmd-xyz"})
        self.assertEqual(r["status"], 400)
        r = call("run", {"cmd": "true", "cwd": "/no/such/dir"})
        self.assertEqual(r["status"], 400)
        self.assertEqual(call("run", {})["status"], 400)
        self.assertEqual(call("run", {"cmd": "true", "stdin": 5})["status"], 400)
        r = call("run", {"cmd": "sh", "args": ["-c", "kill -9 $$"]})
        self.assertEqual((r["body"]["exit_code"], r["body"]["error"]), (137, "signal: killed"))

    def test_run_large_output(self):
        r = call("run", {"cmd": "head", "args": ["-c", "17000000", "/dev/zero"]})
        self.assertEqual(r["status"], 200)
        self.assertEqual(len(r["body"]["stdout"]), 16 * 1024 * 1024)
        self.assertEqual(r["body"]["error"], "output truncated")

    def test_slow_subscriber_dropped(self):
        # The Start client never reads: once 4 MiB behind it is dropped, the process goes on.
        c = agentwire.AgentConn(SOCK)
        c.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        first = c.call("process.Start", {"process": {"cmd": "head", "args": ["-c", "20000000", "/dev/zero"]},
                                         "tag": "flood"})
        self.assertEqual(first["status"], 200)
        k, start_msg = c.recv()
        cmd_id = start_msg["msg"]["event"]["start"]["cmdId"]
        deadline = time.time() + 30
        r = None
        while time.time() < deadline:
            r = call("process.GetResult", {"cmdId": cmd_id})
            if r["status"] == 200:
                break
            time.sleep(0.1)
        self.assertEqual(r["status"], 200)
        self.assertEqual(r["body"]["exitCode"], 0)
        self.assertEqual(len(r["body"]["stdout"]), 16 * 1024 * 1024)  # the newest 16 MiB
        # Now read the stream: some data, then the error end.
        end = None
        while True:
            x = c.recv()
            if x is None:
                break
            if x[1].get("end"):
                end = x[1]
                break
        c.close()
        self.assertEqual(end["error"]["code"], "resource_exhausted")

    def test_zz_no_leaks(self):
        """Runs after the others: fds and threads of the agent come back to their baseline."""
        def counts():
            return (len(os.listdir("/proc/%d/fd" % _agent.pid)),
                    len(os.listdir("/proc/%d/task" % _agent.pid)))
        time.sleep(0.2)
        base = counts()
        for i in range(10):
            start({"process": {"cmd": "echo", "args": [str(i)]}})
            start({"process": {"cmd": "tty"}, "pty": {}})
            call("run", {"cmd": "cat", "stdin": "x"})
            start({"process": {"cmd": "no-such-cmd-xyz"}})
            s = Stream("process.Start", {"process": {"cmd": "cat"}})
            b = Stream("process.Connect", {"process": {"pid": s.pid}})
            b.close()
            s.close()
            call("process.CloseStdin", {"process": {"pid": s.pid}})
        time.sleep(0.5)
        self.assertEqual(counts(), base)
        # no zombies of ours
        kids = subprocess.run(["ps", "-o", "pid=,stat=", "--ppid", str(_agent.pid)],
                              capture_output=True, text=True).stdout.split("\n")
        self.assertEqual([k for k in kids if "Z" in k], [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
