"""The build plane through a real coved (build-plane.md): templates from OCI images served by a
loopback registry, Dockerfiles with a context, steps, the cache, sandboxes made of the layers,
and the routes' shapes and errors."""
import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest
import urllib.parse

import buildfix as bf
import registryfix as rf
from coveharness import BUILD, Coved, Sandbox

MISSING = rf.tools_missing()


@unittest.skipIf(MISSING, "missing tools: %s (make deps installs them)" % ", ".join(MISSING))
class BuildPlaneTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.reg = rf.Registry().start()
        rf.busybox_image(cls.reg, "library/busybox", "1.36", env=["IMAGE_VAR=from-image"])
        cls.image = "%s/library/busybox:1.36" % cls.reg.host
        cls.cd = Coved(extra_args=["--registry-mirror", "docker.io=%s,only" % cls.reg.url]).start()

    @classmethod
    def tearDownClass(cls):
        cls.cd.stop()
        cls.cd.purge()
        cls.reg.close()

    def api(self, method, path, body=None, **kw):
        return self.cd.api(method, path, body, **kw)

    def create(self, body, status=202):
        st, out, _ = self.api("POST", "/templates", body)
        self.assertEqual(st, status, out)
        return out

    def ready(self, tid, bid):
        s, logs = bf.wait_build(self.cd, tid, bid)
        self.assertEqual(s["status"], "ready", json.dumps(logs, indent=1)[-3000:])
        return s, logs

    # -- images, steps, sandboxes --
    def test_image_steps_and_sandbox(self):
        out = self.create({"name": "steps-demo", "image": self.image, "envs": {"TPL": "t"}})
        self.assertEqual(set(out), {"templateID", "buildID", "public", "names", "tags", "aliases"})
        self.assertEqual((out["names"], out["tags"], out["aliases"], out["public"]),
                         (["steps-demo"], ["latest"], [], False))
        tid = out["templateID"]
        self.assertRegex(tid, r"^tpl-[0-9a-f]{16}$")
        self.ready(tid, out["buildID"])
        st, b, _ = self.api("POST", "/templates/%s/builds" % tid, {"steps": [
            {"type": "RUN", "args": ["echo built > /built.txt && echo $IMAGE_VAR $TPL"]},
            {"type": "ENV", "args": ["GREETING", "hi there"]},
            {"type": "WORKDIR", "args": ["/srv/app"]},
            {"type": "RUN", "args": ["pwd > where.txt"]}]})
        self.assertEqual(st, 202, b)
        self.assertEqual(set(b), {"buildID", "templateID", "status", "image", "errorMessage",
                                  "createdAt", "updatedAt", "finishedAt"})
        s, logs = self.ready(tid, b["buildID"])
        msgs = [e["message"] for e in logs]
        self.assertIn("from-image t", msgs)
        self.assertTrue(all(e["step"] in ("base", "1", "2", "3", "4", "finalize") for e in logs))
        self.assertEqual(s["logs"], [e["message"] for e in s["logEntries"]])
        st, bresp, _ = self.api("GET", "/templates/%s/builds/%s" % (tid, b["buildID"]))
        self.assertEqual(bresp["image"], "cove/%s:%s" % (tid, b["buildID"]))
        sb = self.cd.create(templateID=tid)
        r = sb.run("/bin/sh", "-c", "cat /built.txt; echo $GREETING; pwd; cat /srv/app/where.txt")
        self.assertEqual(r["stdout"], "built\nhi there\n/srv/app\n/srv/app\n", r)
        sb.delete()

        # the same steps again: every layer comes from the cache
        st, b2, _ = self.api("POST", "/templates/%s/builds" % tid, {"steps": [
            {"type": "RUN", "args": ["echo built > /built.txt && echo $IMAGE_VAR $TPL"]},
            {"type": "ENV", "args": ["GREETING", "hi there"]},
            {"type": "WORKDIR", "args": ["/srv/app"]},
            {"type": "RUN", "args": ["pwd > where.txt"]}]})
        s2, logs2 = self.ready(tid, b2["buildID"])
        made = [e["message"] for e in logs2 if e["message"].startswith("made layer")]
        cached = [e["message"] for e in logs2 if e["message"].startswith("cached")]
        self.assertEqual(made, [])
        self.assertEqual(len(cached), 3, [e["message"] for e in logs2])
        self.assertFalse(any(e["message"].startswith("from-image") for e in logs2))

        # a failing step fails the build, naming the step
        st, b3, _ = self.api("POST", "/templates/%s/builds" % tid,
                             {"steps": [{"type": "RUN", "args": ["echo about to fail; exit 3"]}]})
        s3, logs3 = bf.wait_build(self.cd, tid, b3["buildID"])
        self.assertEqual(s3["status"], "error")
        self.assertEqual(s3["reason"]["step"], "1")
        self.assertIn("exited with status 3", s3["reason"]["message"])
        self.assertIn("about to fail", [e["message"] for e in logs3])
        # the template still serves its last ready build
        st, t, _ = self.api("GET", "/templates/%s" % tid)
        self.assertEqual(t["buildID"], b2["buildID"])
        self.assertEqual(t["buildStatus"], "ready")

    def test_dockerfile_with_context(self):
        df = ("FROM %s\nARG WHO=world\nENV APP_HOME=/opt/app PATH=$PATH:/opt/app/bin\n"
              "WORKDIR $APP_HOME\nCOPY --chown=1000:1000 app/ ./\nCOPY run.sh bin/\n"
              "RUN echo hello $WHO > greeting.txt && chmod 755 bin/run.sh\n"
              "USER user\nRUN id -u > /tmp/uid && cp /tmp/uid ./uid.txt || true\n"
              "EXPOSE 8080\nCMD [\"run.sh\"]\n" % self.image)
        out = self.create({"name": "df-demo"})
        tid = out["templateID"]
        ctx = bf.targz({"app/": None, "app/main.py": b"print(1)\n", "run.sh": b"#!/bin/sh\necho run\n",
                        "Dockerfile": df.encode()})
        h, _ = bf.upload(self.cd, tid, ctx)
        st, body, _ = self.api("GET", "/templates/%s/files/%s" % (tid, h))
        self.assertTrue(body["present"])
        st, _, _ = self.api("PATCH", "/templates/%s" % tid, {"dockerfile": df})
        self.assertEqual(st, 200)
        st, b, _ = self.api("POST", "/templates/%s/builds/%s" % (tid, "my-build-1"), {"filesHash": h})
        self.assertEqual((st, b), (202, {}))
        s, logs = self.ready(tid, "my-build-1")
        sb = self.cd.create(templateID=tid)
        r = sb.run("/bin/sh", "-c", "pwd; cat greeting.txt; ls -ln main.py | awk '{print $3\":\"$4}';"
                   " run.sh; echo $PATH; cat uid.txt")
        self.assertEqual(r["stdout"].splitlines()[:4], ["/opt/app", "hello world", "1000:1000", "run"], r)
        self.assertTrue(r["stdout"].splitlines()[4].endswith(":/opt/app/bin"), r)
        st, t, _ = self.api("GET", "/templates/%s" % tid)
        self.assertEqual(t["imageSource"], "dockerfile")
        sb.delete()

    def test_bad_inputs(self):
        st, e, _ = self.api("POST", "/templates", {"name": "x", "dockerfile": "FROM a\nFROM b\n"})
        self.assertEqual(st, 400)
        self.assertIn("multi-stage builds are not supported", e["message"])
        st, e, _ = self.api("POST", "/templates", {"name": "tpl-x"})
        self.assertEqual(st, 400)
        st, e, _ = self.api("POST", "/templates", {"name": "x", "extensions": {"storageType": "nfs"}})
        self.assertEqual((st, e["message"]), (400, "storageType 'nfs' is not supported"))
        out = self.create({"name": "bad-inputs"})
        tid = out["templateID"]
        st, e, _ = self.api("POST", "/templates/%s/builds/%s" % (tid, "Not_A_Label"), {})
        self.assertEqual(st, 400)
        st, e, _ = self.api("POST", "/templates/%s/builds" % tid,
                            {"fromImage": "a", "fromTemplate": "base"})
        self.assertEqual(st, 400)
        st, e, _ = self.api("POST", "/templates/%s/builds" % tid, {"steps": [
            {"type": "COPY", "args": ["a", "/b"], "filesHash": "0" * 64}]})
        self.assertEqual(st, 400)
        self.assertIn("files for hash '%s' have not been uploaded" % ("0" * 64), e["message"])
        st, e, _ = self.api("GET", "/templates/nope-nope")
        self.assertEqual((st, e["message"]), (404, "template 'nope-nope' not found"))
        st, e, _ = self.api("PATCH", "/templates/%s" % tid, {})
        self.assertEqual((st, e["message"]), (400, "no updatable template fields"))
        # an image that does not exist: the build fails, the request did not
        st, b, _ = self.api("POST", "/templates/%s/builds" % tid, {"fromImage": "%s/no/such:1" % self.reg.host})
        self.assertEqual(st, 202)
        s, _ = bf.wait_build(self.cd, tid, b["buildID"])
        self.assertEqual(s["status"], "error")
        self.assertIn("no/such", s["reason"]["message"])

    def test_trigger_shapes_and_tag_handover(self):
        out = self.create({"name": "handover", "tags": ["v1", "stable"]})
        tid, initial = out["templateID"], out["buildID"]
        st, b, _ = self.api("GET", "/templates/%s/builds/%s" % (tid, initial))
        self.assertEqual(b["status"], "waiting")
        st, body, _ = self.api("POST", "/templates/%s/builds/%s" % (tid, "client-id"),
                               {"fromImage": self.image})
        self.assertEqual((st, body), (202, {}))
        st, old, _ = self.api("GET", "/templates/%s/builds/%s" % (tid, initial))
        self.assertEqual(old["status"], "cancelled")
        st, e, _ = self.api("POST", "/templates/%s/builds/%s" % (tid, "client-id"), {})
        self.assertEqual(st, 409)
        self.assertIn("build 'client-id' already started", e["message"])
        self.ready(tid, "client-id")
        st, tags, _ = self.api("GET", "/templates/%s/tags" % tid)
        self.assertEqual([(t["tag"], t["buildID"]) for t in tags], [("stable", "client-id"), ("v1", "client-id")])
        st, res, _ = self.api("GET", "/templates/resolve/handover:v1")
        self.assertEqual((res["templateID"], res["buildID"]), (tid, "client-id"))
        st, e, _ = self.api("GET", "/templates/resolve/handover:nope")
        self.assertEqual((st, e["message"]), (404, "tag 'nope' not found on template 'handover'"))
        st, lst, _ = self.api("GET", "/templates/%s/builds" % tid)
        self.assertEqual(lst["total"], 2)
        self.assertEqual([x["buildID"] for x in lst["builds"]], ["client-id", initial])

    def test_tags_and_rollback(self):
        out = self.create({"name": "rollback", "image": self.image})
        tid, b1 = out["templateID"], out["buildID"]
        self.ready(tid, b1)
        st, b2, _ = self.api("POST", "/templates/%s/builds" % tid,
                             {"steps": [{"type": "RUN", "args": ["touch /second"]}]})
        self.ready(tid, b2["buildID"])
        st, t, _ = self.api("GET", "/templates/%s" % tid)
        self.assertEqual(t["buildID"], b2["buildID"])
        st, t, _ = self.api("POST", "/templates/%s/rollback" % tid, {"buildID": b1})
        self.assertEqual((st, t["buildID"]), (200, b1))
        sb = self.cd.create(templateID=tid)
        self.assertNotEqual(sb.run("/bin/sh", "-c", "test -e /second")["exit_code"], 0)
        sb.delete()
        # a ":tag" naming another build than the current one makes sandboxes of that build
        st, res, _ = self.api("POST", "/templates/tags", {"target": "rollback:%s" % b2["buildID"],
                                                          "tags": ["second"]})
        self.assertEqual(st, 201, res)
        sb = self.cd.create(templateID="rollback:second")
        self.assertEqual(sb.run("/bin/sh", "-c", "test -e /second")["exit_code"], 0)
        sb.delete()
        st, e, _ = self.api("POST", "/sandboxes", {"templateID": "rollback:absent"})
        self.assertEqual(st, 404, e)
        st, e, _ = self.api("POST", "/templates/%s/rollback" % tid, {"buildID": "nope"})
        self.assertEqual(st, 404)
        st, e, _ = self.api("POST", "/templates/%s/rollback" % tid, {})
        self.assertEqual(st, 400)
        st, res, _ = self.api("POST", "/templates/tags", {"target": "rollback:%s" % b2["buildID"], "tags": ["new"]})
        self.assertEqual((st, res), (201, {"tags": ["new"], "buildID": b2["buildID"]}))
        st, _, _ = self.cd.request("DELETE", "/api/v1/templates/tags", {"name": "rollback", "tags": ["new", "absent"]})
        self.assertEqual(st, 204)
        st, tags, _ = self.api("GET", "/templates/%s/tags" % tid)
        self.assertNotIn("new", [x["tag"] for x in tags])

    def test_teams_visibility_and_aliases(self):
        other = bf.add_key(self.cd, "team_other")
        out = self.create({"name": "private-one", "alias": "shared-alias-%s" % os.urandom(3).hex(), "image": self.image})
        tid = out["templateID"]
        alias = out["aliases"][0]
        self.ready(tid, out["buildID"])
        st, e, _ = bf.as_key(self.cd, other, "GET", "/templates/%s" % tid)
        self.assertEqual(st, 404)
        st, e, _ = bf.as_key(self.cd, other, "GET", "/templates/aliases/%s" % alias)
        self.assertEqual(st, 404)
        # nor can it make sandboxes of it, by ID, name or alias
        for ref in (tid, "private-one", alias):
            st, e, _ = bf.as_key(self.cd, other, "POST", "/sandboxes", {"templateID": ref})
            self.assertEqual((st, e.get("message")), (404, "template '%s' not found" % ref), e)
        # aliases are server-wide
        st, e, _ = bf.as_key(self.cd, other, "POST", "/templates", {"name": "mine", "alias": alias})
        self.assertEqual(st, 409)
        self.assertEqual(e["error"]["code"], "ALREADY_EXISTS")
        # public: usable by everyone, changeable by its owners only
        st, _, _ = self.api("PATCH", "/templates/%s" % tid, {"public": True})
        self.assertEqual(st, 200)
        st, res, _ = bf.as_key(self.cd, other, "GET", "/templates/aliases/%s" % alias)
        self.assertEqual((st, res), (200, {"templateID": tid, "public": True}))
        st, e, _ = bf.as_key(self.cd, other, "PATCH", "/templates/%s" % tid, {"cpuCount": 1})
        self.assertEqual(st, 403)
        st, e, _ = bf.as_key(self.cd, other, "DELETE", "/templates/%s" % tid)
        self.assertEqual(st, 403)
        st, sbo, _ = bf.as_key(self.cd, other, "POST", "/sandboxes", {"templateID": alias})
        self.assertEqual(st, 201, sbo)  # public: by ID or alias
        bf.as_key(self.cd, other, "DELETE", "/sandboxes/" + sbo["sandboxID"])
        # names of other teams' public templates do not resolve
        st, e, _ = bf.as_key(self.cd, other, "GET", "/templates/resolve/private-one")
        self.assertEqual(st, 404)
        # official: admin only
        st, e, _ = bf.as_key(self.cd, other, "POST", "/templates", {"name": "off", "visibility": "official"})
        self.assertEqual(st, 403)
        st, lst, _ = bf.as_key(self.cd, other, "GET", "/templates")
        names = [x["names"][0] for x in lst]
        self.assertIn("base", names)
        self.assertIn("private-one", names)

    def test_upload_signatures(self):
        out = self.create({"name": "uploads"})
        tid = out["templateID"]
        archive = bf.targz({"a.txt": b"a"})
        h = __import__("hashlib").sha256(archive).hexdigest()
        st, body, _ = self.api("GET", "/templates/%s/files/%s" % (tid, h))
        self.assertEqual(body["present"], False)
        u = urllib.parse.urlsplit(body["url"])
        self.assertEqual(u.path, "/build-files/%s/%s" % (tid, h))
        q = urllib.parse.parse_qs(u.query)
        bad = u.path + "?expires=%s&signature=%s" % (q["expires"][0], "0" * 64)
        st, e, _ = self.cd.request("PUT", bad, archive, auth=False)
        self.assertEqual(st, 403)
        st, e, _ = self.cd.request("PUT", u.path + "?" + u.query, b"not this", auth=False)
        self.assertEqual(st, 400)
        other = bf.targz({"b.txt": b"b"})
        oh = __import__("hashlib").sha256(b"junk").hexdigest()
        st, body2, _ = self.api("GET", "/templates/%s/files/%s" % (tid, oh))
        u2 = urllib.parse.urlsplit(body2["url"])
        st, e, _ = self.cd.request("PUT", u2.path + "?" + u2.query, b"junk", auth=False)
        self.assertEqual(st, 400)  # right hash, not a gzip tar
        st, _, _ = self.cd.request("PUT", u.path + "?" + u.query, archive, auth=False)
        self.assertEqual(st, 204)
        st, body, _ = self.api("GET", "/templates/%s/files/%s" % (tid, h))
        self.assertTrue(body["present"])
        st, e, _ = self.api("GET", "/templates/%s/files/%s" % (tid, "ABC"))
        self.assertEqual(st, 400)
        del other

    def test_direct_build_and_docker_io_names(self):
        st, out, _ = self.cd.request("POST", "/build", {"project": "proj", "image": "app", "tag": "v1",
                                                        "dockerfile": "FROM busybox:1.36\nRUN echo direct > /d\n"})
        self.assertEqual(st, 202, out)
        self.assertEqual(out["imageFullName"], "cove/proj/app:v1")
        self.ready(out["templateID"], out["buildID"])
        st, res, _ = self.api("GET", "/templates/resolve/proj-app:v1")
        self.assertEqual(res["buildID"], out["buildID"])
        st, e, _ = self.cd.request("POST", "/build", {"project": "proj", "image": "app", "tag": "v2",
                                                      "dockerfile": "FROM busybox\nCOPY a /a\n"})
        self.assertEqual(st, 400)

    def test_start_cmd_service_through_the_proxy_and_ready_cmd(self):
        out = self.create({"name": "web", "image": self.image,
                           "startCmd": "mkdir -p /www && echo hello-from-template > /www/index.html"
                                       " && exec busybox httpd -f -p 8080 -h /www",
                           "readyCmd": "busybox wget -q -O- http://127.0.0.1:8080/ | grep -q hello"})
        tid = out["templateID"]
        self.ready(tid, out["buildID"])
        sb = self.cd.create(templateID=tid)  # waitReady: answers once readyCmd succeeds
        st, data, _ = sb.rt("GET", "/proxy/8080/index.html", raw=True)
        self.assertEqual((st, data), (200, b"hello-from-template\n"))
        sb.delete()
        st, t, _ = self.api("GET", "/templates/%s" % tid)
        self.assertEqual(t["spawnCount"], 1)
        self.assertIsNotNone(t["lastSpawnedAt"])
        # PATCH changes what sandboxes created afterwards run
        st, _, _ = self.api("PATCH", "/templates/%s" % tid, {"startCmd": "echo patched > /started",
                                                             "readyCmd": "test -s /started"})
        self.assertEqual(st, 200)
        sb = self.cd.create(templateID=tid)
        deadline = time.monotonic() + 10
        while sb.run("/bin/sh", "-c", "cat /started")["stdout"] != "patched\n" and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertEqual(sb.run("/bin/sh", "-c", "cat /started")["stdout"], "patched\n")
        sb.delete()

    def test_start_and_ready_cmd_output_in_logs(self):
        """control-plane.md §8: each line of the startCmd's output and of failed readyCmd runs
        is a log entry with source start_cmd / ready_cmd; identical failures are counted."""
        out = self.create({"name": "chatty", "image": self.image,
                           "startCmd": "echo out-one; echo err-one >&2; sleep 1; touch /ready; "
                                       "echo out-two; printf 'no newline'; exec sleep 1000",
                           "readyCmd": "test -e /ready || { echo not-yet; exit 3; }"})
        self.ready(out["templateID"], out["buildID"])
        sb = self.cd.create(templateID=out["templateID"])
        want = {("start_cmd", "info", "out-one"), ("start_cmd", "warn", "err-one"),
                ("start_cmd", "info", "out-two"), ("ready_cmd", "info", "not-yet"),
                ("ready_cmd", "warn", "readyCmd failed with exit code 3")}
        deadline = time.monotonic() + 20
        while True:
            st, page, _ = self.api("GET", "/sandboxes/%s/logs?limit=1000" % sb.id)
            self.assertEqual(st, 200, page)
            got = {(e["fields"]["source"], e["level"], e["message"]) for e in page["logs"]}
            if want <= got or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        self.assertLessEqual(want, got, page["logs"])
        msgs = [e["message"] for e in page["logs"] if e["fields"]["source"] == "ready_cmd"]
        self.assertEqual(msgs.count("not-yet"), 1, msgs)  # retries that failed alike: counted
        self.assertTrue(any(m.startswith("readyCmd failed the same way") for m in msgs), msgs)
        starts = [e for e in page["logs"] if e["fields"]["source"] == "start_cmd"]
        self.assertTrue(starts[0]["message"].startswith("startCmd started: "), starts)
        self.assertLess([e["message"] for e in starts].index("out-one"),
                        [e["message"] for e in starts].index("out-two"))
        # the search filter finds them like any entry
        st, page, _ = self.api("GET", "/sandboxes/%s/logs?search=ERR-ONE&level=warn" % sb.id)
        self.assertEqual([e["message"] for e in page["logs"]], ["err-one"])
        # the service's end is logged too, after its last partial line
        sb.run("/bin/sh", "-c", "pkill -f 'sleep 1000' || killall sleep")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            st, page, _ = self.api("GET", "/sandboxes/%s/logs?search=startCmd+ended" % sb.id)
            if page["logs"]:
                break
            time.sleep(0.2)
        self.assertEqual([(e["level"], e["fields"]["source"]) for e in page["logs"]],
                         [("error", "start_cmd")], page)
        self.assertIn("no newline", [e["message"] for e in self.api(
            "GET", "/sandboxes/%s/logs?limit=1000" % sb.id)[1]["logs"]])
        sb.delete()

    def test_volume_mounts_are_default_mounts(self):
        st, v, _ = self.api("POST", "/volumes", {"name": "tplcache"})
        self.assertEqual(st, 201, v)
        out = self.create({"name": "with-mounts", "image": self.image, "extensions": {
            "volumeMounts": [{"name": "tplcache", "path": "/cache", "storageType": "x"}]}})
        tid = out["templateID"]
        self.ready(tid, out["buildID"])
        st, t, _ = self.api("GET", "/templates/%s" % tid)
        self.assertEqual(t["extensions"]["volumeMounts"], [{"name": "tplcache", "path": "/cache"}])
        sb = self.cd.create(templateID=tid)
        st, info, _ = self.api("GET", "/sandboxes/" + sb.id)
        self.assertEqual(info["volumeMounts"], [{"name": "tplcache", "path": "/cache"}])
        r = sb.run("/bin/sh", "-c", "echo kept > /cache/f && cat /cache/f")
        self.assertEqual(r["stdout"], "kept\n", r)
        sb.delete()
        # the request's mount on the same path wins; an unknown volume is the create's 404
        st, v2, _ = self.api("POST", "/volumes", {"name": "other"})
        st, b, _ = self.api("POST", "/sandboxes", {"templateID": tid, "volumeMounts": [
            {"name": "other", "path": "/cache"}]})
        self.assertEqual(st, 201, b)
        st, info, _ = self.api("GET", "/sandboxes/" + b["sandboxID"])
        self.assertEqual(info["volumeMounts"], [{"name": "other", "path": "/cache"}])
        self.api("DELETE", "/sandboxes/" + b["sandboxID"])
        st, _, _ = self.api("PATCH", "/templates/%s" % tid,
                            {"volumeMounts": [{"name": "missing", "path": "/m"}]})
        self.assertIn(st, (200, 202))
        st, e, _ = self.api("POST", "/sandboxes", {"templateID": tid})
        self.assertEqual((st, e.get("message")), (404, "volume 'missing' not found"), e)

    def test_team_quotas_templates_and_concurrent_builds(self):
        st, lim, _ = self.api("PUT", "/admin/teams/team_default/limits", {"concurrentBuilds": 1})
        self.assertEqual(st, 200, lim)
        try:
            a = self.create({"name": "quota-a"})  # untriggered: counts for nothing
            b = self.create({"name": "quota-b"})
            st, ba, _ = self.api("POST", "/templates/%s/builds" % a["templateID"], {
                "fromImage": self.image, "steps": [{"type": "RUN", "args": ["sleep 3"]}]})
            self.assertEqual(st, 202, ba)
            st, e, _ = self.api("POST", "/templates/%s/builds" % b["templateID"],
                                {"fromImage": self.image})
            self.assertEqual(st, 429, e)
            self.assertIn("concurrentBuilds", json.dumps(e))
            st, e, _ = self.api("POST", "/templates", {"name": "quota-c", "image": self.image})
            self.assertEqual(st, 429, e)
            st, _, _ = self.api("GET", "/templates/quota-c")
            self.assertEqual(st, 404)  # refused before anything changed
            self.ready(a["templateID"], ba["buildID"])
            st, bb, _ = self.api("POST", "/templates/%s/builds" % b["templateID"],
                                 {"fromImage": self.image})
            self.assertEqual(st, 202, bb)
            self.ready(b["templateID"], bb["buildID"])
            # templates: one more than the team has is refused
            st, lim, _ = self.api("PUT", "/admin/teams/team_default/limits", {"templates": 1})
            self.assertEqual(st, 200, lim)
            st, e, _ = self.api("POST", "/templates", {"name": "quota-d"})
            self.assertEqual(st, 429, e)
            self.assertIn("templates", json.dumps(e))
        finally:
            self.api("PUT", "/admin/teams/team_default/limits", {"concurrentBuilds": None, "templates": None})

    def test_aws_registry_credentials(self):
        """build-plane.md §7.1 `{"type": "aws"}`: the keys sign ECR's GetAuthorizationToken
        (checked by an independent SigV4 implementation), its token is the registry's Basic
        credentials; wrong keys are a build error with AWS's message and no secret."""
        secret, password = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "ecr-" + os.urandom(8).hex()
        ecr = rf.FakeECR({"AKIDEXAMPLE": secret}, password)
        reg = rf.Registry(storage=self.reg.storage, htpasswd={"AWS": password}).start()
        cd = Coved(extra_args=["--aws-ecr-endpoint", ecr.url]).start()
        try:
            image = "%s/library/busybox:1.36" % reg.host
            creds = {"type": "aws", "awsAccessKeyId": "AKIDEXAMPLE", "awsSecretAccessKey": secret,
                     "awsRegion": "eu-west-3"}
            def build(name, registry):
                st, t, _ = cd.api("POST", "/templates", {"name": name})
                self.assertIn(st, (201, 202), t)
                st, out, _ = cd.api("POST", "/templates/%s/builds" % t["templateID"], {
                    "fromImage": image, "fromImageRegistry": registry})
                self.assertEqual(st, 202, out)
                out["templateID"] = t["templateID"]
                return out
            out = build("from-ecr", creds)
            s, logs = bf.wait_build(cd, out["templateID"], out["buildID"])
            self.assertEqual(s["status"], "ready", json.dumps(logs)[-2000:])
            self.assertEqual([r["why"] for r in ecr.requests], ["eu-west-3"])
            sb = cd.create(templateID=out["templateID"])
            self.assertEqual(sb.run("/bin/sh", "-c", "echo $IMAGE_VAR")["stdout"], "from-image\n")
            sb.delete()
            # wrong secret: AWS refuses, the build fails naming why, never the secret
            bad = dict(creds, awsSecretAccessKey="not-the-secret")
            out = build("from-ecr-bad", bad)
            s, logs = bf.wait_build(cd, out["templateID"], out["buildID"])
            self.assertEqual(s["status"], "error", s)
            text = json.dumps([s, logs]) + cd.read_log()
            self.assertIn("UnrecognizedClientException", text)
            self.assertEqual(ecr.requests[-1]["why"], "signature mismatch")
            for sec in (secret, "not-the-secret", password):
                self.assertNotIn(sec, text)
            st, t, _ = cd.api("GET", "/templates/" + out["templateID"])
            self.assertNotIn("not-the-secret", json.dumps(t))
            # a region that is not one: refused before any request
            n = len(ecr.requests)
            st, t, _ = cd.api("POST", "/templates", {"name": "from-ecr-region"})
            st, out, _ = cd.api("POST", "/templates/%s/builds" % t["templateID"], {
                "fromImage": image, "fromImageRegistry": dict(creds, awsRegion="x/../y")})
            if st == 202:
                s, logs = bf.wait_build(cd, t["templateID"], out["buildID"])
                self.assertEqual(s["status"], "error", s)
                self.assertIn("awsRegion", json.dumps([s, logs]))
            else:
                self.assertEqual(st, 400, out)
            self.assertEqual(len(ecr.requests), n)
        finally:
            cd.stop()
            cd.purge()
            reg.close()
            ecr.close()

    def test_ready_cmd_gate_fails(self):
        """A readyCmd that never succeeds fails a waitReady create, bounded by --ready-wait."""
        cd = Coved(extra_args=["--ready-wait", "2", "--registry-mirror", "docker.io=%s,only" % self.reg.url]).start()
        try:
            st, out, _ = cd.api("POST", "/templates", {"name": "never-ready", "image": self.image,
                                                       "readyCmd": "test -e /never"})
            s, _ = bf.wait_build(cd, out["templateID"], out["buildID"])
            self.assertEqual(s["status"], "ready")
            st, e, _ = cd.api("POST", "/sandboxes", {"templateID": out["templateID"], "waitReady": True})
            self.assertEqual(st, 500, e)
            self.assertIn("readyCmd did not succeed", e["message"])
            st, lst, _ = cd.api("GET", "/sandboxes")
            self.assertEqual(lst, [])
            # without waitReady the sandbox starts and readiness is not awaited
            st, sb, _ = cd.api("POST", "/sandboxes", {"templateID": out["templateID"]})
            self.assertEqual(st, 201, sb)
        finally:
            cd.stop()
            cd.purge()

    def test_deep_image_is_flattened_at_the_bottom(self):
        """60 layers do not fit one overlay mount: the bottom ones are flattened into one
        layer, which shows exactly what the stack shows."""
        layers = [rf.make_layer([("bin/busybox", "f", open("/bin/busybox", "rb").read(), 0o755),
                                 ("bin/sh", "l", "busybox", 0o777), ("gone", "f", b"x", 0o644),
                                 ("d/old", "f", b"o", 0o644)])]
        for i in range(1, 59):
            layers.append(rf.make_layer([("l/%02d" % i, "f", b"%d" % i, 0o644)]))
        layers.append(rf.make_layer([(".wh.gone", "f", b"", 0o644), ("d/.wh..wh..opq", "f", b"", 0o644),
                                     ("d/new", "f", b"n", 0o644)]))
        rf.push_image(self.reg, "test/deep", "v1", layers)
        out = self.create({"name": "deep", "image": "%s/test/deep:v1" % self.reg.host})
        tid = out["templateID"]
        self.ready(tid, out["buildID"])
        sb = self.cd.create(templateID=tid)
        r = sb.run("/bin/sh", "-c", "ls /l | wc -l; cat /l/01 /l/58; ls /d; test -e /gone || echo gone")
        self.assertEqual(r["stdout"], "58\n158new\ngone\n", r)  # files without newlines
        sb.delete()

    def cove(self, *args, cwd=None):
        env = dict(os.environ, COVE_URL="http://127.0.0.1:%d" % self.cd.port,
                   COVE_API_KEY=self.cd.api_key,
                   COVE_CONFIG=os.path.join(self.cd.data_dir, "no-cli-config.json"))
        p = subprocess.run([os.path.join(BUILD, "cove")] + list(args), cwd=cwd, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=300)
        return p.returncode, p.stdout, p.stderr

    def test_cli_template_build(self):
        work = tempfile.mkdtemp(prefix="cove-test-cli-build-")
        try:
            with open(os.path.join(work, "Dockerfile"), "w") as f:
                f.write("FROM busybox:1.36\nWORKDIR /app\nCOPY app/ ./\nCOPY *.txt ./\n"
                        "RUN echo built-by-cli > marker\nCMD [\"sh\", \"-c\", \"echo started > /tmp/s\"]\n")
            os.makedirs(os.path.join(work, "app"))
            with open(os.path.join(work, "app", "main.sh"), "w") as f:
                f.write("echo main\n")
            for n in ("a.txt", "b.txt"):
                with open(os.path.join(work, n), "w") as f:
                    f.write(n + "\n")
            rc, out, err = self.cove("template", "build", "cli-demo:v1", cwd=work)
            self.assertEqual(rc, 0, out + err)
            self.assertIn("RUN echo built-by-cli > marker", err)  # the log, live on stderr
            self.assertIn("ready", out)
            rc, out, err = self.cove("template", "get", "cli-demo", "--output", "json")
            t = json.loads(out)
            self.assertEqual(t["tags"], ["v1"])
            sb = self.cd.create(templateID=t["templateID"])
            r = sb.run("/bin/sh", "-c", "cat /app/marker /app/main.sh /app/a.txt /app/b.txt")
            self.assertEqual(r["stdout"], "built-by-cli\necho main\na.txt\nb.txt\n", r)
            sb.delete()
            # the same again: uploads are present, every layer is cached
            rc, out, err = self.cove("template", "build", "cli-demo:v2", cwd=work)
            self.assertEqual(rc, 0, err)
            self.assertNotIn("made layer", err)
            # rollback to the first build through the CLI
            rc, out, err = self.cove("template", "rollback", "cli-demo", t["buildID"],
                                     "--output", "json")
            self.assertEqual(rc, 0, out + err)
            self.assertEqual(json.loads(out)["buildID"], t["buildID"])
            # a variable of the base image: the server converts the Dockerfile
            with open(os.path.join(work, "Dockerfile"), "w") as f:
                f.write("FROM busybox:1.36\nENV PATH=$PATH:/opt/x\nCOPY a.txt /a.txt\n")
            rc, out, err = self.cove("template", "build", "cli-srv", cwd=work)
            self.assertEqual(rc, 0, out + err)
            sb = self.cd.create(templateID="cli-srv")
            r = sb.run("/bin/sh", "-c", "echo $PATH; cat /a.txt")
            self.assertTrue(r["stdout"].splitlines()[0].endswith(":/opt/x"), r)
            sb.delete()
            # a failing build: exit 1 with the reason
            with open(os.path.join(work, "Dockerfile"), "w") as f:
                f.write("FROM busybox:1.36\nRUN exit 7\n")
            rc, out, err = self.cove("template", "build", "cli-fail", cwd=work)
            self.assertEqual(rc, 1)
            self.assertIn("exited with status 7", err)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def test_delete_and_gc(self):
        out = self.create({"name": "gc-me", "image": self.image})
        tid = out["templateID"]
        self.ready(tid, out["buildID"])
        st, b, _ = self.api("POST", "/templates/%s/builds" % tid,
                            {"steps": [{"type": "RUN", "args": ["echo unique-%s > /u" % os.urandom(4).hex()]}]})
        self.ready(tid, b["buildID"])
        layers = os.path.join(self.cd.data_dir, "layers")
        sb = self.cd.create(templateID=tid)
        before = set(os.listdir(layers))
        st, _, _ = self.api("DELETE", "/templates/%s" % tid)
        self.assertEqual(st, 204)
        st, _, _ = self.api("GET", "/templates/%s" % tid)
        self.assertEqual(st, 404)
        # its sandbox keeps running on its layers (§5.4): GC keeps them while it exists
        time.sleep(1.5)
        self.assertEqual(set(os.listdir(layers)), before)
        r = sb.run("/bin/sh", "-c", "cat /u")
        self.assertTrue(r["stdout"].startswith("unique-"), r)
        sb.delete()
        # the next GC (the next deletion) collects them
        out2 = self.create({"name": "gc-trigger", "image": self.image})
        self.ready(out2["templateID"], out2["buildID"])
        st, _, _ = self.api("DELETE", "/templates/%s" % out2["templateID"])
        self.assertEqual(st, 204)
        # the RUN layer belonged to this template only: GC takes it (the image layer may stay
        # while other templates use it)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            after = set(os.listdir(layers))
            if len(after) < len(before):
                break
            time.sleep(0.2)
        self.assertLess(len(set(os.listdir(layers))), len(before))
        self.assertEqual(os.listdir(os.path.join(layers, ".tmp")), [])


