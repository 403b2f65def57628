"""Logs, metrics, observability summary, usage limits and Prometheus (control-plane.md §8–§11,
§15) against a real coved with real sandboxes.

Metrics are real: a CPU burner inside a sandbox shows a CPU rate near a core (asserted loosely:
> 0.3 core on a loaded 2-core machine), a 200 MiB allocation shows in its memory.
"""
import json
import os
import re
import sqlite3
import time
import unittest
import urllib.parse

from coveharness import Coved

ROOTS = ("/api/v1", "/api/sandbox/v1", "/api/v1/sandbox")


def err(tc, resp, status, fragment=None):
    st, body, _ = resp
    tc.assertEqual(st, status, body)
    tc.assertEqual(body["code"], status)
    tc.assertEqual(body["error"]["message"], body["message"])
    if fragment:
        tc.assertIn(fragment.lower(), body["message"].lower())
    return body


class Observability(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cd = Coved(extra_args=["--metrics-interval", "1", "--team-metrics-interval", "1",
                                   "--log-max-entries", "100"]).start()

    @classmethod
    def tearDownClass(cls):
        cls.cd.__exit__(None, None, None)

    # ---- §8 logs ----
    def test_logs_queries_and_errors(self):
        cd = self.cd
        sb = cd.create()
        for _ in range(3):
            cd.api("POST", "/sandboxes/%s/pause" % sb.id)
            cd.api("POST", "/sandboxes/%s/connect" % sb.id, {"timeout": 0})
        st, body, _ = cd.api("GET", "/sandboxes/%s/logs" % sb.id)
        self.assertEqual(st, 200)
        logs = body["logs"]
        self.assertEqual(len(logs), 8)  # created, running, 3 × (paused, resumed)
        self.assertEqual([e["fields"]["seq"] for e in logs], [str(i) for i in range(1, 9)])
        for e in logs:
            self.assertEqual(e["fields"]["source"], "system")
            self.assertIn(e["level"], ("debug", "info", "warn", "error"))
            self.assertRegex(e["timestamp"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        self.assertFalse(body["hasMore"])
        self.assertNotIn("nextCursor", body)
        self.assertEqual(body["query"], {"sandboxID": sb.id, "direction": "forward",
                                         "limit": 100})
        # cursor pages, both ways
        st, p1, _ = cd.api("GET", "/sandboxes/%s/logs?limit=3" % sb.id)
        self.assertEqual([e["fields"]["seq"] for e in p1["logs"]], ["1", "2", "3"])
        self.assertTrue(p1["hasMore"])
        self.assertEqual(p1["nextCursor"], 4)
        st, p2, _ = cd.api("GET", "/sandboxes/%s/logs?limit=3&cursor=4" % sb.id)
        self.assertEqual([e["fields"]["seq"] for e in p2["logs"]], ["4", "5", "6"])
        st, b1, _ = cd.api("GET", "/sandboxes/%s/logs?limit=3&direction=backward" % sb.id)
        self.assertEqual([e["fields"]["seq"] for e in b1["logs"]], ["8", "7", "6"])
        self.assertEqual(b1["nextCursor"], 5)
        st, b2, _ = cd.api("GET", "/sandboxes/%s/logs?direction=backward&cursor=2" % sb.id)
        self.assertEqual([e["fields"]["seq"] for e in b2["logs"]], ["2", "1"])
        self.assertFalse(b2["hasMore"])
        # filters apply before the limit
        st, s1, _ = cd.api("GET", "/sandboxes/%s/logs?search=PAUSED&limit=2" % sb.id)
        self.assertEqual(len(s1["logs"]), 2)
        self.assertTrue(all("paused" in e["message"] for e in s1["logs"]))
        self.assertTrue(s1["hasMore"])
        self.assertEqual(s1["query"]["search"], "PAUSED")
        st, f, _ = cd.api("GET", "/sandboxes/%s/logs?level=error" % sb.id)
        self.assertEqual(f["logs"], [])
        self.assertEqual(f["diagnostic"]["reason"], "filters_applied")
        self.assertEqual(f["query"]["level"], "error")
        st, w, _ = cd.api("GET", "/sandboxes/%s/logs?cursor=1000" % sb.id)
        self.assertEqual(w["diagnostic"]["reason"], "cursor_window_empty")
        for q in ("cursor=-1", "cursor=x", "limit=1001", "limit=-1", "direction=up",
                  "level=trace", "search=" + "a" * 257):
            err(self, cd.api("GET", "/sandboxes/%s/logs?%s" % (sb.id, q)), 400)
        st, ok, _ = cd.api("GET", "/sandboxes/%s/logs?search=%s" % (
            sb.id, urllib.parse.quote("é" * 256)))
        self.assertEqual(st, 200)  # 256 characters, 512 bytes
        err(self, cd.api("GET", "/sandboxes/nosuchsandbox0000000/logs"), 404, "not found")
        sb.delete()
        err(self, cd.api("GET", "/sandboxes/%s/logs" % sb.id), 404)

    def test_log_retention_is_bounded(self):
        cd = self.cd
        sb = cd.create()
        for _ in range(55):
            cd.api("POST", "/sandboxes/%s/pause" % sb.id)
            cd.api("POST", "/sandboxes/%s/connect" % sb.id, {"timeout": 0})
        st, body, _ = cd.api("GET", "/sandboxes/%s/logs?limit=1000" % sb.id)
        self.assertEqual(len(body["logs"]), 100)  # --log-max-entries
        self.assertEqual(body["logs"][-1]["fields"]["seq"], "112")
        self.assertEqual(body["logs"][0]["fields"]["seq"], "13")
        st, first, _ = cd.api("GET", "/sandboxes/%s/logs?cursor=1&limit=1" % sb.id)
        self.assertEqual(first["logs"][0]["fields"]["seq"], "13")
        sb.delete()
        db = sqlite3.connect("file:%s/cove.db?mode=ro" % cd.data_dir, uri=True)
        try:
            n = db.execute("SELECT COUNT(*) FROM sandbox_logs WHERE sandbox_id = ?",
                           (sb.id,)).fetchone()[0]
        finally:
            db.close()
        self.assertEqual(n, 0)  # gone with the sandbox

    # ---- §9 metrics ----
    def wait_metric(self, sid, pred, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            st, m, _ = self.cd.api("GET", "/sandboxes/%s/metrics" % sid)
            self.assertEqual(st, 200, m)
            if pred(m):
                return m
            time.sleep(0.5)
        self.fail("metric condition not met: %s" % m)

    def test_cpu_burner_and_memory(self):
        sb = self.cd.create()
        try:
            m = self.wait_metric(sb.id, lambda m: "cpuUserRate" in m)
            self.assertLess(m["cpuUserRate"] + m["cpuSystemRate"], 0.3)  # idle
            self.assertEqual(m["taskMax"], 1024)
            self.assertGreaterEqual(m["taskCurrent"], 1)
            sb.sh("setsid sh -c 'while :; do :; done' >/dev/null 2>&1 </dev/null &")
            m = self.wait_metric(sb.id, lambda m: m.get("cpuUserRate", 0) +
                                 m.get("cpuSystemRate", 0) > 0.3)
            self.assertLessEqual(m["cpuUserRate"] + m["cpuSystemRate"], 2.2)  # 2 CPUs at most
            m = self.wait_metric(sb.id, lambda m: m.get("load1", 0) > 0.05)
            limit = 512 * 1024 * 1024
            used_before = limit - m["memoryAvailableBytes"]
            sb.sh("setsid python3 -c \"import time; b = b'x' * (200 << 20); time.sleep(600)\" "
                  ">/dev/null 2>&1 </dev/null &")
            m = self.wait_metric(sb.id, lambda m: limit - m["memoryAvailableBytes"] -
                                 used_before >= 190 * 1024 * 1024)
            self.assertAlmostEqual(m["memoryUsagePercent"],
                                   100.0 * (limit - m["memoryAvailableBytes"]) / limit, delta=0.5)
            for k in ("load1", "load5", "load15", "diskReadBytesPerSecond",
                      "diskWriteOpsPerSecond", "swapTotalBytes"):
                self.assertIn(k, m)
            for k, v in m.items():
                if k not in ("sandboxID", "collectedAt"):
                    self.assertIsInstance(v, (int, float), k)
            # the network is not the sandbox's own yet: unknown, so omitted (never 0)
            self.assertNotIn("error", m)
        finally:
            sb.delete()

    def test_metrics_of_paused_unknown_and_fleet(self):
        cd = self.cd
        a, b = cd.create(), cd.create()
        try:
            cd.api("POST", "/sandboxes/%s/pause" % b.id)
            st, m, _ = cd.api("GET", "/sandboxes/%s/metrics" % b.id)
            self.assertEqual(st, 200)
            self.assertEqual(sorted(m), ["collectedAt", "error", "sandboxID"])
            self.assertEqual(m["error"], "sandbox is paused")
            err(self, cd.api("GET", "/sandboxes/nosuchsandbox0000000/metrics"), 404)
            # the literal route wins over the ID route, under every root
            for root in ROOTS:
                st, f, _ = cd.request("GET", root + "/sandboxes/metrics")
                self.assertEqual(st, 200, f)
                self.assertIn(a.id, f["sandboxes"])
                self.assertNotIn(b.id, f["sandboxes"])  # only running ones by default
                self.assertEqual([i["sandboxID"] for i in f["items"]], list(f["sandboxes"]))
            q = "sandbox_ids=%s,nosuch&sandbox_ids=%s&sandbox_ids=%s" % (b.id, a.id, b.id)
            st, f, _ = cd.api("GET", "/sandboxes/metrics?" + q)
            self.assertEqual([i["sandboxID"] for i in f["items"]], [b.id, "nosuch", a.id])
            self.assertEqual(f["items"][0]["error"], "sandbox is paused")
            self.assertEqual(f["items"][1]["error"], "sandbox not found")
            self.assertEqual(f["sandboxes"][a.id], f["items"][2])
            self.assertIn("collectedAt", f)
            st, f, _ = cd.api("GET", "/sandboxes/metrics?limit=1&" + q)
            self.assertEqual(len(f["items"]), 1)
            ids = ",".join("x%d" % i for i in range(101))
            err(self, cd.api("GET", "/sandboxes/metrics?sandbox_ids=" + ids), 400, "100")
            for q in ("limit=0", "limit=1001", "limit=z"):
                err(self, cd.api("GET", "/sandboxes/metrics?" + q), 400)
        finally:
            a.delete()
            b.delete()

    def test_team_metrics(self):
        cd = self.cd
        now = int(time.time())
        a, b = cd.create(), cd.create()
        try:
            time.sleep(2.5)  # team samples every second here
            st, pts, _ = cd.api("GET", "/teams/team_default/metrics")
            self.assertEqual(st, 200, pts)
            self.assertEqual(len(pts), 61)  # an hour in steps of 60 s
            steps = {pts[i + 1]["timestampUnix"] - pts[i]["timestampUnix"]
                     for i in range(len(pts) - 1)}
            self.assertEqual(steps, {60})
            for p in pts:
                self.assertEqual(set(p), {"timestamp", "timestampUnix", "concurrentSandboxes",
                                          "sandboxStartRate"})
            self.assertGreaterEqual(max(p["concurrentSandboxes"] for p in pts), 2)
            self.assertGreater(max(p["sandboxStartRate"] for p in pts), 0)
            st, mx, _ = cd.api("GET", "/teams/team_default/metrics/max?metric="
                               "concurrent_sandboxes&start=%d" % (now - 60))
            self.assertEqual(st, 200, mx)
            self.assertGreaterEqual(mx["value"], 2)
            self.assertGreaterEqual(mx["timestampUnix"], now - 60)
            st, mx, _ = cd.api("GET", "/teams/team_default/metrics/max?metric=sandbox_start_rate")
            self.assertGreater(mx["value"], 0)
            # 31 days: at most 1000 points, the step a multiple of 60 s
            st, pts, _ = cd.api("GET", "/teams/team_default/metrics?start=%d&end=%d" % (
                now - 31 * 86400, now))
            self.assertEqual(st, 200)
            self.assertLessEqual(len(pts), 1000)
            step = pts[1]["timestampUnix"] - pts[0]["timestampUnix"]
            self.assertEqual(step % 60, 0)
            for q in ("start=10&end=5", "start=0&end=%d" % (31 * 86400 + 1), "start=x",
                      "end=-5"):
                err(self, cd.api("GET", "/teams/team_default/metrics?" + q), 400)
            for q in ("", "?metric=nope"):
                err(self, cd.api("GET", "/teams/team_default/metrics/max" + q), 400, "metric")
            err(self, cd.api("GET", "/teams/team_nope/metrics"), 404)
        finally:
            a.delete()
            b.delete()

    # ---- §10, §11 ----
    def test_summary_and_usage(self):
        cd = self.cd
        for root in ROOTS:
            for path in ("/observability/summary", "/observability/sandboxes"):
                st, s, _ = cd.request("GET", root + path)
                self.assertEqual(st, 200, s)
                self.assertEqual(s["endpoints"], {
                    "sandboxUsage": root + "/usage/limits",
                    "templateUsage": root + "/usage/limits?resource=templates",
                    "sandboxDetail": root + "/sandboxes/{sandboxID}",
                    "sandboxMetrics": root + "/sandboxes/{sandboxID}/metrics",
                    "sandboxLogs": root + "/sandboxes/{sandboxID}/logs",
                    "buildStatus": root + "/templates/{templateID}/builds/{buildID}/status",
                    "buildLogs": root + "/templates/{templateID}/builds/{buildID}/logs"})
        self.assertEqual(s["status"], "ok")
        self.assertEqual(s["projectID"], "team_default")
        self.assertRegex(s["userID"], r"^key_[0-9a-f]{16}$")
        self.assertNotIn(cd.api_key, json.dumps(s))
        self.assertEqual(set(s["availability"]), {"sandboxes", "templates", "metrics", "logs"})
        for v in s["availability"].values():
            self.assertEqual(v, {"status": "available"})
        self.assertEqual((s["checks"], s["actions"]), ([], []))
        self.assertEqual(s["usage"]["sandboxes"]["resource"], "sandboxes")
        self.assertEqual(s["usage"]["templates"]["resource"], "templates")

        st, u, _ = cd.api("GET", "/usage/limits")
        self.assertEqual(u["resource"], "sandboxes")
        self.assertTrue(u["unlimited"])
        self.assertNotIn("limits", u["project"])
        self.assertEqual(set(u["project"]["usage"]), {"concurrentSandboxes", "pausedSandboxes",
                                                      "cpuCount", "memoryMB", "diskSizeMB"})
        self.assertEqual(u["runtime"], {"maxRuntimeSeconds": 86400})
        st, t, _ = cd.api("GET", "/usage/limits?resource=templates")
        self.assertEqual(t["resource"], "templates")
        self.assertEqual(set(t["project"]["usage"]), {"templates", "concurrentBuilds"})
        self.assertEqual(t["resources"], {"maxTemplateCPU": 8, "maxTemplateMemoryMB": 16384,
                                          "maxTemplateStorageGB": 50})
        self.assertNotIn("resources", u)
        err(self, cd.api("GET", "/usage/limits?resource=volumes"), 400, "resource")

        # a warning at 80 %, exhausted at 100 %
        cd.api("PUT", "/admin/teams/team_default/limits", {"concurrentSandboxes": 5})
        sbs = [cd.create() for _ in range(4)]
        try:
            st, s, _ = cd.api("GET", "/observability/summary")
            self.assertEqual(s["status"], "degraded")
            self.assertEqual(s["checks"], [{
                "status": "warning", "scope": "project", "resource": "sandboxes",
                "metric": "concurrentSandboxes", "used": 4, "limit": 5, "remaining": 1,
                "message": s["checks"][0]["message"], "usageEndpoint": "/api/v1/usage/limits"}])
            self.assertEqual(s["actions"][0]["status"], "review")
            self.assertEqual(s["availability"]["sandboxes"]["status"], "available")
            sbs.append(cd.create())
            st, s, _ = cd.api("GET", "/observability/summary")
            self.assertEqual(s["checks"][0]["status"], "exhausted")
            self.assertEqual(s["availability"]["sandboxes"]["status"], "unavailable")
            self.assertIn("limit_reached", [a["status"] for a in s["actions"]])
            self.assertIn("unavailable", [a["status"] for a in s["actions"]])
        finally:
            cd.api("PUT", "/admin/teams/team_default/limits", {"concurrentSandboxes": None})
            for sb in sbs:
                sb.delete()

    # ---- §15 Prometheus ----
    def test_prometheus(self):
        cd = self.cd
        sb = cd.create()
        cd.api("GET", "/sandboxes/%s/logs" % sb.id)
        sb.sh("true")
        sb.delete()
        cd.api("GET", "/sandboxes/%s" % sb.id)  # 404
        for path in ("/metrics", "/api/v1/metrics"):
            st, text, h = cd.request("GET", path)
            self.assertEqual(st, 200)
            self.assertEqual(h["content-type"], "text/plain; version=0.0.4; charset=utf-8")
        text = text.decode()
        for family, kind in (("cove_build_info", "gauge"), ("cove_sandboxes", "gauge"),
                             ("cove_sandbox_creates_total", "counter"),
                             ("cove_sandbox_create_failures_total", "counter"),
                             ("cove_sandbox_start_seconds", "histogram"),
                             ("cove_sandbox_delete_seconds", "histogram"),
                             ("cove_templates", "gauge"), ("cove_builds", "gauge"),
                             ("cove_build_seconds", "histogram"),
                             ("cove_http_requests_total", "counter"),
                             ("cove_http_request_seconds", "histogram"),
                             ("cove_webhook_deliveries_total", "counter"),
                             ("process_open_fds", "gauge"),
                             ("process_resident_memory_bytes", "gauge")):
            self.assertIn("# TYPE %s %s\n" % (family, kind), text)
        self.assertIn('cove_build_info{version="0.1.0"} 1', text)
        for state in ("starting", "running", "paused", "stopped"):
            self.assertRegex(text, r'cove_sandboxes\{state="%s"\} \d+' % state)
        self.assertRegex(text, r'cove_http_requests_total\{route="/sandboxes/\{id\}/logs",'
                               r'method="GET",code="200"\} \d+')
        self.assertRegex(text, r'cove_http_requests_total\{route="/sandboxes/\{id\}",'
                               r'method="GET",code="404"\} \d+')
        self.assertRegex(text, r'cove_http_request_seconds_bucket\{route="/sandboxes",'
                               r'le="\+Inf"\} \d+')
        self.assertRegex(text, r'cove_http_requests_total\{route="/envd/\{sandboxID\}/run",'
                               r'method="POST",code="200"\} \d+')
        self.assertNotIn(sb.id, text)  # routes are patterns, never IDs
        self.assertRegex(text, r"\nprocess_open_fds \d+\n")
        rss = int(re.search(r"\nprocess_resident_memory_bytes (\d+)\n", text).group(1))
        self.assertGreater(rss, 1 << 20)
        self.assertRegex(text, r"\ncove_sandbox_creates_total [1-9]\d*\n")
        for line in text.splitlines():  # the exposition format, line by line
            if line and not line.startswith("#"):
                self.assertRegex(line, r'^[a-z_:][a-z0-9_:]*(\{([a-z_]+="([^"\\]|\\.)*",?)*\})? '
                                       r'[-+0-9.eInf]+$')
        st, _, _ = cd.request("GET", "/metrics", auth=False)
        self.assertEqual(st, 401)


class PublicMetrics(unittest.TestCase):
    def test_metrics_auth_none(self):
        with Coved(extra_args=["--metrics-auth", "none"]) as cd:
            st, text, _ = cd.request("GET", "/metrics", auth=False)
            self.assertEqual(st, 200)
            self.assertIn(b"cove_build_info", text)
            st, _, _ = cd.request("GET", "/api/v1/sandboxes", auth=False)
            self.assertEqual(st, 401)  # only /metrics is public


if __name__ == "__main__":
    unittest.main()
