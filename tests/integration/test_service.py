"""Running coved as a service: `make install` (PREFIX, DESTDIR) and the systemd unit.

There is no systemd on this machine, so `systemctl restart coved` is played out by hand on
this host's own cgroups: coved runs inside a unit cgroup made by the test (in the hierarchies
systemd tracks units with: name=systemd and the unified one on hybrid hosts, the v2 tree on
pure-v2 hosts), the stop does to that cgroup exactly what systemd does for the unit's
KillMode, read from the unit file `make install` installs, and the start runs coved in the
same cgroup again. Every sandbox must still run afterwards and be re-adopted.
"""
import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

import coveharness
from coveharness import BUILD, ROOT, Coved


def unit_setting(text, key, default=None):
    for line in text.splitlines():
        line = line.strip()
        if line.startswith(key + "="):
            return line.split("=", 1)[1].strip()
    return default


class Install(unittest.TestCase):
    def test_make_install_destdir(self):
        dest = tempfile.mkdtemp(prefix="cove-install-")
        try:
            p = subprocess.run(["make", "-C", ROOT, "install", "DESTDIR=" + dest,
                                "BUILD=" + BUILD], capture_output=True, timeout=900)
            self.assertEqual(p.returncode, 0, p.stdout.decode() + p.stderr.decode())
            pre = dest + "/usr/local"
            for f in ("sbin/coved", "bin/cove", "libexec/cove/cove-runtime",
                      "libexec/cove/cove-init", "libexec/cove/cove-agent",
                      "lib/systemd/system/coved.service", "etc/cove/coved.conf",
                      "etc/cove/coved.conf.example", "share/doc/cove/prometheus.yml",
                      "share/doc/cove/operations.md", "include/cove/cove.h"):
                self.assertTrue(os.path.exists(os.path.join(pre, f)), f)
            # meson's libdir: lib/<multiarch> with dpkg-dev, else lib64 or lib
            self.assertTrue(glob.glob(pre + "/lib/*/libcove.so*") or glob.glob(pre + "/lib*/libcove.so*"))
            unit = open(pre + "/lib/systemd/system/coved.service").read()
            self.assertEqual(unit_setting(unit, "ExecStart"),
                             "/usr/local/sbin/coved --config /usr/local/etc/cove/coved.conf")
            self.assertEqual(unit_setting(unit, "KillMode"), "process")
            self.assertIn("WantedBy=multi-user.target", unit)
            self.assertNotIn("@", unit)  # every placeholder substituted
            # An operator's config is kept on the next install.
            with open(pre + "/etc/cove/coved.conf", "a") as f:
                f.write("\n# mine\n")
            p = subprocess.run(["make", "-C", ROOT, "install", "DESTDIR=" + dest,
                                "BUILD=" + BUILD], capture_output=True, timeout=900)
            self.assertEqual(p.returncode, 0)
            self.assertIn("# mine", open(pre + "/etc/cove/coved.conf").read())
            # The installed tree runs: coved with the installed config, helpers from libexec.
            p = subprocess.run([pre + "/sbin/coved", "--config", pre + "/etc/cove/coved.conf",
                                "--help"], capture_output=True, timeout=30)
            self.assertEqual(p.returncode, 0, p.stderr)
            # meson's libdir: lib/<multiarch>, lib64 or lib, by the build host's layout.
            libs = [os.path.join(d, f) for d, _, files in os.walk(pre) for f in files
                    if f.startswith("libcove.so")]
            self.assertTrue(libs, "libcove.so not installed under " + pre)
            libdir = os.path.dirname(libs[0])
            p = subprocess.run([pre + "/bin/cove", "--version"], capture_output=True, timeout=30,
                               env=dict(os.environ, LD_LIBRARY_PATH=libdir))
            self.assertEqual(p.returncode, 0, p.stderr)
            saved = coveharness.COVED
            coveharness.COVED = pre + "/sbin/coved"
            try:
                with Coved(extra_args=["--config", pre + "/etc/cove/coved.conf",
                                       "--libexec-dir", pre + "/libexec/cove"]) as cd:
                    sb = cd.create()
                    self.assertEqual(sb.sh("echo installed")["stdout"], "installed\n")
                    sb.delete()
            finally:
                coveharness.COVED = saved
        finally:
            shutil.rmtree(dest, ignore_errors=True)


def unit_cgroup_parents():
    """Where systemd keeps a unit's cgroup on this host (the hierarchies it tracks units in)."""
    if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):  # pure v2
        return ["/sys/fs/cgroup"]
    return [p for p in ("/sys/fs/cgroup/systemd", "/sys/fs/cgroup/unified")
            if os.path.exists(p + "/cgroup.procs")]


