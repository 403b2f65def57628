#!/usr/bin/env python3
"""Kept agent connections (agent_client.h, docs/design/agent-protocol.md "Kept connections"):
coved keeps the connection of a `run` for the next one, never more than a few per sandbox, and
closes them when the sandbox is paused, when it is deleted and when its agent goes (the agent
is restarted by cove-init: the next call works on a new connection). Counted as coved's open
sockets, so a leak shows as a number that grows.

Run as root: python3 tests/integration/test_agent_pool.py
"""
import os
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coveharness import Coved  # noqa: E402


def sockets(pid):
    n = 0
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            if os.readlink("/proc/%d/fd/%s" % (pid, fd)).startswith("socket:"):
                n += 1
        except OSError:
            pass
    return n


class AgentPool(unittest.TestCase):
    def setUp(self):
        self.cd = Coved.for_test(self)
        self.pid = self.cd.proc.pid

    def stable(self):
        """coved's socket count once it holds still for 0.3 s (at most 3 s: less than the 10 s
        a kept connection may idle): the server closes finished HTTP connections on its
        own, and the idle-connection watcher is a thread."""
        deadline = time.monotonic() + 3
        n, since = sockets(self.pid), time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.05)
            m = sockets(self.pid)
            if m != n:
                n, since = m, time.monotonic()
            elif time.monotonic() - since >= 0.3:
                break
        return n

    def test_kept_bounded_and_closed_at_pause_and_delete(self):
        sb = self.cd.create()
        sb.run("true")
        base = self.stable()  # coved's listeners and the one kept connection
        for _ in range(20):
            self.assertEqual(sb.run("echo", "x")["stdout"], "x\n")
        self.assertEqual(self.stable(), base)  # reused, not one per call

        # concurrent runs may each keep theirs, up to the per-sandbox bound (4)
        errors = []

        def worker():
            try:
                for _ in range(5):
                    sb.run("sleep", "0.05")
            except AssertionError as e:
                errors.append(e)

        ts = [threading.Thread(target=worker) for _ in range(8)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        self.assertEqual(errors, [])
        self.assertLessEqual(self.stable(), base - 1 + 4)

        # pause closes them all; the resumed sandbox answers on a new connection
        st, body, _ = self.cd.api("POST", "/sandboxes/%s/pause" % sb.id)
        self.assertEqual(st, 204, body)
        self.assertEqual(self.stable(), base - 1)
        st, body, _ = self.cd.api("POST", "/sandboxes/%s/connect" % sb.id, {"timeout": 60})
        self.assertEqual(st, 201, body)
        self.assertEqual(sb.run("echo", "back")["stdout"], "back\n")
        self.assertEqual(self.stable(), base)

        # delete: the agent goes, its kept connection with it
        st, body, _ = self.cd.api("DELETE", "/sandboxes/" + sb.id)
        self.assertIn(st, (200, 204), body)
        self.assertEqual(self.stable(), base - 1)

    def test_agent_restart_with_a_kept_connection(self):
        sb = self.cd.create()
        first = sb.run("sh", "-c", "echo $PPID")["stdout"].strip()
        base = self.stable()
        # the agent dies under a call (its own child kills it); cove-init starts a new one
        st, _, _ = sb.rt("POST", "/run", {"cmd": "sh", "args": ["-c", "kill -9 $PPID; sleep 1"]})
        self.assertNotEqual(st, 200)
        deadline = time.monotonic() + 30
        while True:
            st, out, _ = sb.rt("POST", "/run", {"cmd": "sh", "args": ["-c", "echo $PPID"]})
            if st == 200:
                break
            self.assertLess(time.monotonic(), deadline, "agent did not come back: %s %s" % (st, out))
            time.sleep(0.1)
        self.assertNotEqual(out["stdout"].strip(), first)  # a new agent answered
        for _ in range(5):
            self.assertEqual(sb.run("true")["exit_code"], 0)
        self.assertEqual(self.stable(), base)  # the new agent's, none of the dead one's


if __name__ == "__main__":
    unittest.main()
