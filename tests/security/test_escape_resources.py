"""What a sandbox holds on the host — its uid range, its disk image, its loop device — is its
own, is admitted against what the node can give, and goes when it goes (delete, kill -9 of
coved, `coved purge`). docs/security.md, "A hostile tenant" and "A hostile sandbox"."""
import os
import shutil
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from coveharness import COVED, DATA_PARENT, Coved  # noqa: E402
from sbxprobe import init_pid, loop_devices_backed_by, status_field, wait_for  # noqa: E402

UID_BASE = 1879048192


def root_uid(cd, sb):
    return int(status_field(init_pid(cd, sb), "Uid")[0])


def mounts_mentioning(s):
    with open("/proc/self/mountinfo") as f:
        return [line for line in f if s in line]


class UidRanges(unittest.TestCase):
    def test_ranges_are_exclusive_reused_after_delete_and_recovered_on_restart(self):
        cd = Coved(extra_args=["--uid-ranges", "2"]).start()
        try:
            a, b = cd.create(timeout=900), cd.create(timeout=900)
            ua, ub = root_uid(cd, a), root_uid(cd, b)
            self.assertEqual(sorted([ua, ub]), [UID_BASE, UID_BASE + 65536])
            # no third range: refused before anything is made
            st, body, _ = cd.api("POST", "/sandboxes", {"waitReady": True})
            self.assertEqual(st, 503, body)
            self.assertIn("every uid range is in use", body["message"])
            self.assertEqual(len(os.listdir(os.path.join(cd.data_dir, "sandboxes"))), 2)
            # a deleted sandbox's range serves the next one
            self.assertEqual(b.delete()[0], 204)
            c = cd.create(timeout=900)
            self.assertEqual(root_uid(cd, c), ub)
            self.assertEqual(c.delete()[0], 204)
            # kill -9 of coved: the live sandbox keeps its range, a new one never gets it
            cd.kill9()
            cd2 = Coved(data_dir=cd.data_dir, api_key=cd.api_key, extra_args=["--uid-ranges", "2"])
            cd2.start()
            try:
                a.cd = cd2
                self.assertEqual(a.run("echo", "adopted")["stdout"], "adopted\n")
                d = cd2.create(timeout=900)
                self.assertEqual(root_uid(cd2, d), ub)
                self.assertEqual(root_uid(cd2, a), ua)
                st, body, _ = cd2.api("POST", "/sandboxes", {"waitReady": True})
                self.assertEqual(st, 503, body)
            finally:
                cd2.__exit__(None, None, None)
        finally:
            if cd.proc.poll() is None:
                cd.stop()
            cd.purge()
            shutil.rmtree(cd.data_dir, ignore_errors=True)


class VolumeOwners(unittest.TestCase):
    def test_a_volume_shows_each_sandbox_its_own_ids(self):
        """A volume holds the sandboxes' own ids (0, 1000) and each sandbox's mount of it is
        idmapped through its user namespace: what root or user writes in one sandbox is root's
        or user's in another, and on the host each sees its own block of uids."""
        with Coved() as cd:
            st, vol, _ = cd.api("POST", "/volumes", {"name": "shared-ids"})
            self.assertEqual(st, 201, vol)
            mounts = [{"name": "shared-ids", "path": "/vol"}]
            a, b = cd.create(timeout=900, volumeMounts=mounts), cd.create(timeout=900, volumeMounts=mounts)
            ua, ub = root_uid(cd, a), root_uid(cd, b)
            self.assertNotEqual(ua, ub)
            a.sh("echo r > /vol/r && mkdir /vol/u && chown user:user /vol/u")
            st, body, _ = a.rt("POST", "/run", {"cmd": "sh", "args": ["-c", "echo u > /vol/u/f"]},
                               headers={"Authorization": "Basic dXNlcjo="})
            self.assertEqual((st, body["exit_code"]), (200, 0), body)
            for sb, base in ((a, ua), (b, ub)):
                out = sb.sh("stat -c '%u:%g' /vol /vol/r /vol/u/f")["stdout"].split()
                self.assertEqual(out, ["0:0", "0:0", "1000:1000"], sb.id)
                root = "/proc/%d/root/vol" % init_pid(cd, sb)
                self.assertEqual(os.stat(root + "/r").st_uid, base)
                self.assertEqual(os.stat(root + "/u/f").st_uid, base + 1000)
            a.delete()
            b.delete()


