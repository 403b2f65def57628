"""Sandboxes outlive coved (kill -9 and restart re-adopts them); nothing outlives a sandbox."""
import glob
import os
import signal
import subprocess
import time
import unittest

from coveharness import Coved


def cove_cgroups(ids):
    found = []
    for ctrl in ("memory", "cpu", "pids", "freezer", "unified", ""):
        for i in ids:
            for p in glob.glob("/sys/fs/cgroup/%s/cove/%s" % (ctrl, i)):
                found.append(p)
    return found


def mounts_mentioning(s):
    with open("/proc/self/mountinfo") as f:
        return [l for l in f if s in l]


class Restart(unittest.TestCase):
    def test_kill9_restart_readopts(self):
        cd = Coved().start()
        try:
            sb = cd.create(timeout=900)
            # start a background process through the streaming API and leave it running
            self._start_bg(sb)
            sb.sh("echo persisted > /root/workspace/note.txt")
            cd.kill9()

            cd2 = Coved(data_dir=cd.data_dir, api_key=cd.api_key)
            cd2.own_dir = True
            cd2.start()
            try:
                st, lst, _ = cd2.api("GET", "/sandboxes")
                self.assertEqual(st, 200)
                self.assertEqual([(x["sandboxID"], x["state"]) for x in lst], [(sb.id, "running")])
                sb.cd = cd2
                st, procs, _ = sb.rpc("process.Process/List", {})
                self.assertEqual(st, 200, procs)
                self.assertIn("sleep", [p["config"]["cmd"] for p in procs["processes"]])
                self.assertEqual(sb.sh("cat /root/workspace/note.txt")["stdout"], "persisted\n")
                self.assertEqual(sb.run("echo", "after restart")["stdout"], "after restart\n")
                self.assertEqual(sb.delete()[0], 204)
            finally:
                cd2.__exit__(None, None, None)
        finally:
            if cd.proc.poll() is None:
                cd.stop()

    def _start_bg(self, sb):
        import http.client
        import json
        conn = http.client.HTTPConnection("127.0.0.1", sb.cd.port, timeout=30)
        conn.request("POST", sb.prefix + "/process.Process/Start",
                     body=json.dumps({"process": {"cmd": "sleep", "args": ["600"]}, "stdin": False}),
                     headers={"Content-Type": "application/connect+json", "X-Access-Token": sb.token})
        resp = conn.getresponse()
        self.assertEqual(resp.status, 200)
        first = resp.read(5)
        self.assertEqual(first[0], 0)
        conn.close()  # the client goes away; the process keeps running

    def test_dead_init_is_marked_stopped_on_restart(self):
        cd = Coved().start()
        try:
            sb = cd.create(timeout=900)
            cd.kill9()
            # find the sandbox's init (PID 1 of its pid namespace) through its cgroup and kill it
            pids = []
            for p in glob.glob("/sys/fs/cgroup/*/cove/%s/cgroup.procs" % sb.id):
                with open(p) as f:
                    pids += [int(x) for x in f.read().split()]
            self.assertTrue(pids)
            for pid in set(pids):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.3)
            cd2 = Coved(data_dir=cd.data_dir, api_key=cd.api_key)
            cd2.own_dir = True
            cd2.start()
            try:
                st, d, _ = cd2.api("GET", "/sandboxes/" + sb.id)
                self.assertEqual(st, 200)
                self.assertEqual(d["state"], "stopped")
                self.assertEqual(d["diagnostic"]["reason"], "runtime_exited")
                st, body, _ = cd2.request("POST", "/envd/%s/run" % sb.id, {"cmd": "true"}, auth=False,
                                          headers={"X-Access-Token": sb.token})
                self.assertEqual(st, 409)
                self.assertEqual(cove_cgroups([sb.id]), [])
                self.assertEqual(cd2.api("DELETE", "/sandboxes/" + sb.id)[0], 204)
            finally:
                cd2.__exit__(None, None, None)
        finally:
            if cd.proc.poll() is None:
                cd.stop()


class Leaks(unittest.TestCase):
    def test_50_create_delete_leave_nothing(self):
        with Coved() as cd:
            fds_before = len(os.listdir("/proc/%d/fd" % cd.proc.pid))
            ids = []
            for i in range(50):
                sb = cd.create()
                ids.append(sb.id)
                if i % 10 == 0:
                    self.assertEqual(sb.run("true")["exit_code"], 0)
                self.assertEqual(sb.delete()[0], 204)
            cd.wait_teardown()  # deletes answer before their teardown ends
            self.assertEqual(cove_cgroups(ids), [])
            for i in ids:
                self.assertEqual(mounts_mentioning(i), [])
                self.assertFalse(os.path.exists(os.path.join(cd.data_dir, "sandboxes", i)))
            # no process of theirs: nothing runs on their (gone) state dirs, no zombie children
            out = subprocess.run(["ps", "-eo", "pid,ppid,stat,comm"], stdout=subprocess.PIPE, text=True).stdout
            zombies = [l for l in out.splitlines()[1:]
                       if l.split()[1] == str(cd.proc.pid) and l.split()[2].startswith("Z")]
            self.assertEqual(zombies, [])
            inits = [l for l in out.splitlines() if l.split()[-1] == "cove-init" and l.split()[1] == str(cd.proc.pid)]
            self.assertEqual(inits, [])
            fds_after = len(os.listdir("/proc/%d/fd" % cd.proc.pid))
            self.assertLessEqual(fds_after, fds_before + 2)
            st, lst, _ = cd.api("GET", "/sandboxes")
            self.assertEqual(lst, [])


if __name__ == "__main__":
    unittest.main()
