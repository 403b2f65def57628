#!/usr/bin/env python3
"""The /v1/sandboxes API (shared/spec/v1-api.md) against a real coved and real sandboxes:
every route and error row, the duration grammar, size presets in the sandbox's cgroup, exec
(timeouts that kill a whole tree, signals, 10 MiB truncation, binary output), 100 MB file
transfers, file removal, 403 across organisations, and the status mapping with the SeaCloud
face (§11).

Run as root: python3 tests/integration/test_v1_api.py   (binaries from $COVE_BUILD_DIR or ./build)
"""
import glob
import gzip
import hashlib
import http.client
import json
import os
import sys
import time
import unittest
from datetime import datetime

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coveharness import Coved  # noqa: E402

MiB = 1024 * 1024
UPLOAD_MAX = 104857600


def ts(s):
    """RFC 3339 'Z' timestamp → seconds since the epoch."""
    return datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").timestamp() - time.timezone


def cgroup_file(sid, controller, name):
    paths = glob.glob("/sys/fs/cgroup/%s/cove/%s/%s" % (controller, sid, name))
    paths += glob.glob("/sys/fs/cgroup/cove/%s/%s" % (sid, name))  # pure v2
    return paths[0] if paths else None


def read(path):
    with open(path) as f:
        return f.read().strip()


def coved_hwm_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return -1