class DiskAdmission(unittest.TestCase):
    def test_503_when_the_data_filesystem_cannot_hold_it(self):
        free_mib = shutil.disk_usage(DATA_PARENT).free >> 20
        # a reserve that leaves less than one sandbox's disk
        with Coved(extra_args=["--disk-reserve-mb", str(max(free_mib - 16, 0))]) as cd:
            st, body, _ = cd.api("POST", "/sandboxes", {"waitReady": True})
            self.assertEqual(st, 503, body)
            self.assertIn("not enough disk space", body["message"])
            self.assertIn("reserved", body["message"])
            st, lst, _ = cd.api("GET", "/sandboxes")
            self.assertEqual(lst, [])
            self.assertEqual(os.listdir(os.path.join(cd.data_dir, "sandboxes")), [])

    def test_sparse_images_are_counted_at_their_full_size(self):
        """Two 512 MiB sandboxes where the free space above the reserve is 700 MiB: the second
        is refused although the first has written almost nothing (its image may still grow)."""
        free_mib = shutil.disk_usage(DATA_PARENT).free >> 20
        with Coved(extra_args=["--default-disk-mb", "512",
                               "--disk-reserve-mb", str(max(free_mib - 700, 0))]) as cd:
            a = cd.create(timeout=900)
            img = os.path.join(cd.data_dir, "sandboxes", a.id, "disk.img")
            self.assertEqual(os.stat(img).st_size, 512 << 20)
            self.assertLess(os.stat(img).st_blocks * 512, 64 << 20)
            st, body, _ = cd.api("POST", "/sandboxes", {"waitReady": True})
            self.assertEqual(st, 503, body)
            self.assertIn("promised to running sandboxes", body["message"])
            # gone again: the space is free to admit
            self.assertEqual(a.delete()[0], 204)
            b = cd.create(timeout=900)
            self.assertEqual(b.delete()[0], 204)


class Release(unittest.TestCase):
    def test_everything_goes_with_the_sandbox_even_after_kill9_and_purge(self):
        cd = Coved().start()
        try:
            a, b = cd.create(timeout=900), cd.create(timeout=900)
            prefix = os.path.join(cd.data_dir, "sandboxes") + "/"
            img_a = prefix + a.id + "/disk.img"
            self.assertEqual(len(loop_devices_backed_by(img_a)), 1)
            # nothing of a sandbox is mounted in the host's namespace
            self.assertEqual(mounts_mentioning(cd.data_dir), [])
            # delete: image, loop device, state dir
            self.assertEqual(a.delete()[0], 204)
            cd.wait_teardown()  # the delete answers before its teardown ends
            self.assertFalse(os.path.exists(prefix + a.id))
            wait_for(lambda: loop_devices_backed_by(img_a) == [], what="a's loop device to go")
            # kill -9 of coved, then purge: b's processes, cgroup, image and loop device go
            pid_b = init_pid(cd, b)
            cd.kill9()
            self.assertTrue(os.path.exists("/proc/%d" % pid_b))
            self.assertEqual(len(loop_devices_backed_by(prefix)), 1)
            subprocess.run([COVED, "purge", "--data-dir", cd.data_dir], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
            wait_for(lambda: not os.path.exists("/proc/%d" % pid_b) or
                     open("/proc/%d/stat" % pid_b).read().split(") ")[1][0] == "Z",
                     what="b's init to die")
            self.assertEqual(os.listdir(prefix), [])
            wait_for(lambda: loop_devices_backed_by(prefix) == [], what="b's loop device to go")
            self.assertEqual(mounts_mentioning(cd.data_dir), [])
            self.assertFalse(any(os.path.isdir("/sys/fs/cgroup/%s/cove/%s" % (c, b.id))
                                 for c in ("pids", "memory", "cpu", "freezer", "")))
        finally:
            if cd.proc.poll() is None:
                cd.stop()
            cd.purge()
            shutil.rmtree(cd.data_dir, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
