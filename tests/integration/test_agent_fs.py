#!/usr/bin/env python3
"""cove-agent filesystem service and file transfer (runtime.md §3, §7; agent-protocol.md).

Runs the real <build>/cove-agent (override with COVE_AGENT=path) on the host as root with
`--listen <tmp>/a.sock` and drives it over the agent wire protocol. Everything lives in one
temp dir under /tmp (plus one under /dev/shm for the cross-filesystem moves); both are removed.
"""
import json
import os
import pwd
import re
import shutil
import socket
import stat
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import agentwire  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(HERE))
AGENT = os.environ.get("COVE_AGENT", os.path.join(os.environ.get("COVE_BUILD_DIR", os.path.join(ROOT, "build")), "cove-agent"))
RFC3339_NS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$")


class AgentFsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0:
            raise unittest.SkipTest("needs root")
        if not os.access(AGENT, os.X_OK):
            raise RuntimeError("no agent binary at %s (build first)" % AGENT)
        cls.tmp = tempfile.mkdtemp(prefix="cove-fs-test-", dir="/tmp")
        os.chmod(cls.tmp, 0o755)
        cls.shm = tempfile.mkdtemp(prefix="cove-fs-test-", dir="/dev/shm")
        cls.sock = os.path.join(cls.tmp, "a.sock")
        try:
            cls.proc, cls.log = agentwire.start_agent(AGENT, cls.sock, os.path.join(cls.tmp, "agent.log"))
        except RuntimeError:
            cls.remove_dirs()
            raise
        cls.n = 0

    @classmethod
    def remove_dirs(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)
        shutil.rmtree(cls.shm, ignore_errors=True)

    @classmethod
    def tearDownClass(cls):
        agentwire.stop_agent(cls.proc, cls.log)
        cls.remove_dirs()

    # ---- helpers ----

    def setUp(self):
        type(self).n += 1
        self.d = os.path.join(self.tmp, "t%d" % self.n)
        os.mkdir(self.d)
        os.chmod(self.d, 0o755)

    def call(self, op, body, user="root"):
        with agentwire.AgentConn(self.sock) as c:
            return c.call(op, body, user=user)

    def ok(self, op, body, user="root"):
        r = self.call(op, body, user)
        self.assertEqual(r.get("status"), 200, r)
        return r["body"]

    def err(self, op, body, status, message=None, user="root"):
        r = self.call(op, body, user)
        self.assertEqual(r.get("status"), status, r)
        if message is not None:
            self.assertEqual(r.get("message"), message)
        return r

    def p(self, *parts):
        return os.path.join(self.d, *parts)

    def put(self, path, data=b"", mode=None):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        if mode is not None:
            os.chmod(path, mode)

    def read(self, path):
        with open(path, "rb") as f:
            return f.read()

    def upload(self, path, data, mode=None, user="root", chunks=None):
        body = {"path": path}
        if mode is not None:
            body["mode"] = mode
        with agentwire.AgentConn(self.sock) as c:
            c.send_json({"op": "files.write", "user": user, "body": body})
            if chunks is not None:
                for ch in chunks:
                    c.send_frame("D", ch)
            else:
                c.send_data(data)
            c.send_end()
            r = c.recv()
            self.assertEqual(r[0], "J")
            return r[1]

    def download(self, path, offset=None, length=None, user="root"):
        """Returns (header, bytes or None when no E frame)."""
        with agentwire.AgentConn(self.sock) as c:
            head = c.call("files.read", {"path": path}, user=user)
            if head.get("status") != 200:
                return head, None
            rng = {}
            if offset is not None:
                rng["offset"] = offset
            if length is not None:
                rng["length"] = length
            c.send_json(rng)
            out = b""
            while True:
                r = c.recv()
                if r is None:
                    return head, None
                if r[0] == "E":
                    return head, out
                self.assertEqual(r[0], "D")
                self.assertLessEqual(len(r[1]), 1 << 20)  # FRAME_MAX_PAYLOAD
                out += r[1]

    def temp_files(self, d):
        return [n for n in os.listdir(d) if ".cove-" in n]

    # ---- Stat and EntryInfo ----

    def test_stat_file_entry(self):
        f = self.p("f.txt")
        self.put(f, b"hello", 0o640)
        e = self.ok("filesystem.Stat", {"path": f})["entry"]
        st = os.lstat(f)
        self.assertEqual(e["name"], "f.txt")
        self.assertEqual(e["type"], "FILE_TYPE_FILE")
        self.assertEqual(e["path"], f)
        self.assertEqual(e["size"], 5)
        self.assertEqual(e["mode"], 0o640)
        self.assertEqual(e["permissions"], "-rw-r-----")
        self.assertEqual(e["owner"], "root")
        self.assertEqual(e["group"], "root")
        self.assertRegex(e["modifiedTime"], RFC3339_NS)
        self.assertEqual(e["modifiedTime"][20:29], "%09d" % (st.st_mtime_ns % 10**9))
        self.assertNotIn("symlinkTarget", e)

    def test_stat_permission_letters_and_names(self):
        d = self.p("sticky")
        os.mkdir(d)
        os.chmod(d, 0o1777)
        self.assertEqual(self.ok("filesystem.Stat", {"path": d})["entry"]["permissions"],
                         "drwxrwxrwt")
        f = self.p("suid")
        self.put(f, b"", 0o4755)
        self.assertEqual(self.ok("filesystem.Stat", {"path": f})["entry"]["permissions"],
                         "-rwsr-xr-x")
        g = self.p("sgid")
        self.put(g, b"", 0o2644)
        e = self.ok("filesystem.Stat", {"path": g})["entry"]
        self.assertEqual(e["permissions"], "-rw-r-Sr--")
        self.assertEqual(e["mode"], 0o2644)
        nob = pwd.getpwnam("nobody")
        os.chown(g, nob.pw_uid, 54321)
        e = self.ok("filesystem.Stat", {"path": g})["entry"]
        self.assertEqual(e["owner"], "nobody")
        self.assertEqual(e["group"], "54321")

    def test_stat_symlink_not_followed(self):
        os.mkdir(self.p("x"))
        self.put(self.p("x", "target"), b"0123456789")
        os.mkdir(self.p("links"))
        os.symlink("../x/target", self.p("links", "rel"))
        os.symlink("/nonexistent/../gone", self.p("links", "abs"))
        e = self.ok("filesystem.Stat", {"path": self.p("links", "rel")})["entry"]
        self.assertEqual(e["type"], "FILE_TYPE_SYMLINK")
        self.assertEqual(e["size"], len("../x/target"))
        self.assertEqual(e["permissions"], "lrwxrwxrwx")
        self.assertEqual(e["symlinkTarget"], self.p("x", "target"))
        e = self.ok("filesystem.Stat", {"path": self.p("links", "abs")})["entry"]
        self.assertEqual(e["symlinkTarget"], "/gone")

    def test_stat_special_and_errors(self):
        os.mkfifo(self.p("fifo"))
        e = self.ok("filesystem.Stat", {"path": self.p("fifo")})["entry"]
        self.assertEqual(e["type"], "FILE_TYPE_UNSPECIFIED")
        self.assertEqual(e["permissions"][0], "p")
        missing = self.p("nope")
        self.err("filesystem.Stat", {"path": missing}, 404, "path '%s' not found" % missing)
        self.put(self.p("file"))
        self.err("filesystem.Stat", {"path": self.p("file", "x")}, 404)
        self.err("filesystem.Stat", {"path": ""}, 400, "path is required")
        self.err("filesystem.Stat", {}, 400, "path is required")
        self.err("filesystem.Stat", {"path": 5}, 400)

    def test_path_normalisation(self):
        self.put(self.p("a", "f"))
        messy = self.d + "//a/./../a/b/..//f/"
        self.assertEqual(self.ok("filesystem.Stat", {"path": messy})["entry"]["path"],
                         self.p("a", "f"))
        self.assertEqual(self.ok("filesystem.Stat", {"path": "/../../.."})["entry"]["path"], "/")
        self.assertEqual(self.ok("filesystem.Stat", {"path": "/../../tmp/"})["entry"]["path"],
                         "/tmp")
        # relative paths are relative to the acting user's home (root: /root)
        home = pwd.getpwnam("root").pw_dir
        e = self.ok("filesystem.Stat", {"path": "."})["entry"]
        self.assertEqual(e["path"], home)
        rel = os.path.relpath(self.p("a", "f"), home)
        self.assertEqual(self.ok("filesystem.Stat", {"path": rel})["entry"]["path"],
                         self.p("a", "f"))

    # ---- ListDir ----

    def test_list_dir_depth_and_order(self):
        self.put(self.p("r", "b.txt"), b"x")
        self.put(self.p("r", "a", "deep", "z"), b"")
        self.put(self.p("r", "a", "y"), b"")
        os.mkdir(self.p("other"))
        self.put(self.p("other", "inside"))
        os.symlink(self.p("other"), self.p("r", "link"))
        r = self.p("r")
        es = self.ok("filesystem.ListDir", {"path": r})["entries"]
        self.assertEqual([e["path"] for e in es],
                         [self.p("r", "a"), self.p("r", "b.txt"), self.p("r", "link")])
        self.assertEqual([e["type"] for e in es],
                         ["FILE_TYPE_DIRECTORY", "FILE_TYPE_FILE", "FILE_TYPE_SYMLINK"])
        self.assertEqual(es[2]["symlinkTarget"], self.p("other"))
        es = self.ok("filesystem.ListDir", {"path": r, "depth": 2})["entries"]
        self.assertEqual([e["path"] for e in es],
                         [self.p("r", "a"), self.p("r", "a", "deep"), self.p("r", "a", "y"),
                          self.p("r", "b.txt"), self.p("r", "link")])
        es = self.ok("filesystem.ListDir", {"path": r, "depth": 32})["entries"]
        self.assertEqual(len(es), 6)  # + a/deep/z; the symlinked dir is not descended
        self.assertEqual(self.ok("filesystem.ListDir", {"path": self.p("other"), "depth": 1.0})
                         ["entries"][0]["name"], "inside")

    def test_list_dir_errors(self):
        os.mkdir(self.p("empty"))
        self.assertEqual(self.ok("filesystem.ListDir", {"path": self.p("empty")})["entries"], [])
        self.put(self.p("f"))
        self.err("filesystem.ListDir", {"path": self.p("f")}, 400,
                 "'%s' is not a directory" % self.p("f"))
        self.err("filesystem.ListDir", {"path": self.p("missing")}, 404,
                 "path '%s' not found" % self.p("missing"))
        self.err("filesystem.ListDir", {"path": self.d, "depth": 0}, 400)
        self.err("filesystem.ListDir", {"path": self.d, "depth": 33}, 400)
        self.err("filesystem.ListDir", {"path": self.d, "depth": 1.5}, 400)

    def test_list_dir_larger_than_a_frame(self):
        big = self.p("big")
        os.mkdir(big)
        stem = "n" * 200
        for i in range(2000):  # ~750 bytes of JSON each: well over one 1 MiB frame
            open(os.path.join(big, "%s-%05d" % (stem, i)), "w").close()
        with agentwire.AgentConn(self.sock) as c:
            head = c.call("filesystem.ListDir", {"path": big}, user="root")
            self.assertEqual(head.get("status"), 200, head)
            self.assertTrue(head.get("bodyFollows"), head)
            data = b""
            while True:
                kind, chunk = c.recv()
                if kind == "E":
                    break
                data += chunk
        self.assertEqual(len(data), head["bodyBytes"])
        es = json.loads(data)["entries"]
        self.assertEqual(len(es), 2000)
        self.assertEqual(es[-1]["name"], stem + "-01999")

    # ---- MakeDir ----

    def test_make_dir(self):
        d = self.p("x", "y", "z")
        e = self.ok("filesystem.MakeDir", {"path": d})["entry"]
        self.assertEqual(e["type"], "FILE_TYPE_DIRECTORY")
        self.assertEqual(e["path"], d)
        self.assertEqual(e["name"], "z")
        self.assertTrue(os.path.isdir(d))
        self.assertEqual(stat.S_IMODE(os.stat(self.p("x")).st_mode), 0o755)
        self.err("filesystem.MakeDir", {"path": d}, 409, "path '%s' already exists" % d)
        self.put(self.p("file"))
        self.err("filesystem.MakeDir", {"path": self.p("file")}, 409)
        self.err("filesystem.MakeDir", {"path": self.p("file", "sub")}, 400,
                 "'%s' is not a directory" % self.p("file"))
        self.err("filesystem.MakeDir", {"path": ""}, 400, "path is required")

    # ---- Remove ----

    def test_remove(self):
        self.put(self.p("f"))
        self.ok("filesystem.Remove", {"path": self.p("f")})
        self.assertFalse(os.path.lexists(self.p("f")))
        self.put(self.p("keep", "target"))
        os.symlink(self.p("keep"), self.p("ln"))
        self.ok("filesystem.Remove", {"path": self.p("ln")})
        self.assertFalse(os.path.lexists(self.p("ln")))
        self.assertTrue(os.path.exists(self.p("keep", "target")))
        # a tree with a symlink into another dir: the link goes, its target stays
        self.put(self.p("tree", "a", "b", "c"), b"1")
        os.symlink(self.p("keep"), self.p("tree", "a", "tokeep"))
        os.mkfifo(self.p("tree", "fifo"))
        os.chmod(self.p("tree", "a", "b"), 0o500)
        self.ok("filesystem.Remove", {"path": self.p("tree")})
        self.assertFalse(os.path.lexists(self.p("tree")))
        self.assertTrue(os.path.exists(self.p("keep", "target")))
        self.err("filesystem.Remove", {"path": self.p("tree")}, 404,
                 "path '%s' not found" % self.p("tree"))
        self.err("filesystem.Remove", {"path": "/"}, 400)
        self.err("filesystem.Remove", {"path": "/.."}, 400)

    # ---- Move ----

    def test_move_same_fs(self):
        self.put(self.p("src"), b"data")
        e = self.ok("filesystem.Move", {"source": self.p("src"),
                                        "destination": self.p("new", "parents", "dst")})["entry"]
        self.assertEqual(e["path"], self.p("new", "parents", "dst"))
        self.assertEqual(e["type"], "FILE_TYPE_FILE")
        self.assertFalse(os.path.exists(self.p("src")))
        # file replaces file
        self.put(self.p("a"), b"A")
        self.put(self.p("b"), b"B")
        self.ok("filesystem.Move", {"source": self.p("a"), "destination": self.p("b")})
        self.assertEqual(self.read(self.p("b")), b"A")
        # dir replaces empty dir
        self.put(self.p("d1", "x"))
        os.mkdir(self.p("d2"))
        self.ok("filesystem.Move", {"source": self.p("d1"), "destination": self.p("d2")})
        self.assertTrue(os.path.exists(self.p("d2", "x")))
        # dir over non-empty dir, file over dir, dir over file → 409
        self.put(self.p("d3", "y"))
        self.err("filesystem.Move", {"source": self.p("d3"), "destination": self.p("d2")}, 409)
        self.err("filesystem.Move", {"source": self.p("b"), "destination": self.p("d2")}, 409)
        self.err("filesystem.Move", {"source": self.p("d3"), "destination": self.p("b")}, 409)
        self.err("filesystem.Move", {"source": self.p("gone"), "destination": self.p("z")}, 404,
                 "path '%s' not found" % self.p("gone"))
        self.err("filesystem.Move", {"source": self.p("d3"), "destination": self.p("d3", "in")},
                 400)
        self.err("filesystem.Move", {"source": "", "destination": self.p("z")}, 400)
        # a symlink moves as itself
        os.symlink("d2/x", self.p("ln"))
        e = self.ok("filesystem.Move", {"source": self.p("ln"),
                                        "destination": self.p("ln2")})["entry"]
        self.assertEqual(e["type"], "FILE_TYPE_SYMLINK")
        self.assertEqual(os.readlink(self.p("ln2")), "d2/x")

    def test_move_across_filesystems(self):
        if os.stat(self.tmp).st_dev == os.stat(self.shm).st_dev:
            self.skipTest("/tmp and /dev/shm are one filesystem")
        # a tree: modes, a symlink and a nested file survive; the source is gone
        src = self.p("tree")
        self.put(os.path.join(src, "sub", "f"), b"content", 0o604)
        os.chmod(os.path.join(src, "sub"), 0o751)
        os.symlink("sub/f", os.path.join(src, "ln"))
        nob = pwd.getpwnam("nobody")
        os.chown(os.path.join(src, "sub", "f"), nob.pw_uid, nob.pw_gid)
        dst = os.path.join(self.shm, "t%d" % self.n, "moved")
        e = self.ok("filesystem.Move", {"source": src, "destination": dst})["entry"]
        self.assertEqual(e["path"], dst)
        self.assertEqual(e["type"], "FILE_TYPE_DIRECTORY")
        self.assertFalse(os.path.exists(src))
        self.assertEqual(self.read(os.path.join(dst, "sub", "f")), b"content")
        st = os.stat(os.path.join(dst, "sub", "f"))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o604)
        self.assertEqual(st.st_uid, nob.pw_uid)
        self.assertEqual(stat.S_IMODE(os.stat(os.path.join(dst, "sub")).st_mode), 0o751)
        self.assertEqual(os.readlink(os.path.join(dst, "ln")), "sub/f")
        self.assertEqual(self.temp_files(os.path.dirname(dst)), [])
        # and back, a single file replacing an existing one
        self.put(self.p("existing"), b"old")
        self.ok("filesystem.Move", {"source": os.path.join(dst, "sub", "f"),
                                    "destination": self.p("existing")})
        self.assertEqual(self.read(self.p("existing")), b"content")
        self.assertFalse(os.path.exists(os.path.join(dst, "sub", "f")))
        # a non-empty directory destination across filesystems → 409, source untouched
        self.put(self.p("full", "x"))
        self.err("filesystem.Move", {"source": dst, "destination": self.p("full")}, 409)
        self.assertTrue(os.path.isdir(dst))
        self.assertEqual(self.temp_files(self.d), [])

    # ---- Edit ----

    def test_edit(self):
        f = self.p("e.txt")
        self.put(f, b"one two one two\n", 0o600)
        r = self.ok("filesystem.Edit", {"path": f, "oldText": "two", "newText": "2"})
        self.assertEqual(r["message"], "replaced 1 occurrence in '%s'" % f)
        self.assertEqual(self.read(f), b"one 2 one two\n")
        self.assertEqual(stat.S_IMODE(os.stat(f).st_mode), 0o600)
        self.ok("filesystem.Edit", {"path": f, "oldText": "one "})  # newText absent = ""
        self.assertEqual(self.read(f), b"2 one two\n")
        self.err("filesystem.Edit", {"path": f, "oldText": "zzz", "newText": "y"}, 404,
                 "oldText not found in '%s'" % f)
        self.err("filesystem.Edit", {"path": f, "oldText": "", "newText": "y"}, 400)
        self.err("filesystem.Edit", {"path": self.p("missing"), "oldText": "a", "newText": "b"},
                 404, "file '%s' not found" % self.p("missing"))
        self.err("filesystem.Edit", {"path": self.d, "oldText": "a", "newText": "b"}, 400,
                 "'%s' is a directory" % self.d)
        # through a symlink: the target changes, the link stays
        os.symlink("e.txt", self.p("ln"))
        self.ok("filesystem.Edit", {"path": self.p("ln"), "oldText": "2", "newText": "3"})
        self.assertTrue(os.path.islink(self.p("ln")))
        self.assertEqual(self.read(f), b"3 one two\n")
        self.assertEqual(self.temp_files(self.d), [])

    # ---- files.write ----

    def test_write_new_and_mode(self):
        f = self.p("deep", "er", "new.bin")
        r = self.upload(f, b"x" * 200000)
        self.assertEqual(r, {"status": 200, "body": {"path": f, "name": "new.bin",
                                                      "type": "file"}, "bytes": 200000})
        self.assertEqual(self.read(f), b"x" * 200000)
        self.assertEqual(stat.S_IMODE(os.stat(f).st_mode), 0o644)
        self.assertEqual(stat.S_IMODE(os.stat(self.p("deep")).st_mode), 0o755)
        self.assertEqual(stat.S_IMODE(os.stat(self.p("deep", "er")).st_mode), 0o755)
        g = self.p("exec.sh")
        r = self.upload(g, b"#!/bin/sh\n", mode=0o750)
        self.assertEqual(r["bytes"], 10)
        self.assertEqual(stat.S_IMODE(os.stat(g).st_mode), 0o750)
        r = self.upload(self.p("empty"), b"")
        self.assertEqual(r["bytes"], 0)
        self.assertEqual(os.path.getsize(self.p("empty")), 0)
        self.assertEqual(self.temp_files(self.d), [])

    def test_write_keeps_mode_and_owner(self):
        f = self.p("existing")
        self.put(f, b"old content", 0o600)
        nob = pwd.getpwnam("nobody")
        os.chown(f, nob.pw_uid, nob.pw_gid)
        r = self.upload(f, b"new")
        self.assertEqual(r["status"], 200, r)
        st = os.stat(f)
        self.assertEqual(self.read(f), b"new")
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)
        self.assertEqual((st.st_uid, st.st_gid), (nob.pw_uid, nob.pw_gid))
        self.upload(f, b"newer", mode=0o640)
        self.assertEqual(stat.S_IMODE(os.stat(f).st_mode), 0o640)
        # through a symlink: the target is replaced, the link stays
        os.symlink("existing", self.p("ln"))
        self.upload(self.p("ln"), b"via link")
        self.assertTrue(os.path.islink(self.p("ln")))
        self.assertEqual(self.read(f), b"via link")

    def test_write_errors(self):
        r = self.upload(self.d, b"abc")
        self.assertEqual((r["status"], r["message"]), (400, "'%s' is a directory" % self.d))
        self.put(self.p("file"))
        r = self.upload(self.p("file", "sub", "x"), b"abc")
        self.assertEqual((r["status"], r["message"]),
                         (400, "'%s' is not a directory" % self.p("file")))
        os.mkfifo(self.p("fifo"))
        r = self.upload(self.p("fifo"), b"abc")
        self.assertEqual((r["status"], r["message"]),
                         (400, "'%s' is not a regular file" % self.p("fifo")))
        r = self.upload("", b"abc")
        self.assertEqual((r["status"], r["message"]), (400, "path is required"))
        r = self.upload(self.p("m"), b"abc", mode=4096)
        self.assertEqual(r["status"], 400)
        # the connection still works after the drained upload: a second call on a new one
        self.assertEqual(self.upload(self.p("ok"), b"fine")["status"], 200)
        self.assertEqual(self.temp_files(self.d), [])

    def test_write_abort_leaves_no_temp_file(self):
        f = self.p("partial")
        with agentwire.AgentConn(self.sock) as c:
            c.send_json({"op": "files.write", "user": "root", "body": {"path": f}})
            c.send_data(b"y" * 300000)
            deadline = time.time() + 5
            while not self.temp_files(self.d) and time.time() < deadline:
                time.sleep(0.01)
            self.assertEqual(len(self.temp_files(self.d)), 1)
        deadline = time.time() + 5
        while self.temp_files(self.d) and time.time() < deadline:
            time.sleep(0.02)
        self.assertEqual(self.temp_files(self.d), [])
        self.assertFalse(os.path.exists(f))

    def test_write_large_streams(self):
        f = self.p("big")
        size = 128 * 1024 * 1024
        chunk = bytes(range(256)) * 4096  # 1 MiB
        r = self.upload(f, None, chunks=(chunk for _ in range(size // len(chunk))))
        self.assertEqual(r["bytes"], size)
        self.assertEqual(os.path.getsize(f), size)
        with open("/proc/%d/status" % self.proc.pid) as st:
            hwm = [l for l in st if l.startswith("VmHWM:")][0]
        self.assertLess(int(hwm.split()[1]), 64 * 1024, hwm)  # kB: never held in memory
        os.unlink(f)

    # ---- files.read ----

    def test_read(self):
        data = os.urandom(300000)
        f = self.p("r.bin")
        self.put(f, data)
        head, got = self.download(f)
        self.assertEqual(head["status"], 200)
        self.assertEqual(head["size"], len(data))
        self.assertEqual(head["mtime"], int(os.stat(f).st_mtime))
        self.assertEqual(head["path"], f)
        self.assertEqual(head["name"], "r.bin")
        self.assertEqual(got, data)
        self.assertEqual(self.download(f, 1000, 70000)[1], data[1000:71000])
        self.assertEqual(self.download(f, 299990, 100)[1], data[299990:])  # past EOF: to EOF
        self.assertEqual(self.download(f, 299990)[1], data[299990:])
        self.assertEqual(self.download(f, 400000, 10)[1], b"")
        self.assertEqual(self.download(f, 5, 0)[1], b"")
        # relative to home, through a symlink
        os.symlink("r.bin", self.p("ln"))
        self.assertEqual(self.download(self.p("ln"), 0, 4)[1], data[:4])

    def test_read_errors_and_fifo(self):
        head, _ = self.download(self.p("missing"))
        self.assertEqual((head["status"], head["message"]),
                         (404, "path '%s' not found" % self.p("missing")))
        head, _ = self.download(self.d)
        self.assertEqual((head["status"], head["message"]), (400, "'%s' is a directory" % self.d))
        os.mkfifo(self.p("fifo"))
        t0 = time.time()
        head, _ = self.download(self.p("fifo"))
        self.assertEqual((head["status"], head["message"]),
                         (400, "'%s' is not a regular file" % self.p("fifo")))
        self.assertLess(time.time() - t0, 2)
        s = socket.socket(socket.AF_UNIX)
        s.bind(self.p("sock"))
        s.close()
        head, _ = self.download(self.p("sock"))
        self.assertEqual(head["status"], 400)
        head, _ = self.download("/dev/null")
        self.assertEqual((head["status"], head["message"]),
                         (400, "'/dev/null' is not a regular file"))

    def test_read_coved_closes_early(self):
        f = self.p("f")
        self.put(f, b"z" * 1000)
        with agentwire.AgentConn(self.sock) as c:
            self.assertEqual(c.call("files.read", {"path": f}, user="root")["status"], 200)
        # the agent is still healthy
        self.assertEqual(self.download(f)[1], b"z" * 1000)

    # ---- acting user ----

    def test_users_concurrently(self):
        priv = self.p("private")
        self.put(os.path.join(priv, "f"), b"x", 0o600)
        os.chmod(priv, 0o700)
        f = os.path.join(priv, "f")
        bad = []

        def worker(user, want):
            for _ in range(40):
                r = self.call("filesystem.Stat", {"path": f}, user=user)
                if r.get("status") != want:
                    bad.append((user, r))

        ts = [threading.Thread(target=worker, args=a)
              for a in (("root", 200), ("nobody", 403), ("root", 200), ("nobody", 403))]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        self.assertEqual(bad, [])

    def test_nobody_permissions(self):
        nob = pwd.getpwnam("nobody")
        priv = self.p("private")
        self.put(os.path.join(priv, "secret"), b"s", 0o600)
        os.chmod(priv, 0o700)
        sec = os.path.join(priv, "secret")
        self.err("filesystem.Stat", {"path": sec}, 403, user="nobody")
        self.err("filesystem.ListDir", {"path": priv}, 403, user="nobody")
        self.assertEqual(self.download(sec, user="nobody")[0]["status"], 403)
        self.err("filesystem.MakeDir", {"path": os.path.join(priv, "d")}, 403, user="nobody")
        self.err("filesystem.Remove", {"path": sec}, 403, user="nobody")
        self.assertEqual(self.upload(os.path.join(priv, "x"), b"x", user="nobody")["status"], 403)
        self.assertEqual(self.upload(self.p("rootdir", "x"), b"x", user="nobody")["status"], 403)
        # root still can
        self.assertEqual(self.download(sec)[1], b"s")
        # new files and dirs belong to the acting user; relative paths are relative to home
        mine = self.p("mine")
        os.mkdir(mine)
        os.chown(mine, nob.pw_uid, nob.pw_gid)
        self.assertEqual(self.upload(os.path.join(mine, "a", "f"), b"hi", user="nobody")["status"],
                         200)
        for p in (os.path.join(mine, "a"), os.path.join(mine, "a", "f")):
            st = os.stat(p)
            self.assertEqual((st.st_uid, st.st_gid), (nob.pw_uid, nob.pw_gid), p)
        e = self.ok("filesystem.MakeDir", {"path": os.path.join(mine, "d")}, user="nobody")
        self.assertEqual(e["entry"]["owner"], "nobody")
        # a file nobody may write in a dir nobody may not: written in place
        shared = self.p("shared")
        self.put(shared, b"before", 0o666)
        self.assertEqual(self.upload(shared, b"after!", user="nobody")["status"], 200)
        self.assertEqual(self.read(shared), b"after!")
        self.assertEqual(os.stat(shared).st_uid, 0)
        # a sticky directory where the file is root's: rename is refused, in place works
        sticky = self.p("sticky")
        os.mkdir(sticky)
        os.chmod(sticky, 0o1777)
        self.put(os.path.join(sticky, "f"), b"root's", 0o666)
        r = self.upload(os.path.join(sticky, "f"), b"nobody's", user="nobody")
        self.assertEqual(r["status"], 200, r)
        self.assertEqual(self.read(os.path.join(sticky, "f")), b"nobody's")
        self.assertEqual(self.temp_files(sticky), [])
        self.put(os.path.join(sticky, "g"), b"x", 0o644)
        r = self.upload(os.path.join(sticky, "g"), b"y", user="nobody")
        self.assertEqual(r["status"], 403, r)
        self.assertEqual(self.temp_files(sticky), [])

    # ---- paths never go through magic links (issue 7; fs_path.c) ----

    def test_magic_links_refused(self):
        magic = "permission denied: '%s' goes through a magic link"
        exe = "/proc/self/exe"  # the agent's own binary
        for path in (exe, "/proc/self/cwd/x", "/proc/self/root" + self.p("x"), "/proc/1/exe"):
            r = self.err("filesystem.Stat", {"path": path}, 403)
            self.assertTrue(r["message"].startswith(magic % path), r)
        self.assertEqual(self.download(exe)[0]["status"], 403)
        self.assertEqual(self.upload("/proc/self/fd/0", b"x")["status"], 403)
        self.err("files.content", {"path": exe}, 403)
        self.err("filesystem.ListDir", {"path": "/proc/self/root"}, 403)
        # through an ordinary symlink, the magic link is still refused
        os.symlink("/proc/self/exe", self.p("toexe"))
        self.assertEqual(self.download(self.p("toexe"))[0]["status"], 403)
        self.assertEqual(self.upload(self.p("toexe"), b"x")["status"], 403)
        self.assertTrue(os.path.islink(self.p("toexe")))
        os.symlink("/proc/self", self.p("toproc"))
        self.err("filesystem.Stat", {"path": self.p("toproc", "exe")}, 403)
        # a listing of /proc/self/fd shows the links but never where they lead
        es = self.ok("filesystem.ListDir", {"path": "/proc/self/fd"})["entries"]
        self.assertTrue(es)
        self.assertEqual([e for e in es if "symlinkTarget" in e], [])
        # ordinary /proc files and the /proc/self link itself still work
        self.assertEqual(self.download("/proc/self/status")[0]["status"], 200)
        e = self.ok("filesystem.Stat", {"path": "/proc/self"})["entry"]
        self.assertEqual(e["type"], "FILE_TYPE_SYMLINK")
        # a loop of ordinary symlinks stays a 400
        os.symlink("loop2", self.p("loop1"))
        os.symlink("loop1", self.p("loop2"))
        r = self.err("files.content", {"path": self.p("loop1")}, 400)
        self.assertIn("too many levels of symbolic links", r["message"])

    def test_write_follows_a_link_chain_hop_by_hop(self):
        os.makedirs(self.p("real", "deep"))
        self.put(self.p("real", "deep", "f"), b"old", 0o640)
        os.symlink("deep/f", self.p("real", "l2"))
        os.symlink("../" + os.path.basename(self.d) + "/real/l2", self.p("l1"))
        self.assertEqual(self.upload(self.p("l1"), b"new")["status"], 200)
        self.assertEqual(self.read(self.p("real", "deep", "f")), b"new")
        self.assertEqual(stat.S_IMODE(os.stat(self.p("real", "deep", "f")).st_mode), 0o640)
        self.assertTrue(os.path.islink(self.p("l1")) and os.path.islink(self.p("real", "l2")))
        # a dangling link is replaced by the file; a link to a directory is a directory
        os.symlink("nowhere/x", self.p("dangling"))
        self.assertEqual(self.upload(self.p("dangling"), b"d")["status"], 200)
        self.assertFalse(os.path.islink(self.p("dangling")))
        os.symlink("real", self.p("todir"))
        r = self.upload(self.p("todir"), b"x")
        self.assertEqual((r["status"], r["message"]), (400, "'%s' is a directory" % self.p("todir")))
        self.assertEqual(self.temp_files(self.p("real")), [])

    def test_refused_moves_and_composes_change_nothing(self):
        nob = pwd.getpwnam("nobody")
        mine = self.p("mine")
        os.mkdir(mine)
        os.chown(mine, nob.pw_uid, nob.pw_gid)
        sticky = self.p("sticky")
        os.mkdir(sticky)
        os.chmod(sticky, 0o1777)
        self.put(os.path.join(sticky, "roots"), b"root's", 0o644)
        # compose: a source nobody may read but not delete (sticky) → 403 before writing
        dst = os.path.join(mine, "new", "deeper", "out")
        r = self.call("files.compose", {"source_paths": [os.path.join(sticky, "roots")],
                                        "destination": dst}, user="nobody")
        self.assertEqual(r["status"], 403, r)
        self.assertEqual(os.listdir(mine), [])
        self.assertEqual(self.read(os.path.join(sticky, "roots")), b"root's")
        # Move within a filesystem and across filesystems: the same, no parents left behind
        for src_dir in (sticky, self.shm):
            if src_dir == self.shm:
                os.chmod(self.shm, 0o1777)
                self.put(os.path.join(self.shm, "roots"), b"root's", 0o644)
            src = os.path.join(src_dir, "roots")
            self.err("filesystem.Move", {"source": src, "destination": dst}, 403, user="nobody")
            self.assertEqual(os.listdir(mine), [])
            self.assertEqual(self.read(src), b"root's")
        # a destination parent nobody may not create → 403, nothing made
        own = os.path.join(sticky, "own")
        self.put(own, b"mine", 0o644)
        os.chown(own, nob.pw_uid, nob.pw_gid)
        self.err("filesystem.Move", {"source": own, "destination": self.p("rootdir", "x")}, 403,
                 user="nobody")
        self.assertFalse(os.path.exists(self.p("rootdir")))
        # and a directory tree with one entry nobody may not delete, moved across filesystems
        tree = os.path.join(self.shm, "tree")
        os.makedirs(os.path.join(tree, "locked"))
        self.put(os.path.join(tree, "a"), b"a")
        self.put(os.path.join(tree, "locked", "b"), b"b")
        for d in (tree, os.path.join(tree, "locked")):
            os.chown(d, nob.pw_uid, nob.pw_gid)
        os.chown(os.path.join(tree, "a"), nob.pw_uid, nob.pw_gid)
        os.chmod(os.path.join(tree, "locked"), 0o555)
        self.err("filesystem.Move", {"source": tree, "destination": os.path.join(mine, "t")}, 403,
                 user="nobody")
        self.assertEqual(os.listdir(mine), [])
        self.assertEqual(sorted(os.listdir(tree)), ["a", "locked"])
        os.chmod(os.path.join(tree, "locked"), 0o755)
        # allowed once it can be deleted
        self.ok("filesystem.Move", {"source": tree, "destination": os.path.join(mine, "t")},
                user="nobody")
        self.assertEqual(self.read(os.path.join(mine, "t", "locked", "b")), b"b")
        self.assertFalse(os.path.exists(tree))

    def test_nul_in_compose_paths(self):
        self.put(self.p("s"), b"s")
        r = self.err("files.compose", {"source_paths": [self.p("s")],
                                       "destination": self.p("d") + "\u0000x"}, 400)
        self.assertEqual(r["message"], "destination must not contain NUL bytes")
        r = self.err("files.compose", {"source_paths": [self.p("s") + "\u0000"],
                                       "destination": self.p("d")}, 400)
        self.assertEqual(r["message"], "source_paths[0] must not contain NUL bytes")
        self.assertFalse(os.path.exists(self.p("d")))
        self.err("filesystem.Stat", {"path": self.p("s") + "\u0000x"}, 400)


if __name__ == "__main__":
    unittest.main(verbosity=2)
