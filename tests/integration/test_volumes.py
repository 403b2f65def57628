#!/usr/bin/env python3
"""Volumes (control-plane.md §13.1) against a real coved and real sandboxes: the routes and
their errors, volumeMounts at create, one volume shared read-write by two sandboxes, data that
outlives both sandboxes and a coved restart, 409 on deleting a mounted volume, the size limit
(ENOSPC inside the sandbox, the host untouched), `workspace` as the default working directory,
and teams that cannot reach each other's volumes.

Run as root: python3 tests/integration/test_volumes.py
"""
import glob
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coveharness import Coved  # noqa: E402

VOLUME_MB = 64


def loops_backed_by(prefix):
    out = []
    for bf in glob.glob("/sys/block/loop*/loop/backing_file"):
        try:
            with open(bf) as f:
                if f.read().strip().startswith(prefix):
                    out.append(bf)
        except OSError:
            pass
    return out


class Volumes(unittest.TestCase):
    def setUp(self):
        self.cd = Coved.for_test(self, extra_args=["--volume-size-mb", str(VOLUME_MB)])

    def vol(self, name, key=None, root="/api/v1"):
        h = {"X-API-Key": key} if key else None
        st, b, _ = self.cd.request("POST", root + "/volumes", {"name": name}, headers=h)
        self.assertEqual(st, 201, b)
        self.assertEqual(sorted(b), ["name", "token", "volumeID"])
        self.assertRegex(b["volumeID"], r"^vol_[0-9a-f]{16}$")
        self.assertEqual(len(b["token"]), 43)
        return b

    def create(self, mounts, key=None, expect=201):
        h = {"X-API-Key": key} if key else None
        st, b, _ = self.cd.api("POST", "/sandboxes", {"waitReady": True, "volumeMounts": mounts},
                               headers=h)
        self.assertEqual(st, expect, b)
        return b

    def sh(self, sb, line, key=None):
        st, out, _ = self.cd.request("POST", "/envd/%s/run" % sb["sandboxID"],
                                     {"cmd": "sh", "args": ["-c", line]}, auth=False,
                                     headers={"X-Access-Token": sb["envdAccessToken"]})
        self.assertEqual(st, 200, out)
        return out

    def delete_sandbox(self, sb, key=None):
        h = {"X-API-Key": key} if key else None
        st, _, _ = self.cd.api("DELETE", "/sandboxes/" + sb["sandboxID"], headers=h)
        self.assertEqual(st, 204)

    def test_routes_and_errors(self):
        b = self.vol("cache")
        self.vol("alpha", root="")  # the E2B face's origin-root route, same handlers
        st, lst, _ = self.cd.api("GET", "/volumes")
        self.assertEqual(st, 200)
        self.assertEqual([v["name"] for v in lst], ["alpha", "cache"])  # sorted by name
        self.assertEqual(sorted(lst[0]), ["name", "volumeID"])
        st, g, _ = self.cd.api("GET", "/volumes/" + b["volumeID"])
        self.assertEqual((st, g), (200, b))
        st, e, _ = self.cd.api("POST", "/volumes", {"name": "cache"})
        self.assertEqual((st, e["error"]["code"]), (409, "ALREADY_EXISTS"), e)
        for bad in ("", "-a", "a-", "A", "a_b", "a" * 64, "with space", 5, None):
            st, e, _ = self.cd.api("POST", "/volumes", {"name": bad})
            self.assertEqual(st, 400, (bad, e))
        st, e, _ = self.cd.api("POST", "/volumes", {})
        self.assertEqual(st, 400)
        self.vol("a" * 63)
        self.vol("0-9")
        for method in ("GET", "DELETE"):
            st, e, _ = self.cd.api(method, "/volumes/vol_0000000000000000")
            self.assertEqual(st, 404, e)
            self.assertIn("not found", e["message"])
        st, _, _ = self.cd.api("DELETE", "/volumes/" + b["volumeID"])
        self.assertEqual(st, 204)
        st, _, _ = self.cd.api("GET", "/volumes/" + b["volumeID"])
        self.assertEqual(st, 404)
        self.assertFalse(os.path.exists(os.path.join(self.cd.data_dir, "volumes",
                                                     b["volumeID"] + ".img")))
        # Name is free again.
        self.vol("cache")

    def test_mount_validation(self):
        self.vol("data")
        rows = [([{"name": "data", "path": "/"}], 400), ([{"name": "data", "path": "rel"}], 400),
                ([{"name": "data", "path": "/a/../b"}], 400), ([{"name": "data"}], 400),
                ([{"path": "/x"}], 400), ([{"name": "data", "path": "/x"},
                                           {"name": "data", "path": "/x/"}], 400),
                ([{"name": "data", "path": "/x%d" % i} for i in range(17)], 400),
                ([{"name": "nope", "path": "/x"}], 404), ("data", 400),
                ([{"name": "data\u0000x", "path": "/x"}], 400),
                ([{"name": "data", "path": "/x\u0000/../.."}], 400)]
        for mounts, status in rows:
            with self.subTest(mounts=mounts):
                st, e, _ = self.cd.api("POST", "/sandboxes", {"volumeMounts": mounts})
                self.assertEqual(st, status, e)
        st, e, _ = self.cd.api("POST", "/sandboxes", {"volumeMounts": [{"name": "nope",
                                                                        "path": "/x"}]})
        self.assertEqual(e["message"], "volume 'nope' not found")
        st, e, _ = self.cd.api("POST", "/sandboxes", {"volume_mounts": []})
        self.assertEqual((st, e["message"]), (400, "volume_mounts is not supported"))
        st, lst, _ = self.cd.api("GET", "/sandboxes")
        self.assertEqual(lst, [])  # nothing half-made

    def test_shared_survives_and_409(self):
        v = self.vol("shared")
        a = self.create([{"name": "shared", "path": "/data"}])
        b = self.create([{"name": "shared", "path": "/mnt/other/"}])
        st, d, _ = self.cd.api("GET", "/sandboxes/" + a["sandboxID"])
        self.assertEqual(d["volumeMounts"], [{"name": "shared", "path": "/data"}])
        self.assertEqual(self.sh(a, "echo from-a > /data/a.txt; stat -c '%U %a' /data")["stdout"],
                         "root 755\n")
        self.assertEqual(self.sh(b, "cat /mnt/other/a.txt; echo from-b > /mnt/other/b.txt; "
                                    "ls -A /mnt/other")["stdout"], "from-a\na.txt\nb.txt\n")
        self.assertEqual(self.sh(a, "cat /data/b.txt")["stdout"], "from-b\n")
        # One filesystem: both sandboxes mount the same device.
        dev = [self.sh(x, "stat -c %d " + p)["stdout"] for x, p in ((a, "/data"),
                                                                      (b, "/mnt/other"))]
        self.assertEqual(dev[0], dev[1])
        st, e, _ = self.cd.api("DELETE", "/volumes/" + v["volumeID"])
        self.assertEqual(st, 409, e)
        self.assertIn("mounted", e["message"])
        self.delete_sandbox(a)
        st, e, _ = self.cd.api("DELETE", "/volumes/" + v["volumeID"])
        self.assertEqual(st, 409, e)
        self.delete_sandbox(b)

        # The data outlives both sandboxes and a restart of coved.
        self.cd.stop()
        self.cd.start()
        c = self.create([{"name": "shared", "path": "/again"}])
        self.assertEqual(self.sh(c, "cat /again/a.txt /again/b.txt")["stdout"], "from-a\nfrom-b\n")
        self.delete_sandbox(c)
        # No sandbox left: no loop device left, and the volume can go.
        img = os.path.join(self.cd.data_dir, "volumes", v["volumeID"] + ".img")
        deadline = time.monotonic() + 30  # the kernel detaches it as the last mount goes
        while loops_backed_by(img) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(loops_backed_by(img), [])
        st, _, _ = self.cd.api("DELETE", "/volumes/" + v["volumeID"])
        self.assertEqual(st, 204)
        self.assertFalse(os.path.exists(img))

    def test_size_limit_is_enospc_inside(self):
        v = self.vol("small")
        a = self.create([{"name": "small", "path": "/small"}])
        st = os.statvfs(self.cd.data_dir)
        host_free = st.f_bavail * st.f_frsize
        out = self.sh(a, "dd if=/dev/zero of=/small/fill bs=1M count=%d 2>&1; echo rc=$?"
                      % (VOLUME_MB * 2))
        self.assertIn("No space left on device", out["stdout"])
        self.assertIn("rc=1", out["stdout"])
        used = int(self.sh(a, "du -sm /small/fill | cut -f1")["stdout"])
        self.assertLessEqual(used, VOLUME_MB)
        # The host holds at most the volume's size for it, whatever was written inside.
        img = os.path.join(self.cd.data_dir, "volumes", v["volumeID"] + ".img")
        self.assertLessEqual(os.stat(img).st_blocks * 512, VOLUME_MB * 1024 * 1024)
        st = os.statvfs(self.cd.data_dir)
        self.assertGreater(st.f_bavail * st.f_frsize, host_free - 2 * VOLUME_MB * 1024 * 1024)
        # The rest of the sandbox still writes.
        self.assertEqual(self.sh(a, "echo ok > /tmp/ok && cat /tmp/ok")["stdout"], "ok\n")

    def test_workspace_is_the_default_working_directory(self):
        self.vol("workspace")
        a = self.create([{"name": "workspace", "path": "/root/workspace"}])
        self.assertEqual(self.sh(a, "pwd")["stdout"], "/root/workspace\n")
        self.assertEqual(self.sh(a, "stat -c %m .")["stdout"], "/root/workspace\n")
        # The /v1 face runs there too.
        st, r, _ = self.cd.v1("POST", "/sandboxes/%s/exec" % a["sandboxID"], {"command": "pwd"})
        self.assertEqual((st, r["stdout"]), (200, "/root/workspace\n"))
        # Without the mount, the home directory.
        b = self.create([])
        self.assertEqual(self.sh(b, "pwd")["stdout"], "/root\n")

    def test_teams_cannot_reach_each_others_volumes(self):
        other = self.cd.add_key("team_vol_other")
        mine = self.vol("data")
        theirs = self.vol("data", key=other)  # the same name, another team
        self.assertNotEqual(mine["volumeID"], theirs["volumeID"])
        st, lst, _ = self.cd.api("GET", "/volumes", headers={"X-API-Key": other})
        self.assertEqual([v["volumeID"] for v in lst], [theirs["volumeID"]])
        for method in ("GET", "DELETE"):
            st, e, _ = self.cd.api(method, "/volumes/" + mine["volumeID"],
                                   headers={"X-API-Key": other})
            self.assertEqual(st, 404, e)
        a = self.create([{"name": "data", "path": "/data"}])
        self.sh(a, "echo secret > /data/secret")
        b = self.create([{"name": "data", "path": "/data"}], key=other)
        self.assertEqual(self.sh(b, "ls -A /data")["stdout"], "")
        st, e, _ = self.cd.api("POST", "/sandboxes",
                               {"volumeMounts": [{"name": "nope-only-mine", "path": "/x"}]},
                               headers={"X-API-Key": other})
        self.assertEqual(st, 404)
        self.vol("only-mine")
        st, e, _ = self.cd.api("POST", "/sandboxes",
                               {"volumeMounts": [{"name": "only-mine", "path": "/x"}]},
                               headers={"X-API-Key": other})
        self.assertEqual((st, e["message"]), (404, "volume 'only-mine' not found"))
        # The volume images are not visible inside any sandbox.
        out = self.sh(a, "ls %s 2>&1; true" % os.path.join(self.cd.data_dir, "volumes"))
        self.assertIn("No such file", out["stdout"])


if __name__ == "__main__":
    unittest.main()
