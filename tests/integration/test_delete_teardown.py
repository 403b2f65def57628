#!/usr/bin/env python3
"""Deletes answer before the teardown (issue 10; docs/operations.md "Delete, teardown"): what a
user checks is that the sandbox is gone for every route the moment the delete answered, that a
quick create/delete loop stays correct, and that the teardown, finished in the background or
by a stop of coved right after the deletes, leaves nothing behind: state directories, uid
ranges, cgroups, loop devices, processes.

Run as root: python3 tests/integration/test_delete_teardown.py
"""
import os
import sqlite3
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coveharness import Coved  # noqa: E402


def state_dirs(cd):
    d = os.path.join(cd.data_dir, "sandboxes")
    return set(x for x in os.listdir(d) if not x.startswith(".")) if os.path.isdir(d) else set()


def uid_ranges(cd):
    db = sqlite3.connect(os.path.join(cd.data_dir, "cove.db"), timeout=30)
    try:
        return set(r[0] for r in db.execute("SELECT sandbox_id FROM uid_ranges").fetchall())
    finally:
        db.close()


def cgroups_of(ids):
    found = []
    for ctrl in os.listdir("/sys/fs/cgroup"):
        base = os.path.join("/sys/fs/cgroup", ctrl, "cove")
        found += [os.path.join(base, i) for i in ids if os.path.exists(os.path.join(base, i))]
    base = os.path.join("/sys/fs/cgroup", "cove")
    found += [os.path.join(base, i) for i in ids if os.path.exists(os.path.join(base, i))]
    return found


def loops_of(cd):
    out = subprocess.run(["losetup", "-a"], stdout=subprocess.PIPE, text=True).stdout
    return [line for line in out.splitlines() if cd.data_dir in line]


class DeleteTeardown(unittest.TestCase):
    def setUp(self):
        if os.geteuid() != 0:
            self.skipTest("needs root")
        self.cd = Coved.for_test(self)

    def wait_torn_down(self, ids, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            st, b, _ = self.cd.request("GET", "/admin/pool/status")
            if b["data"]["deleting"] == 0 and not (state_dirs(self.cd) & set(ids)):
                return
            time.sleep(0.05)
        self.fail("teardown did not finish: %s" % b)

    def assert_nothing_left(self, ids):
        self.assertFalse(state_dirs(self.cd) & set(ids))
        self.assertFalse(uid_ranges(self.cd) & set(ids))
        self.assertEqual(cgroups_of(ids), [])
        self.assertEqual(loops_of(self.cd), [])

    def test_gone_at_once_and_nothing_left(self):
        sb = self.cd.create()
        sb.sh("sleep 1000 >/dev/null 2>&1 &")
        self.assertEqual(sb.delete()[0], 204)
        st, _, _ = self.cd.api("GET", "/sandboxes/" + sb.id)
        self.assertEqual(st, 404)
        st, _, _ = sb.rt("POST", "/run", {"cmd": "true"})
        self.assertIn(st, (404, 410))
        st, _, _ = sb.delete()
        self.assertEqual(st, 404)
        self.wait_torn_down([sb.id])
        self.assert_nothing_left([sb.id])

    def test_quick_create_delete_loop(self):
        ids = []
        for _ in range(15):
            sb = self.cd.create()
            self.assertEqual(sb.run("true")["exit_code"], 0)
            ids.append(sb.id)
            self.assertEqual(sb.delete()[0], 204)
        self.assertEqual(len(set(ids)), len(ids))
        self.wait_torn_down(ids)
        self.assert_nothing_left(ids)
        st, b, _ = self.cd.request("GET", "/admin/pool/status")
        self.assertEqual((b["data"]["total"], b["data"]["deleted"]), (0, 15), b)

    def test_stop_right_after_deletes_finishes_them(self):
        sbs = [self.cd.create() for _ in range(4)]
        for sb in sbs:
            self.assertEqual(sb.delete()[0], 204)
        self.cd.stop()
        ids = [sb.id for sb in sbs]
        self.assert_nothing_left(ids)


if __name__ == "__main__":
    unittest.main()
