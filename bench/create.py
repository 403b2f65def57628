#!/usr/bin/env python3
"""The create side of issue 10, measured side by side in one run, with user namespaces, disk
images and networking on (coved runs inside the hermetic test internet of
tests/integration/netfixture.py, so sandbox traffic never leaves the machine).

1. create(waitReady) -> first `/run true`, N times on one keep-alive connection, interleaved
   in rounds with the kernel floor (bench/floor.c) so that machine noise hits both alike;
   delete of each (p50: the time until the answer).
2. Where a create's time goes: coved's cove_sandbox_create_phase_seconds histogram (sum/count
   per phase over the sequential creates of 1.), printed as the mean per phase.
3. 50 concurrent creates (50 threads, one connection each, released together): p50/p99, next
   to 50 floor programs started together.
4. resume: pause then connect (resume) of one sandbox, M times: p50 of the connect.
5. host memory per idle sandbox: K idle sandboxes (MemTotal - MemAvailable before and after,
   divided by K), next to K bare namespace sets (unshare with a user namespace, `sleep`).

With --baseline BUILD a second coved built from another revision runs beside this one (same
namespace, other port and data dir) and every figure is printed for both ("before/after").
Every figure is also printed as one line `ROW <name> <value> <unit> ratio=<x> ref=<reference>`
for the `make bench` report. No thresholds: the numbers are for the reader.
"""
import argparse
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "integration"))


def pct(xs, p):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = min(len(xs) - 1, max(0, int(round(p / 100.0 * (len(xs) - 1)))))
    return xs[k]


def mem_used_mib():
    info = {}
    with open("/proc/meminfo") as f:
        for line in f:
            k, v = line.split(":", 1)
            info[k] = int(v.split()[0])
    return (info["MemTotal"] - info["MemAvailable"]) / 1024.0


def cgroup_memory_mib(ids):
    """Memory charged to the sandboxes' own cgroups (v1 memory.usage_in_bytes includes kernel
    memory; v2 memory.current): what each sandbox costs inside its cgroup, immune to what other
    tenants of the machine do meanwhile. Kernel objects outside it (cgroups themselves, loop
    device, veth, nftables) are not in it."""
    total = 0
    for i in ids:
        for path in ("/sys/fs/cgroup/memory/cove/%s/memory.usage_in_bytes" % i,
                     "/sys/fs/cgroup/cove/%s/memory.current" % i):
            try:
                with open(path) as f:
                    total += int(f.read())
                break
            except OSError:
                continue
    return total / 1048576.0


def drop_caches_settle():
    # Let freed slab settle between memory measurements (no sysctl writes: shared machine).
    time.sleep(1.0)


class Client:
    """One keep-alive connection to a coved (inside its namespace)."""

    def __init__(self, cd):
        self.cd = cd
        self.conn = self.connect()
        self.hk = {"X-API-Key": cd.api_key, "Content-Type": "application/json"}

    def call(self, method, path, body=None, headers=None):
        h = headers or self.hk
        for attempt in (0, 1):
            try:
                self.conn.request(method, path, body=json.dumps(body) if body is not None else None,
                                  headers=h)
                r = self.conn.getresponse()
                data = r.read()
                return r.status, data
            except (ConnectionError, OSError):
                if attempt:
                    raise
                self.conn.close()
                self.conn = self.connect()

    def connect(self):
        conn = self.cd.connection(120)
        conn.connect()
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn

    def create(self, **fields):
        fields.setdefault("waitReady", True)
        st, data = self.call("POST", "/api/v1/sandboxes", fields)
        if st != 201:
            raise RuntimeError("create failed: %s %s" % (st, data[:300]))
        return json.loads(data)

    def run_true(self, sb):
        st, data = self.call("POST", "/envd/%s/run" % sb["sandboxID"], {"cmd": "true"},
                             headers={"X-Access-Token": sb["envdAccessToken"],
                                      "Content-Type": "application/json"})
        if st != 200:
            raise RuntimeError("run failed: %s %s" % (st, data[:300]))

    def delete(self, sid):
        st, data = self.call("DELETE", "/api/v1/sandboxes/" + sid)
        if st != 204:
            raise RuntimeError("delete failed: %s %s" % (st, data[:300]))

    def close(self):
        self.conn.close()


