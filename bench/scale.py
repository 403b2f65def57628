#!/usr/bin/env python3
"""Two thousand idle sandboxes on one node (issue 10), with user namespaces, disk images and
networking on, coved inside the hermetic test internet (tests/integration/netfixture.py).

Creates --count idle sandboxes (a few client threads), then reports host memory per sandbox
(MemTotal - MemAvailable before and after, divided by the count), coved's RSS, open fds and
threads, GET /api/v1/sandboxes/{id} and `/run true` latency at that scale (next to the same on an
empty coved), create and network-attach cost as the node fills (first and last 10%), deletes
them all (delete p50/p99) and checks that nothing is left behind: links and nftables objects in
coved's namespace, mounts, cgroups under the cgroup parent, loop devices of the data dir, uid
ranges in the store.

The node budget's settings are raised for the run (the default capacity is memory /
default-memory-mb ≈ 40 here, and disk admission counts every image at full size): --max-sandboxes
count+10, --default-disk-mb 16. Prints `ROW <name> <value> <unit> ratio=<x> ref=<reference>` lines
for the `make bench` report. Not run by `make test`.
"""
import argparse
import json
import os
import re
import sqlite3
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "integration"))
sys.path.insert(0, HERE)

from create import Client, cgroup_memory_mib, mem_used_mib, pct, phases, row  # noqa: E402


