"""Fork, memory and disk bombs (docs/security.md, "A hostile sandbox": resources): a neighbour
sandbox keeps running commands and coved keeps answering while they go off. Assertions are on
completion and on the kernel's counters, never on timing."""
import errno
import os
import shutil
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from coveharness import Coved  # noqa: E402
from sbxprobe import PROBE_IN, loop_devices_backed_by, probe_install, wait_for  # noqa: E402


def host_pids_limit():
    with open("/proc/sys/kernel/pid_max") as f:
        pid_max = int(f.read())
    with open("/proc/sys/kernel/threads-max") as f:
        threads = int(f.read())
    return min(pid_max, threads)


def remove_cgroup_tree(name):
    """Removes a test's own cgroup parent (children first) in every hierarchy."""
    for root in ["/sys/fs/cgroup/" + c for c in os.listdir("/sys/fs/cgroup")] + ["/sys/fs/cgroup"]:
        top = os.path.join(root, name)
        if not os.path.isdir(top):
            continue
        for dirpath, dirnames, _ in sorted(os.walk(top), key=lambda w: -w[0].count("/")):
            try:
                os.rmdir(dirpath)
            except OSError:
                pass


def cgroup_file(parent, ctrl, rel, name):
    for p in ("/sys/fs/cgroup/%s/%s/%s/%s" % (ctrl, parent, rel, name),
              "/sys/fs/cgroup/%s/%s/%s" % (parent, rel, name)):
        if os.path.exists(p):
            with open(p) as f:
                return f.read().strip()
    raise AssertionError("no %s for %s/%s" % (name, parent, rel))


def read_file(sb, path):
    st, body, _ = sb.rt("GET", "/files?path=" + path, raw=True)
    return body.decode() if st == 200 else ""