def phases(cd):
    """{phase: (sum seconds, count)} from coved's /metrics."""
    st, text, _ = cd.request("GET", "/metrics", raw=True)
    out = {}
    for m in re.finditer(r'^cove_sandbox_create_phase_seconds_(sum|count)\{phase="([^"]+)"\} (\S+)$',
                         text.decode(), re.M):
        kind, name, v = m.group(1), m.group(2), float(m.group(3))
        s, c = out.get(name, (0.0, 0.0))
        out[name] = (s + v, c) if kind == "sum" else (s, c + v)
    return out


def floor_samples(floor_bin, n, concurrent=False):
    env = dict(os.environ, BENCH_RAW="1")
    if not concurrent:
        out = subprocess.run([floor_bin, str(n)], stdout=subprocess.PIPE, text=True, check=True,
                             env=env).stdout
        return [float(x) for x in re.findall(r"^sample ([0-9.]+)$", out, re.M)]
    procs = [subprocess.Popen([floor_bin, "1"], stdout=subprocess.PIPE, text=True, env=env)
             for _ in range(n)]
    xs = []
    for p in procs:
        out, _ = p.communicate()
        xs += [float(x) for x in re.findall(r"^sample ([0-9.]+)$", out, re.M)]
    return xs


def concurrent_creates(cd, n):
    clients = [Client(cd) for _ in range(n)]
    barrier = threading.Barrier(n)
    times, sbs, errors = [None] * n, [None] * n, []

    def worker(i):
        barrier.wait()
        t0 = time.perf_counter()
        try:
            sbs[i] = clients[i].create()
        except Exception as e:  # reported below
            errors.append(str(e))
            return
        times[i] = (time.perf_counter() - t0) * 1000

    ths = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    t0 = time.perf_counter()
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    wall = (time.perf_counter() - t0) * 1000
    dels = [None] * n

    def deleter(i):
        if sbs[i]:
            t = time.perf_counter()
            clients[i].delete(sbs[i]["sandboxID"])
            dels[i] = (time.perf_counter() - t) * 1000

    ths = [threading.Thread(target=deleter, args=(i,)) for i in range(n)]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    for c in clients:
        c.close()
    if errors:
        raise RuntimeError("%d concurrent creates failed: %s" % (len(errors), errors[0]))
    return [t for t in times if t is not None], wall, [d for d in dels if d is not None]


def resume_cycles(cd, m):
    c = Client(cd)
    sb = c.create()
    sid = sb["sandboxID"]
    xs = []
    for _ in range(m):
        st, data = c.call("POST", "/api/v1/sandboxes/%s/pause" % sid)
        if st != 204:
            raise RuntimeError("pause failed: %s %s" % (st, data[:200]))
        t0 = time.perf_counter()
        st, data = c.call("POST", "/api/v1/sandboxes/%s/connect" % sid, {"timeout": 300})
        xs.append((time.perf_counter() - t0) * 1000)
        if st not in (200, 201):
            raise RuntimeError("connect failed: %s %s" % (st, data[:200]))
    c.delete(sid)
    c.close()
    return xs


def idle_memory(cd, k):
    c = Client(cd)
    drop_caches_settle()
    before = mem_used_mib()
    ids = [c.create()["sandboxID"] for _ in range(k)]
    drop_caches_settle()
    after = mem_used_mib()
    in_cgroups = cgroup_memory_mib(ids)
    for sid in ids:
        c.delete(sid)
    c.close()
    return (after - before) / k, in_cgroups / k