@unittest.skipIf(MISSING, "missing tools: %s (make deps installs them)" % ", ".join(MISSING))
class BuildCrashTest(unittest.TestCase):
    def test_kill9_during_a_build(self):
        with rf.Registry() as reg:
            rf.busybox_image(reg, "test/bb", "1")
            cd = Coved().start()
            try:
                st, out, _ = cd.api("POST", "/templates", {"name": "crash"})
                tid = out["templateID"]
                # a sleep no other process on the host has (pgrep -f looks host-wide)
                sleeper = "sleep %d" % (600000 + int.from_bytes(os.urandom(3), "big") % 300000)
                st, b, _ = cd.api("POST", "/templates/%s/builds" % tid, {
                    "fromImage": "%s/test/bb:1" % reg.host,
                    "steps": [{"type": "RUN", "args": [sleeper]}]})
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline:
                    st, s, _ = cd.api("GET", "/templates/%s/builds/%s/status" % (tid, b["buildID"]))
                    if any(e["message"].startswith("RUN") for e in s["logEntries"]):
                        break
                    time.sleep(0.2)
                time.sleep(1)
                running = subprocess.run(["pgrep", "-xf", sleeper], stdout=subprocess.PIPE, text=True).stdout
                self.assertNotEqual(running.strip(), "", "the RUN step's process is not seen")
                cd.kill9()
                cd.start()
                st, s, _ = cd.api("GET", "/templates/%s/builds/%s/status" % (tid, b["buildID"]))
                self.assertEqual(s["status"], "error")
                self.assertIn("interrupted", s["reason"]["message"])
                # no build sandbox survives
                time.sleep(0.5)
                left = [d for d in os.listdir(os.path.join(cd.data_dir, "sandboxes")) if d.startswith("build-")]
                self.assertEqual(left, [])
                deadline = time.monotonic() + 15
                while time.monotonic() < deadline:
                    out = subprocess.run(["pgrep", "-xf", sleeper], stdout=subprocess.PIPE, text=True).stdout
                    if not out.strip():
                        break
                    time.sleep(0.2)
                self.assertEqual(out.strip(), "", "the build's process outlived it")
            finally:
                cd.stop()
                cd.purge()


    def test_housekeeping_of_waiting_builds_and_archives(self):
        cd = Coved().start()
        try:
            st, out, _ = cd.api("POST", "/templates", {"name": "never-triggered"})
            self.assertEqual(st, 202, out)
            tid, bid = out["templateID"], out["buildID"]
            archive = bf.targz({"a.txt": b"a"})
            h, _ = bf.upload(cd, tid, archive)
            st, body, _ = cd.api("GET", "/templates/%s/files/%s" % (tid, h))
            self.assertTrue(body["present"])
            cd.stop()
            # a day and more later, and a week without use of the archive
            import sqlite3
            db = sqlite3.connect(os.path.join(cd.data_dir, "cove.db"))
            db.execute("UPDATE builds SET created_at = created_at - 25 * 3600 * 1000")
            db.execute("UPDATE build_files SET created_at = 1, last_used_at = 1")
            db.commit()
            db.close()
            cd.start()
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                st, s, _ = cd.api("GET", "/templates/%s/builds/%s/status" % (tid, bid))
                if s["status"] != "waiting":
                    break
                time.sleep(0.2)
            self.assertEqual(s["status"], "cancelled", s)
            st, body, _ = cd.api("GET", "/templates/%s/files/%s" % (tid, h))
            self.assertFalse(body["present"], body)
            self.assertEqual(os.listdir(os.path.join(cd.data_dir, "build-files", "team_default")), [])
        finally:
            cd.stop()
            cd.purge()


    def test_default_templates_rebuilt_when_their_generator_changes(self):
        cd = Coved().start()
        try:
            st, r, _ = cd.api("GET", "/templates/resolve/base")
            self.assertEqual(st, 200, r)
            tid, b1 = r["templateID"], r["buildID"]
            self.assertRegex(tid, r"^tpl-base-[0-9a-f]{16}$")
            self.assertRegex(b1, r"^build-host-[0-9a-f]{16}$")
            st, t, _ = cd.api("GET", "/templates/%s" % tid)
            self.assertEqual([b["buildID"] for b in t["builds"]], [b1])
            cd.stop()
            import sqlite3
            db = sqlite3.connect(os.path.join(cd.data_dir, "cove.db"))
            db.execute("UPDATE templates SET generator = 'host-userland/0' WHERE id = ?", (tid,))
            db.execute("UPDATE builds SET id = 'build-host-0000000000000000' WHERE id = ?", (b1,))
            db.execute("UPDATE templates SET build_id = 'build-host-0000000000000000' WHERE id = ?", (tid,))
            db.commit()
            db.close()
            cd.start()
            st, r, _ = cd.api("GET", "/templates/resolve/base")
            self.assertEqual((r["templateID"], r["buildID"]), (tid, b1))  # same generator as before
            st, t, _ = cd.api("GET", "/templates/%s" % tid)
            self.assertEqual(sorted(b["buildID"] for b in t["builds"]),
                             sorted([b1, "build-host-0000000000000000"]))
            sb = cd.create(templateID="base")
            self.assertEqual(sb.run("/bin/sh", "-c", "echo ok")["stdout"], "ok\n")
            sb.delete()
        finally:
            cd.stop()
            cd.purge()


if __name__ == "__main__":
    unittest.main()
