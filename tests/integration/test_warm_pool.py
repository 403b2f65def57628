#!/usr/bin/env python3
"""The warm pool (issue 10; docs/operations.md "Warm pool"): `--warm-pool-size N` keeps N
sandboxes of each pooled template started ahead; a create takes one. What a user checks: a
claimed sandbox is indistinguishable from a fresh one (its ID, hostname, environment, metadata,
access token, uid range, network and policy), the admin routes report the pool and roll it,
a restart after kill -9 leaves no warm sandbox of the old coved behind and refills the pool,
and a clean stop leaves only the sandboxes that were claimed.

Run as root: python3 tests/integration/test_warm_pool.py
"""
import json
import os
import sqlite3
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coveharness import Coved  # noqa: E402
from netfixture import PROBE, Internet  # noqa: E402

UID_BASE = 1879048192


def state_dirs(cd):
    d = os.path.join(cd.data_dir, "sandboxes")
    return set(x for x in os.listdir(d) if not x.startswith(".")) if os.path.isdir(d) else set()


def uid_ranges(cd):
    db = sqlite3.connect(os.path.join(cd.data_dir, "cove.db"), timeout=30)
    try:
        return dict(db.execute("SELECT sandbox_id, idx FROM uid_ranges").fetchall())
    finally:
        db.close()


def pool(cd):
    st, b, _ = cd.request("GET", "/admin/pool/status")
    assert st == 200, b
    return b["data"]