def pids_in(dirs):
    pids = set()
    for d in dirs:
        try:
            with open(d + "/cgroup.procs") as f:
                pids |= {int(x) for x in f.read().split()}
        except OSError:
            pass
    return pids


def alive(pid):
    try:
        os.kill(pid, 0)
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


class SystemdRestart(unittest.TestCase):
    def setUp(self):
        parents = unit_cgroup_parents()
        if not parents:
            self.skipTest("no cgroup hierarchy that tracks units on this host")
        self.unit = "cove-test-%d-%s.service" % (os.getpid(), os.urandom(3).hex())
        self.dirs = []
        for p in parents:
            d = os.path.join(p, self.unit)
            os.mkdir(d)
            self.dirs.append(d)
        self.tmp = tempfile.mkdtemp(prefix="cove-unit-")
        # coved's ExecStart, run inside the unit's cgroup like systemd would start it.
        self.wrapper = os.path.join(self.tmp, "coved-in-unit")
        with open(self.wrapper, "w") as f:
            f.write("#!/bin/sh\nfor d in %s; do echo $$ > \"$d/cgroup.procs\" || exit 99; done\n"
                    "exec %s \"$@\"\n" % (" ".join(self.dirs), os.path.join(BUILD, "coved")))
        os.chmod(self.wrapper, 0o755)
        self.saved = coveharness.COVED
        coveharness.COVED = self.wrapper
        with open(os.path.join(BUILD, "coved.service")) as f:
            self.kill_mode = unit_setting(f.read(), "KillMode", "control-group")

    def tearDown(self):
        coveharness.COVED = self.saved
        deadline = time.monotonic() + 30
        for d in self.dirs:
            while True:
                try:
                    os.rmdir(d)
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def systemctl_stop(self, cd):
        """What systemd does to the unit's processes on stop, for its KillMode."""
        main = cd.proc.pid
        others = pids_in(self.dirs) - {main}
        cd.proc.send_signal(signal.SIGTERM)  # every mode signals the main process
        if self.kill_mode == "control-group":
            for pid in others:
                os.kill(pid, signal.SIGTERM)
        cd.proc.wait(45)
        cd.log.close()
        if self.kill_mode in ("control-group", "mixed"):
            for pid in pids_in(self.dirs):
                os.kill(pid, signal.SIGKILL)

    def test_restart_keeps_sandboxes_running_and_readopts_them(self):
        cd = Coved().start()
        try:
            sbs = [cd.create(timeout=900) for _ in range(2)]
            for sb in sbs:
                sb.sh("echo before > /tmp/mark")
            # The sandboxes' processes are in the unit's cgroup too (in the hierarchies that
            # have no controller coved moves them out of): a control-group stop would hit them.
            inside = pids_in(self.dirs) - {cd.proc.pid}
            if len(unit_cgroup_parents()) and not os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
                self.assertTrue(inside, "sandbox processes not in the unit's cgroup")
            self.systemctl_stop(cd)
            for pid in inside:
                self.assertTrue(alive(pid), "process %d of a sandbox died with the stop" % pid)

            cd2 = Coved(data_dir=cd.data_dir, api_key=cd.api_key)  # systemctl start
            cd2.own_dir = True
            cd2.start()
            try:
                st, lst, _ = cd2.api("GET", "/sandboxes")
                self.assertEqual(sorted((x["sandboxID"], x["state"]) for x in lst),
                                 sorted((sb.id, "running") for sb in sbs))
                for sb in sbs:
                    sb.cd = cd2
                    self.assertEqual(sb.sh("cat /tmp/mark")["stdout"], "before\n")
                self.assertIn("re-adopted 2 sandboxes", cd2.read_log())
                # and once more: a restart of the restarted service
                self.systemctl_stop(cd2)
                cd3 = Coved(data_dir=cd.data_dir, api_key=cd.api_key)
                cd3.own_dir = True
                cd3.start()
                try:
                    for sb in sbs:
                        sb.cd = cd3
                        self.assertEqual(sb.run("echo", "again")["stdout"], "again\n")
                        self.assertEqual(sb.delete()[0], 204)
                finally:
                    cd3.__exit__(None, None, None)
            finally:
                if cd2.proc.poll() is None:
                    cd2.__exit__(None, None, None)
        finally:
            if cd.proc.poll() is None:
                cd.stop()


if __name__ == "__main__":
    unittest.main()