class Bombs(unittest.TestCase):
    """A node whose budget holds three sandboxes of 128 pids: two fork-bomb, one works."""
    PIDS_MAX = 128
    BUDGET = 400

    @classmethod
    def setUpClass(cls):
        cls.parent = "cove-test-bombs-" + os.urandom(4).hex()
        reserve = host_pids_limit() - cls.BUDGET
        cls.cd = Coved(extra_args=["--cgroup-parent", cls.parent, "--pids-max", str(cls.PIDS_MAX),
                                   "--node-pids-reserve", str(reserve), "--default-disk-mb", "128"])
        cls.cd.cgroup_parent = cls.parent
        try:
            cls.cd.start()
        except BaseException:
            cls.cleanup()
            raise

    @classmethod
    def cleanup(cls):
        cls.cd.stop()
        subprocess_purge(cls.cd, cls.parent)
        shutil.rmtree(cls.cd.data_dir, ignore_errors=True)
        remove_cgroup_tree(cls.parent)

    @classmethod
    def tearDownClass(cls):
        cls.cleanup()

    def healthy(self):
        self.assertEqual(self.cd.request("GET", "/health", auth=False)[0], 200)
        st, lst, _ = self.cd.api("GET", "/sandboxes")
        self.assertEqual(st, 200, lst)

    def test_fork_bombs_stay_in_their_sandboxes_and_the_budget(self):
        self.assertEqual(cgroup_file(self.parent, "pids", "", "pids.max"), str(self.BUDGET))
        a, b, c = (self.cd.create(timeout=600) for _ in range(3))
        # the derived capacity: 400 pids / 128 per sandbox = 3 sandboxes
        st, body, _ = self.cd.api("POST", "/sandboxes", {"waitReady": True})
        self.assertEqual(st, 503, body)
        self.assertIn("no capacity", body["message"])
        try:
            for sb in (a, b):
                probe_install(sb)
                sb.sh("setsid %s forkbomb 20 >/tmp/fb.out 2>&1 </dev/null &" % PROBE_IN)
            # each bomber stops at its own pids.max (the file API needs no fork)
            for sb in (a, b):
                out = wait_for(lambda: read_file(sb, "/tmp/fb.out").strip(), timeout=60,
                               what="fork bomb report")
                n, err = (int(x) for x in out.split()[1:3])
                self.assertEqual(err, errno.EAGAIN, out)
                self.assertLess(n, self.PIDS_MAX)
                self.assertLessEqual(int(cgroup_file(self.parent, "pids", sb.id, "pids.current")),
                                     self.PIDS_MAX)
            # while both hold their pids: the node's total stays in its budget, the neighbour
            # and coved answer
            self.assertLessEqual(int(cgroup_file(self.parent, "pids", "", "pids.current")),
                                 self.BUDGET)
            for _ in range(3):
                self.assertEqual(c.run("sh", "-c", "echo neighbour; ls / >/dev/null")["stdout"],
                                 "neighbour\n")
                self.healthy()
            # and the bombers come back once their bombs end
            for sb in (a, b):
                wait_for(lambda: sb.run("echo", "back")["stdout"] == "back\n", timeout=120,
                         what="bombed sandbox to answer again")
        finally:
            for sb in (a, b, c):
                sb.delete()

    def test_memory_bomb_is_killed_in_its_sandbox(self):
        a, c = self.cd.create(timeout=600), self.cd.create(timeout=600)
        try:
            out = a.run("python3", "-c", "x = bytearray(4 * 1024 * 1024 * 1024)\nprint('survived')",
                        timeout=120)
            self.assertNotIn("survived", out["stdout"])
            self.assertEqual(out["exit_code"], 137, out)
            self.assertEqual(c.run("echo", "neighbour")["stdout"], "neighbour\n")
            self.assertEqual(a.run("echo", "still here")["stdout"], "still here\n")
            self.healthy()
        finally:
            a.delete()
            c.delete()

    def test_disk_bomb_fills_only_its_own_disk(self):
        a, c = self.cd.create(timeout=600), self.cd.create(timeout=600)
        image = os.path.join(self.cd.data_dir, "sandboxes", a.id, "disk.img")
        try:
            free_before = shutil.disk_usage(self.cd.data_dir).free
            probe_install(a)
            out = a.run(PROBE_IN, "diskbomb", "/root/fill", timeout=300)
            mib, err = (int(x) for x in out["stdout"].split()[1:3])
            self.assertEqual(err, errno.ENOSPC, out)
            self.assertGreater(mib, 64)      # it got most of its 128 MiB …
            self.assertLessEqual(mib, 128)   # … and not a byte more
            df = a.sh("df -B1M --output=size,avail / | tail -1")["stdout"].split()
            self.assertLessEqual(int(df[0]), 128, df)
            self.assertLessEqual(int(df[1]), 1, df)
            # the host filesystem lost at most the image's size
            self.assertLessEqual(os.stat(image).st_blocks * 512, 128 * 1024 * 1024)
            used = free_before - shutil.disk_usage(self.cd.data_dir).free
            self.assertLess(used, 128 * 1024 * 1024 + 64 * 1024 * 1024)
            # the neighbour writes, coved writes its database (a new sandbox), all answer
            self.assertEqual(c.sh("head -c 1048576 /dev/zero > /root/f && echo ok")["stdout"],
                             "ok\n")
            d = self.cd.create(timeout=600)
            d.delete()
            # the file API says so the way the spec does
            st, body, _ = a.rt("POST", "/files?path=/root/more", b"x" * (4 << 20),
                               headers={"Content-Type": "application/octet-stream"})
            self.assertEqual(st, 507, body)
            self.healthy()
        finally:
            a.delete()
            c.delete()
        self.cd.wait_teardown()  # deletes answer before their teardown ends
        self.assertFalse(os.path.exists(image))
        wait_for(lambda: loop_devices_backed_by(image) == [], what="loop device released")


def subprocess_purge(cd, parent):
    import subprocess
    from coveharness import COVED
    subprocess.run([COVED, "purge", "--data-dir", cd.data_dir, "--cgroup-parent", parent],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)


if __name__ == "__main__":
    unittest.main()
