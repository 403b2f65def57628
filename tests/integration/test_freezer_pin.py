#!/usr/bin/env python3
"""The freezer pin (runtime/cgroup.h, docs/decisions.md "Resume"): on a cgroup-v1 freezer,
coved keeps one empty cgroup of its own frozen so that pausing and resuming a sandbox does not
switch the kernel's freezer static key (which patches kernel text on every CPU). Checked here:
the pin exists, frozen and empty, while coved runs and is not taken for a sandbox; pause,
resume and runtime calls work around it; a clean stop removes it, and after a SIGKILL
`coved purge` does. On a host without a v1 freezer there is no pin at all.

Run as root: python3 tests/integration/test_freezer_pin.py
"""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coveharness import Coved  # noqa: E402

FREEZER = "/sys/fs/cgroup/freezer"


def pin_path(data_dir, parent="cove"):
    h = 14695981039346656037  # FNV-1a 64, as runtime/cgroup.c
    for b in data_dir.encode():
        h = ((h ^ b) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return os.path.join(FREEZER, parent, ".freeze-pin-%016x" % h)


class FreezerPin(unittest.TestCase):
    def test_pin_lives_with_coved(self):
        cd = Coved.for_test(self)
        pin = pin_path(cd.data_dir)
        if not os.path.isdir(FREEZER):
            self.assertFalse(os.path.exists(pin))
            self.skipTest("no cgroup v1 freezer on this host")
        with open(os.path.join(pin, "freezer.state")) as f:
            self.assertEqual(f.read().strip(), "FROZEN")
        with open(os.path.join(pin, "cgroup.procs")) as f:
            self.assertEqual(f.read().strip(), "")
        sb = cd.create()
        for _ in range(3):
            st, body, _ = cd.api("POST", "/sandboxes/%s/pause" % sb.id)
            self.assertEqual(st, 204, body)
            with open(os.path.join(FREEZER, "cove", sb.id, "freezer.state")) as f:
                self.assertEqual(f.read().strip(), "FROZEN")
            st, body, _ = cd.api("POST", "/sandboxes/%s/connect" % sb.id, {"timeout": 60})
            self.assertEqual(st, 201, body)
            with open(os.path.join(FREEZER, "cove", sb.id, "freezer.state")) as f:
                self.assertEqual(f.read().strip(), "THAWED")
            self.assertEqual(sb.run("echo", "hi")["stdout"], "hi\n")
        # the pin is no sandbox: the list has exactly ours
        st, body, _ = cd.api("GET", "/sandboxes")
        self.assertEqual(st, 200)
        self.assertEqual([s["sandboxID"] for s in body], [sb.id])
        with open(os.path.join(pin, "freezer.state")) as f:
            self.assertEqual(f.read().strip(), "FROZEN")
        cd.stop()
        self.assertFalse(os.path.exists(pin))

    def test_purge_removes_the_pin_of_a_killed_coved(self):
        if not os.path.isdir(FREEZER):
            self.skipTest("no cgroup v1 freezer on this host")
        cd = Coved.for_test(self)
        pin = pin_path(cd.data_dir)
        self.assertTrue(os.path.isdir(pin))
        cd.kill9()
        self.assertTrue(os.path.isdir(pin))  # nobody stopped it
        cd.purge()
        self.assertFalse(os.path.exists(pin))


if __name__ == "__main__":
    unittest.main()
