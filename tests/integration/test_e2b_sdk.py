"""The E2B face (e2b.md) driven by E2B's own JavaScript SDKs, `e2b` and `@e2b/code-interpreter`,
at the versions pinned in tests/e2b/package.json (installed by `make test` into
tests/e2b/node_modules). Each test runs one scenario of tests/e2b/scenarios.mjs against this
class's coved, as a user would: E2B_API_URL and E2B_SANDBOX_URL set to coved's URL and an
`e2b_` key. The Python SDK is not installable here (PyPI is unreachable and Debian does not
package it): docs/operations.md says how a user runs it.

The routing rules that no SDK exercises are checked here with plain HTTP: E2B headers never
reach a Cove route of the same path, and two teams cannot reach each other's sandboxes through
header or Host routing.
"""
import http.client
import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest

from coveharness import BUILD, Coved, ROOT
import buildfix as bf
import registryfix as rf

E2B_DIR = os.path.join(ROOT, "tests", "e2b")
KEY = "e2b_" + "0123456789abcdef" * 2 + "01234567"


def sdk_installed():
    return os.path.isdir(os.path.join(E2B_DIR, "node_modules", "e2b")) and \
        os.path.isdir(os.path.join(E2B_DIR, "node_modules", "@e2b", "code-interpreter"))


