#!/usr/bin/env python3
"""A hostile tenant (docs/security.md §2, "Control plane"): a real coved, two teams with their
own user keys. Team A owns a sandbox, a template with a build and a tag, a volume, a webhook
with a delivery; team B tries every route family on A's objects, on every face, and must get
the answer it would get for an ID that does not exist (404; /v1's 403 is the one answer
v1-api.md §1 prescribes), with a body that names nothing of A's, and must change nothing.
The runtime API answers to a sandbox's own token only: another sandbox's token, a signature
made with it, or any API key are refused.

Run as root: python3 tests/security/test_tenant_isolation.py
"""
import base64
import hashlib
import json
import os
import sys
import time
import unittest
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
from coveharness import Coved  # noqa: E402


class HostileTenant(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cd = cd = Coved.for_class(cls)
        cls.team, cls.key, cls.key_id = {}, {}, {}
        for name in ("alpha", "beta"):
            st, body, _ = cd.api("POST", "/admin/teams", {"name": "tenant-" + name})
            assert st == 201, body
            cls.team[name] = body["data"]["teamID"]
            st, body, _ = cd.api("POST", "/admin/keys", {"teamID": cls.team[name], "role": "user",
                                                         "name": name})
            assert st == 201, body
            cls.key[name], cls.key_id[name] = body["data"]["key"], body["data"]["keyID"]
        a = cls.as_alpha
        # a webhook first, so that the sandbox's creation makes a delivery (to a loopback
        # address coved refuses at delivery time: nothing leaves the machine)
        st, cls.webhook, _ = a("POST", "/events/webhooks", {
            "name": "alpha-hook", "url": "http://127.0.0.1:9/alpha-hook",
            "events": ["sandbox.lifecycle.created"], "signatureSecret": "alpha-secret-123",
            "retryPolicy": {"maxAttempts": 1}})
        assert st == 201, cls.webhook
        st, cls.volume, _ = a("POST", "/volumes", {"name": "alpha-vol"})
        assert st == 201, cls.volume
        st, cls.sb, _ = a("POST", "/sandboxes", {
            "waitReady": True, "volumeMounts": [{"name": "alpha-vol", "path": "/data"}],
            "network": {"allowPublicTraffic": False}, "metadata": {"owner": "alpha-secret-meta"}})
        assert st == 201, cls.sb
        st, cls.sb_b, _ = cls.as_beta("POST", "/sandboxes", {"waitReady": True})
        assert st == 201, cls.sb_b
        st, t, _ = a("POST", "/templates", {"name": "alpha-tpl", "alias": "alpha-alias-%s"
                                             % os.urandom(3).hex()})
        assert st in (201, 202), t
        cls.tpl, cls.alias = t["templateID"], t["aliases"][0]
        st, b, _ = a("POST", "/templates/%s/builds" % cls.tpl, {
            "fromTemplate": "base", "steps": [{"type": "ENV", "args": ["ALPHA", "1"]}]})
        assert st == 202, b
        cls.build = b["buildID"]
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            st, s, _ = a("GET", "/templates/%s/builds/%s/status" % (cls.tpl, cls.build))
            if s.get("status") in ("ready", "error"):
                break
            time.sleep(0.2)
        assert s["status"] == "ready", s
        st, out, _ = a("POST", "/templates/tags", {"target": "alpha-tpl:" + cls.build,
                                                    "tags": ["alpha-stable"]})
        assert st == 201, out
        for _ in range(100):
            st, ds, _ = a("GET", "/events/webhook-deliveries?webhookID=" + cls.webhook["id"])
            if ds:
                break
            time.sleep(0.1)
        assert ds, "no delivery"
        cls.delivery = ds[0]["id"]
        # what B's answers must never contain
        cls.secrets = [cls.team["alpha"], "tenant-alpha", cls.key_id["alpha"], cls.key["alpha"],
                       cls.sb["envdAccessToken"], cls.volume["volumeID"], cls.volume["token"],
                       "alpha-vol", "alpha-hook", "alpha-tpl", "alpha-secret-meta",
                       cls.webhook["id"], cls.delivery, cls.build]

    @classmethod
    def as_alpha(cls, method, path, body=None, **kw):
        return cls.as_team("alpha", method, path, body, **kw)

    @classmethod
    def as_beta(cls, method, path, body=None, **kw):
        return cls.as_team("beta", method, path, body, **kw)

    @classmethod
    def as_team(cls, name, method, path, body=None, root="/api/v1", headers=None, **kw):
        h = dict(headers or {})
        h["X-API-Key"] = cls.key[name]
        return cls.cd.request(method, root + path, body, headers=h, **kw)

    def assertNoLeak(self, what, body, allowed=()):
        text = body if isinstance(body, (bytes, str)) else json.dumps(body)
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        for s in self.secrets:
            if s in allowed:
                continue
            self.assertNotIn(s, text, "%s leaks %r: %s" % (what, s, text[:500]))

    def assertNotFound(self, resp, what, allowed=()):
        st, body, _ = resp
        self.assertEqual(st, 404, (what, body))
        self.assertNoLeak(what, body, allowed)

    def assertAlphaUntouched(self):
        a = self.as_alpha
        st, sb, _ = a("GET", "/sandboxes/" + self.sb["sandboxID"])
        self.assertEqual((st, sb["state"]), (200, "running"), sb)
        self.assertEqual(sb["network"]["allowPublicTraffic"], False)
        self.assertEqual(sb["metadata"], {"owner": "alpha-secret-meta"})
        st, wh, _ = a("GET", "/events/webhooks/" + self.webhook["id"])
        self.assertEqual((st, wh["enabled"], wh["name"]), (200, True, "alpha-hook"))
        st, v, _ = a("GET", "/volumes/" + self.volume["volumeID"])
        self.assertEqual(st, 200)
        st, t, _ = a("GET", "/templates/" + self.tpl)
        self.assertEqual((st, t["buildID"]), (200, self.build), t)
        st, tags, _ = a("GET", "/templates/%s/tags" % self.tpl)
        self.assertIn("alpha-stable", json.dumps(tags))
        st, ds, _ = a("GET", "/events/webhook-deliveries?webhookID=" + self.webhook["id"])
        self.assertEqual(len(ds), 1, ds)  # no replay was made

    # ---- the SeaCloud control plane ----
    def test_sandbox_routes(self):
        sid = self.sb["sandboxID"]
        for root in ("/api/v1", "/api/sandbox/v1", "/api/v1/sandbox"):
            for method, path, body in (
                    ("GET", "/sandboxes/" + sid, None),
                    ("DELETE", "/sandboxes/" + sid, None),
                    ("POST", "/sandboxes/%s/connect" % sid, {"timeout": 0}),
                    ("POST", "/sandboxes/%s/pause" % sid, None),
                    ("POST", "/sandboxes/%s/timeout" % sid, {"timeout": 5}),
                    ("POST", "/sandboxes/%s/refreshes" % sid, {"duration": 600}),
                    ("POST", "/sandboxes/%s/heartbeat" % sid, {"status": "healthy"}),
                    ("PUT", "/sandboxes/%s/network" % sid, {"allowPublicTraffic": True}),
                    ("GET", "/sandboxes/%s/logs" % sid, None),
                    ("GET", "/sandboxes/%s/metrics" % sid, None)):
                self.assertNotFound(self.as_beta(method, path, body, root=root),
                                    (root, method, path), allowed=(sid,))
        # X-Project-ID naming A's team is not a team of B's key: ignored
        self.assertNotFound(self.as_beta("GET", "/sandboxes/" + sid,
                                         headers={"X-Project-ID": self.team["alpha"]}),
                            "X-Project-ID", allowed=(self.team["alpha"],))
        st, lst, _ = self.as_beta("GET", "/sandboxes")
        self.assertEqual([s["sandboxID"] for s in lst], [self.sb_b["sandboxID"]])
        st, lst, _ = self.as_beta("GET", "/sandboxes",
                                  headers={"X-Project-ID": self.team["alpha"]})
        self.assertEqual([s["sandboxID"] for s in lst], [self.sb_b["sandboxID"]])
        st, fleet, _ = self.as_beta("GET", "/sandboxes/metrics?sandbox_ids=" + sid)
        self.assertEqual(fleet["items"][0]["error"], "sandbox not found")
        self.assertNoLeak("fleet metrics", fleet, allowed=(sid,))
        st, fleet, _ = self.as_beta("GET", "/sandboxes/metrics")
        self.assertNotIn(sid, json.dumps(fleet))
        self.assertAlphaUntouched()

    def test_events_webhooks_and_deliveries(self):
        sid, wid = self.sb["sandboxID"], self.webhook["id"]
        st, evs, _ = self.as_beta("GET", "/events/sandboxes/" + sid)
        self.assertEqual((st, evs), (200, []))
        for q in ("", "?orderAsc=true&limit=100"):
            st, evs, _ = self.as_beta("GET", "/events/sandboxes" + q)
            self.assertEqual(st, 200)
            self.assertFalse([e for e in evs if e["sandboxId"] == sid])
            self.assertNoLeak("events", evs)
        for method, path, body in (
                ("GET", "/events/webhooks/" + wid, None),
                ("PATCH", "/events/webhooks/" + wid, {"url": "http://127.0.0.1:9/beta"}),
                ("DELETE", "/events/webhooks/" + wid, None),
                ("GET", "/events/webhooks/%s/deliveries" % wid, None),
                ("POST", "/events/webhook-deliveries/%s/replay" % self.delivery, None)):
            self.assertNotFound(self.as_beta(method, path, body), (method, path),
                                allowed=(wid, self.delivery))
        for q in ("", "?webhookID=" + wid, "?eventID=x", "?status=failed", "?limit=100"):
            st, ds, _ = self.as_beta("GET", "/events/webhook-deliveries" + q)
            self.assertEqual((st, ds), (200, []), q)
        st, whs, _ = self.as_beta("GET", "/events/webhooks")
        self.assertEqual((st, whs), (200, []))
        self.assertAlphaUntouched()

    def test_webhooks_hear_only_their_team(self):
        st, wb, _ = self.as_beta("POST", "/events/webhooks", {
            "name": "beta-hook", "url": "http://127.0.0.1:9/beta-hook",
            "events": ["sandbox.lifecycle.created", "sandbox.lifecycle.killed"],
            "signatureSecret": "beta-secret-123", "retryPolicy": {"maxAttempts": 1}})
        self.assertEqual(st, 201, wb)
        try:
            st, sa, _ = self.as_alpha("POST", "/sandboxes", {})
            self.assertEqual(st, 201, sa)
            self.as_alpha("DELETE", "/sandboxes/" + sa["sandboxID"])
            st, evs, _ = self.as_alpha("GET", "/events/sandboxes/" + sa["sandboxID"])
            self.assertEqual(len(evs), 2)  # A's events exist …
            ids = {e["id"] for e in evs}
            st, ds, _ = self.as_beta("GET", "/events/webhooks/%s/deliveries" % wb["id"])
            self.assertEqual((st, ds), (200, []))  # … and B's webhook got none of them
            st, ds, _ = self.as_beta("GET", "/events/webhook-deliveries?limit=100")
            self.assertFalse([d for d in ds if d["eventId"] in ids])
        finally:
            self.as_beta("DELETE", "/events/webhooks/" + wb["id"])

    def test_volumes(self):
        vid = self.volume["volumeID"]
        for method, path in (("GET", "/volumes/" + vid), ("DELETE", "/volumes/" + vid)):
            self.assertNotFound(self.as_beta(method, path), (method, path), allowed=(vid,))
        st, vols, _ = self.as_beta("GET", "/volumes")
        self.assertEqual((st, vols), (200, []))
        # names resolve in the caller's team only: A's volume cannot be mounted by name
        st, body, _ = self.as_beta("POST", "/sandboxes", {
            "volumeMounts": [{"name": "alpha-vol", "path": "/steal"}]})
        self.assertEqual((st, body["message"]), (404, "volume 'alpha-vol' not found"), body)
        # B may name its own volume like A's: a different volume, empty
        st, mine, _ = self.as_beta("POST", "/volumes", {"name": "alpha-vol"})
        self.assertEqual(st, 201, mine)
        self.assertNotEqual(mine["volumeID"], vid)
        self.as_beta("DELETE", "/volumes/" + mine["volumeID"])
        self.assertAlphaUntouched()

    def test_templates_builds_tags(self):
        tid, bid = self.tpl, self.build
        allowed = (tid, bid, self.alias, "alpha-tpl", "alpha-stable")
        for method, path, body in (
                ("GET", "/templates/" + tid, None),
                ("PATCH", "/templates/" + tid, {"public": True}),
                ("DELETE", "/templates/" + tid, None),
                ("GET", "/templates/%s/tags" % tid, None),
                ("GET", "/templates/%s/files/%s" % (tid, "0" * 64), None),
                ("POST", "/templates/%s/builds" % tid, {"fromTemplate": "base"}),
                ("GET", "/templates/%s/builds" % tid, None),
                ("POST", "/templates/%s/builds/%s" % (tid, bid), {}),
                ("GET", "/templates/%s/builds/%s" % (tid, bid), None),
                ("GET", "/templates/%s/builds/%s/status" % (tid, bid), None),
                ("GET", "/templates/%s/builds/%s/logs" % (tid, bid), None),
                ("POST", "/templates/%s/rollback" % tid, {"buildID": bid}),
                ("GET", "/templates/aliases/" + self.alias, None),
                ("GET", "/templates/resolve/" + tid, None),
                ("GET", "/templates/resolve/" + self.alias, None),
                ("GET", "/templates/resolve/alpha-tpl:alpha-stable", None),
                ("POST", "/templates/tags", {"target": "%s:%s" % (tid, bid), "tags": ["stolen"]}),
                ("DELETE", "/templates/tags", {"name": tid, "tags": ["alpha-stable"]})):
            self.assertNotFound(self.as_beta(method, path, body), (method, path), allowed)
        for ref in (tid, self.alias, "alpha-tpl", "alpha-tpl:alpha-stable"):
            st, body, _ = self.as_beta("POST", "/sandboxes", {"templateID": ref})
            self.assertEqual(st, 404, body)
            self.assertRegex(body["message"], r"^template '[^']+' not found$")
            st, body, _ = self.as_beta("POST", "/sandboxes", {"template": ref}, root="/v1")
            self.assertEqual(st, 404, body)
        st, lst, _ = self.as_beta("GET", "/templates")
        self.assertNotIn(tid, json.dumps(lst))
        st, lst, _ = self.as_beta("GET", "/templates?teamID=" + self.team["alpha"])
        self.assertEqual(st, 403, lst)  # not a team of the key (build-plane.md §5)
        self.assertAlphaUntouched()

    def test_team_routes(self):
        ta = self.team["alpha"]
        for path in ("/teams/%s/metrics" % ta, "/teams/%s/metrics/max?metric=concurrent_sandboxes"
                     % ta):
            self.assertNotFound(self.as_beta("GET", path), path, allowed=(ta,))
        st, teams, _ = self.as_beta("GET", "/teams")
        self.assertEqual([t["teamID"] for t in teams], [self.team["beta"]])
        self.assertEqual(teams[0]["apiKey"], "****" + self.key["beta"][-4:])
        for path in ("/usage/limits", "/usage/limits?resource=templates",
                     "/observability/summary"):
            st, body, _ = self.as_beta("GET", path)
            self.assertEqual(st, 200, body)
            self.assertNoLeak(path, body)
        st, body, _ = self.as_beta("GET", "/usage/limits")
        self.assertEqual(body["project"]["usage"]["concurrentSandboxes"], 1)  # its own only
        # admin routes are for admin keys
        for method, path in (("GET", "/admin/teams"), ("GET", "/admin/keys"),
                             ("GET", "/admin/keys/" + self.key_id["alpha"]),
                             ("DELETE", "/admin/keys/" + self.key_id["alpha"]),
                             ("GET", "/admin/teams/%s/limits" % ta),
                             ("PUT", "/admin/teams/%s/limits" % self.team["beta"],),
                             ("GET", "/admin/pool/status"), ("POST", "/admin/rolling/start")):
            st, body, _ = self.as_beta(method, path, {})
            self.assertEqual(st, 403, (method, path, body))
            self.assertNoLeak(path, body, allowed=(ta, self.key_id["alpha"]))
        st, _, _ = self.as_beta("POST", "/shutdown", root="")
        self.assertEqual(st, 403)
        st, teams, _ = self.as_alpha("GET", "/teams")
        self.assertEqual(st, 200)  # A's key still works

    def test_keys_are_not_stored_and_metrics_name_no_tenant(self):
        """API keys are kept as SHA-256 hashes: the database files hold no key; /metrics (any
        valid key may read it, control-plane.md §15) aggregates the node and names no team,
        key or sandbox."""
        data = b""
        for suffix in ("", "-wal"):
            path = os.path.join(self.cd.data_dir, "cove.db" + suffix)
            if os.path.exists(path):
                with open(path, "rb") as f:
                    data += f.read()
        self.assertTrue(data)
        for name in ("alpha", "beta"):
            self.assertNotIn(self.key[name].encode(), data)
        st, text, _ = self.as_beta("GET", "/metrics", root="")
        self.assertEqual(st, 200)
        for s in (self.sb["sandboxID"], self.sb_b["sandboxID"], self.team["alpha"],
                  self.team["beta"], self.key_id["alpha"], self.tpl):
            self.assertNotIn(s.encode(), text)

    # ---- the E2B face (origin root) and /v1 ----
    def test_e2b_face(self):
        sid = self.sb["sandboxID"]
        for method, path, body in (
                ("GET", "/sandboxes/" + sid, None),
                ("DELETE", "/sandboxes/" + sid, None),
                ("POST", "/sandboxes/%s/timeout" % sid, {"timeout": 5}),
                ("POST", "/sandboxes/%s/refreshes" % sid, {"duration": 60}),
                ("POST", "/sandboxes/%s/pause" % sid, None),
                ("POST", "/sandboxes/%s/resume" % sid, {}),
                ("POST", "/sandboxes/%s/connect" % sid, {"timeout": 10}),
                ("POST", "/v2/sandboxes/%s/connect" % sid, {"timeout": 10}),
                ("PUT", "/sandboxes/%s/network" % sid, {"allowOut": []}),
                ("GET", "/sandboxes/%s/logs" % sid, None),
                ("GET", "/v2/sandboxes/%s/logs" % sid, None),
                ("GET", "/sandboxes/%s/metrics" % sid, None),
                ("GET", "/templates/" + self.tpl, None),
                ("DELETE", "/templates/" + self.tpl, None),
                ("GET", "/templates/%s/tags" % self.tpl, None),
                ("GET", "/templates/aliases/" + self.alias, None)):
            st, b, _ = self.as_beta(method, path, body, root="")
            self.assertIn(st, (404,), (method, path, b))
            self.assertNoLeak(("e2b", method, path), b,
                              allowed=(sid, self.tpl, self.alias, "alpha-tpl"))
        for path in ("/sandboxes", "/v2/sandboxes", "/v2/sandboxes?state=paused,running",
                     "/sandboxes/metrics?sandbox_ids=" + sid, "/templates", "/v2/templates"):
            st, b, _ = self.as_beta("GET", path, root="")
            self.assertEqual(st, 200, (path, b))
            self.assertNotIn(sid if "metrics" not in path else self.team["alpha"], json.dumps(b))
            self.assertNoLeak(path, b, allowed=(sid,))
        self.assertAlphaUntouched()

    def test_v1_face(self):
        sid = self.sb["sandboxID"]
        for method, path, body in (
                ("GET", "/sandboxes/" + sid, None),
                ("DELETE", "/sandboxes/" + sid, None),
                ("POST", "/sandboxes/%s/keepalive" % sid, {}),
                ("POST", "/sandboxes/%s/wake" % sid, None),
                ("POST", "/sandboxes/%s/exec" % sid, {"command": "cat /data/x"}),
                ("PUT", "/sandboxes/%s/files?path=/tmp/x" % sid, b"x"),
                ("GET", "/sandboxes/%s/files?path=/etc/hostname" % sid, None),
                ("DELETE", "/sandboxes/%s/files?path=/tmp" % sid, None)):
            st, b, _ = self.as_beta(method, path, body, root="/v1")
            # v1-api.md §1: another organisation's sandbox is 403, and says no more
            self.assertEqual(st, 403, (method, path, b))
            self.assertNoLeak(("v1", method, path), b, allowed=(sid,))
        st, lst, _ = self.as_beta("GET", "/sandboxes?status=creating,running,suspended,destroyed",
                                  root="/v1")
        self.assertNotIn(sid, json.dumps(lst))
        self.assertAlphaUntouched()

    # ---- the runtime API: a sandbox's own token, nothing else ----
    def test_runtime_api_tokens(self):
        sid, mine = self.sb["sandboxID"], self.sb_b
        other_tok = mine["envdAccessToken"]
        cases = [
            ({"X-Access-Token": other_tok}, "invalid access token"),
            ({"X-API-Key": self.key["beta"]}, "missing access token"),
            ({"X-API-Key": self.key["alpha"]}, "missing access token"),  # not even its team's key
            ({"Authorization": "Bearer " + self.key["alpha"]}, "missing access token"),
        ]
        for headers, msg in cases:
            for method, path, body in (("POST", "/envd/%s/run" % sid, {"cmd": "id"}),
                                       ("GET", "/envd/%s/files?path=/etc/hostname" % sid, None),
                                       ("GET", "/envd/%s/envs" % sid, None),
                                       ("POST", "/envd/%s/process.Process/List" % sid, {})):
                st, b, _ = self.cd.request(method, path, body, headers=headers, auth=False)
                self.assertEqual(st, 401, (headers, path, b))
                self.assertIn(msg, b["message"])
                self.assertNoLeak(path, b, allowed=(sid,))
        # a signed URL made with another sandbox's token (runtime.md §2.3); the same made
        # with the sandbox's own token is the control
        def signed(token):
            sig = "v1_" + base64.b64encode(hashlib.sha256(
                ("/etc/hostname:read:root:%s" % token).encode()).digest()).decode().rstrip("=")
            return self.cd.request("GET", "/envd/%s/files?path=/etc/hostname&username=root"
                                   "&signature=%s" % (sid, urllib.parse.quote(sig, safe="")),
                                   auth=False)
        st, b, _ = signed(other_tok)
        self.assertEqual(st, 401, b)
        self.assertEqual(signed(self.sb["envdAccessToken"])[0], 200)
        # the proxy of a sandbox with allowPublicTraffic false wants its own token
        for h in ({"X-Access-Token": other_tok}, {"X-Traffic-Access-Token": other_tok},
                  {"X-API-Key": self.key["alpha"]}):
            st, b, _ = self.cd.request("GET", "/envd/%s/proxy/8080/" % sid, headers=h, auth=False)
            self.assertEqual(st, 401, (h, b))
        # and the sandbox's own token works, for whoever holds it (it is the credential)
        st, b, _ = self.cd.request("POST", "/envd/%s/run" % sid, {"cmd": "true"}, auth=False,
                                   headers={"X-Access-Token": self.sb["envdAccessToken"]})
        self.assertEqual(st, 200, b)


if __name__ == "__main__":
    unittest.main()
