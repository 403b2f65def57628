"""Control plane over real HTTP against a real coved (control-plane.md §1-§8, README §1-§6)."""
import base64
import gzip
import json
import time
import unittest

from coveharness import Coved


def tok(n):
    return base64.urlsafe_b64encode(str(n).encode()).decode().rstrip("=")


class ControlPlane(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cd = Coved.for_class(cls)

    @classmethod
    def tearDownClass(cls):
        cls.cd.__exit__(None, None, None)

    def assertError(self, resp, status, fragment=None):
        st, body, hdrs = resp
        self.assertEqual(st, status, body)
        self.assertIsInstance(body, dict, body)
        self.assertEqual(body["code"], status)
        self.assertEqual(body["request_id"], body["requestID"])
        self.assertEqual(hdrs["x-request-id"], body["request_id"])
        self.assertEqual(body["error"]["message"], body["message"])
        self.assertTrue(body["error"]["details"].startswith(body["message"]))
        self.assertIsInstance(body["error"]["code"], str)
        if fragment:
            self.assertIn(fragment.lower(), body["message"].lower())
        return body

    # ---- health, auth, routing ----
    def test_health_needs_no_key(self):
        st, body, _ = self.cd.request("GET", "/health", auth=False)
        self.assertEqual((st, body), (200, {"status": "ok"}))

    def test_missing_and_wrong_key_are_401(self):
        b = self.assertError(self.cd.request("GET", "/api/v1/sandboxes", auth=False), 401)
        self.assertEqual(b["error"]["code"], "UNAUTHENTICATED")
        self.assertError(self.cd.request("GET", "/api/v1/sandboxes", headers={"X-API-Key": "nope"}), 401)

    def test_bearer_and_all_roots(self):
        for root in ("/api/v1", "/api/sandbox/v1", "/api/v1/sandbox"):
            st, body, hdrs = self.cd.request("GET", root + "/sandboxes/",
                                             headers={"Authorization": "Bearer " + self.cd.api_key})
            self.assertEqual(st, 200, (root, body))
            self.assertIsInstance(body, list)
            self.assertIn(hdrs["x-has-next"], ("true", "false"))

    def test_unknown_route_404_and_wrong_method_405(self):
        b = self.assertError(self.cd.api("GET", "/nothing-here"), 404)
        self.assertEqual(b["error"]["code"], "NOT_FOUND")
        st, body, hdrs = self.cd.api("PUT", "/sandboxes")
        self.assertEqual(st, 405)
        self.assertIn("GET", hdrs["allow"])
        self.assertIn("POST", hdrs["allow"])
        self.assertEqual(body["error"]["code"], "METHOD_NOT_ALLOWED")

    def test_request_id_is_echoed(self):
        _, _, hdrs = self.cd.api("GET", "/sandboxes", headers={"X-Request-ID": "abc-123.x:y",
                                                                "X-API-Key": self.cd.api_key})
        self.assertEqual(hdrs["x-request-id"], "abc-123.x:y")
        _, _, hdrs = self.cd.api("GET", "/sandboxes")
        self.assertRegex(hdrs["x-request-id"], r"^req_[0-9a-f]{24}$")

    def test_teams_masks_the_key(self):
        st, teams, _ = self.cd.api("GET", "/teams")
        self.assertEqual(st, 200, teams)
        self.assertEqual(teams, [{"teamID": "team_default", "name": teams[0]["name"],
                                  "apiKey": "****" + self.cd.api_key[-4:], "isDefault": True}])
        self.assertNotIn(self.cd.api_key, json.dumps(teams))

    def test_unknown_sandbox_404(self):
        self.assertError(self.cd.api("GET", "/sandboxes/x7k2m9q4w1e8r5t0y3u6"), 404, "not found")
        self.assertError(self.cd.api("DELETE", "/sandboxes/x7k2m9q4w1e8r5t0y3u6"), 404)
        self.assertError(self.cd.api("GET", "/sandboxes/sb%2F1"), 404)

    # ---- create validation ----
    def test_create_rejects_bad_input(self):
        api = self.cd.api
        self.assertError(api("POST", "/sandboxes", "{not json"), 400)
        self.assertError(api("POST", "/sandboxes", '{"a":1,"a":2}'), 400)
        self.assertError(api("POST", "/sandboxes", "[]"), 400)
        self.assertError(api("POST", "/sandboxes", {"timeout": "60"}), 400, "timeout")
        self.assertError(api("POST", "/sandboxes", {"timeout": 1.5}), 400, "timeout")
        self.assertError(api("POST", "/sandboxes", {"timeout": 86401}), 400, "timeout")
        self.assertError(api("POST", "/sandboxes", {"timeout": -1}), 400, "timeout")
        self.assertError(api("POST", "/sandboxes", {"waitReady": "yes"}), 400, "waitReady")
        self.assertError(api("POST", "/sandboxes", {"metadata": {"a": 1}}), 400, "metadata")
        self.assertError(api("POST", "/sandboxes", {"envVars": {"1BAD": "x"}}), 400, "envVars")
        self.assertError(api("POST", "/sandboxes", {"timeoutMs": 1000}), 400,
                         "timeoutMs is no longer supported in sandbox create requests; use timeout seconds")
        self.assertError(api("POST", "/sandboxes", {"mcp": None}), 400, "mcp is not supported")
        self.assertError(api("POST", "/sandboxes", {"secure": True}), 400, "secure is not supported")
        self.assertError(api("POST", "/sandboxes", {"network": {"allowOut": ["::1"]}}), 400, "::1")
        self.assertError(api("POST", "/sandboxes", {"network": {"allowOut": ["1.2.3.4\u0000/8"]}}),
                         400, "field 'network.allowOut[0]' must not contain NUL bytes")
        self.assertError(api("POST", "/sandboxes", {"templateID": "no-such-template"}), 404,
                         "template 'no-such-template' not found")
        self.assertError(api("POST", "/sandboxes", "[" * 40 + "]" * 40), 400)

    def test_oversized_body_413(self):
        big = '{"metadata": {"a": "' + "x" * (9 * 1024 * 1024) + '"}}'
        b = self.assertError(self.cd.api("POST", "/sandboxes", big), 413)
        self.assertEqual(b["error"]["code"], "PAYLOAD_TOO_LARGE")

    def test_oversized_head_431(self):
        b = self.assertError(self.cd.api("GET", "/sandboxes", headers={"X-API-Key": self.cd.api_key,
                                                                         "X-Big": "x" * (20 * 1024)}), 431)
        self.assertEqual(b["error"]["code"], "HEADERS_TOO_LARGE")
        many = {"X-H%d" % i: "v" for i in range(120)}
        many["X-API-Key"] = self.cd.api_key
        self.assertError(self.cd.api("GET", "/sandboxes", headers=many), 431)

    def test_gzip_body_and_bad_encoding(self):
        body = gzip.compress(json.dumps({"timeout": 1.5}).encode())
        # decoded, then validated: the gzip layer is transparent
        self.assertError(self.cd.api("POST", "/sandboxes", body,
                                     headers={"Content-Encoding": "gzip", "X-API-Key": self.cd.api_key}),
                         400, "timeout")
        self.assertError(self.cd.api("POST", "/sandboxes", b"{}",
                                     headers={"Content-Encoding": "br", "X-API-Key": self.cd.api_key}), 415)

    # ---- lifecycle ----
    def test_create_get_list_delete(self):
        st, sb, _ = self.cd.api("POST", "/sandboxes", {"templateID": "base", "timeout": 1800.0,
                                                        "waitReady": True, "metadata": {"app": "cp-test"},
                                                        "envVars": {"FOO": "bar"}})
        self.assertEqual(st, 201, sb)
        sid = sb["sandboxID"]
        self.assertRegex(sid, r"^[a-z0-9]{20}$")
        self.assertTrue(sb["templateID"].startswith("tpl-base-"))
        self.assertEqual(sb["alias"], "base")
        self.assertEqual(sb["status"], "running")
        self.assertEqual(sb["state"], "running")
        self.assertEqual(len(sb["envdAccessToken"]), 43)
        self.assertEqual(sb["trafficAccessToken"], sb["envdAccessToken"])
        self.assertEqual(sb["envdUrl"], "http://127.0.0.1:%d/envd/%s" % (self.cd.port, sid))
        self.assertTrue(sb["clientID"])
        self.assertEqual(sb["envdVersion"], "0.1.0")
        self.assertRegex(sb["startedAt"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        self.assertIn("activatedAt", sb)
        self.assertEqual(sb["network"], {"allowPublicTraffic": True, "allowInternetAccess": True,
                                         "allowOut": [], "denyOut": []})
        phases = [e["phase"] for e in sb["timeline"]]
        self.assertEqual(phases[0], "created")
        self.assertIn("runtime_ready", phases)
        self.assertNotIn("envVars", sb)

        st, d, _ = self.cd.api("GET", "/sandboxes/" + sid)
        self.assertEqual(st, 200)
        self.assertEqual(d["metadata"], {"app": "cp-test"})
        self.assertEqual(d["lifecycle"], {"onTimeout": "kill", "autoResume": False})
        self.assertEqual(d["volumeMounts"], [])
        for k in ("cpuCount", "memoryMB", "diskSizeMB"):
            self.assertIsInstance(d[k], int)
        self.assertNotIn("envVars", d)

        st, lst, hdrs = self.cd.api("GET", "/sandboxes?metadata=app%3Dcp-test")
        self.assertEqual(st, 200)
        self.assertEqual([x["sandboxID"] for x in lst], [sid])
        for k in ("envdAccessToken", "envdUrl", "trafficAccessToken", "timeline"):
            self.assertNotIn(k, lst[0])
        st, lst, _ = self.cd.api("GET", "/sandboxes?metadata[app]=cp-test&state=running,paused")
        self.assertEqual([x["sandboxID"] for x in lst], [sid])
        # the metadata value is itself a URL-encoded query string, decoded twice
        st, sp, _ = self.cd.api("POST", "/sandboxes", {"metadata": {"a b": "x&y=z"}})
        st, lst, _ = self.cd.api("GET", "/sandboxes?metadata=a%2520b%3Dx%2526y%253Dz")
        self.assertEqual([x["sandboxID"] for x in lst], [sp["sandboxID"]])
        self.cd.api("DELETE", "/sandboxes/" + sp["sandboxID"])
        st, lst, _ = self.cd.api("GET", "/sandboxes?metadata[app]=cp-test&state=paused")
        self.assertEqual(lst, [])
        self.assertError(self.cd.api("GET", "/sandboxes?state=bogus"), 400)
        self.assertError(self.cd.api("GET", "/sandboxes?metadata=novalue"), 400)
        self.assertError(self.cd.api("GET", "/sandboxes?limit=-1"), 400)
        self.assertError(self.cd.api("GET", "/sandboxes?nextToken=%21%21"), 400)

        st, _, _ = self.cd.api("DELETE", "/sandboxes/" + sid)
        self.assertEqual(st, 204)
        self.assertError(self.cd.api("GET", "/sandboxes/" + sid), 404)
        self.assertError(self.cd.api("DELETE", "/sandboxes/" + sid), 404)

    def test_pagination_tokens(self):
        ids = []
        for i in range(3):
            st, sb, _ = self.cd.api("POST", "/sandboxes", {"metadata": {"page": "p"}, "waitReady": True})
            self.assertEqual(st, 201, sb)
            ids.append(sb["sandboxID"])
        try:
            st, p1, h1 = self.cd.api("GET", "/sandboxes?metadata[page]=p&limit=2")
            self.assertEqual([x["sandboxID"] for x in p1], ids[:2])
            self.assertEqual(h1["x-has-next"], "true")
            self.assertEqual(h1["x-next-token"], tok(2))
            st, p2, h2 = self.cd.api("GET", "/sandboxes?metadata[page]=p&limit=2&nextToken=" + tok(2))
            self.assertEqual([x["sandboxID"] for x in p2], ids[2:])
            self.assertEqual(h2["x-has-next"], "false")
            self.assertEqual(h2["x-next-token"], "")
            st, p3, _ = self.cd.api("GET", "/sandboxes?metadata[page]=p&nextToken=" + tok(100))
            self.assertEqual((st, p3), (200, []))
        finally:
            for i in ids:
                self.cd.api("DELETE", "/sandboxes/" + i)

    def test_pause_connect_resume(self):
        sb = self.cd.create(timeout=600)
        sid = sb.id
        try:
            self.assertEqual(self.cd.api("POST", "/sandboxes/%s/pause" % sid)[0], 204)
            b = self.assertError(self.cd.api("POST", "/sandboxes/%s/pause" % sid), 409, "already paused")
            self.assertEqual(b["error"]["code"], "CONFLICT")
            st, d, _ = self.cd.api("GET", "/sandboxes/" + sid)
            self.assertEqual(d["state"], "paused")
            self.assertEqual(d["diagnostic"]["reason"], "paused")
            # runtime traffic to a paused sandbox without autoResume: 409
            st, body, _ = sb.rt("POST", "/run", {"cmd": "true"})
            self.assertEqual(st, 409)
            self.assertIn("is paused", body["message"])
            self.assertError(self.cd.api("POST", "/sandboxes/%s/timeout" % sid, {"timeout": 60}), 409)
            self.assertError(self.cd.api("POST", "/sandboxes/%s/connect" % sid), 400)
            self.assertError(self.cd.api("POST", "/sandboxes/%s/connect" % sid, {"timeoutMs": 5}), 400,
                             "timeoutMs is not supported on this route; use timeout seconds")
            st, c, _ = self.cd.api("POST", "/sandboxes/%s/connect" % sid, {"timeout": 120})
            self.assertEqual(st, 201, c)
            self.assertEqual(c["state"], "running")
            self.assertEqual(c["envdAccessToken"], sb.token)
            self.assertIn("resumed", [e["phase"] for e in c["timeline"]])
            st, c, _ = self.cd.api("POST", "/sandboxes/%s/connect" % sid, {"timeout": 0})
            self.assertEqual(st, 200)
            self.assertEqual(sb.run("echo", "alive")["stdout"], "alive\n")
        finally:
            sb.delete()

    def test_timeout_refresh_heartbeat(self):
        sb = self.cd.create(timeout=600)
        sid = sb.id
        try:
            def end_at():
                return self.cd.api("GET", "/sandboxes/" + sid)[1]["endAt"]
            self.assertEqual(self.cd.api("POST", "/sandboxes/%s/timeout" % sid, {"timeout": 30})[0], 204)
            short = end_at()
            self.assertError(self.cd.api("POST", "/sandboxes/%s/timeout" % sid, {"timeout": 0}), 400)
            self.assertError(self.cd.api("POST", "/sandboxes/%s/timeout" % sid, {"timeout": 86401}), 400)
            self.assertError(self.cd.api("POST", "/sandboxes/%s/timeout" % sid, {}), 400)
            # refreshes: no body at all, {} and duration; never shortens
            self.assertEqual(self.cd.request("POST", "/api/v1/sandboxes/%s/refreshes" % sid)[0], 204)
            self.assertGreater(end_at(), short)
            before = end_at()
            self.assertEqual(self.cd.api("POST", "/sandboxes/%s/refreshes" % sid, {"duration": 1})[0], 204)
            self.assertEqual(end_at(), before)
            self.assertError(self.cd.api("POST", "/sandboxes/%s/refreshes" % sid, {"duration": 3601}), 400)
            # heartbeat: API key or the sandbox's access token; wrapped answer
            st, hb, _ = self.cd.api("POST", "/sandboxes/%s/heartbeat" % sid, {"status": "error"})
            self.assertEqual(st, 200)
            self.assertEqual(hb["code"], 0)
            self.assertEqual(hb["data"], {"received": True, "status": "error"})
            self.assertEqual(hb["request_id"], hb["requestID"])
            self.assertEqual(self.cd.api("GET", "/sandboxes/" + sid)[1]["diagnostic"]["reason"], "heartbeat_error")
            st, hb, _ = self.cd.request("POST", "/api/v1/sandboxes/%s/heartbeat" % sid, {"status": "healthy"},
                                        auth=False, headers={"X-Access-Token": sb.token})
            self.assertEqual(st, 200)
            self.assertNotIn("diagnostic", self.cd.api("GET", "/sandboxes/" + sid)[1])
            self.assertError(self.cd.request("POST", "/api/v1/sandboxes/%s/heartbeat" % sid,
                                             {"status": "healthy"}, auth=False,
                                             headers={"X-Access-Token": "wrong"}), 401)
            self.assertError(self.cd.api("POST", "/sandboxes/%s/heartbeat" % sid, {"status": "meh"}), 400)
        finally:
            sb.delete()

    def test_ttl_kill_and_autopause(self):
        killed = self.cd.create(timeout=1)
        paused = self.cd.create(timeout=1, autoPause=True)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            st1 = self.cd.api("GET", "/sandboxes/" + killed.id)[0]
            st2, d2, _ = self.cd.api("GET", "/sandboxes/" + paused.id)
            if st1 == 404 and d2.get("state") == "paused":
                break
            time.sleep(0.2)
        self.assertEqual(self.cd.api("GET", "/sandboxes/" + killed.id)[0], 404)
        st, d, _ = self.cd.api("GET", "/sandboxes/" + paused.id)
        self.assertEqual(d["state"], "paused")
        self.assertEqual(d["lifecycle"]["onTimeout"], "pause")
        # resume with timeout 0 after a timeout-pause: the default lifetime applies
        st, c, _ = self.cd.api("POST", "/sandboxes/%s/connect" % paused.id, {"timeout": 0})
        self.assertEqual(st, 201)
        paused.delete()

    def test_logs(self):
        sb = self.cd.create()
        try:
            sb.delete_after = True
            self.cd.api("POST", "/sandboxes/%s/pause" % sb.id)
            self.cd.api("POST", "/sandboxes/%s/connect" % sb.id, {"timeout": 60})
            st, logs, _ = self.cd.api("GET", "/sandboxes/%s/logs" % sb.id)
            self.assertEqual(st, 200)
            msgs = [l["message"] for l in logs["logs"]]
            self.assertTrue(any("created" in m for m in msgs), msgs)
            self.assertTrue(any("paused" in m for m in msgs), msgs)
            first = logs["logs"][0]
            self.assertEqual(first["fields"]["source"], "system")
            self.assertEqual(first["fields"]["seq"], "1")
            self.assertEqual(logs["query"], {"sandboxID": sb.id, "direction": "forward", "limit": 100})
            self.assertFalse(logs["hasMore"])
            st, page, _ = self.cd.api("GET", "/sandboxes/%s/logs?limit=1" % sb.id)
            self.assertTrue(page["hasMore"])
            self.assertEqual(page["nextCursor"], 2)
            st, back, _ = self.cd.api("GET", "/sandboxes/%s/logs?direction=backward&limit=2" % sb.id)
            seqs = [int(l["fields"]["seq"]) for l in back["logs"]]
            self.assertEqual(seqs, sorted(seqs, reverse=True))
            st, s, _ = self.cd.api("GET", "/sandboxes/%s/logs?search=PAUSED" % sb.id)
            self.assertTrue(all("paused" in l["message"].lower() for l in s["logs"]))
            self.assertTrue(s["logs"])
            st, e, _ = self.cd.api("GET", "/sandboxes/%s/logs?level=error" % sb.id)
            self.assertEqual(e["logs"], [])
            self.assertEqual(e["diagnostic"]["reason"], "filters_applied")
            st, e, _ = self.cd.api("GET", "/sandboxes/%s/logs?cursor=100000" % sb.id)
            self.assertEqual(e["diagnostic"]["reason"], "cursor_window_empty")
            self.assertError(self.cd.api("GET", "/sandboxes/%s/logs?direction=sideways" % sb.id), 400)
            self.assertError(self.cd.api("GET", "/sandboxes/%s/logs?level=loud" % sb.id), 400)
            self.assertError(self.cd.api("GET", "/sandboxes/%s/logs?limit=1001" % sb.id), 400)
            self.assertError(self.cd.api("GET", "/sandboxes/nosuchsandbox000000/logs"), 404)
        finally:
            sb.delete()

    def test_create_without_wait_and_connect_waits(self):
        st, sb, _ = self.cd.api("POST", "/sandboxes", {})
        self.assertEqual(st, 201, sb)
        self.assertIn(sb["status"], ("starting", "running"))
        self.assertTrue(sb["envdUrl"] and sb["envdAccessToken"])
        st, c, _ = self.cd.api("POST", "/sandboxes/%s/connect" % sb["sandboxID"], {"timeout": 0})
        self.assertEqual(st, 200)
        self.assertEqual(c["state"], "running")
        self.cd.api("DELETE", "/sandboxes/" + sb["sandboxID"])


if __name__ == "__main__":
    unittest.main()
