#!/usr/bin/env python3
"""Admin routes (control-plane.md §14) against a real coved: admin keys only (403 for user
keys, 401 without), wrapped answers, truthful pool counts (no warm pool: warm 0), rolling
updates (idle until one ran; nothing to replace, so one completes at once).

Run as root: python3 tests/integration/test_admin.py
"""
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coveharness import Coved  # noqa: E402

ROUTES = [("GET", "/admin/pool/status", None), ("POST", "/admin/rolling/start",
                                                {"templateId": "base"}),
          ("GET", "/admin/rolling/status", None), ("POST", "/admin/rolling/cancel", None)]


class Admin(unittest.TestCase):
    def setUp(self):
        self.cd = Coved.for_test(self, extra_args=["--max-sandboxes", "4"])

    def data(self, method, path, body=None, root=""):
        st, b, _ = self.cd.request(method, root + path, body)
        self.assertEqual(st, 200, b)
        self.assertEqual((b["code"], b["message"]), (0, "success"))
        self.assertEqual(b["request_id"], b["requestID"])
        self.assertTrue(b["request_id"].startswith("req_"))
        return b["data"]

    def test_only_admin_keys(self):
        user = self.cd.add_key("team_default", role="user")
        for method, path, body in ROUTES:
            with self.subTest(path=path):
                st, e, _ = self.cd.request(method, path, body, headers={"X-API-Key": user})
                self.assertEqual((st, e["error"]["code"]), (403, "PERMISSION_DENIED"), e)
                st, e, _ = self.cd.request(method, path, body, auth=False)
                self.assertEqual(st, 401, e)
        # The user key works elsewhere.
        st, _, _ = self.cd.v1("GET", "/sandboxes", key=user)
        self.assertEqual(st, 200)

    def test_pool_status_counts(self):
        p = self.data("GET", "/admin/pool/status")
        self.assertEqual(p, {"total": 0, "warm": 0, "active": 0, "creating": 0, "stopped": 0,
                             "deleting": 0, "deleted": 0, "utilization": 0})
        ids = []
        for _ in range(3):
            st, b, _ = self.cd.v1("POST", "/sandboxes", {})
            self.assertEqual(st, 201, b)
            ids.append(b["id"])
        st, _, _ = self.cd.api("POST", "/sandboxes/%s/pause" % ids[0])
        self.assertEqual(st, 204)
        st, _, _ = self.cd.v1("DELETE", "/sandboxes/" + ids[1])
        self.assertEqual(st, 204)
        # the delete answers before its teardown ends: `deleting` counts it until then
        p = self.data("GET", "/admin/pool/status")
        self.assertIn(p["deleting"], (0, 1), p)
        for _ in range(600):
            if self.data("GET", "/admin/pool/status")["deleting"] == 0:
                break
            time.sleep(0.05)
        for root in ("", "/api/v1", "/api/sandbox/v1", "/api/v1/sandbox"):
            p = self.data("GET", "/admin/pool/status", root=root)
            self.assertEqual(p, {"total": 2, "warm": 0, "active": 1, "creating": 0,
                                 "stopped": 1, "deleting": 0, "deleted": 1,
                                 "utilization": 0.25})

    def test_rolling_updates(self):
        s = self.data("GET", "/admin/rolling/status")
        self.assertEqual(s, {"phase": "idle", "progress": 0, "warm_total": 0, "warm_updated": 0})
        self.assertEqual(self.data("POST", "/admin/rolling/cancel"), s)  # nothing runs
        for body, status in (({}, 400), ({"templateId": ""}, 400), ({"templateId": 5}, 400),
                             ({"templateID": "base"}, 400),
                             ({"templateId": "no-such-template"}, 404)):
            st, e, _ = self.cd.request("POST", "/admin/rolling/start", body)
            self.assertEqual(st, status, (body, e))
        self.assertEqual(self.data("GET", "/admin/rolling/status")["phase"], "idle")
        s = self.data("POST", "/admin/rolling/start", {"templateId": "base"}, root="/api/v1")
        self.assertEqual((s["phase"], s["progress"], s["warm_total"], s["warm_updated"]),
                         ("completed", 1, 0, 0))
        for k in ("started_at", "completed_at", "duration"):
            self.assertIn(k, s)
        self.assertTrue(s["duration"].endswith("s"))
        self.assertEqual(self.data("GET", "/admin/rolling/status"), s)
        self.assertEqual(self.data("POST", "/admin/rolling/cancel", b"anything"), s)


if __name__ == "__main__":
    unittest.main()