def bare_memory(k):
    drop_caches_settle()
    before = mem_used_mib()
    # --kill-child: the sleep is PID 1 of its own PID namespace and would outlive a killed
    # unshare (holding our stdout open) without it.
    procs = [subprocess.Popen(["unshare", "--user", "--map-root-user", "--mount", "--pid", "--fork",
                               "--kill-child", "--net", "--uts", "--ipc", "--cgroup", "sleep", "1000"],
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
             for _ in range(k)]
    time.sleep(1.0)
    after = mem_used_mib()
    for p in procs:
        p.kill()
        p.wait()
    return (after - before) / k


def wait_warm(cd, n, timeout=600):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st, b, _ = cd.request("GET", "/admin/pool/status")
        if st == 200 and b["data"]["warm"] >= n:
            return
        time.sleep(0.05)
    raise RuntimeError("the warm pool did not fill")


def warm_names(args, names):
    """The coveds that run a warm pool."""
    if not args.warm:
        return []
    return list(names) if args.warm_baseline else [names[-1]]


ROW_PREFIX = [""]


def row(name, value, unit, ref_value, ref_name):
    ratio = value / ref_value if ref_value else float("nan")
    print("ROW %s%s %.3f %s ratio=%.2f ref=%s" % (ROW_PREFIX[0], name, value, unit, ratio,
                                                ref_name))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--baseline", help="a build directory of another revision, run beside")
    ap.add_argument("--count", type=int, default=100)
    ap.add_argument("--concurrent", type=int, default=50)
    ap.add_argument("--resumes", type=int, default=50)
    ap.add_argument("--concurrent-rounds", type=int, default=3)
    ap.add_argument("--idle", type=int, default=100)
    ap.add_argument("--warm-baseline", action="store_true",
                    help="with --warm, give the baseline coved the same warm pool (compare "
                         "warm with warm)")
    ap.add_argument("--coved-arg", action="append", default=[],
                    help="extra coved argument (repeatable) for the new coved")
    ap.add_argument("--warm", type=int, default=0,
                    help="run the new coved with --warm-pool-size N and let the pool refill "
                         "(untimed) before each round of N creates and before the concurrent "
                         "creates: the figures of creates that find a warm sandbox")
    args = ap.parse_args()
    if args.warm:
        ROW_PREFIX[0] = "warm_"
    build = os.path.abspath(os.path.join(os.path.dirname(HERE), args.build))
    os.environ["COVE_BUILD_DIR"] = build
    import coveharness
    from coveharness import Coved
    from netfixture import Internet

    floor_bin = os.path.join(build, "bench", "bench-floor")
    variants = [("new", os.path.join(build, "coved"))]
    if args.baseline:
        variants.insert(0, ("base", os.path.join(os.path.abspath(args.baseline), "coved")))

    # One test internet per coved: each coved owns its namespace's nftables table.
    nets, coveds = [], {}
    try:
        for name, binary in variants:
            net = Internet()
            nets.append(net)
            net.start()
            # the node budget's default capacity (memory / default-memory-mb) is ~40 here
            extra = ["--uplink", net.uplink, "--dns-upstream", net.dns,
                     "--max-sandboxes", str(max(200, args.idle + args.concurrent + 10)),
                     # disk admission counts every image at full size: 50 concurrent 2 GiB
                     # disks (the default) are more than this machine's free space
                     "--default-disk-mb", "256"]
            if name == "new":
                extra += args.coved_arg
            if args.warm and (name == "new" or args.warm_baseline):
                extra += ["--warm-pool-size", str(args.warm)]
            cd = Coved(netns=net.host_ns, extra_args=extra)
            cd.binary = binary
            coveharness.COVED = binary
            coveds[name] = cd
            cd.start()
        run(args, coveds, floor_bin)
    finally:
        for cd in coveds.values():
            coveharness.COVED = cd.binary
            cd.close()
        for net in nets:
            net.stop()


def cgroup_layout():
    return "v2" if os.path.exists("/sys/fs/cgroup/cgroup.controllers") else "v1 (hybrid)"


def run(args, coveds, floor_bin):
    names = list(coveds)
    print("features: user namespaces on, idmapped layers, per-sandbox disk images, network on "
          "(test internet), cgroup %s, warm pool %s" %
          (cgroup_layout(), ("%d per template" % args.warm) if args.warm else "off"))
    clients = {n: Client(cd) for n, cd in coveds.items()}
    for n in names:  # warm-up: the first creates pay cold caches
        for _ in range(3):
            sb = clients[n].create()
            clients[n].run_true(sb)
            clients[n].delete(sb["sandboxID"])
    ph0 = {n: phases(coveds[n]) for n in names}
    per_round = max(1, args.count // 10)
    if args.warm:
        per_round = min(per_round, args.warm)
    rounds = max(1, args.count // per_round)
    res = {n: {"create": [], "run": [], "first": [], "delete": []} for n in names}
    floor = []
    for _ in range(rounds):
        for n in warm_names(args, names):
            wait_warm(coveds[n], args.warm)
        floor += floor_samples(floor_bin, per_round)
        for _ in range(per_round):
            for n in names:
                c = clients[n]
                t0 = time.perf_counter()
                sb = c.create()
                t1 = time.perf_counter()
                c.run_true(sb)
                t2 = time.perf_counter()
                c.delete(sb["sandboxID"])
                t3 = time.perf_counter()
                r = res[n]
                r["create"].append((t1 - t0) * 1000)
                r["run"].append((t2 - t1) * 1000)
                r["first"].append((t2 - t0) * 1000)
                r["delete"].append((t3 - t2) * 1000)
    ph1 = {n: phases(coveds[n]) for n in names}
    fl50, fl99 = pct(floor, 50), pct(floor, 99)
    print("cove create benchmark (user namespaces, disk images, networking on): %d sequential "
          "creates per coved, interleaved with %d floor runs" % (rounds * per_round, len(floor)))
    print("  floor (ns+overlay+pivot+exec true)      p50 %8.2f ms  p99 %8.2f ms" % (fl50, fl99))
    for n in names:
        r = res[n]
        for k, label in (("create", "create(waitReady)"), ("run", "first /run true"),
                         ("first", "create -> first /run done"), ("delete", "delete")):
            print("  [%s] %-32s p50 %8.2f ms  p99 %8.2f ms" % (n, label, pct(r[k], 50), pct(r[k], 99)))
        print("  [%s] ratio create->first run / floor: p50 %.2fx" % (n, pct(r["first"], 50) / fl50))
    for n in names:
        print("where a create's time goes [%s] (mean per create, ms; coved's "
              "cove_sandbox_create_phase_seconds):" % n)
        rows = []
        for k, (s1, c1) in ph1[n].items():
            s0, c0 = ph0[n].get(k, (0.0, 0.0))
            if c1 - c0 > 0:
                rows.append((k, (s1 - s0) / (c1 - c0) * 1000))
        if not rows:
            print("  (this coved reports no phases)")
        elif n in warm_names(args, names):
            print("  (with --warm: runtime.*, network.attach and agent.ready are the pool's "
                  "background starts; manager.total is the creates')")
        total = sum(v for k, v in rows if not k.startswith("manager.total"))
        for k, v in sorted(rows, key=lambda kv: -kv[1]):
            print("  %-34s %8.3f ms  %5.1f%%" % (k, v, 100 * v / total if total else 0))

    conc, resumes, mem, bare = {}, {}, {}, float("nan")
    if args.concurrent > 0:
        conc, fconc = concurrent_section(args, coveds, floor_bin)
    if args.resumes > 0:
        resumes = resume_section(args, coveds)
    if args.idle > 0:
        mem, bare = memory_section(args, coveds)

    n = names[-1]
    r = res[n]
    row("create_to_first_run_p50", pct(r["first"], 50), "ms", fl50, "floor_p50")
    row("create_to_first_run_p99", pct(r["first"], 99), "ms", fl99, "floor_p99")
    if conc:
        xs, wall, dels = conc[n]
        row("concurrent%d_create_p99" % args.concurrent, pct(xs, 99), "ms", pct(fconc, 99),
            "floor_x%d_p99" % args.concurrent)
    if resumes:
        row("resume_p50", pct(resumes[n], 50), "ms", fl50, "floor_p50")
    if mem:
        row("idle_sandbox_memory", mem[n][0], "MiB", bare, "bare_namespaces")
        row("idle_sandbox_memory_in_cgroup", mem[n][1], "MiB", 1.0, "target_1MiB")
    row("delete_p50", pct(r["delete"], 50), "ms", fl50, "floor_p50")
    for c in clients.values():
        c.close()


def concurrent_section(args, coveds, floor_bin):
    names = list(coveds)
    # alternated in rounds, each coved's round with its own 50 (machine noise moves a lot)
    runs = {n: [] for n in names}
    fconc = []
    ph0 = {n: phases(coveds[n]) for n in names}
    for _ in range(args.concurrent_rounds):
        fconc += floor_samples(floor_bin, args.concurrent, concurrent=True)
        for n in names:
            # the other coved's teardowns and refills would compete with this round
            settle(args, coveds)
            runs[n].append(concurrent_creates(coveds[n], args.concurrent))
    ph1 = {n: phases(coveds[n]) for n in names}
    conc = {}
    for n in names:  # the round with the median p99
        rs = sorted(runs[n], key=lambda r: pct(r[0], 99))
        conc[n] = rs[len(rs) // 2]
    print("%d concurrent creates (threads released together; delete of all, concurrently; the "
          "median round of %d, alternated):" % (args.concurrent, args.concurrent_rounds))
    print("  floor x%d started together             p50 %8.2f ms  p99 %8.2f ms" %
          (args.concurrent, pct(fconc, 50), pct(fconc, 99)))
    for n in names:
        xs, wall, dels = conc[n]
        print("  [%s] create p50 %8.2f ms  p99 %8.2f ms  all done in %8.1f ms; delete p50 %7.2f ms "
              "p99 %7.2f ms" % (n, pct(xs, 50), pct(xs, 99), wall, pct(dels, 50), pct(dels, 99)))
    for n in names:
        print("  where a concurrent create's time goes [%s] (mean per create, ms):" % n)
        print_phases(ph0[n], ph1[n], "    ")
    return conc, fconc


def print_phases(before, after, indent):
    """The mean per create of each phase between two phases() readings, largest first."""
    rows = []
    for k, (s1, c1) in after.items():
        s0, c0 = before.get(k, (0.0, 0.0))
        if c1 - c0 > 0:
            rows.append((k, (s1 - s0) / (c1 - c0) * 1000))
    if not rows:
        print(indent + "(this coved reports no phases)")
    total = sum(v for k, v in rows if not k.startswith("manager.total"))
    for k, v in sorted(rows, key=lambda kv: -kv[1]):
        print("%s%-34s %8.3f ms  %5.1f%%" % (indent, k, v, 100 * v / total if total else 0))


def settle(args, coveds):
    """Background work of the previous section done (teardowns, pool refills): it would compete
    with the next section's requests for the two CPUs."""
    for n, cd in coveds.items():
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            st, b, _ = cd.request("GET", "/admin/pool/status")
            if st != 200 or b["data"]["deleting"] == 0:
                break
            time.sleep(0.05)
    for n in warm_names(args, list(coveds)):
        wait_warm(coveds[n], args.warm)


def resume_section(args, coveds):
    names = list(coveds)
    settle(args, coveds)
    resumes = {n: resume_cycles(coveds[n], args.resumes) for n in names}
    print("resume (connect of a paused sandbox), %d each:" % args.resumes)
    for n in names:
        print("  [%s] p50 %8.2f ms  p99 %8.2f ms" % (n, pct(resumes[n], 50), pct(resumes[n], 99)))
    return resumes


def memory_section(args, coveds):
    names = list(coveds)
    settle(args, coveds)
    mem = {n: idle_memory(coveds[n], args.idle) for n in names}
    bare = bare_memory(args.idle)
    print("host memory per idle sandbox, %d sandboxes (MemTotal - MemAvailable delta, noisy on "
          "a shared machine; in brackets: charged to the sandbox's own cgroup):" % args.idle)
    print("  bare namespaces (unshare, user ns)   %6.2f MiB" % bare)
    for n in names:
        print("  [%s] %6.2f MiB  [%.2f MiB]" % (n, mem[n][0], mem[n][1]))
    return mem, bare


if __name__ == "__main__":
    main()