class V1Base(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cd = Coved.for_class(cls)

    def v1(self, method, path, body=None, **kw):
        return self.cd.v1(method, path, body, **kw)

    def create(self, **fields):
        st, b, _ = self.v1("POST", "/sandboxes", fields)
        self.assertEqual(st, 201, b)
        return b

    def exec(self, sid, command, **fields):
        fields["command"] = command
        st, b, _ = self.v1("POST", "/sandboxes/%s/exec" % sid, fields)
        self.assertEqual(st, 200, b)
        return b

    def assertError(self, st, body, status, fragment=None):
        self.assertEqual(st, status, body)
        self.assertEqual(body["code"], status)
        self.assertIn("request_id", body)
        self.assertIn(body["message"], body["error"]["details"])
        if fragment:
            self.assertIn(fragment, body["message"])


class CreateAndRead(V1Base):
    def test_create_defaults(self):
        t0 = time.time()
        b = self.create()
        self.assertEqual(len(b["id"]), 20)
        self.assertTrue(b["id"].isalnum() and b["id"].lower() == b["id"])
        self.assertEqual(b["organization_id"], "team_default")
        self.assertEqual(b["template"], "base")
        self.assertTrue(b["template_id"].startswith("tpl-"))
        self.assertEqual(b["mode"], "ephemeral")
        self.assertIsNone(b["size"])
        self.assertEqual(b["status"], "running")
        self.assertEqual(b["timeout"], "5m")
        self.assertIsNone(b["idle_timeout"])
        self.assertAlmostEqual(ts(b["expires_at"]) - ts(b["created_at"]), 300, delta=1)
        self.assertGreaterEqual(ts(b["created_at"]), t0 - 2)
        self.assertEqual(b["metadata"], {})
        self.assertEqual(b["egress"], {"mode": "allow_all", "allow_cidrs": [], "deny_cidrs": [],
                                       "allow_ports": [], "allow_domains": [], "deny_domains": []})
        self.assertIsNone(b["destroyed_at"])
        for k in ("cpu_count", "memory_mb", "last_active_at", "updated_at"):
            self.assertIn(k, b)
        self.assertNotIn("env", b)
        # Unknown fields are ignored; null is absent.
        b2 = self.create(whatever={"x": 1}, template=None, metadata=None)
        self.assertEqual(b2["template"], "base")
        # GET returns the same object.
        st, g, _ = self.v1("GET", "/sandboxes/" + b["id"])
        self.assertEqual(st, 200)
        self.assertEqual(g["id"], b["id"])
        self.assertEqual(g["expires_at"], b["expires_at"])

    def test_create_full(self):
        b = self.create(template="base", mode="ephemeral", timeout="90m", size="shared-cpu-2x",
                        env={"GREETING": "hello"}, metadata={"app": "agent"}, disk_size_mb=512,
                        egress={"mode": "deny_all", "allow_cidrs": ["10.1.2.3/8", "192.0.2.7"],
                                "deny_cidrs": ["2001:db8::1"], "allow_ports": [443, 443, 80],
                                "allow_domains": ["Example.COM"], "deny_domains": ["bad.example"]})
        self.assertEqual(b["timeout"], "1h30m")
        self.assertEqual(b["size"], "shared-cpu-2x")
        self.assertEqual((b["cpu_count"], b["memory_mb"]), (2, 2048))
        self.assertEqual(b["metadata"], {"app": "agent"})
        self.assertEqual(b["egress"], {"mode": "deny_all",
                                       "allow_cidrs": ["10.0.0.0/8", "192.0.2.7/32"],
                                       "deny_cidrs": ["2001:db8::1/128"], "allow_ports": [443, 80],
                                       "allow_domains": ["example.com"],
                                       "deny_domains": ["bad.example"]})
        self.assertNotIn("env", b)
        # The environment reaches processes.
        self.assertEqual(self.exec(b["id"], "echo $GREETING")["stdout"], "hello\n")
        # The SeaCloud face: disk, and the policy (§11).
        st, d, _ = self.cd.api("GET", "/sandboxes/" + b["id"])
        self.assertEqual(st, 200)
        self.assertEqual(d["diskSizeMB"], 512)
        self.assertEqual(d["network"]["allowInternetAccess"], False)
        self.assertEqual(d["network"]["allowOut"],
                         ["10.0.0.0/8", "192.0.2.7/32", "example.com", "*.example.com"])
        self.assertEqual(d["network"]["denyOut"],
                         ["2001:db8::1/128", "bad.example", "*.bad.example"])

    def test_create_errors(self):
        rows = [
            ({"template": "no-such-template"}, 404, "template 'no-such-template' not found"),
            ({"template": 5}, 400, "template"),
            ({"mode": "forever"}, 400, "mode"),
            ({"mode": "persistent", "timeout": "5m"}, 400, "timeout"),
            ({"mode": "ephemeral", "idle_timeout": "5m"}, 400, "idle_timeout"),
            ({"idle_timeout": "5m"}, 400, "idle_timeout"),
            ({"size": "huge"}, 400, "size"),
            ({"disk_size_mb": 255}, 400, "disk_size_mb"),
            ({"disk_size_mb": 10 ** 9}, 400, "disk_size_mb"),
            ({"disk_size_mb": 300.5}, 400, "disk_size_mb"),
            ({"env": {"1BAD": "x"}}, 400, "env"),
            ({"env": {"A": 1}}, 400, "env"),
            ({"metadata": {"a": 1}}, 400, "metadata"),
            ({"metadata": "x"}, 400, "metadata"),
            ({"egress": {}}, 400, "egress.mode"),
            ({"egress": {"mode": "open"}}, 400, "egress.mode"),
            ({"egress": {"mode": "allow_all", "allow_cidrs": ["10.0.0.0/8"]}}, 400, "allow_cidrs"),
            ({"egress": {"mode": "allow_all", "allow_domains": ["a.com"]}}, 400, "allow_domains"),
            ({"egress": {"mode": "deny_all", "allow_cidrs": ["10.0.0.300"]}}, 400,
             "egress.allow_cidrs[0]"),
            ({"egress": {"mode": "deny_all", "deny_cidrs": ["10.0.0.0/33"]}}, 400, "deny_cidrs[0]"),
            ({"egress": {"mode": "deny_all", "allow_ports": [80]}}, 400, "allow_ports"),
            ({"egress": {"mode": "deny_all", "allow_cidrs": ["10.0.0.0/8"],
                         "allow_ports": [70000]}}, 400, "allow_ports[0]"),
            ({"egress": {"mode": "deny_all", "allow_domains": ["*.a.com"]}}, 400,
             "allow_domains[0]"),
            ({"egress": {"mode": "deny_all", "deny_domains": ["a..com"]}}, 400, "deny_domains[0]"),
            ({"egress": {"mode": "deny_all", "deny_cidrs": ["10.0.0.1\u0000/8"]}}, 400,
             "field 'egress.deny_cidrs[0]' must not contain NUL bytes"),
            ({"egress": {"mode": "deny_all", "deny_domains": ["a.com\u0000.evil"]}}, 400,
             "field 'egress.deny_domains[0]' must not contain NUL bytes"),
            ({"egress": {"mode": "deny_all", "deny_cidrs": ["10.0.0.%d" % i for i in range(257)]}},
             400, "256"),
        ]
        for body, status, frag in rows:
            with self.subTest(body=body):
                st, b, _ = self.v1("POST", "/sandboxes", body)
                self.assertError(st, b, status, frag)
        st, b, _ = self.v1("POST", "/sandboxes", b'{"mode": ')
        self.assertError(st, b, 400)
        st, b, _ = self.v1("POST", "/sandboxes", b'[1]')
        self.assertError(st, b, 400)
        # Nothing was left behind by the refusals.
        st, lst, _ = self.v1("GET", "/sandboxes?status=creating,running,suspended,destroyed")
        self.assertFalse([s for s in lst["sandboxes"] if s["metadata"].get("leak")])

    def test_template_without_ready_build_is_409(self):
        """v1-api.md §4: a known template with no ready build → 409 (unknown → 404); the
        SeaCloud face answers the same for the same template."""
        st, t, _ = self.cd.api("POST", "/templates", {"name": "never-built"})  # no build yet
        self.assertIn(st, (201, 202), t)
        try:
            st, b, _ = self.v1("POST", "/sandboxes", {"template": "never-built"})
            self.assertError(st, b, 409, "has no ready build")
            st, b, _ = self.v1("POST", "/sandboxes", {"template": t["templateID"]})
            self.assertError(st, b, 409, "has no ready build")
            st, b, _ = self.cd.api("POST", "/sandboxes", {"templateID": "never-built"})
            self.assertEqual((st, b["code"]), (409, 409), b)
            st, b, _ = self.v1("POST", "/sandboxes", {"template": "no-such-template"})
            self.assertError(st, b, 404)
            st, lst, _ = self.v1("GET", "/sandboxes")
            self.assertEqual([s for s in lst["sandboxes"] if s["template"] == "never-built"], [])
        finally:
            self.cd.api("DELETE", "/templates/" + t["templateID"])

    def test_duration_grammar(self):
        for given, shown in (("30s", "30s"), ("5m", "5m"), ("1h", "1h"), ("1h30m", "1h30m"),
                             ("90m", "1h30m"), ("3600s", "1h"), ("1h0m5s", "1h5s"),
                             ("24h", "24h"), ("86400s", "24h")):
            with self.subTest(duration=given):
                b = self.create(timeout=given)
                self.assertEqual(b["timeout"], shown)
                self.v1("DELETE", "/sandboxes/" + b["id"])
        for bad in ("30", "1d", "1.5h", "-5s", "+5s", "5 s", " 5s", "", "h", "5ms", "1H", 30,
                    True, ["5m"], "0s", "0h0m", "25h", "24h1s", "9999999999999s", "5m\u00001h"):
            with self.subTest(duration=bad):
                st, b, _ = self.v1("POST", "/sandboxes", {"timeout": bad})
                self.assertError(st, b, 400, "timeout")
                st, b, _ = self.v1("POST", "/sandboxes", {"mode": "persistent",
                                                          "idle_timeout": bad})
                self.assertError(st, b, 400, "idle_timeout")

    def test_size_presets_in_cgroup(self):
        presets = {"shared-cpu-1x": (1, 1024), "shared-cpu-2x": (2, 2048),
                   "shared-cpu-4x": (4, 4096), "performance-1x": (1, 2048),
                   "performance-2x": (2, 4096), "performance-4x": (4, 8192),
                   "performance-8x": (8, 16384)}
        for name, (cpus, mem) in presets.items():
            with self.subTest(size=name):
                b = self.create(size=name)
                sid = b["id"]
                self.assertEqual((b["size"], b["cpu_count"], b["memory_mb"]), (name, cpus, mem))
                limit = cgroup_file(sid, "memory", "memory.limit_in_bytes") or \
                    cgroup_file(sid, "memory", "memory.max")
                self.assertIsNotNone(limit, "no memory cgroup for %s" % sid)
                self.assertEqual(int(read(limit)), mem * MiB)
                quota = cgroup_file(sid, "cpu", "cpu.cfs_quota_us")
                if quota:
                    period = int(read(cgroup_file(sid, "cpu", "cpu.cfs_period_us")))
                    self.assertEqual(int(read(quota)), cpus * period)
                else:
                    q, p = read(cgroup_file(sid, "cpu", "cpu.max")).split()
                    self.assertEqual(int(q), cpus * int(p))
                # performance-* sizes weigh ten times the default under contention
                shares = cgroup_file(sid, "cpu", "cpu.shares")
                weight = cgroup_file(sid, "cpu", "cpu.weight")
                perf = name.startswith("performance-")
                if shares:
                    self.assertEqual(int(read(shares)), 10240 if perf else 1024)
                else:
                    self.assertEqual(int(read(weight)), 1000 if perf else 100)
                st, d, _ = self.cd.api("GET", "/sandboxes/" + sid)
                self.assertEqual((d["cpuCount"], d["memoryMB"]), (cpus, mem))
                self.v1("DELETE", "/sandboxes/" + sid)

    def test_list_filters_and_order(self):
        tag = os.urandom(4).hex()
        ids = []
        for _ in range(3):
            ids.append(self.create(metadata={"list": tag})["id"])
            time.sleep(0.01)
        st, _, _ = self.cd.api("POST", "/sandboxes/%s/pause" % ids[1])
        self.assertEqual(st, 204)
        st, _, _ = self.v1("DELETE", "/sandboxes/" + ids[2])
        self.assertEqual(st, 204)

        def listed(query=""):
            st, b, _ = self.v1("GET", "/sandboxes" + query)
            self.assertEqual(st, 200, b)
            return [s["id"] for s in b["sandboxes"] if s["metadata"].get("list") == tag]

        self.assertEqual(listed(), [ids[1], ids[0]])  # newest first, destroyed left out
        self.assertEqual(listed("?status=running"), [ids[0]])
        self.assertEqual(listed("?status=suspended"), [ids[1]])
        self.assertEqual(listed("?status=destroyed"), [ids[2]])
        self.assertEqual(listed("?status=running,destroyed"), [ids[2], ids[0]])
        self.assertEqual(listed("?status=running&status=suspended"), [ids[1], ids[0]])
        self.assertEqual(listed("?status=running,suspended&status=destroyed"),
                         [ids[2], ids[1], ids[0]])
        st, b, _ = self.v1("GET", "/sandboxes?status=paused")
        self.assertError(st, b, 400, "paused")
        st, b, _ = self.v1("GET", "/sandboxes?status=running,stopped")
        self.assertError(st, b, 400, "stopped")
        # An organisation without sandboxes gets [].
        other = self.cd.add_key("team_empty_" + tag)
        st, b, _ = self.v1("GET", "/sandboxes", key=other)
        self.assertEqual((st, b), (200, {"sandboxes": []}))

    def test_get_unknown_and_idempotent_delete(self):
        st, b, _ = self.v1("GET", "/sandboxes/nosuchsandbox0000000")
        self.assertError(st, b, 404, "not found")
        st, _, _ = self.v1("DELETE", "/sandboxes/nosuchsandbox0000000")
        self.assertEqual(st, 204)
        b = self.create()
        sid = b["id"]
        for _ in range(2):
            st, body, h = self.v1("DELETE", "/sandboxes/" + sid)
            self.assertEqual((st, body), (204, b""))
            self.assertNotIn("content-type", h)
        st, g, _ = self.v1("GET", "/sandboxes/" + sid)
        self.assertEqual(st, 200)
        self.assertEqual(g["status"], "destroyed")
        self.assertIsNotNone(g["destroyed_at"])
        self.assertEqual(g["id"], sid)
        # The SeaCloud face never shows a deleted sandbox.
        st, _, _ = self.cd.api("GET", "/sandboxes/" + sid)
        self.assertEqual(st, 404)
        # Nothing of it is left on the host (once its teardown, after the answer, is done).
        self.cd.wait_teardown()
        self.assertIsNone(cgroup_file(sid, "memory", "memory.limit_in_bytes"))
        self.assertFalse(os.path.exists(os.path.join(self.cd.data_dir, "sandboxes", sid)))

    def test_destroyed_kept_24_hours(self):
        import sqlite3
        sid = self.create()["id"]
        self.v1("DELETE", "/sandboxes/" + sid)
        st, g, _ = self.v1("GET", "/sandboxes/" + sid)
        self.assertEqual((st, g["status"]), (200, "destroyed"))
        # Age the tombstone by 23 h, then by 24 h more (the store is the only clock here).
        db = sqlite3.connect(os.path.join(self.cd.data_dir, "cove.db"), timeout=30)
        for hours, status in ((23, 200), (24, 404)):
            db.execute("UPDATE sandbox_tombstones SET destroyed_at = destroyed_at - ? WHERE id = ?",
                       (hours * 3600 * 1000, sid))
            db.commit()
            st, g, _ = self.v1("GET", "/sandboxes/" + sid)
            self.assertEqual(st, status, g)
            st, lst, _ = self.v1("GET", "/sandboxes?status=destroyed")
            self.assertEqual(sid in [x["id"] for x in lst["sandboxes"]], status == 200)
        db.close()
        st, _, _ = self.v1("DELETE", "/sandboxes/" + sid)
        self.assertEqual(st, 204)

    def test_auth_and_methods(self):
        st, b, _ = self.cd.request("GET", "/v1/sandboxes", auth=False)
        self.assertError(st, b, 401)
        st, b, _ = self.cd.request("POST", "/v1/sandboxes", {}, headers={"X-API-Key": "nope"})
        self.assertError(st, b, 401)
        st, b, h = self.v1("PATCH", "/sandboxes")
        self.assertError(st, b, 405)
        self.assertIn("POST", h["allow"])
        st, b, _ = self.v1("GET", "/sandboxes/x/nothing")
        self.assertError(st, b, 404)
        # Bearer works as well as X-API-Key.
        st, b, _ = self.cd.request("GET", "/v1/sandboxes", auth=False,
                                   headers={"Authorization": "Bearer " + self.cd.api_key})
        self.assertEqual(st, 200)


class Lifetime(V1Base):
    def test_keepalive(self):
        b = self.create(timeout="1m")
        sid = b["id"]
        t0 = time.time()
        st, k, _ = self.v1("POST", "/sandboxes/%s/keepalive" % sid, {"timeout": "10m"})
        self.assertEqual(st, 200, k)
        self.assertEqual(k["timeout"], "10m")
        self.assertAlmostEqual(ts(k["expires_at"]), t0 + 600, delta=3)
        # No body: the current timeout again, counted from now; it may shorten.
        st, k, _ = self.v1("POST", "/sandboxes/%s/keepalive" % sid)
        self.assertEqual(st, 200, k)
        self.assertEqual(k["timeout"], "10m")
        st, k, _ = self.v1("POST", "/sandboxes/%s/keepalive" % sid, {"timeout": "30s"})
        self.assertEqual((st, k["timeout"]), (200, "30s"))
        self.assertLess(ts(k["expires_at"]), t0 + 60)
        st, k, _ = self.v1("POST", "/sandboxes/%s/keepalive" % sid, {})
        self.assertEqual(st, 200, k)
        for bad in ("0s", "25h", "abc", 30):
            st, e, _ = self.v1("POST", "/sandboxes/%s/keepalive" % sid, {"timeout": bad})
            self.assertError(st, e, 400, "timeout")
        # The SeaCloud face sees the same deadline.
        st, d, _ = self.cd.api("GET", "/sandboxes/" + sid)
        self.assertEqual(d["endAt"], k["expires_at"])
        # Not ephemeral, not running, gone, unknown.
        p = self.create(mode="persistent")
        st, e, _ = self.v1("POST", "/sandboxes/%s/keepalive" % p["id"])
        self.assertError(st, e, 409, "not ephemeral")
        st, _, _ = self.cd.api("POST", "/sandboxes/%s/pause" % sid)
        self.assertEqual(st, 204)
        st, e, _ = self.v1("POST", "/sandboxes/%s/keepalive" % sid)
        self.assertError(st, e, 409, "not running")
        self.v1("DELETE", "/sandboxes/" + sid)
        st, e, _ = self.v1("POST", "/sandboxes/%s/keepalive" % sid)
        self.assertError(st, e, 409)
        st, e, _ = self.v1("POST", "/sandboxes/nosuchsandbox0000000/keepalive")
        self.assertError(st, e, 404)

    def test_wake(self):
        b = self.create()
        sid = b["id"]
        st, w, _ = self.v1("POST", "/sandboxes/%s/wake" % sid)
        self.assertEqual((st, w["status"]), (200, "running"))  # already running
        st, _, _ = self.cd.api("POST", "/sandboxes/%s/pause" % sid)
        self.assertEqual(st, 204)
        st, g, _ = self.v1("GET", "/sandboxes/" + sid)
        self.assertEqual(g["status"], "suspended")
        st, w, _ = self.v1("POST", "/sandboxes/%s/wake" % sid)
        self.assertEqual((st, w["status"]), (200, "running"))
        self.assertEqual(self.exec(sid, "echo up")["stdout"], "up\n")
        self.v1("DELETE", "/sandboxes/" + sid)
        st, e, _ = self.v1("POST", "/sandboxes/%s/wake" % sid)
        self.assertError(st, e, 409, "destroyed")
        st, e, _ = self.v1("POST", "/sandboxes/nosuchsandbox0000000/wake")
        self.assertError(st, e, 404)

    def test_ephemeral_expires(self):
        b = self.create(timeout="1s")
        sid = b["id"]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            st, g, _ = self.v1("GET", "/sandboxes/" + sid)
            if g["status"] == "destroyed":
                break
            time.sleep(0.2)
        self.assertEqual(g["status"], "destroyed")
        self.assertIsNotNone(g["destroyed_at"])
        st, _, _ = self.cd.api("GET", "/sandboxes/" + sid)
        self.assertEqual(st, 404)

    def test_faces_share_the_store(self):
        # /v1 → SeaCloud (§11).
        e = self.create(metadata={"m": "1"}, env={"SECRET": "s"})
        st, d, _ = self.cd.api("GET", "/sandboxes/" + e["id"])
        self.assertEqual(st, 200)
        self.assertEqual(d["state"], "running")
        self.assertEqual(d["lifecycle"]["onTimeout"], "kill")
        self.assertEqual(d["endAt"], e["expires_at"])
        self.assertEqual(d["metadata"], {"m": "1"})
        self.assertNotIn("envVars", d)
        self.assertEqual(d["network"], {"allowPublicTraffic": True, "allowInternetAccess": True,
                                        "allowOut": [], "denyOut": []})
        p = self.create(mode="persistent", idle_timeout="1h")
        self.assertEqual((p["mode"], p["idle_timeout"], p["timeout"], p["expires_at"]),
                         ("persistent", "1h", None, None))
        st, d, _ = self.cd.api("GET", "/sandboxes/" + p["id"])
        self.assertEqual(d["lifecycle"], {"onTimeout": "pause", "autoResume": True})
        self.assertAlmostEqual(ts(d["endAt"]), ts(p["last_active_at"]) + 3600, delta=1)
        # SeaCloud → /v1.
        st, s, _ = self.cd.api("POST", "/sandboxes", {
            "waitReady": True, "autoPause": True, "timeout": 600,
            "network": {"allowInternetAccess": False, "allowOut": ["10.1.0.0/16"],
                        "denyOut": ["10.1.2.0/24"]}})
        self.assertEqual(st, 201, s)
        st, g, _ = self.v1("GET", "/sandboxes/" + s["sandboxID"])
        self.assertEqual(st, 200)
        self.assertEqual((g["mode"], g["status"], g["idle_timeout"]), ("persistent", "running", "10m"))
        self.assertEqual(g["egress"], {"mode": "deny_all", "allow_cidrs": ["10.1.0.0/16"],
                                       "deny_cidrs": ["10.1.2.0/24"], "allow_ports": [],
                                       "allow_domains": [], "deny_domains": []})
        self.assertEqual(g["template_id"], s["templateID"])
        st, _, _ = self.cd.api("POST", "/sandboxes/%s/pause" % s["sandboxID"])
        st, g, _ = self.v1("GET", "/sandboxes/" + s["sandboxID"])
        self.assertEqual(g["status"], "suspended")
        st, _, _ = self.cd.api("DELETE", "/sandboxes/" + s["sandboxID"])
        self.assertEqual(st, 204)
        st, g, _ = self.v1("GET", "/sandboxes/" + s["sandboxID"])
        self.assertEqual((st, g["status"]), (200, "destroyed"))
        # A sandbox the SeaCloud face knows by its template ID shows that ID as `template`.
        st, s2, _ = self.cd.api("POST", "/sandboxes", {"templateID": s["templateID"]})
        st, g, _ = self.v1("GET", "/sandboxes/" + s2["sandboxID"])
        self.assertEqual(g["template"], s["templateID"])


class Exec(V1Base):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        st, b, _ = cls.cd.v1("POST", "/sandboxes", {"env": {"FROM_CREATE": "c"}, "timeout": "1h"})
        assert st == 201, b
        cls.sid = b["id"]

    def test_basics(self):
        r = self.exec(self.sid, "echo out; echo err >&2; id -u; echo $0; pwd; exit 3")
        self.assertEqual(r["exit_code"], 3)
        self.assertEqual(r["stdout"], "out\n0\n/bin/sh\n/root\n")
        self.assertEqual(r["stderr"], "err\n")
        self.assertEqual((r["truncated"], r["timed_out"]), (False, False))
        self.assertIsInstance(r["duration_ms"], int)
        self.assertEqual(self.exec(self.sid, "pwd", workdir="/tmp")["stdout"], "/tmp\n")
        self.assertEqual(self.exec(self.sid, "pwd", cwd="/usr")["stdout"], "/usr\n")
        r = self.exec(self.sid, "echo $FROM_CREATE $MINE", env={"MINE": "m"})
        self.assertEqual(r["stdout"], "c m\n")
        self.assertEqual(self.exec(self.sid, "true", timeout="1m")["exit_code"], 0)

    def test_errors(self):
        rows = [({}, "command"), ({"command": ""}, "command"), ({"command": 5}, "command"),
                ({"command": "true", "timeout": "6m"}, "5m"),
                ({"command": "true", "timeout": "5m1s"}, "timeout"),
                ({"command": "true", "timeout": "0s"}, "timeout"),
                ({"command": "true", "timeout": "soon"}, "timeout"),
                ({"command": "true", "timeout": 30}, "timeout"),
                ({"command": "true", "timeout": "1m\u00001h"}, "timeout"),
                ({"command": "true", "workdir": "tmp"}, "workdir"),
                ({"command": "true", "workdir": "/no/such/dir"}, "/no/such/dir"),
                ({"command": "true", "env": {"BAD KEY": "x"}}, "env")]
        for body, frag in rows:
            with self.subTest(body=body):
                st, b, _ = self.v1("POST", "/sandboxes/%s/exec" % self.sid, body)
                self.assertError(st, b, 400, frag)
        st, b, _ = self.v1("POST", "/sandboxes/%s/exec" % self.sid, b"{not json")
        self.assertError(st, b, 400)
        st, b, _ = self.v1("POST", "/sandboxes/nosuchsandbox0000000/exec", {"command": "true"})
        self.assertError(st, b, 404)

    def test_timeout_kills_the_tree(self):
        # A child that ignores SIGTERM, a grandchild, and the shell itself.
        r = self.exec(self.sid, "sh -c 'trap \"\" TERM; echo $$ > /tmp/child.pid; sleep 1000' & "
                                "sh -c 'sleep 1000 & echo $! > /tmp/grand.pid; wait' & "
                                "echo started; sleep 1000", timeout="2s")
        self.assertEqual(r["exit_code"], 124)
        self.assertTrue(r["timed_out"])
        self.assertEqual(r["stdout"], "started\n")
        check = self.exec(self.sid, "for f in /tmp/child.pid /tmp/grand.pid; do "
                                    "p=$(cat $f); kill -0 $p 2>/dev/null && echo alive $p; done; "
                                    "true")
        self.assertEqual(check["stdout"], "")

    def test_signals(self):
        self.assertEqual(self.exec(self.sid, "kill -9 $$")["exit_code"], 137)
        self.assertEqual(self.exec(self.sid, "kill -TERM $$")["exit_code"], 143)
        r = self.exec(self.sid, "kill -9 $$")
        self.assertFalse(r["timed_out"])

    def test_truncation_at_10_mib(self):
        r = self.exec(self.sid, "head -c 12582912 /dev/zero | tr '\\0' a; echo e >&2")
        self.assertEqual(len(r["stdout"]), 10 * MiB)
        self.assertEqual(r["stdout"], "a" * (10 * MiB))
        self.assertTrue(r["truncated"])
        self.assertEqual(r["stderr"], "e\n")
        self.assertEqual(r["exit_code"], 0)
        r = self.exec(self.sid, "head -c 10485760 /dev/zero | tr '\\0' b")
        self.assertEqual(len(r["stdout"]), 10 * MiB)
        self.assertFalse(r["truncated"])
        # Multi-byte characters are not cut in half.
        r = self.exec(self.sid, "yes é | head -c 16000000 | tr -d '\\n'")
        self.assertTrue(r["truncated"])
        self.assertTrue(set(r["stdout"]) <= {"é"})
        self.assertLessEqual(len(r["stdout"].encode()), 10 * MiB)

    def test_binary_output(self):
        r = self.exec(self.sid, "printf 'ok\\377\\376 \\200x\\000y'; printf '\\351' >&2")
        self.assertEqual(r["stdout"], "ok\ufffd\ufffd \ufffdx\x00y")
        self.assertEqual(r["stderr"], "\ufffd")
        r = self.exec(self.sid, "head -c 65536 /dev/urandom")
        self.assertEqual(r["exit_code"], 0)
        self.assertGreater(len(r["stdout"]), 0)


class Files(V1Base):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        st, b, _ = cls.cd.v1("POST", "/sandboxes", {"timeout": "1h"})
        assert st == 201, b
        cls.sid = b["id"]

    def files(self, method, path, body=None, headers=None, **kw):
        q = "/sandboxes/%s/files" % self.sid
        if path is not None:
            q += "?path=" + path
        return self.v1(method, q, body, headers=headers, **kw)

    def stream_put(self, path, size, seed):
        """PUT of `size` pseudo-random bytes, streamed; returns (status, body, sha256)."""
        h = hashlib.sha256()
        conn = http.client.HTTPConnection("127.0.0.1", self.cd.port, timeout=300)
        conn.putrequest("PUT", "/v1/sandboxes/%s/files?path=%s" % (self.sid, path))
        conn.putheader("X-API-Key", self.cd.api_key)
        conn.putheader("Content-Length", str(size))
        conn.endheaders()
        block = hashlib.sha512(seed).digest() * 16384  # 1 MiB
        sent = 0
        try:
            while sent < size:
                chunk = block[:min(len(block), size - sent)]
                h.update(chunk)
                conn.send(chunk)
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        return resp.status, json.loads(data) if data else b"", h.hexdigest()

    def test_100_mb_round_trip(self):
        st, b, digest = self.stream_put("/root/big/blob.bin", UPLOAD_MAX, b"cove")
        self.assertEqual(st, 204, b)
        inside = self.exec(self.sid, "sha256sum /root/big/blob.bin; stat -c '%s %U %a' "
                                     "/root/big/blob.bin")["stdout"].split()
        self.assertEqual(inside[0], digest)
        self.assertEqual(inside[2:], [str(UPLOAD_MAX), "root", "644"])
        # Download, streamed: hash as it arrives.
        conn = http.client.HTTPConnection("127.0.0.1", self.cd.port, timeout=300)
        conn.request("GET", "/v1/sandboxes/%s/files?path=/root/big/blob.bin" % self.sid,
                     headers={"X-API-Key": self.cd.api_key})
        resp = conn.getresponse()
        self.assertEqual(resp.status, 200)
        self.assertEqual(resp.getheader("Content-Type"), "application/octet-stream")
        self.assertEqual(int(resp.getheader("Content-Length")), UPLOAD_MAX)
        h, n = hashlib.sha256(), 0
        while True:
            chunk = resp.read(1 << 20)
            if not chunk:
                break
            h.update(chunk)
            n += len(chunk)
        conn.close()
        self.assertEqual((n, h.hexdigest()), (UPLOAD_MAX, digest))
        # Neither direction held the file in coved: its peak memory stays far below 100 MB.
        self.assertLess(coved_hwm_kib(self.cd.proc.pid), 80 * 1024)

    def test_over_100_mb_refused(self):
        st, b, _ = self.stream_put("/root/over.bin", UPLOAD_MAX + 1, b"over")
        self.assertError(st, b, 400, "100 MB")
        self.assertEqual(self.exec(self.sid, "ls /root/over.bin 2>&1; ls -a /root | grep -c "
                                             "cove || true")["stdout"].split()[-1], "0")
        # Announced up front as too large: refused before reading.
        st, b, _ = self.files("PUT", "/root/over2.bin", b"x",
                              headers={"Content-Length": str(UPLOAD_MAX + 1)})
        self.assertError(st, b, 400, "100 MB")
        # Counted after gzip decoding: 100 MB + 1 of zeros is a small body.
        gz = gzip.compress(b"\0" * (UPLOAD_MAX + 1), 9)
        st, b, _ = self.files("PUT", "/root/over3.bin", gz, headers={"Content-Encoding": "gzip"})
        self.assertError(st, b, 400, "100 MB")

    def test_upload_details(self):
        st, b, _ = self.files("PUT", "/tmp/a/b/c.txt", b"first")
        self.assertEqual((st, b), (204, b""))
        st, b, _ = self.files("POST", "/tmp/a/b/c.txt", b"second")  # synonym, replaces
        self.assertEqual(st, 204, b)
        st, data, h = self.files("GET", "/tmp/a/b/c.txt")
        self.assertEqual((st, data), (200, b"second"))
        st, b, _ = self.files("PUT", "/tmp/gz.txt", gzip.compress(b"decoded" * 1000),
                              headers={"Content-Encoding": "gzip", "Content-Type": "text/plain"})
        self.assertEqual(st, 204, b)
        st, data, _ = self.files("GET", "/tmp/gz.txt")
        self.assertEqual(data, b"decoded" * 1000)
        st, b, _ = self.files("PUT", "/tmp/empty", b"")
        self.assertEqual(st, 204, b)
        st, data, h = self.files("GET", "/tmp/empty")
        self.assertEqual((st, data), (200, b""))
        self.assertEqual(self.exec(self.sid, "stat -c '%U %a' /tmp/a/b/c.txt")["stdout"],
                         "root 644\n")
        st, b, _ = self.files("PUT", "/tmp/x.bin", b"x", headers={"Content-Encoding": "br"})
        self.assertError(st, b, 415)

    def test_path_rules(self):
        self.exec(self.sid, "mkdir -p /tmp/adir && echo x > /tmp/adir/f")
        for method in ("PUT", "GET", "DELETE"):
            for path in (None, "", "relative/x", "/", "//", "/tmp/../etc/passwd", "/tmp/a..b",
                         "/.."):
                with self.subTest(method=method, path=path):
                    st, b, _ = self.files(method, path, b"x" if method == "PUT" else None)
                    self.assertError(st, b, 400)
        st, b, _ = self.files("PUT", "/tmp/adir", b"x")
        self.assertError(st, b, 400)
        for path in ("/tmp/nope", "/tmp/adir", "/dev/null"):
            st, b, _ = self.files("GET", path)
            self.assertError(st, b, 404)

    def test_delete(self):
        self.exec(self.sid, "mkdir -p /tmp/del/sub /tmp/del/empty && echo x > /tmp/del/sub/f "
                            "&& echo y > /tmp/del/file")
        st, b, _ = self.files("DELETE", "/tmp/del/file")
        self.assertEqual((st, b), (204, b""))
        st, b, _ = self.files("GET", "/tmp/del/file")
        self.assertError(st, b, 404)
        st, b, _ = self.files("DELETE", "/tmp/del/file")
        self.assertError(st, b, 404)
        st, b, _ = self.files("DELETE", "/tmp/del/empty")
        self.assertEqual(st, 204, b)
        st, b, _ = self.files("DELETE", "/tmp/del")
        self.assertError(st, b, 400, "not empty")
        st, b, _ = self.files("DELETE", "/tmp/del&recursive=false")
        self.assertError(st, b, 400, "not empty")
        st, b, _ = self.files("DELETE", "/tmp/del&recursive=maybe")
        self.assertError(st, b, 400, "recursive")
        st, b, _ = self.files("DELETE", "/tmp/del&recursive=true")
        self.assertEqual(st, 204, b)
        self.assertEqual(self.exec(self.sid, "ls /tmp/del 2>&1 || true")["exit_code"], 0)
        self.assertIn("No such file", self.exec(self.sid, "ls /tmp/del 2>&1; true")["stdout"])

    def test_destroyed_sandbox_is_409(self):
        st, b, _ = self.v1("POST", "/sandboxes", {})
        gone = b["id"]
        self.v1("DELETE", "/sandboxes/" + gone)
        for method, body in (("PUT", b"x"), ("POST", b"x"), ("GET", None), ("DELETE", None)):
            st, e, _ = self.v1(method, "/sandboxes/%s/files?path=/tmp/x" % gone, body)
            self.assertError(st, e, 409, "destroyed")
        st, e, _ = self.v1("POST", "/sandboxes/%s/exec" % gone, {"command": "true"})
        self.assertError(st, e, 409, "destroyed")
        for method in ("PUT", "GET", "DELETE"):
            st, e, _ = self.v1(method, "/sandboxes/nosuchsandbox0000000/files?path=/tmp/x",
                               b"x" if method == "PUT" else None)
            self.assertError(st, e, 404)


class Organisations(V1Base):
    def test_other_organisation_is_403_everywhere(self):
        mine = self.create()["id"]
        gone = self.create()["id"]
        self.v1("DELETE", "/sandboxes/" + gone)
        other = self.cd.add_key("team_other")
        routes = [("GET", "/sandboxes/%s", None), ("DELETE", "/sandboxes/%s", None),
                  ("POST", "/sandboxes/%s/keepalive", {"timeout": "10m"}),
                  ("POST", "/sandboxes/%s/keepalive", {"timeout": "bogus"}),
                  ("POST", "/sandboxes/%s/wake", None),
                  ("POST", "/sandboxes/%s/exec", {"command": "echo pwned"}),
                  ("POST", "/sandboxes/%s/exec", {}),
                  ("PUT", "/sandboxes/%s/files?path=/tmp/x", b"pwned"),
                  ("POST", "/sandboxes/%s/files?path=/tmp/x", b"pwned"),
                  ("PUT", "/sandboxes/%s/files?path=relative", b"pwned"),
                  ("GET", "/sandboxes/%s/files?path=/etc/hostname", None),
                  ("DELETE", "/sandboxes/%s/files?path=/tmp", None)]
        for sid in (mine, gone):
            for method, path, body in routes:
                with self.subTest(sandbox=sid, method=method, path=path):
                    st, b, _ = self.v1(method, path % sid, body, key=other)
                    self.assertError(st, b, 403, "another organization")
        # Still running and untouched; invisible to the other team's list and SeaCloud face.
        st, g, _ = self.v1("GET", "/sandboxes/" + mine)
        self.assertEqual(g["status"], "running")
        self.assertEqual(self.exec(mine, "ls /tmp/x 2>/dev/null; true")["stdout"], "")
        st, b, _ = self.v1("GET", "/sandboxes?status=creating,running,suspended,destroyed",
                           key=other)
        self.assertEqual(b, {"sandboxes": []})
        st, _, _ = self.cd.api("GET", "/sandboxes/" + mine, headers={"X-API-Key": other})
        self.assertEqual(st, 404)
        # The other team's own sandbox works for it, and is 403 for us.
        st, theirs, _ = self.v1("POST", "/sandboxes", {}, key=other)
        self.assertEqual((st, theirs["organization_id"]), (201, "team_other"))
        st, b, _ = self.v1("GET", "/sandboxes/" + theirs["id"])
        self.assertError(st, b, 403)
        st, _, _ = self.v1("DELETE", "/sandboxes/" + theirs["id"], key=other)
        self.assertEqual(st, 204)


if __name__ == "__main__":
    unittest.main()