@unittest.skipUnless(sdk_installed(), "E2B SDKs not installed (make test installs them into tests/e2b)")
class E2BSdk(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cd = Coved.for_class(cls, api_key=KEY, extra_args=["--e2b-domain", "sbx.test",
                                                               "--metrics-interval", "1"])

    def scenario(self, name, extra_env=None):
        url = "http://127.0.0.1:%d" % self.cd.port
        env = dict(os.environ, E2B_API_URL=url, E2B_SANDBOX_URL=url, E2B_API_KEY=KEY,
                   E2B_DOMAIN="")
        env.update(extra_env or {})
        env.pop("E2B_VALIDATE_API_KEY", None)
        env.pop("E2B_DEBUG", None)
        p = subprocess.run(["node", "scenarios.mjs", name], cwd=E2B_DIR, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600)
        self.assertEqual(p.returncode, 0, "scenario %s failed:\n%s\n--- coved log ---\n%s" %
                         (name, p.stdout[-6000:], self.cd.read_log()[-3000:]))
        self.assertIn("ok " + name, p.stdout)

    def test_lifecycle(self):
        self.scenario("lifecycle")

    def test_commands(self):
        self.scenario("commands")

    def test_files(self):
        self.scenario("files")

    def test_pty(self):
        self.scenario("pty")

    def test_metrics(self):
        self.scenario("metrics")

    def test_code_interpreter(self):
        self.scenario("code")

    def test_error_mapping(self):
        self.scenario("errors")

    def test_rate_limit(self):
        """A team over its concurrentSandboxes limit (obs's per-team limits) gets 429, the SDK's
        RateLimitError."""
        st, team, _ = self.cd.request("POST", "/admin/teams", {"name": "e2b-limited"})
        self.assertEqual(st, 201, team)
        tid = team["data"]["teamID"]
        st, key, _ = self.cd.request("POST", "/admin/keys", {"teamID": tid, "format": "e2b"})
        self.assertEqual(st, 201, key)
        st, lim, _ = self.cd.request("PUT", "/admin/teams/%s/limits" % tid, {"concurrentSandboxes": 1})
        self.assertEqual(st, 200, lim)
        self.scenario("ratelimit", extra_env={"E2B_API_KEY": key["data"]["key"]})

    def test_e2b_form_key(self):
        """`cove admin key create --e2b` issues e2b_ + 40 lower-case hex (the form E2B's Python
        SDK checks before sending anything, so no E2B_VALIDATE_API_KEY=false is needed), and the
        SDK works with it."""
        home = tempfile.mkdtemp(prefix="cove-e2b-key-")
        self.addCleanup(shutil.rmtree, home, True)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("COVE_", "SEACLOUD_", "E2B_"))}
        env.update(COVE_URL="http://127.0.0.1:%d" % self.cd.port, COVE_API_KEY=KEY,
                   XDG_CONFIG_HOME=home, HOME=home)
        p = subprocess.run([os.path.join(BUILD, "cove"), "admin", "key", "create", "--e2b",
                            "--name", "sdk", "--output", "json"], capture_output=True, env=env,
                           timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        key = json.loads(p.stdout)["data"]["key"]
        self.assertRegex(key, r"^e2b_[0-9a-f]{40}$")
        st, e, _ = self.cd.request("POST", "/admin/keys", {"format": "nope"})
        self.assertEqual((st, e["message"]), (400, "field 'format' must be 'cove' or 'e2b'"))
        self.scenario("smoke", extra_env={"E2B_API_KEY": key})


@unittest.skipUnless(sdk_installed(), "E2B SDKs not installed (make test installs them into tests/e2b)")
@unittest.skipIf(rf.tools_missing(), "missing tools: %s (make deps installs them)" % ", ".join(rf.tools_missing()))
class E2BTemplates(unittest.TestCase):
    """Template.build() through the build plane, from an image in a loopback registry."""

    @classmethod
    def setUpClass(cls):
        cls.reg = rf.Registry().start()
        rf.busybox_image(cls.reg, "library/busybox", "1.36")
        cls.cd = Coved(api_key=KEY, extra_args=["--registry-mirror", "docker.io=%s,only" % cls.reg.url]).start()

    @classmethod
    def tearDownClass(cls):
        cls.cd.stop()
        cls.cd.purge()
        cls.reg.close()

    def test_template_build(self):
        url = "http://127.0.0.1:%d" % self.cd.port
        env = dict(os.environ, E2B_API_URL=url, E2B_SANDBOX_URL=url, E2B_API_KEY=KEY, E2B_DOMAIN="",
                   COVE_TEST_IMAGE="busybox:1.36")
        env.pop("E2B_DEBUG", None)
        p = subprocess.run(["node", "scenarios.mjs", "template"], cwd=E2B_DIR, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600)
        self.assertEqual(p.returncode, 0, "scenario failed:\n%s\n--- coved log ---\n%s" %
                         (p.stdout[-6000:], self.cd.read_log()[-3000:]))


class E2BCreateWait(unittest.TestCase):
    """e2b.md §2.3: the create wait is bounded (50 s; 3 s here, --e2b-ready-wait) and ends in
    503 with nothing left behind; a sandbox whose client went away before its 201 is deleted."""

    @classmethod
    def setUpClass(cls):
        cls.cd = Coved.for_class(cls, api_key=KEY, extra_args=["--e2b-ready-wait", "3"])

    def template(self, name, ready_cmd):
        st, t, _ = self.cd.api("POST", "/templates", {"name": name, "baseTemplateID": "base",
                                                      "readyCmd": ready_cmd})
        self.assertEqual(st, 202, t)
        st, b, _ = self.cd.api("POST", "/templates/%s/builds" % t["templateID"], {})
        self.assertEqual(st, 202, b)
        s, logs = bf.wait_build(self.cd, t["templateID"], b["buildID"])
        self.assertEqual(s["status"], "ready", logs)
        return t["templateID"]

    def sandboxes_of(self, tid):
        st, lst, _ = self.cd.api("GET", "/sandboxes?state=starting,running,paused,stopped")
        self.assertEqual(st, 200, lst)
        return [s for s in lst if s["templateID"] == tid]

    def test_ready_wait_runs_out(self):
        tid = self.template("never-ready", "false")
        st, e, _ = self.cd.request("POST", "/v2/sandboxes", {"templateID": "never-ready"})
        self.assertEqual((st, e["code"]), (503, 503), e)
        self.assertRegex(e["message"], r"^sandbox '[a-z0-9]{20}' was not ready within 3s$")
        self.assertEqual(self.sandboxes_of(tid), [])

    def test_client_gone_before_201(self):
        tid = self.template("slow-ready", "sleep 2")
        conn = http.client.HTTPConnection("127.0.0.1", self.cd.port, timeout=30)
        body = json.dumps({"templateID": "slow-ready", "timeout": 300})
        conn.request("POST", "/v2/sandboxes", body=body, headers={
            "X-API-KEY": KEY, "Content-Type": "application/json"})
        time.sleep(0.5)  # coved is waiting for the readyCmd now
        conn.close()     # the client gives up
        deadline = time.monotonic() + 60
        while "went away before its 201" not in self.cd.read_log() and time.monotonic() < deadline:
            time.sleep(0.2)
        self.assertIn("went away before its 201", self.cd.read_log())
        # (logged as the delete begins)
        while self.sandboxes_of(tid) and time.monotonic() < deadline:
            time.sleep(0.2)
        self.assertEqual(self.sandboxes_of(tid), [])


class InterpClient:
    """Plain HTTP to a sandbox's code interpreter (port 49999) through the E2B headers."""

    def interp_headers(self, port=49999):
        return {"E2b-Sandbox-Id": self.sb["sandboxID"], "E2b-Sandbox-Port": str(port),
                "X-Access-Token": self.sb["envdAccessToken"], "Content-Type": "application/json"}

    def interp(self, method, path, body=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.cd.port, timeout=120)
        conn.request(method, path, body=json.dumps(body) if body is not None else None,
                     headers=self.interp_headers())
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        return resp.status, data

    def run_code(self, code, context_id=None, language=None):
        body = {"code": code}
        if context_id:
            body["context_id"] = context_id
        if language:
            body["language"] = language
        st, data = self.interp("POST", "/execute", body)
        self.assertEqual(st, 200, data)
        lines = [json.loads(x) for x in data.decode().splitlines()]
        results = [x.get("text") for x in lines if x["type"] == "result"]
        errors = [x for x in lines if x["type"] == "error"]
        self.assertEqual(errors, [], lines)
        return results[0] if results else None

    def contexts(self):
        st, data = self.interp("GET", "/contexts")
        self.assertEqual(st, 200, data)
        return json.loads(data)

    def kernels(self):
        """The sandbox's processes tagged as a code context's kernel: {tag: pid}."""
        conn = http.client.HTTPConnection("127.0.0.1", self.cd.port, timeout=60)
        conn.request("POST", "/process.Process/List", body=b"{}", headers=self.interp_headers(49983))
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        self.assertEqual(resp.status, 200, data)
        return {p.get("tag", ""): p["pid"] for p in json.loads(data).get("processes", [])
                if p.get("tag", "").startswith("cove-interp-")}


class E2BContextsAcrossRestart(InterpClient, unittest.TestCase):
    """Code contexts (e2b.md §5.3) outlive a restart of coved: the same IDs are listed, and
    kernels that still run keep their state; a contexts file that is not Cove's is ignored."""

    @classmethod
    def setUpClass(cls):
        cls.cd = Coved.for_class(cls, api_key=KEY)

    def restart(self):
        self.cd.kill9()
        self.cd.start()

    def test_contexts_survive_a_restart(self):
        st, self.sb, _ = self.cd.request("POST", "/v2/sandboxes", {"templateID": "code-interpreter-v1",
                                                                   "timeout": 600})
        self.assertEqual(st, 201, self.sb)
        self.addCleanup(self.cd.request, "DELETE", "/sandboxes/" + self.sb["sandboxID"])
        self.run_code("x = 41")
        st, js = self.interp("POST", "/contexts", {"language": "js", "cwd": "/tmp"})
        self.assertEqual(st, 200, js)
        js = json.loads(js)
        st, py2 = self.interp("POST", "/contexts", {"language": "python"})
        py2 = json.loads(py2)
        self.run_code("y = 'kept'", context_id=py2["id"])
        before = self.contexts()
        self.assertEqual([c["language"] for c in before], ["python", "javascript", "javascript", "python"])

        self.restart()
        self.assertEqual(self.contexts(), before)
        self.assertEqual(self.run_code("x + 1"), "42")  # the same kernel: its state is there
        self.assertEqual(self.run_code("y", context_id=py2["id"]), "kept")
        self.assertEqual(self.run_code("process.cwd()", context_id=js["id"]), "/tmp")
        # deleted and restarted contexts stay so across the next restart
        st, _ = self.interp("DELETE", "/contexts/" + js["id"])
        self.assertEqual(st, 200)
        st, _ = self.interp("POST", "/contexts/%s/restart" % py2["id"])
        self.assertEqual(st, 200)
        self.restart()
        self.assertEqual([c["id"] for c in self.contexts()],
                         [before[0]["id"], before[1]["id"], py2["id"]])
        self.assertEqual(self.run_code("'y' in globals()", context_id=py2["id"]), "False")
        self.assertEqual(self.run_code("x"), "41")

        # the file is in the sandbox, whose root may rewrite it: what is not Cove's is ignored
        st, body, _ = self.cd.request("POST", "/envd/%s/file?path=/run/cove/interp/contexts.json" %
                                      self.sb["sandboxID"], b'{"v":1,"contexts":[{"id":"../x"}]}',
                                      headers={"X-Access-Token": self.sb["envdAccessToken"],
                                               "Content-Type": "application/octet-stream"}, auth=False)
        self.assertEqual(st, 204, body)
        self.restart()
        fresh = self.contexts()
        self.assertEqual([c["language"] for c in fresh], ["python", "javascript"])
        self.assertNotIn(before[0]["id"], [c["id"] for c in fresh])


class E2BInterpreter(InterpClient, unittest.TestCase):
    """The code interpreter's queue and warm-up (e2b.md §5.2) with plain HTTP."""

    @classmethod
    def setUpClass(cls):
        cls.cd = Coved.for_class(cls, api_key=KEY)

    def create(self, template):
        st, self.sb, _ = self.cd.request("POST", "/v2/sandboxes", {"templateID": template,
                                                                   "timeout": 300})
        self.assertEqual(st, 201, self.sb)
        self.addCleanup(self.cd.request, "DELETE", "/sandboxes/" + self.sb["sandboxID"])

    def test_default_python_context_runs_before_the_first_execution(self):
        self.create("code-interpreter-v1")
        py = self.contexts()[0]
        self.assertEqual(py["language"], "python")
        deadline = time.monotonic() + 60
        while not self.kernels() and time.monotonic() < deadline:
            time.sleep(0.2)
        kernels = self.kernels()
        self.assertEqual(len(kernels), 1, kernels)
        self.assertTrue(next(iter(kernels)).startswith("cove-interp-%s-" % py["id"]), kernels)
        # the first execution uses that kernel: no second one is started
        self.assertEqual(self.run_code("import os; os.getpid()"), str(next(iter(kernels.values()))))
        self.assertEqual(self.kernels(), kernels)

    def test_base_sandbox_starts_no_kernel(self):
        self.create("base")
        self.assertEqual([c["language"] for c in self.contexts()], ["python", "javascript"])
        time.sleep(1)
        self.assertEqual(self.kernels(), {})

    def test_a_waiter_that_leaves_does_not_block_the_context(self):
        """Executions of one context wait their turn; a waiting client that goes away, and
        one that is interrupted while running, leave the queue: the next one runs."""
        self.create("code-interpreter-v1")
        self.run_code("n = 1")
        conns = []
        for code in ("import time; time.sleep(600)", "n = 2"):
            c = http.client.HTTPConnection("127.0.0.1", self.cd.port, timeout=120)
            c.request("POST", "/execute", body=json.dumps({"code": code}),
                      headers=self.interp_headers())
            resp = c.getresponse()
            self.assertEqual(resp.status, 200)
            conns.append(c)
        time.sleep(1)
        conns[1].close()  # the waiter goes away first
        time.sleep(1)
        conns[0].close()  # then the running one is interrupted
        # KeyboardInterrupt in the kernel; the waiter's "n = 2" never ran. A stuck queue would
        # answer with keepalives for ever: the reply must end within a minute.
        c = http.client.HTTPConnection("127.0.0.1", self.cd.port, timeout=60)
        c.request("POST", "/execute", body=json.dumps({"code": "n"}), headers=self.interp_headers())
        resp = c.getresponse()
        lines, deadline = [], time.monotonic() + 60
        while time.monotonic() < deadline:
            line = resp.readline()
            if not line:
                break
            if line.strip():
                lines.append(json.loads(line))
        c.close()
        self.assertTrue(lines and lines[-1]["type"] == "end_of_execution", lines)
        self.assertEqual([x["text"] for x in lines if x["type"] == "result"], ["1"], lines)


class E2BRouting(unittest.TestCase):
    """Plain HTTP against the E2B face: what the SDKs rely on but cannot show."""

    @classmethod
    def setUpClass(cls):
        cls.cd = Coved.for_class(cls, api_key=KEY, extra_args=["--e2b-domain", "sbx.test"])
        st, sb, _ = cls.cd.request("POST", "/v2/sandboxes", {"timeout": 120})
        assert st == 201, (st, sb)
        cls.sb = sb

    def raw(self, method, path, body=None, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.cd.port, timeout=60)
        data = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
        conn.request(method, path, body=data, headers=headers or {})
        resp = conn.getresponse()
        payload = resp.read()
        hdrs = {k.lower(): v for k, v in resp.getheaders()}
        conn.close()
        return resp.status, payload, hdrs

    def sandbox_headers(self, port=49983, sid=None):
        return {"E2b-Sandbox-Id": sid or self.sb["sandboxID"], "E2b-Sandbox-Port": str(port)}

    def test_create_v1_defaults_and_objects(self):
        st, sb, _ = self.cd.request("POST", "/sandboxes", {"metadata": {"k": "v"}})
        self.assertEqual(st, 201, sb)
        self.addCleanup(self.cd.request, "DELETE", "/sandboxes/" + sb["sandboxID"])
        self.assertEqual(sb["clientID"], "6532622b")
        self.assertEqual(sb["envdVersion"], "0.6.13")
        self.assertEqual(sb["domain"], "sbx.test")
        self.assertNotIn("envdUrl", sb)
        st, d, _ = self.cd.request("GET", "/sandboxes/" + sb["sandboxID"] + "-6532622b")
        self.assertEqual(st, 200)
        # /sandboxes defaults to 15 s, /v2/sandboxes to 300 s
        self.assertAlmostEqual(self.ms(d["endAt"]) - self.ms(d["startedAt"]), 15000, delta=2000)
        st, e, _ = self.cd.request("POST", "/sandboxes", {"timeout": 0})
        self.assertEqual((st, e), (400, {"code": 400, "message": "Timeout must be greater than 0"}))
        st, e, _ = self.cd.request("POST", "/sandboxes", {"mcp": {}})
        self.assertEqual((st, e["message"]), (400, "mcp is not supported"))
        st, e, _ = self.cd.request("GET", "/sandboxes/a-b-c")
        self.assertEqual((st, e), (400, {"code": 400, "message": "invalid sandbox ID"}))

    @staticmethod
    def ms(ts):
        import datetime
        return datetime.datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp() * 1000

    def test_v2_list_headers(self):
        st, lst, h = self.cd.request("GET", "/v2/sandboxes?limit=1")
        self.assertEqual(st, 200)
        self.assertEqual(len(lst), 1)
        self.assertIn("x-next-token", h)
        self.assertIn("x-total-running", h)
        st, lst, h = self.cd.request("GET", "/v2/sandboxes?state=paused")
        self.assertEqual((st, lst), (200, []))
        self.assertNotIn("x-total-running", h)

    def test_not_served_and_unknown(self):
        st, e, _ = self.cd.request("POST", "/sandboxes/%s/fork" % self.sb["sandboxID"])
        self.assertEqual((st, e["code"]), (501, 501))
        st, e, _ = self.cd.request("GET", "/secrets")
        self.assertEqual((st, e["code"]), (501, 501))
        st, e, _ = self.cd.request("GET", "/sandboxes/x/y/z")
        self.assertEqual(st, 404)
        self.assertEqual(sorted(e), ["code", "message"])
        st, e, _ = self.cd.request("GET", "/v2/sandboxes", headers={"X-API-Key": "nope"})
        self.assertEqual((st, e["code"]), (401, 401))

    def test_e2b_headers_never_reach_cove_routes(self):
        h = self.sandbox_headers()
        # Cove's /health is 200 {"status":"ok"}; envd's is 204 without a body
        st, body, _ = self.raw("GET", "/health", headers=h)
        self.assertEqual((st, body), (204, b""))
        # a Cove control-plane path is a sandbox path: no sandbox list comes back
        st, body, _ = self.raw("GET", "/api/v1/sandboxes", headers=dict(h, **{"X-API-Key": KEY}))
        self.assertEqual(st, 404)
        self.assertNotIn(self.sb["sandboxID"], body.decode())
        st, body, _ = self.raw("GET", "/v1/sandboxes", headers=dict(h, **{"X-API-Key": KEY}))
        self.assertEqual(st, 404)
        # one header alone
        st, body, _ = self.raw("GET", "/health", headers={"E2b-Sandbox-Id": self.sb["sandboxID"]})
        self.assertEqual((st, json.loads(body)), (400, {"code": 400, "message": "missing header: E2b-Sandbox-Port"}))
        st, body, _ = self.raw("GET", "/health", headers=self.sandbox_headers(port=70000))
        self.assertEqual(json.loads(body)["message"], "invalid sandbox port")
        # preflight of a sandbox request
        st, _, hd = self.raw("OPTIONS", "/files", headers={"Origin": "http://x",
                                                           "Access-Control-Request-Method": "POST",
                                                           "Access-Control-Request-Headers": "e2b-sandbox-id, e2b-sandbox-port"})
        self.assertEqual(st, 204)
        self.assertEqual(hd["access-control-max-age"], "7200")

    def test_envd_dialect_errors(self):
        h = self.sandbox_headers()
        st, body, hd = self.raw("GET", "/envs", headers=h)
        self.assertEqual(st, 401)
        self.assertEqual(json.loads(body)["message"], "unauthorized access, please provide a valid "
                         "access token or method signing if supported")
        self.assertEqual(hd["access-control-allow-origin"], "*")
        tok = dict(h, **{"X-Access-Token": self.sb["envdAccessToken"], "Content-Type": "application/json"})
        st, body, hd = self.raw("POST", "/filesystem.Filesystem/Stat", {"path": "/nope"}, headers=tok)
        self.assertEqual((st, json.loads(body)["code"]), (404, "not_found"))
        st, body, _ = self.raw("POST", "/filesystem.Filesystem/Edit", {"path": "/x"}, headers=tok)
        self.assertEqual((st, json.loads(body)["code"]), (501, "unimplemented"))
        st, body, _ = self.raw("GET", "/init", headers=h)
        self.assertEqual((st, json.loads(body)["code"]), (404, 404))
        st, body, _ = self.raw("GET", "/health", headers=self.sandbox_headers(sid="zzzzzzzzzzzzzzzzzzzz"))
        self.assertEqual((st, json.loads(body)),
                         (502, {"sandboxId": "zzzzzzzzzzzzzzzzzzzz", "message": "The sandbox was not found", "code": 502}))
        st, body, _ = self.raw("GET", "/", headers=self.sandbox_headers(port=8123))
        self.assertEqual((st, json.loads(body)["message"]), (502, "The sandbox is running but port is not open"))

    def test_host_routing(self):
        host = "49983-%s.sbx.test" % self.sb["sandboxID"]
        st, body, _ = self.raw("GET", "/health", headers={"Host": host})
        self.assertEqual((st, body), (204, b""))
        st, body, _ = self.raw("GET", "/envs", headers={"Host": host, "X-Access-Token": self.sb["envdAccessToken"]})
        self.assertEqual(st, 200)
        # any other host under the domain is the control plane
        st, body, _ = self.raw("GET", "/health", headers={"Host": "api.sbx.test"})
        self.assertEqual((st, json.loads(body)), (200, {"status": "ok"}))

    def test_two_teams(self):
        other = self.cd.add_key("team_other")
        # the control plane: invisible (404), also for connect and kill
        for method, path in (("GET", "/sandboxes/%s"), ("POST", "/sandboxes/%s/pause"),
                             ("DELETE", "/sandboxes/%s")):
            st, e, _ = self.cd.request(method, path % self.sb["sandboxID"], headers={"X-API-Key": other})
            self.assertEqual(st, 404, (method, path, e))
        st, lst, _ = self.cd.request("GET", "/v2/sandboxes", headers={"X-API-Key": other})
        self.assertEqual(lst, [])
        # sandbox requests: another team's key is no credential; the sandbox's own token is
        for headers in (dict(self.sandbox_headers(), **{"X-API-Key": other}),
                        {"Host": "49983-%s.sbx.test" % self.sb["sandboxID"], "X-API-Key": other,
                         "Authorization": "Bearer " + other}):
            st, _, _ = self.raw("POST", "/process.Process/List", b"{}",
                                headers=dict(headers, **{"Content-Type": "application/json"}))
            self.assertEqual(st, 401)
            st, _, _ = self.raw("GET", "/files?path=/etc/hostname", headers=headers)
            self.assertEqual(st, 401)
            st, _, _ = self.raw("POST", "/execute", {"code": "1"}, headers=dict(headers, **{
                "E2b-Sandbox-Port": "49999"} if "E2b-Sandbox-Id" in headers else {"Host": "49999-%s.sbx.test" % self.sb["sandboxID"]}))
            self.assertEqual(st, 401)


if __name__ == "__main__":
    unittest.main()
