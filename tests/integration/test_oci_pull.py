"""OCI pull and layer unpacking of the build plane (src/build/), against a real registry on
loopback (tests/integration/registryfix.py), driven through tests/tools/oci-pull: anonymous,
Basic and token auth, manifest lists, multi-layer images with whiteouts and an opaque
directory, zstd, a corrupt blob, hostile layers, mirrors, concurrent pulls, resume, and pulls by
digest with the registry gone. Nothing leaves 127.0.0.1. Hostile layers are probed in
tests/security/test_build_layers.py."""
import os
import shutil
import stat
import subprocess
import tempfile
import threading
import unittest

import registryfix as rf

MISSING = rf.tools_missing()


@unittest.skipIf(MISSING, "missing tools: %s (make deps installs them)" % ", ".join(MISSING))
class OciPullTest(rf.PullCase, unittest.TestCase):
    def pull_ok(self, ref, **kw):
        rc, out, text = rf.oci_pull(self.data, ref, **kw)
        self.assertEqual(rc, 0, text)
        return out

    def pull_fails(self, ref, fragment, **kw):
        rc, out, text = rf.oci_pull(self.data, ref, **kw)
        self.assertEqual(rc, 1, text)
        self.assertIn(fragment, text)
        return text

    def layer(self, out, i):
        return out["layers"][i]["path"]

    # -- sources --
    def test_busybox_built_with_umoci(self):
        rf.busybox_image(self.reg, "test/busybox", "1", env=["GREETING=hi"])
        out = self.pull_ok("%s/test/busybox:1" % self.reg.host)
        self.assertEqual(out["name"], "%s/test/busybox:1" % self.reg.host)
        self.assertIn("GREETING=hi", out["config"]["env"])
        self.assertEqual(out["config"]["cmd"], ["/bin/sh"])
        root = self.layer(out, 0)
        st = os.stat(os.path.join(root, "bin/busybox"))
        self.assertTrue(st.st_mode & stat.S_IXUSR)
        self.assertEqual(os.readlink(os.path.join(root, "bin/sh")), "busybox")
        # the unpacked tree runs: busybox from the layer
        r = subprocess.run([os.path.join(root, "bin/busybox"), "echo", "ok"], stdout=subprocess.PIPE, text=True)
        self.assertEqual(r.stdout, "ok\n")
        # layers root is private to root (images carry setuid binaries)
        self.assertEqual(stat.S_IMODE(os.stat(os.path.join(self.data, "layers")).st_mode), 0o700)
        # a second pull reuses every blob and layer
        out2 = self.pull_ok("%s/test/busybox:1" % self.reg.host)
        self.assertEqual(out2["layers"][0]["key"], out["layers"][0]["key"])
        self.assertTrue(any("(stored)" in l for l in out2["log"]), out2["log"])
        self.assertFalse(any(l.startswith("unpacked") for l in out2["log"]), out2["log"])

    def test_docker_media_types_and_owners(self):
        l1 = rf.make_layer([("home/user/", "d", None, 0o750, 1000, 1000),
                            ("home/user/f", "f", b"mine", 0o600, 1000, 1000),
                            ("usr/bin/su", "f", b"x", 0o4755, 0, 0)])
        rf.push_image(self.reg, "test/docker", "v1", [l1], {"WorkingDir": "/home/user",
                                                          "User": "1000", "ExposedPorts": {"8080/tcp": {}}},
                      docker=True)
        out = self.pull_ok("%s/test/docker:v1" % self.reg.host)
        self.assertEqual(out["config"]["workdir"], "/home/user")
        self.assertEqual(out["config"]["user"], "1000")
        self.assertEqual(out["config"]["port"], 8080)
        root = self.layer(out, 0)
        st = os.lstat(os.path.join(root, "home/user/f"))
        self.assertEqual((st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)), (1000, 1000, 0o600))
        self.assertEqual(stat.S_IMODE(os.lstat(os.path.join(root, "usr/bin/su")).st_mode), 0o4755)

    def test_manifest_list_picks_linux_amd64(self):
        arm = rf.make_layer([("arch", "f", b"arm64", 0o644)])
        amd = rf.make_layer([("arch", "f", b"amd64", 0o644)])
        d_arm, s_arm = rf.push_image(self.reg, "test/multi", "arm", [arm], arch="arm64")
        d_amd, s_amd = rf.push_image(self.reg, "test/multi", "amd", [amd])
        for docker in (False, True):
            rf.push_index(self.reg, "test/multi", "both", [(d_arm, s_arm, "linux", "arm64"),
                                                          (d_amd, s_amd, "linux", "amd64")], docker=docker)
            out = self.pull_ok("%s/test/multi:both" % self.reg.host)
            self.assertEqual(out["manifestDigest"], d_amd)
            with open(os.path.join(self.layer(out, 0), "arch")) as f:
                self.assertEqual(f.read(), "amd64")
        rf.push_index(self.reg, "test/multi", "armonly", [(d_arm, s_arm, "linux", "arm64")])
        self.pull_fails("%s/test/multi:armonly" % self.reg.host, "no manifest for linux/amd64")

    def test_multilayer_whiteouts_and_opaque_dir(self):
        base = rf.make_layer([("etc/a", "f", b"a", 0o644), ("etc/b", "f", b"b", 0o644),
                              ("var/cache/old1", "f", b"1", 0o644), ("var/cache/old2", "f", b"2", 0o644),
                              ("opt/x/deep", "f", b"d", 0o644), ("srv", "f", b"file", 0o644),
                              ("lnk", "l", "etc/b", 0o777), ("usr/lib/keep", "f", b"k", 0o644)])
        mid = rf.make_layer([("opt/x", "f", b"now a file", 0o600), ("srv/", "d", None, 0o700),
                             ("srv/in", "f", b"in", 0o644), ("usr/lib/mid", "f", b"m", 0o644),
                             ("etc/b", "f", b"b2", 0o600, 1000, 1000)])
        top = rf.make_layer([("etc/.wh.a", "f", b"", 0o644),
                             ("var/cache/.wh..wh..opq", "f", b"", 0o644),
                             ("var/cache/new", "f", b"n", 0o644), ("usr/.wh.none", "f", b"", 0o644),
                             ("usr/lib/top", "f", b"t", 0o644)])
        rf.push_image(self.reg, "test/layers", "v1", [base, mid, top])
        out = self.pull_ok("%s/test/layers:v1" % self.reg.host, flatten=True)
        paths = [self.layer(out, i) for i in range(3)]
        upper = paths[2]
        wh = os.lstat(os.path.join(upper, "etc/a"))
        self.assertTrue(stat.S_ISCHR(wh.st_mode))
        self.assertEqual(wh.st_rdev, 0)
        self.assertEqual(os.getxattr(os.path.join(upper, "var/cache"), "trusted.overlay.opaque"), b"y")
        # stacked as overlay lowerdirs the image looks as it should (private mount namespace),
        # and the flattened layer shows exactly the same tree
        mnt = tempfile.mkdtemp(prefix="cove-test-ovl-")
        # (a directory's st_size depends on the filesystem holding it: left out)
        listing = ("cd %s && { find . -type d -printf '%%p %%y %%m %%U:%%G\\n' && "
                   "find . ! -type d -printf '%%p %%y %%m %%U:%%G %%s %%l\\n'; } | sort && "
                   "cat etc/b srv/in usr/lib/keep usr/lib/mid usr/lib/top var/cache/new")
        try:
            script = ("mount -t overlay overlay -o ro,lowerdir=%s:%s:%s %s && %s"
                      % (paths[2], paths[1], paths[0], mnt, listing % mnt))
            r = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            self.assertEqual(r.returncode, 0, r.stdout)
            merged = r.stdout
        finally:
            os.rmdir(mnt)
        names = [l.split()[0] for l in merged.splitlines() if l.startswith(".")]
        for gone in ("./etc/a", "./var/cache/old1", "./opt/x/deep"):
            self.assertNotIn(gone, names)
        for here in ("./etc/b", "./var/cache/new", "./srv/in", "./opt/x", "./lnk", "./usr/lib/keep"):
            self.assertIn(here, names)
        r = subprocess.run(["sh", "-c", listing % out["flat"]], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertEqual(r.stdout, merged)
        # flattening links, it does not copy
        self.assertEqual(os.stat(os.path.join(out["flat"], "usr/lib/keep")).st_ino,
                         os.stat(os.path.join(paths[0], "usr/lib/keep")).st_ino)

    def test_zstd_and_uncompressed_layers(self):
        z = rf.make_layer([("z", "f", b"zstd", 0o644)], compression="zstd")
        n = rf.make_layer([("n", "f", b"none", 0o644)], compression="none")
        rf.push_image(self.reg, "test/zstd", "v1", [z, n])
        out = self.pull_ok("%s/test/zstd:v1" % self.reg.host)
        with open(os.path.join(self.layer(out, 0), "z")) as f:
            self.assertEqual(f.read(), "zstd")
        with open(os.path.join(self.layer(out, 1), "n")) as f:
            self.assertEqual(f.read(), "none")

    # -- failures --
    def test_corrupt_blob_names_the_digest(self):
        blob, mt, diff = rf.make_layer([("f", "f", b"good data " * 100, 0o644)])
        rf.push_image(self.reg, "test/corrupt", "v1", [(blob, mt, diff)])
        digest = rf.sha256(blob)
        path = self.reg.blob_path(digest)
        with open(path, "r+b") as f:
            f.seek(len(blob) // 2)
            f.write(b"\xff\x00\xff")
        text = self.pull_fails("%s/test/corrupt:v1" % self.reg.host, "digest mismatch")
        self.assertIn(digest, text)
        self.assertFalse(os.path.exists(os.path.join(self.data, "blobs/sha256", digest[7:])))
        self.assert_nothing_published()

    def test_missing_image_and_tag(self):
        self.pull_fails("%s/test/nothing:v1" % self.reg.host, "get manifest 'v1'")
        self.pull_fails("%s/Bad/Name" % self.reg.host, "must be lowercase")


@unittest.skipIf(MISSING, "missing tools: %s (make deps installs them)" % ", ".join(MISSING))
class OciAuthTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.open = rf.Registry().start()
        cls.layer = rf.make_layer([("secret", "f", b"s3cret", 0o644)])
        rf.push_image(cls.open, "private/app", "v1", [cls.layer])
        cls.password = "pw-" + os.urandom(6).hex()

    @classmethod
    def tearDownClass(cls):
        cls.open.close()

    def setUp(self):
        self.data = tempfile.mkdtemp(prefix="cove-test-pull-")

    def tearDown(self):
        shutil.rmtree(self.data, ignore_errors=True)

    def check_no_secret(self, text):
        self.assertNotIn(self.password, text)

    def test_basic_auth(self):
        with rf.Registry(storage=self.open.storage, htpasswd={"alice": self.password}) as reg:
            ref = "%s/private/app:v1" % reg.host
            rc, _, text = rf.oci_pull(self.data, ref)
            self.assertEqual(rc, 1)
            self.assertIn("authentication required (no registry credentials given)", text)
            rc, _, text = rf.oci_pull(self.data, ref, username="alice", password="wrong")
            self.assertEqual(rc, 1)
            self.assertIn("credentials rejected", text)
            rc, out, text = rf.oci_pull(self.data, ref, username="alice", password=self.password)
            self.assertEqual(rc, 0, text)
            self.check_no_secret(text)
            with open(os.path.join(out["layers"][0]["path"], "secret")) as f:
                self.assertEqual(f.read(), "s3cret")

    def test_token_auth(self):
        tok = rf.TokenServer({"bob": self.password})
        try:
            with rf.Registry(storage=self.open.storage, token=tok) as reg:
                ref = "%s/private/app:v1" % reg.host
                rc, _, text = rf.oci_pull(self.data, ref)
                self.assertEqual(rc, 1)
                self.assertIn("token request denied", text)
                rc, _, text = rf.oci_pull(self.data, ref, username="bob", password="nope")
                self.assertEqual(rc, 1)
                self.assertIn("credentials rejected", text)
                rc, out, text = rf.oci_pull(self.data, ref, username="bob", password=self.password)
                self.assertEqual(rc, 0, text)
                self.check_no_secret(text)
                granted = [r for r in tok.requests if r["user"] == "bob"]
                self.assertTrue(granted)
                self.assertEqual(granted[-1]["query"]["scope"], ["repository:private/app:pull"])
                self.assertEqual(granted[-1]["query"]["service"], [tok.service])
        finally:
            tok.close()


@unittest.skipIf(MISSING, "missing tools: %s (make deps installs them)" % ", ".join(MISSING))
class OciMirrorAndCacheTest(unittest.TestCase):
    def setUp(self):
        self.data = tempfile.mkdtemp(prefix="cove-test-pull-")
        self.reg = rf.Registry().start()

    def tearDown(self):
        self.reg.close()
        shutil.rmtree(self.data, ignore_errors=True)

    def test_docker_io_name_from_mirror(self):
        layer = rf.make_layer([("etc/alpine-release", "f", b"3.20.0\n", 0o644)])
        rf.push_image(self.reg, "library/alpine", "3.20", [layer])
        rc, out, text = rf.oci_pull(self.data, "alpine:3.20", mirrors=["docker.io=%s,only" % self.reg.url])
        self.assertEqual(rc, 0, text)
        self.assertEqual(out["name"], "docker.io/library/alpine:3.20")
        self.assertIn("from %s" % self.reg.url, " ".join(out["log"]))
        # a mirror that is down, with `only`: the error names it, nothing else is tried
        dead = "http://127.0.0.1:%d" % rf.free_port()
        rc, _, text = rf.oci_pull(self.data, "docker.io/library/alpine:3.21", mirrors=["docker.io=%s,only" % dead])
        self.assertEqual(rc, 1)
        self.assertIn(dead, text)
        self.assertNotIn("registry-1.docker.io", text)
        # mirrors apply to their host only: a loopback registry name is served by itself
        rc, out, text = rf.oci_pull(self.data, "%s/library/alpine:3.20" % self.reg.host,
                                    mirrors=["docker.io=%s,only" % dead])
        self.assertEqual(rc, 0, text)

    def test_two_pulls_download_each_blob_once(self):
        big = os.urandom(3 * 1024 * 1024)
        layer = rf.make_layer([("big", "f", big, 0o644)])
        rf.push_image(self.reg, "test/shared", "v1", [layer])
        proxy = rf.CountingProxy(self.reg.port, delay=0.5)
        try:
            results = []
            ref = "%s/test/shared:v1" % proxy.host

            def run():
                results.append(rf.oci_pull(self.data, ref))
            threads = [threading.Thread(target=run) for _ in range(2)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            for rc, out, text in results:
                self.assertEqual(rc, 0, text)
            self.assertEqual(results[0][1]["layers"][0]["key"], results[1][1]["layers"][0]["key"])
            self.assertEqual(proxy.blob_gets(rf.sha256(layer[0])), 1, proxy.counts)
        finally:
            proxy.close()

    def test_interrupted_blob_resumes_with_range(self):
        big = os.urandom(2 * 1024 * 1024)
        layer = rf.make_layer([("big", "f", big, 0o644)], compression="none")
        rf.push_image(self.reg, "test/resume", "v1", [layer])
        proxy = rf.CountingProxy(self.reg.port, cut_after=700 * 1024)
        try:
            rc, out, text = rf.oci_pull(self.data, "%s/test/resume:v1" % proxy.host)
            self.assertEqual(rc, 0, text)
            digest = rf.sha256(layer[0])
            self.assertEqual(proxy.blob_gets(digest), 2, proxy.counts)
            self.assertIn(("/v2/test/resume/blobs/" + digest, "bytes=%d-" % (700 * 1024)), proxy.ranges)
            with open(os.path.join(out["layers"][0]["path"], "big"), "rb") as f:
                self.assertEqual(f.read(), big)
        finally:
            proxy.close()

    def test_pinned_digest_needs_no_registry_once_stored(self):
        layer = rf.make_layer([("f", "f", b"pinned", 0o644)])
        digest, _ = rf.push_image(self.reg, "test/pinned", "v1", [layer])
        ref = "%s/test/pinned@%s" % (self.reg.host, digest)
        rc, out, text = rf.oci_pull(self.data, ref)
        self.assertEqual(rc, 0, text)
        self.reg.stop()
        rc, out2, text = rf.oci_pull(self.data, ref)
        self.assertEqual(rc, 0, text)
        self.assertEqual(out2["layers"], out["layers"])
        self.assertTrue(any(l.startswith("using stored") for l in out2["log"]), out2["log"])
        # a tag always asks the registry (tags move)
        rc, _, text = rf.oci_pull(self.data, "%s/test/pinned:v1" % self.reg.host)
        self.assertEqual(rc, 1)


if __name__ == "__main__":
    unittest.main()
