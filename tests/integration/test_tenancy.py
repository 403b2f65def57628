"""Tenancy, usage limits and coved's own logging (control-plane.md §11, §13.2, README §2, §5.4).

Teams and keys through the admin routes; admin vs user roles; a revoked key refused on the very
next request; two teams that see nothing of each other on every route; per-team and per-key
limits enforced with 429 and README §5.4 details, in the manager (parallel creates cannot
overshoot), on every face that exists; the secrets of a run never in coved's log.
"""
import base64
import hashlib
import json
import os
import re
import threading
import unittest
import urllib.parse

from coveharness import Coved


def assert_error(tc, resp, status, fragment=None):
    st, body, hdrs = resp
    tc.assertEqual(st, status, body)
    tc.assertIsInstance(body, dict, body)
    tc.assertEqual(body["code"], status)
    tc.assertEqual(body["request_id"], body["requestID"])
    tc.assertEqual(body["error"]["message"], body["message"])
    if fragment:
        tc.assertIn(fragment.lower(), body["message"].lower())
    return body


class Tenancy(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cd = Coved().start()
        cd = cls.cd
        st, body, _ = cd.api("POST", "/admin/teams", {"name": "alpha"})
        assert st == 201, body
        cls.team_a = body["data"]["teamID"]
        st, body, _ = cd.api("POST", "/admin/teams", {"name": "beta"})
        assert st == 201, body
        cls.team_b = body["data"]["teamID"]
        cls.key_a, cls.key_a_id = cls.new_key(cls.team_a)
        cls.key_b, cls.key_b_id = cls.new_key(cls.team_b)

    @classmethod
    def tearDownClass(cls):
        cls.cd.__exit__(None, None, None)

    @classmethod
    def new_key(cls, team, role="user", **extra):
        body = {"teamID": team, "role": role, "name": "k"}
        body.update(extra)
        st, out, _ = cls.cd.api("POST", "/admin/keys", body)
        assert st == 201, out
        return out["data"]["key"], out["data"]["keyID"]

    def as_(self, key, method, path, body=None, **kw):
        h = dict(kw.pop("headers", {}))
        h["X-API-Key"] = key
        return self.cd.api(method, path, body, headers=h, **kw)

    # ---- teams and keys ----
    def test_admin_routes_wrap_and_mask(self):
        st, body, _ = self.cd.api("GET", "/admin/teams")
        self.assertEqual(st, 200)
        self.assertEqual(body["code"], 0)
        self.assertEqual(body["message"], "success")
        self.assertEqual(body["request_id"], body["requestID"])
        names = {t["name"] for t in body["data"]}
        self.assertTrue({"default", "alpha", "beta"} <= names)
        st, body, _ = self.cd.api("GET", "/admin/keys?teamID=" + self.team_a)
        self.assertEqual(st, 200)
        self.assertTrue(body["data"])
        for k in body["data"]:
            self.assertRegex(k["apiKey"], r"^\*\*\*\*.{4}$")
            self.assertNotIn("key", k)
            self.assertNotIn(self.key_a, json.dumps(k))
        # at the origin root and under every API root
        for root in ("", "/api/sandbox/v1", "/api/v1/sandbox"):
            st, _, _ = self.cd.request("GET", root + "/admin/teams")
            self.assertEqual(st, 200, root)

    def test_team_validation(self):
        assert_error(self, self.cd.api("POST", "/admin/teams", {"name": "alpha"}), 409,
                     "already exists")
        assert_error(self, self.cd.api("POST", "/admin/teams", {}), 400, "name")
        assert_error(self, self.cd.api("POST", "/admin/teams", {"name": ""}), 400, "name")
        assert_error(self, self.cd.api("POST", "/admin/teams", {"name": "a/b"}), 400, "name")
        assert_error(self, self.cd.api("POST", "/admin/keys", {"teamID": "team_nope"}), 404,
                     "team_nope")
        assert_error(self, self.cd.api("POST", "/admin/keys", {"role": "root"}), 400, "role")
        assert_error(self, self.cd.api("GET", "/admin/teams/team_nope"), 404)
        assert_error(self, self.cd.api("DELETE", "/admin/keys/key_nope"), 404)
        assert_error(self, self.cd.api("PUT", "/admin/teams/%s/limits" % self.team_a,
                                       {"nope": 1}), 400, "unknown limit")
        assert_error(self, self.cd.api("PUT", "/admin/teams/%s/limits" % self.team_a,
                                       {"cpuCount": -1}), 400, "cpuCount")
        assert_error(self, self.cd.api("PUT", "/admin/teams/%s/limits" % self.team_a,
                                       {"maxLifetimeSeconds": 90000}), 400, "86400")

    def test_user_keys_get_403_on_admin_routes(self):
        for method, path in (("GET", "/admin/teams"), ("POST", "/admin/teams"),
                             ("GET", "/admin/keys"), ("POST", "/admin/keys"),
                             ("DELETE", "/admin/keys/" + self.key_a_id),
                             ("PUT", "/admin/teams/%s/limits" % self.team_a)):
            assert_error(self, self.as_(self.key_a, method, path, {"name": "x"}), 403, "admin")
        st, _, _ = self.cd.request("POST", "/shutdown", headers={"X-API-Key": self.key_a})
        self.assertEqual(st, 403)

    def test_revoked_key_fails_on_the_next_request(self):
        key, key_id = self.new_key(self.team_a)
        for _ in range(3):
            st, _, _ = self.as_(key, "GET", "/sandboxes")
            self.assertEqual(st, 200)
        st, body, _ = self.cd.api("DELETE", "/admin/keys/" + key_id)
        self.assertEqual(st, 200, body)
        self.assertTrue(body["data"]["revoked"])
        self.assertIn("revokedAt", body["data"])
        assert_error(self, self.as_(key, "GET", "/sandboxes"), 401)
        st, _, _ = self.cd.request("GET", "/api/v1/sandboxes",
                                   headers={"Authorization": "Bearer " + key})
        self.assertEqual(st, 401)
        # revoking twice is fine and stays revoked
        st, _, _ = self.cd.api("DELETE", "/admin/keys/" + key_id)
        self.assertEqual(st, 200)

    def test_revocation_beats_the_key_cache_under_load(self):
        # coved caches verified keys (http/auth.c): a revoke must still refuse the very next
        # request while other threads keep the key (and others) hot in the cache.
        keys = [self.new_key(self.team_a) for _ in range(3)]
        stop = threading.Event()
        errors = []

        def hammer(key):
            while not stop.is_set():
                st, _, _ = self.as_(key, "GET", "/sandboxes")
                if st not in (200, 401):
                    errors.append(st)

        threads = [threading.Thread(target=hammer, args=(k,)) for k, _ in keys]
        for t in threads:
            t.start()
        try:
            for key, key_id in keys:
                st, _, _ = self.as_(key, "GET", "/sandboxes")
                self.assertEqual(st, 200)
                st, body, _ = self.cd.api("DELETE", "/admin/keys/" + key_id)
                self.assertEqual(st, 200, body)
                for _ in range(5):
                    assert_error(self, self.as_(key, "GET", "/sandboxes"), 401)
        finally:
            stop.set()
            for t in threads:
                t.join()
        self.assertEqual(errors, [])
        # the keys that were not revoked still work, a key made after the cache filled too
        st, _, _ = self.as_(self.key_a, "GET", "/sandboxes")
        self.assertEqual(st, 200)
        key, _ = self.new_key(self.team_b)
        st, _, _ = self.as_(key, "GET", "/sandboxes")
        self.assertEqual(st, 200)

    def test_many_keys_each_keep_their_own_team(self):
        # more keys than a few cache slots: each answer is its own key's team, every time
        made = [(team, self.new_key(team)[0]) for team in (self.team_a, self.team_b) * 20]
        for _ in range(2):
            for team, key in made:
                st, body, _ = self.as_(key, "GET", "/teams")
                self.assertEqual(st, 200, body)
                self.assertEqual(body[0]["teamID"], team)
                self.assertEqual(body[0]["apiKey"], "****" + key[-4:])

    def test_teams_route_and_project_id(self):
        key, key_id = self.new_key(self.team_a, teams=[self.team_b])
        st, body, _ = self.as_(key, "GET", "/teams")
        self.assertEqual(st, 200)
        self.assertEqual([t["teamID"] for t in body], [self.team_a, self.team_b])
        self.assertEqual([t["isDefault"] for t in body], [True, False])
        self.assertEqual(body[0]["name"], "alpha")
        self.assertEqual(body[0]["apiKey"], "****" + key[-4:])
        # X-Project-ID of a team of the key: acts there; any other value is ignored
        st, sb, _ = self.as_(key, "POST", "/sandboxes", {"waitReady": True},
                             headers={"X-Project-ID": self.team_b})
        self.assertEqual(st, 201, sb)
        try:
            st, _, _ = self.as_(self.key_b, "GET", "/sandboxes/" + sb["sandboxID"])
            self.assertEqual(st, 200)  # it is team beta's
            st, _, _ = self.as_(self.key_a, "GET", "/sandboxes/" + sb["sandboxID"])
            self.assertEqual(st, 404)
            st, body, _ = self.as_(self.key_a, "GET", "/sandboxes",
                                   headers={"X-Project-ID": self.team_b})
            self.assertNotIn(sb["sandboxID"], [s["sandboxID"] for s in body])  # not its team
        finally:
            self.as_(self.key_b, "DELETE", "/sandboxes/" + sb["sandboxID"])
        st, body, _ = self.cd.api("POST", "/admin/keys/%s/teams" % key_id, {"teamID": "team_nope"})
        self.assertEqual(st, 404)

    def test_new_routes_need_a_key_and_answer_405(self):
        routes = [("GET", "/sandboxes/metrics"), ("GET", "/sandboxes/x/metrics"),
                  ("GET", "/teams/team_default/metrics"), ("GET", "/teams/team_default/metrics/max"),
                  ("GET", "/observability/summary"), ("GET", "/observability/sandboxes"),
                  ("GET", "/usage/limits"), ("GET", "/events"), ("GET", "/events/sandboxes"),
                  ("GET", "/events/sandboxes/x"), ("POST", "/events/webhooks"),
                  ("GET", "/events/webhooks"), ("GET", "/events/webhooks/x"),
                  ("PATCH", "/events/webhooks/x"), ("DELETE", "/events/webhooks/x"),
                  ("GET", "/events/webhooks/x/deliveries"), ("GET", "/events/webhook-deliveries"),
                  ("POST", "/events/webhook-deliveries/x/replay"), ("GET", "/admin/teams"),
                  ("GET", "/admin/keys"), ("GET", "/teams")]
        for method, path in routes:
            for h in ({}, {"X-API-Key": "nope"}, {"Authorization": "Bearer nope"}):
                st, body, _ = self.cd.request(method, "/api/v1" + path, {} if method != "GET"
                                              else None, headers=h, auth=bool(h))
                self.assertEqual(st, 401, (method, path, h, body))
                self.assertEqual(body["error"]["code"], "UNAUTHENTICATED")
        for method, path, allow in (("PUT", "/events/webhooks", "GET, POST"),
                                    ("POST", "/usage/limits", "GET"),
                                    ("DELETE", "/sandboxes/metrics", "GET"),
                                    ("PUT", "/events/webhook-deliveries/x/replay", "POST")):
            st, body, h = self.cd.api(method, path)
            self.assertEqual(st, 405, (method, path, body))
            self.assertEqual(sorted(h["allow"].split(", ")), sorted(allow.split(", ")))

    # ---- two teams: nothing of one is visible to the other ----
    def test_cross_team_visibility_on_every_route(self):
        cd = self.cd
        st, sb, _ = self.as_(self.key_a, "POST", "/sandboxes", {"waitReady": True})
        self.assertEqual(st, 201, sb)
        sid = sb["sandboxID"]
        st, wh, _ = self.as_(self.key_a, "POST", "/events/webhooks", {
            "name": "a", "url": "https://example.com/hook", "events": ["sandbox.lifecycle.killed"],
            "signatureSecret": "secret-abc-123"})
        self.assertEqual(st, 201, wh)
        st, dl, _ = self.as_(self.key_a, "GET", "/events/webhook-deliveries")
        self.assertEqual(st, 200)
        try:
            b = self.key_b
            for method, path, body in (
                    ("GET", "/sandboxes/" + sid, None),
                    ("DELETE", "/sandboxes/" + sid, None),
                    ("POST", "/sandboxes/%s/connect" % sid, {"timeout": 0}),
                    ("POST", "/sandboxes/%s/pause" % sid, None),
                    ("POST", "/sandboxes/%s/timeout" % sid, {"timeout": 60}),
                    ("POST", "/sandboxes/%s/refreshes" % sid, None),
                    ("POST", "/sandboxes/%s/heartbeat" % sid, {"status": "healthy"}),
                    ("GET", "/sandboxes/%s/logs" % sid, None),
                    ("GET", "/sandboxes/%s/metrics" % sid, None),
                    ("GET", "/events/webhooks/" + wh["id"], None),
                    ("PATCH", "/events/webhooks/" + wh["id"], {"enabled": False}),
                    ("DELETE", "/events/webhooks/" + wh["id"], None),
                    ("GET", "/events/webhooks/%s/deliveries" % wh["id"], None),
                    ("GET", "/teams/%s/metrics" % self.team_a, None),
                    ("GET", "/teams/%s/metrics/max?metric=concurrent_sandboxes" % self.team_a,
                     None)):
                resp = self.as_(b, method, path, body)
                # the same answer as for an ID that does not exist
                assert_error(self, resp, 404, "not found")
            # lists hold only the caller's own
            st, body, _ = self.as_(b, "GET", "/sandboxes")
            self.assertNotIn(sid, [s["sandboxID"] for s in body])
            st, body, _ = self.as_(b, "GET", "/events/sandboxes")
            self.assertFalse([e for e in body if e["sandboxId"] == sid])
            st, body, _ = self.as_(b, "GET", "/events/sandboxes/" + sid)
            self.assertEqual((st, body), (200, []))
            st, body, _ = self.as_(b, "GET", "/events/webhooks")
            self.assertEqual((st, body), (200, []))
            st, body, _ = self.as_(b, "GET", "/sandboxes/metrics?sandbox_ids=" + sid)
            self.assertEqual(body["items"][0]["error"], "sandbox not found")
            self.assertEqual(list(body["items"][0]), ["sandboxID", "error", "collectedAt"])
            st, body, _ = self.as_(b, "GET", "/teams")
            self.assertEqual([t["teamID"] for t in body], [self.team_b])
            st, body, _ = self.as_(b, "GET", "/usage/limits")
            self.assertEqual(body["project"]["id"], self.team_b)
            self.assertEqual(body["project"]["usage"]["concurrentSandboxes"], 0)
            # the runtime API is the sandbox's token's, not a team's
            st, _, _ = cd.request("GET", "/envd/%s/health" % sid, auth=False)
            self.assertEqual(st, 204)
            # and the owner still has all of it
            st, _, _ = self.as_(self.key_a, "GET", "/events/webhooks/" + wh["id"])
            self.assertEqual(st, 200)
            st, _, _ = self.as_(self.key_a, "GET", "/sandboxes/" + sid)
            self.assertEqual(st, 200)
        finally:
            self.as_(self.key_a, "DELETE", "/sandboxes/" + sid)
            self.as_(self.key_a, "DELETE", "/events/webhooks/" + wh["id"])


class Quotas(unittest.TestCase):
    """The 11th sandbox of a team limited to 10 is refused, on every face; others are not."""

    @classmethod
    def setUpClass(cls):
        cls.cd = Coved(extra_args=["--limit-concurrent-sandboxes", "0"]).start()
        cd = cls.cd
        cls.teams, cls.keys = {}, {}
        for name in ("q1", "q2"):
            st, body, _ = cd.api("POST", "/admin/teams", {"name": name})
            cls.teams[name] = body["data"]["teamID"]
            st, body, _ = cd.api("POST", "/admin/keys", {"teamID": cls.teams[name]})
            cls.keys[name] = body["data"]["key"]

    @classmethod
    def tearDownClass(cls):
        cls.cd.__exit__(None, None, None)

    def as_(self, name, method, path, body=None, root="/api/v1"):
        return self.cd.request(method, root + path, body, headers={"X-API-Key": self.keys[name]})

    def set_limits(self, name, limits, key=None):
        path = "/admin/keys/%s/limits" % key if key else "/admin/teams/%s/limits" % self.teams[name]
        st, body, _ = self.cd.api("PUT", path, limits)
        self.assertEqual(st, 200, body)
        return body["data"]

    def delete_all(self, name):
        st, body, _ = self.as_(name, "GET", "/sandboxes?limit=100")
        for s in body:
            self.as_(name, "DELETE", "/sandboxes/" + s["sandboxID"])

    def test_eleventh_sandbox_gets_429_with_details(self):
        self.set_limits("q1", {"concurrentSandboxes": 10})
        try:
            for _ in range(10):
                st, body, _ = self.as_("q1", "POST", "/sandboxes", {})
                self.assertEqual(st, 201, body)
            for root in ("/api/v1", "/api/sandbox/v1", "/api/v1/sandbox"):
                st, body, hdrs = self.as_("q1", "POST", "/sandboxes", {"waitReady": True}, root)
                self.assertEqual(st, 429, body)
                self.assertEqual(body["code"], 429)
                self.assertEqual(body["error"]["code"], "RESOURCE_EXHAUSTED")
                self.assertEqual(body["message"],
                                 "concurrent sandbox limit reached for project '%s' (10 of 10)"
                                 % self.teams["q1"])
                self.assertEqual(body["error"]["details"], body["message"])
                self.assertEqual(body["details"], {
                    "scope": "project", "resource": "sandboxes", "metric": "concurrentSandboxes",
                    "used": 10, "limit": 10, "remaining": 0,
                    "usageEndpoint": root + "/usage/limits"})
            # another team is unaffected
            st, body, _ = self.as_("q2", "POST", "/sandboxes", {})
            self.assertEqual(st, 201, body)
            # usage says so
            st, body, _ = self.as_("q1", "GET", "/usage/limits")
            self.assertEqual(body["project"]["limits"]["concurrentSandboxes"],
                             {"limit": 10, "used": 10, "remaining": 0, "enforced": True})
            self.assertNotIn("unlimited", body)
            st, body, _ = self.as_("q1", "GET", "/observability/summary")
            self.assertEqual(body["status"], "degraded")
            self.assertEqual(body["availability"]["sandboxes"]["status"], "unavailable")
            ex = [c for c in body["checks"] if c["metric"] == "concurrentSandboxes"]
            self.assertEqual(ex[0]["status"], "exhausted")
            self.assertEqual(ex[0]["usageEndpoint"], "/api/v1/usage/limits")
            self.assertIn("limit_reached", [a["status"] for a in body["actions"]])
            # a paused sandbox does not count: pause one, create one more
            st, body, _ = self.as_("q1", "GET", "/sandboxes?limit=1")
            st, _, _ = self.as_("q1", "POST", "/sandboxes/%s/pause" % body[0]["sandboxID"])
            self.assertEqual(st, 204)
            st, body, _ = self.as_("q1", "POST", "/sandboxes", {})
            self.assertEqual(st, 201, body)
            # every face creates through the same manager call: the origin root (E2B's
            # place) and /v1, where they exist
            st, body, _ = self.as_("q1", "POST", "/sandboxes", {}, root="")
            self.assertEqual(st, 429, body)
            st, body, _ = self.cd.request("POST", "/v1/sandboxes", {},
                                          headers={"X-API-Key": self.keys["q1"]})
            if not (st == 404 and "no route" in body.get("message", "")):
                self.assertEqual(st, 429, body)
        finally:
            self.set_limits("q1", {"concurrentSandboxes": None})
            self.delete_all("q1")
            self.delete_all("q2")

    def test_parallel_creates_cannot_overshoot(self):
        self.set_limits("q2", {"concurrentSandboxes": 4})
        results = []
        try:
            def one():
                st, _, _ = self.as_("q2", "POST", "/sandboxes", {})
                results.append(st)
            threads = [threading.Thread(target=one) for _ in range(10)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            self.assertEqual(sorted(results), [201] * 4 + [429] * 6)
        finally:
            self.set_limits("q2", {"concurrentSandboxes": None})
            self.delete_all("q2")

    def test_resource_limits_and_user_scope(self):
        data = self.set_limits("q1", {"cpuCount": 3})
        self.assertEqual(data["limits"]["cpuCount"], 3)
        self.assertIn("cpuCount", data["set"])
        try:
            st, body, _ = self.as_("q1", "POST", "/sandboxes", {})
            self.assertEqual(st, 201, body)
            st, body, _ = self.as_("q1", "POST", "/sandboxes", {})
            self.assertEqual(st, 429, body)
            self.assertEqual(body["details"]["metric"], "cpuCount")
            self.assertEqual(body["details"]["used"], 2)
            self.assertIn("this sandbox needs 2", body["message"])
        finally:
            self.set_limits("q1", {"cpuCount": None})
            self.delete_all("q1")
        # a key's own limit (scope user)
        st, body, _ = self.cd.api("POST", "/admin/keys", {"teamID": self.teams["q1"]})
        key, key_id = body["data"]["key"], body["data"]["keyID"]
        self.set_limits("q1", {"concurrentSandboxes": 1}, key=key_id)
        try:
            h = {"X-API-Key": key}
            st, _, _ = self.cd.api("POST", "/sandboxes", {}, headers=h)
            self.assertEqual(st, 201)
            st, body, _ = self.cd.api("POST", "/sandboxes", {}, headers=h)
            self.assertEqual(st, 429, body)
            self.assertEqual(body["details"]["scope"], "user")
            self.assertIn("for user '%s'" % key_id, body["message"])
            st, body, _ = self.as_("q1", "POST", "/sandboxes", {})  # the team's other key
            self.assertEqual(st, 201, body)
            st, body, _ = self.cd.api("GET", "/usage/limits", headers=h)
            self.assertEqual(body["user"]["id"], key_id)
            self.assertEqual(body["user"]["limits"]["concurrentSandboxes"]["used"], 1)
            self.assertEqual(body["project"]["usage"]["concurrentSandboxes"], 2)
        finally:
            self.delete_all("q1")

    def test_templates_limit_of_a_key(self):
        """Templates remember the key that made them: a key's own `templates` limit (scope
        user) counts and refuses them; the team's other keys go on."""
        st, body, _ = self.cd.api("POST", "/admin/keys", {"teamID": self.teams["q2"]})
        key, key_id = body["data"]["key"], body["data"]["keyID"]
        self.set_limits("q2", {"templates": 1}, key=key_id)
        h = {"X-API-Key": key}
        made = []
        try:
            st, t, _ = self.cd.api("POST", "/templates", {"name": "keyquota-a"}, headers=h)
            self.assertIn(st, (201, 202), t)
            made.append(t["templateID"])
            st, body, _ = self.cd.api("POST", "/templates", {"name": "keyquota-b"}, headers=h)
            self.assertEqual(st, 429, body)
            self.assertEqual((body["details"]["scope"], body["details"]["metric"],
                              body["details"]["used"], body["details"]["limit"]),
                             ("user", "templates", 1, 1))
            st, body, _ = self.cd.api("GET", "/usage/limits?resource=templates", headers=h)
            self.assertEqual(body["user"]["usage"]["templates"], 1)
            self.assertEqual(body["user"]["limits"]["templates"],
                             {"limit": 1, "used": 1, "remaining": 0, "enforced": True})
            st, t, _ = self.as_("q2", "POST", "/templates", {"name": "keyquota-c"})
            self.assertIn(st, (201, 202), t)  # the team's other key: no limit of its own
            made.append(t["templateID"])
        finally:
            for tid in made:
                self.as_("q2", "DELETE", "/templates/" + tid)

    def test_max_lifetime(self):
        self.set_limits("q2", {"maxLifetimeSeconds": 60})
        try:
            assert_error(self, self.as_("q2", "POST", "/sandboxes", {"timeout": 120}), 400,
                         "longer than the longest sandbox lifetime")
            st, sb, _ = self.as_("q2", "POST", "/sandboxes", {})
            self.assertEqual(st, 201, sb)
            import datetime

            def ts(s):
                return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()
            self.assertLessEqual(ts(sb["endAt"]) - ts(sb["startedAt"]), 60.5)
            sid = sb["sandboxID"]
            assert_error(self, self.as_("q2", "POST", "/sandboxes/%s/timeout" % sid,
                                        {"timeout": 61}), 400, "lifetime")
            st, _, _ = self.as_("q2", "POST", "/sandboxes/%s/timeout" % sid, {"timeout": 30})
            self.assertEqual(st, 204)
            st, _, _ = self.as_("q2", "POST", "/sandboxes/%s/refreshes" % sid)
            self.assertEqual(st, 204)  # clamped, not refused
            st, body, _ = self.as_("q2", "GET", "/usage/limits")
            self.assertEqual(body["runtime"], {"maxRuntimeSeconds": 60})
        finally:
            self.set_limits("q2", {"maxLifetimeSeconds": None})
            self.delete_all("q2")


class DefaultLimitsFromConfig(unittest.TestCase):
    def test_config_file_sets_every_teams_default(self):
        import tempfile
        with tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False) as f:
            f.write("# limits for every team\nlimit-concurrent-sandboxes = 1\n")
            path = f.name
        try:
            with Coved(extra_args=["--config", path]) as cd:
                st, _, _ = cd.api("POST", "/sandboxes", {})
                self.assertEqual(st, 201)
                st, body, _ = cd.api("POST", "/sandboxes", {})
                self.assertEqual(st, 429, body)
                st, body, _ = cd.api("GET", "/admin/teams/team_default/limits")
                self.assertEqual(body["data"]["limits"]["concurrentSandboxes"], 1)
                self.assertEqual(body["data"]["set"], [])  # the config's, not set per team
                # the admin route overrides it for one team
                cd.api("PUT", "/admin/teams/team_default/limits", {"concurrentSandboxes": 0})
                st, body, _ = cd.api("POST", "/sandboxes", {})
                self.assertEqual(st, 201, body)
        finally:
            os.unlink(path)


def sign(path, op, user, token):
    s = "%s:%s:%s:%s" % (path, op, user or "", token)
    return "v1_" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode().rstrip("=")


class LogsOfCoved(unittest.TestCase):
    def test_json_lines_with_request_id_and_no_secrets(self):
        with Coved(extra_args=["--log-format", "json", "--log-level", "debug"]) as cd:
            secrets = {cd.api_key}
            st, body, _ = cd.api("POST", "/admin/keys", {"name": "ci"})
            secrets.add(body["data"]["key"])
            wsecret = "whsec-" + os.urandom(8).hex()
            secrets.add(wsecret)
            st, wh, _ = cd.api("POST", "/events/webhooks", {
                "name": "w", "url": "http://127.0.0.1:9/x?token=" + wsecret,
                "events": ["sandbox.lifecycle.created"], "signatureSecret": wsecret})
            self.assertEqual(st, 201)
            wrong = "wrong-" + os.urandom(8).hex()
            secrets.add(wrong)
            cd.request("GET", "/api/v1/sandboxes", headers={"X-API-Key": wrong})
            cd.request("GET", "/api/v1/sandboxes", headers={"Authorization": "Bearer " + wrong})
            for _ in range(3):
                sb = cd.create()
                secrets.add(sb.token)
                sb.sh("echo hi")
                sb.rt("GET", "/files?path=/etc/hostname")
                sig = sign("/etc/hostname", "read", "user", sb.token)
                secrets.add(sig)
                q = urllib.parse.urlencode({"path": "/etc/hostname", "username": "user",
                                            "signature": sig})
                st, _, _ = sb.rt("GET", "/files?" + q, token=False)
                self.assertEqual(st, 200)
                st, _, _ = sb.rt("GET", "/files?" + q.replace("v1_", "v1_x"), token=False)
                self.assertEqual(st, 401)
                st, _, _ = sb.rt("GET", "/metrics", headers={"X-Access-Token": sb.token + "x"},
                                 token=False)
                cd.api("POST", "/sandboxes/%s/heartbeat" % sb.id, {"status": "healthy"},
                       headers={"X-Access-Token": sb.token}, auth=False)
                cd.api("GET", "/sandboxes/%s/logs" % sb.id)
                sb.delete()
            cd.request("GET", "/metrics")
            st, _, _ = cd.request("POST", "/api/v1/nope?key=" + wrong)
            self.assertEqual(st, 404)
            cd.stop()
            with open(cd.log_path, errors="replace") as f:
                log = f.read()
        for s in secrets:
            self.assertNotIn(s, log)
        lines = [ln for ln in log.splitlines() if ln.startswith("{")]
        self.assertGreater(len(lines), 40)
        with_rid = 0
        for ln in lines:
            obj = json.loads(ln)
            self.assertIn(obj["level"], ("error", "warning", "info", "debug"))
            self.assertIn("msg", obj)
            if "request_id" in obj:
                with_rid += 1
                self.assertRegex(obj["request_id"], r"^req_[0-9a-f]{24}$|^[A-Za-z0-9._:-]+$")
        self.assertGreater(with_rid, 30)
        # one access line per request, with the route and status
        self.assertTrue(re.search(r'"msg":"POST /api/v1/sandboxes -> 201', log))


if __name__ == "__main__":
    unittest.main()