def proc_status(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, v = line.split(":", 1)
            out[k] = v.strip()
    rss = int(out["VmRSS"].split()[0]) / 1024.0
    fds = len(os.listdir("/proc/%d/fd" % pid))
    return rss, fds, int(out["Threads"])


def coved_pid(cd):
    # the harness may run coved under nsenter: find the coved process itself
    pid = cd.proc.pid
    for _ in range(3):
        with open("/proc/%d/comm" % pid) as f:
            if f.read().strip() == "coved":
                return pid
        kids = open("/proc/%d/task/%d/children" % (pid, pid)).read().split()
        if not kids:
            break
        pid = int(kids[0])
    return pid


def latency(cd, sbs, n):
    c = Client(cd)
    gets, runs = [], []
    for i in range(n):
        sb = sbs[(i * 7919) % len(sbs)]
        t0 = time.perf_counter()
        st, _ = c.call("GET", "/api/v1/sandboxes/" + sb["sandboxID"])
        t1 = time.perf_counter()
        assert st == 200, st
        c.run_true(sb)
        t2 = time.perf_counter()
        gets.append((t1 - t0) * 1000)
        runs.append((t2 - t1) * 1000)
    c.close()
    return gets, runs


def parallel(fn, items, threads):
    out, errors = [None] * len(items), []
    lock = threading.Lock()
    nxt = [0]

    def worker():
        c = Client(cd_holder[0])
        while True:
            with lock:
                i = nxt[0]
                nxt[0] += 1
            if i >= len(items):
                break
            try:
                out[i] = fn(c, items[i])
            except Exception as e:  # reported after the join
                errors.append("%d: %s" % (i, e))
        c.close()

    ths = [threading.Thread(target=worker) for _ in range(threads)]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    return out, errors


cd_holder = [None]


def leftovers(cd, net, ids):
    found = []
    ns = net.host_ns
    links = subprocess.run(["ip", "-n", ns, "-o", "link"], stdout=subprocess.PIPE,
                           text=True).stdout
    # (the host's own namespace holds no sandbox link: coved runs in the test internet's)
    n = sum(1 for line in links.splitlines() if re.search(r": cove-", line))
    if n:
        found.append("%d links named cove*" % n)
    nft = subprocess.run(["ip", "netns", "exec", ns, "nft", "-j", "list", "ruleset"],
                         stdout=subprocess.PIPE, text=True).stdout
    chains = len(re.findall(r'"chain": \{[^}]*"name": "s_', nft))
    sets = len(re.findall(r'"set": \{[^}]*"name": "l[46]_', nft))
    elems = nft.count('"elem"')
    if chains or sets:
        found.append("nftables: %d sandbox chains, %d sandbox sets" % (chains, sets))
    mnt = subprocess.run(["findmnt", "-rn", "-o", "TARGET,SOURCE"], stdout=subprocess.PIPE,
                         text=True).stdout
    m = [line for line in mnt.splitlines() if cd.data_dir in line or any(i in line for i in ids[:1])]
    if m:
        found.append("%d mounts under the data dir" % len(m))
    cg = 0
    for root, dirs, _ in os.walk("/sys/fs/cgroup"):
        if os.path.basename(root) == "cove":
            cg += sum(1 for d in dirs if d in ids)
        if root.count("/") > 5:
            dirs[:] = []
    if cg:
        found.append("%d sandbox cgroups" % cg)
    loops = subprocess.run(["losetup", "-a"], stdout=subprocess.PIPE, text=True).stdout
    lo = [line for line in loops.splitlines() if cd.data_dir in line]
    if lo:
        found.append("%d loop devices of the data dir" % len(lo))
    db = sqlite3.connect(os.path.join(cd.data_dir, "cove.db"), timeout=30)
    try:
        uids = db.execute("SELECT COUNT(*) FROM uid_ranges").fetchone()[0]
    finally:
        db.close()
    if uids:
        found.append("%d uid ranges in the store" % uids)
    sbdir = os.path.join(cd.data_dir, "sandboxes")
    left = os.listdir(sbdir) if os.path.isdir(sbdir) else []
    if left:
        found.append("%d sandbox state dirs" % len(left))
    return found, elems


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--coved-arg", action="append", default=[])
    args = ap.parse_args()
    build = os.path.abspath(os.path.join(os.path.dirname(HERE), args.build))
    os.environ["COVE_BUILD_DIR"] = build
    import coveharness
    from coveharness import Coved
    from netfixture import Internet

    coveharness.COVED = os.path.join(build, "coved")
    with Internet() as net:
        extra = ["--uplink", net.uplink, "--dns-upstream", net.dns,
                 "--max-sandboxes", str(args.count + 10), "--default-disk-mb", "16"]
        cd = Coved(netns=net.host_ns, extra_args=extra + args.coved_arg)
        with cd:
            cd_holder[0] = cd
            run(args, cd, net)


def run(args, cd, net):
    from create import cgroup_layout
    print("features: user namespaces on, per-sandbox disk images (16 MiB), network on (test "
          "internet), cgroup %s, warm pool off" % cgroup_layout())
    pid = coved_pid(cd)
    c = Client(cd)
    warm = [c.create() for _ in range(3)]
    g0, r0 = latency(cd, warm, args.samples)
    for sb in warm:
        c.delete(sb["sandboxID"])
    time.sleep(1.0)
    mem0 = mem_used_mib()
    rss0, fds0, thr0 = proc_status(pid)
    ph_a = phases(cd)

    tenth = max(1, args.count // 10)
    t_start = time.perf_counter()

    def create(cl, i):
        t = time.perf_counter()
        sb = cl.create(timeout=3600)  # outlives the run (the default is 300 s)
        return sb, (time.perf_counter() - t) * 1000

    first, errs = parallel(create, list(range(tenth)), args.threads)
    ph_b = phases(cd)
    rest, errs2 = parallel(create, list(range(args.count - 2 * tenth)), args.threads)
    ph_c = phases(cd)
    last, errs3 = parallel(create, list(range(tenth)), args.threads)
    ph_d = phases(cd)
    created = [x for x in first + rest + last if x]
    errors = errs + errs2 + errs3
    t_create = time.perf_counter() - t_start
    sbs = [x[0] for x in created]
    print("created %d idle sandboxes in %.1f s (%d client threads); %d failed%s" %
          (len(sbs), t_create, args.threads, len(errors), (": " + errors[0]) if errors else ""))

    time.sleep(2.0)
    mem1 = mem_used_mib()
    in_cg = cgroup_memory_mib([sb["sandboxID"] for sb in [x[0] for x in created]])
    rss1, fds1, thr1 = proc_status(pid)
    g1, r1 = latency(cd, sbs, args.samples)

    def mean_phase(a, b, name):
        s0, c0 = a.get(name, (0, 0))
        s1, c1 = b.get(name, (0, 0))
        return (s1 - s0) / (c1 - c0) * 1000 if c1 > c0 else float("nan")

    per = (mem1 - mem0) / max(1, len(sbs))
    print("at %d sandboxes:" % len(sbs))
    print("  host memory per idle sandbox   %6.3f MiB  (%.0f MiB in all); charged to its own "
          "cgroup %.3f MiB" % (per, mem1 - mem0, in_cg / max(1, len(sbs))))
    print("  coved RSS %.1f MiB (empty: %.1f), fds %d (empty: %d), threads %d (empty: %d)" %
          (rss1, rss0, fds1, fds0, thr1, thr0))
    print("  GET /api/v1/sandboxes/{id}     p50 %7.2f ms  p99 %7.2f ms   (empty node: p50 %.2f, p99 %.2f)" %
          (pct(g1, 50), pct(g1, 99), pct(g0, 50), pct(g0, 99)))
    print("  /run true                      p50 %7.2f ms  p99 %7.2f ms   (empty node: p50 %.2f, p99 %.2f)" %
          (pct(r1, 50), pct(r1, 99), pct(r0, 50), pct(r0, 99)))
    ft = [x[1] for x in first if x]
    lt = [x[1] for x in last if x]
    print("  create p50, first 10%%: %.1f ms, last 10%%: %.1f ms" % (pct(ft, 50), pct(lt, 50)))
    for name in ("network.attach", "admit.disk", "runtime.disk", "store.insert+quota",
                 "manager.total (all of the above)"):
        print("  %-32s mean first 10%% %7.2f ms, last 10%% %7.2f ms" %
              (name, mean_phase(ph_a, ph_b, name), mean_phase(ph_c, ph_d, name)))

    def delete(cl, sb):
        t = time.perf_counter()
        cl.delete(sb["sandboxID"])
        return (time.perf_counter() - t) * 1000

    t0 = time.perf_counter()
    dels, derrs = parallel(delete, sbs, args.threads)
    t_del = time.perf_counter() - t0
    dels = [d for d in dels if d is not None]
    print("deleted %d in %.1f s: delete p50 %.2f ms, p99 %.2f ms; %d failed%s" %
          (len(dels), t_del, pct(dels, 50), pct(dels, 99), len(derrs),
           (": " + derrs[0]) if derrs else ""))
    ids = [sb["sandboxID"] for sb in sbs]
    t0 = time.perf_counter()
    try:
        cd.wait_teardown(timeout=900)  # the deletes answered; their teardowns run after
    except (AssertionError, AttributeError) as e:
        print("teardown: %s" % e)
    print("background teardown of all finished %.1f s after the last delete answered" %
          (time.perf_counter() - t0))
    warnings = [line for line in open(cd.log_path, errors="replace")
                if "teardown" in line or "warning" in line]
    print("coved's warnings: %d%s" % (len(warnings), (": " + warnings[-1].strip()) if warnings else ""))
    found = []
    for _ in range(10):
        found, elems = leftovers(cd, net, ids)
        if not found:
            break
        time.sleep(1.0)
    print("left behind after delete: %s" % ("; ".join(found) if found else "nothing"))
    c.close()

    row("scale_idle_sandboxes", len(sbs), "sandboxes", args.count, "asked")
    row("scale_memory_per_sandbox", per, "MiB", 1.0, "target_1MiB")
    row("scale_get_p99", pct(g1, 99), "ms", pct(g0, 99), "get_p99_empty_node")
    row("scale_run_p50", pct(r1, 50), "ms", pct(r0, 50), "run_p50_empty_node")
    row("scale_coved_rss", rss1, "MiB", rss0, "coved_rss_empty_node")
    row("scale_leftovers", len(found), "kinds", 1, "none")


if __name__ == "__main__":
    main()