def wait_warm(cd, n, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pool(cd)["warm"] == n:
            return
        time.sleep(0.05)
    raise AssertionError("the pool did not reach %d warm sandboxes: %s\n%s" %
                         (n, pool(cd), cd.read_log()))


def warm_ids(cd, claimed=()):
    """IDs of the warm sandboxes: state directories of no sandbox row."""
    db = sqlite3.connect(os.path.join(cd.data_dir, "cove.db"), timeout=30)
    try:
        rows = set(r[0] for r in db.execute("SELECT id FROM sandboxes").fetchall())
    finally:
        db.close()
    return state_dirs(cd) - rows - set(claimed)


def probe(sb, what, *args):
    out = sb.run("python3", "-c", PROBE, what, json.dumps(list(args)), "3")
    return json.loads(out["stdout"].strip().splitlines()[-1])


class WarmPoolNetwork(unittest.TestCase):
    """A claimed sandbox next to a fresh one, networking on (the hermetic test internet)."""

    def setUp(self):
        if os.geteuid() != 0:
            self.skipTest("needs root")
        self.net = Internet().start()
        self.addCleanup(self.net.stop)
        self.cd = Coved.for_test(self, netns=self.net.host_ns,
                                 extra_args=["--uplink", self.net.uplink, "--dns-upstream",
                                             self.net.dns, "--warm-pool-size", "1"])

    def test_claim_is_indistinguishable(self):
        wait_warm(self.cd, 1)
        (warm,) = warm_ids(self.cd)
        net = {"allowInternetAccess": False, "allowOut": ["198.51.100.10"]}
        sb = self.cd.create(envVars={"FOO": "bar"}, metadata={"owner": "me"}, network=net)
        self.assertEqual(sb.id, warm, "the create took the warm sandbox")
        fresh_ids = state_dirs(self.cd)
        # a second create while the pool refills may be warm or fresh: both must look alike
        other = self.cd.create(envVars={"FOO": "baz"}, metadata={"owner": "you"}, network=net)
        self.addCleanup(other.delete)
        self.addCleanup(sb.delete)
        del fresh_ids
        ranges = uid_ranges(self.cd)
        for s, foo, owner in ((sb, "bar", "me"), (other, "baz", "you")):
            with self.subTest(sandbox=s.id):
                out = s.sh("echo $FOO; hostname; cat /proc/self/uid_map; cat /run/cove/access-token;"
                           " echo; grep nameserver /etc/resolv.conf; id -u")["stdout"].split("\n")
                self.assertEqual(out[0], foo)
                self.assertEqual(out[1], s.id)
                self.assertEqual(out[2].split(), ["0", str(UID_BASE + ranges[s.id] * 65536), "65536"])
                self.assertEqual(out[3], s.token)
                self.assertTrue(out[4].startswith("nameserver "), out)
                self.assertEqual(out[5], "0")
                st, body, _ = self.cd.api("GET", "/sandboxes/" + s.id)
                self.assertEqual(st, 200, body)
                self.assertEqual(body["metadata"], {"owner": owner})
                self.assertEqual(body["state"], "running")
                self.assertFalse(body["network"]["allowInternetAccess"])
                self.assertEqual(probe(s, "tcp", "198.51.100.10", 80)["result"], "ok")
                self.assertIn(probe(s, "tcp", "198.51.100.20", 80)["result"],
                              ("refused", "reset", "unreachable", "timeout"))
        self.assertNotEqual(ranges[sb.id], ranges[other.id])
        # a default-policy claim is open like a fresh sandbox
        wait_warm(self.cd, 1)
        (warm,) = warm_ids(self.cd, claimed=(sb.id, other.id))
        open_sb = self.cd.create()
        self.addCleanup(open_sb.delete)
        self.assertEqual(open_sb.id, warm)
        self.assertEqual(probe(open_sb, "tcp", "198.51.100.20", 80)["result"], "ok")


class WarmPool(unittest.TestCase):
    def setUp(self):
        if os.geteuid() != 0:
            self.skipTest("needs root")

    def start(self, size=2, **kw):
        return Coved.for_test(self, extra_args=["--warm-pool-size", str(size)], **kw)

    def test_status_counts_warm_sandboxes(self):
        cd = self.start()
        wait_warm(cd, 2)
        p = pool(cd)
        self.assertEqual((p["total"], p["warm"], p["active"]), (2, 2, 0), p)
        sb = cd.create()
        p = pool(cd)
        self.assertEqual(p["active"], 1, p)
        self.assertEqual(p["total"], 1 + p["warm"], p)
        wait_warm(cd, 2)
        self.assertEqual(pool(cd)["total"], 3)
        self.assertEqual(sb.delete()[0], 204)

    def test_rolling_update_replaces_warm_sandboxes(self):
        cd = self.start()
        wait_warm(cd, 2)
        before = warm_ids(cd)
        st, b, _ = cd.request("POST", "/admin/rolling/start", {"templateId": "base"})
        self.assertEqual(st, 200, b)
        self.assertEqual(b["data"]["warm_total"], 2)
        self.assertIn(b["data"]["phase"], ("running", "completed"))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            s = cd.request("GET", "/admin/rolling/status")[1]["data"]
            if s["phase"] != "running":
                break
            time.sleep(0.05)
        self.assertEqual(s["phase"], "completed", s)
        self.assertEqual(s["warm_updated"], s["warm_total"])
        self.assertEqual(s["progress"], 1)
        wait_warm(cd, 2)
        after = warm_ids(cd)
        self.assertEqual(len(after), 2)
        self.assertFalse(before & after, "every warm sandbox was replaced")
        self.assertEqual(set(uid_ranges(cd)), after, "the replaced ones gave their uid blocks back")
        st, e, _ = cd.request("POST", "/admin/rolling/start", {"templateId": "nosuch"})
        self.assertEqual(st, 404, e)

    def test_create_is_written_whole_before_its_answer(self):
        """A create's records go to the store in one transaction (a warm claim) or two (a cold
        start): its row, created event, log entries and the template's spawn count. Whatever
        the answer said is there after a kill -9 straight after it, and looks the same for a
        warm and a cold sandbox."""
        cd = self.start(size=1)
        wait_warm(cd, 1)
        (warm,) = warm_ids(cd)
        spawned0 = self.spawn_count(cd)
        a = cd.create(metadata={"k": "warm"})
        self.assertEqual(a.id, warm)
        b = cd.create(metadata={"k": "cold"})  # the refill takes a whole start: a fresh one
        self.assertNotEqual(b.id, warm)
        cd.kill9()
        self.assertEqual(self.spawn_count(cd), spawned0 + 2)
        cd.start()
        for sb, kind in ((a, "warm"), (b, "cold")):
            with self.subTest(kind=kind):
                st, body, _ = cd.api("GET", "/sandboxes/" + sb.id)
                self.assertEqual(st, 200, body)
                self.assertEqual(body["state"], "running")
                self.assertEqual(body["metadata"], {"k": kind})
                st, logs, _ = cd.api("GET", "/sandboxes/%s/logs" % sb.id)
                self.assertEqual(st, 200, logs)
                msgs = [e["message"] for e in logs["logs"]]
                self.assertEqual(len(msgs), 2, msgs)
                self.assertTrue(msgs[0].startswith("sandbox created from template 'base'"), msgs)
                self.assertTrue(msgs[1].startswith("sandbox running (init pid "), msgs)
                self.assertEqual([e["fields"]["seq"] for e in logs["logs"]], ["1", "2"])
                st, events, _ = cd.api("GET", "/events/sandboxes/%s?limit=100" % sb.id)
                self.assertEqual(st, 200, events)
                self.assertEqual([e["type"] for e in events], ["sandbox.lifecycle.created"])
                self.assertEqual(sb.run("true")["exit_code"], 0)
                sb.delete()

    def spawn_count(self, cd):
        db = sqlite3.connect(os.path.join(cd.data_dir, "cove.db"), timeout=30)
        try:
            return db.execute("SELECT spawn_count FROM templates WHERE name = 'base'"
                              " OR id = 'base'").fetchone()[0]
        finally:
            db.close()

    def test_kill9_restart_and_stop(self):
        cd = self.start()
        wait_warm(cd, 2)
        sb = cd.create()
        wait_warm(cd, 2)
        old = warm_ids(cd, claimed=(sb.id,))
        self.assertEqual(len(old), 2)
        cd.kill9()
        cd.start()
        self.assertEqual(sb.run("true")["exit_code"], 0, "the claimed sandbox lives on")
        wait_warm(cd, 2)
        new = warm_ids(cd, claimed=(sb.id,))
        self.assertFalse(old & new, "the old coved's warm sandboxes were reclaimed")
        self.assertFalse(old & state_dirs(cd))
        self.assertEqual(set(uid_ranges(cd)), new | {sb.id})
        for i in old:
            for ctrl in ("memory", "pids", ""):
                self.assertFalse(os.path.exists(os.path.join("/sys/fs/cgroup", ctrl, "cove", i)))
        cd.stop()
        self.assertEqual(state_dirs(cd), {sb.id}, "a clean stop destroys the warm sandboxes")
        self.assertEqual(set(uid_ranges(cd)), {sb.id})
        for i in new:
            for ctrl in ("memory", "pids", ""):
                self.assertFalse(os.path.exists(os.path.join("/sys/fs/cgroup", ctrl, "cove", i)))


if __name__ == "__main__":
    unittest.main()
