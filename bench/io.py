#!/usr/bin/env python3
"""The I/O rows of issue 10, each next to its reference measured in the same run:

  run       POST {envdUrl}/run {"cmd":"true"} over one keep-alive connection, p50/p99, next to
            the host's own spawn of /bin/true (posix_spawn + waitpid: the kernel's floor for
            running a process) and GET /health on the same connection (coved's HTTP floor),
            interleaved in rounds.
  get       GET /api/v1/sandboxes/{id} under wrk (-t2 -c16), next to GET /health, alternated
            in rounds; best round of each.
  transfer  SIZE MiB (default 100) up and down through the runtime API's files routes (raw
            octet-stream and multipart/form-data uploads, GET download), the /v1 files routes
            (PUT, GET) and the E2B face's envd files routes (multipart upload as the SDK sends
            it, GET), into the sandbox's writable layer (its ext4 disk image), next to `cp` of
            the same file on the host's disk (data dir), interleaved in rounds; median.

Prints a human table, then one machine line per row for bench/report.py:
    ROW <name> <value> <unit> ratio=<x> ref=<reference name>
(ratio = value / reference for times, value / reference for throughputs: read it with the
unit). No thresholds: the numbers are for the reader.

With --baseline DIR (a build directory of another revision, e.g. main's), the same
measurements run against that build's coved too, side by side and interleaved round by round
(both daemons up at once), and each row shows both; ROW lines are this build's.

    python3 bench/io.py [--build build] [--baseline DIR] [--only run,get,transfer] [--size 100]
"""
import argparse
import http.client
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "integration"))

MiB = 1 << 20
UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def pct(xs, p):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = min(len(xs) - 1, max(0, int(round(p / 100.0 * (len(xs) - 1)))))
    return xs[k]


def row(name, value, unit, ref_value, ref_name):
    ratio = value / ref_value if ref_value else float("nan")
    print("ROW %s %.3f %s ratio=%.2f ref=%s" % (name.replace(" ", "_"), value, unit, ratio,
                                                ref_name.replace(" ", "_")), flush=True)


# ---- run ----

def host_spawn_ms():
    t0 = time.perf_counter()
    pid = os.posix_spawn("/bin/true", ["true"], {})
    os.waitpid(pid, 0)
    return (time.perf_counter() - t0) * 1000


def bench_run(daemons, count):
    """daemons: [(label, cd, sb, v1_id)]; the first is this build."""
    conns = {}
    for label, cd, sb, _ in daemons:
        conns[label] = http.client.HTTPConnection("127.0.0.1", cd.port, timeout=60)
    body = json.dumps({"cmd": "true"})

    def one(label, method, path, b=None, h=None):
        conn = conns[label]
        t0 = time.perf_counter()
        conn.request(method, path, body=b, headers=h or {})
        r = conn.getresponse()
        data = r.read()
        dt = (time.perf_counter() - t0) * 1000
        if r.status != 200:
            sys.exit("%s %s failed: %d %s" % (method, path, r.status, data[:300]))
        return dt

    res = {label: {"run": [], "health": []} for label, _, _, _ in daemons}
    spawn = []
    rounds = 10
    for rnd in range(rounds + 1):  # round 0: warm-up, not counted
        for label, cd, sb, _ in daemons:
            hdr = {"X-Access-Token": sb.token, "Content-Type": "application/json"}
            for _ in range(max(1, count // rounds)):
                r = one(label, "POST", sb.prefix + "/run", body, hdr)
                h = one(label, "GET", "/health")
                s_ = host_spawn_ms()
                if rnd:
                    res[label]["run"].append(r)
                    res[label]["health"].append(h)
                    spawn.append(s_)
    for c in conns.values():
        c.close()
    print("/run true round trip, %d calls per build (interleaved with GET /health and a host spawn)"
          % len(res[daemons[0][0]]["run"]))
    for label, _, _, _ in daemons:
        for name, xs in (("POST /run true", res[label]["run"]), ("GET /health", res[label]["health"])):
            print("  %-16s %-24s p50 %7.3f ms   p99 %7.3f ms" % (label, name, pct(xs, 50), pct(xs, 99)))
    print("  %-16s %-24s p50 %7.3f ms   p99 %7.3f ms" % ("host", "spawn of /bin/true",
                                                          pct(spawn, 50), pct(spawn, 99)))
    me = res[daemons[0][0]]
    print("  this build: /run minus /health minus spawn (p50): %.3f ms (agent hop + envd work)"
          % (pct(me["run"], 50) - pct(me["health"], 50) - pct(spawn, 50)))
    row("run_true_p50", pct(me["run"], 50), "ms", pct(spawn, 50), "host_spawn_true_p50")
    row("run_true_p99", pct(me["run"], 99), "ms", pct(spawn, 99), "host_spawn_true_p99")


# ---- get ----

def wrk(url, seconds, headers=()):
    argv = ["wrk", "-t2", "-c16", "-d%ds" % seconds, "--latency"]
    for h in headers:
        argv += ["-H", h]
    out = subprocess.run(argv + [url], check=True, stdout=subprocess.PIPE, text=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    m = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)", out, re.M)
    p99 = float(m.group(1)) * UNITS[m.group(2)] if m else float("nan")
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        sys.exit("wrk saw %s error responses from %s:\n%s" % (errors.group(1), url, out))
    return rps, p99


def bench_get(daemons, seconds, rounds):
    if not shutil.which("wrk"):
        sys.exit("bench/io.py needs wrk (make deps installs it)")
    best = {}
    for _ in range(rounds):
        for label, cd, sb, _ in daemons:
            base = "http://127.0.0.1:%d" % cd.port
            for what, url, hdrs in (("health", base + "/health", ()),
                                    ("get", base + "/api/v1/sandboxes/" + sb.id,
                                     ("X-API-Key: " + cd.api_key,))):
                r = wrk(url, seconds, hdrs)
                if (label, what) not in best or r[0] > best[(label, what)][0]:
                    best[(label, what)] = r
    print("HTTP throughput: wrk -t2 -c16, %d s per run, best of %d rounds" % (seconds, rounds))
    for label, _, _, _ in daemons:
        print("  %-16s GET /health                  %9.0f req/s   p99 %7.3f ms"
              % ((label,) + best[(label, "health")]))
        print("  %-16s GET /api/v1/sandboxes/{id}   %9.0f req/s   p99 %7.3f ms"
              % ((label,) + best[(label, "get")]))
    me = daemons[0][0]
    row("get_sandbox_rps", best[(me, "get")][0], "req/s", best[(me, "health")][0], "health_rps")


# ---- transfer ----

class Transfer:
    def __init__(self, cd, sb, v1_id, e2b, src, size):
        self.cd, self.sb, self.v1_id, self.e2b, self.src, self.size = cd, sb, v1_id, e2b, src, size
        with open(src, "rb") as f:
            self.data = f.read()
        b = "----cove-bench-boundary"
        self.mp_ct = "multipart/form-data; boundary=" + b
        self.mp_body = (("--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"b.bin\"\r\n"
                         "Content-Type: application/octet-stream\r\n\r\n" % b).encode()
                        + self.data + ("\r\n--%s--\r\n" % b).encode())

    def _send(self, method, path, body, headers):
        conn = http.client.HTTPConnection("127.0.0.1", self.cd.port, timeout=300)
        t0 = time.perf_counter()
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        dt = time.perf_counter() - t0
        conn.close()
        if resp.status not in (200, 201, 204):
            sys.exit("%s %s failed: %d %s" % (method, path, resp.status, data[:300]))
        return dt

    def _get(self, path, headers):
        conn = http.client.HTTPConnection("127.0.0.1", self.cd.port, timeout=300)
        buf = bytearray(4 * MiB)
        mv = memoryview(buf)
        t0 = time.perf_counter()
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        n = 0
        left = int(resp.getheader("Content-Length") or 0)
        while left > 0:
            k = resp.readinto(mv[:min(left, len(mv))])
            if not k:
                break
            n += k
            left -= k
        dt = time.perf_counter() - t0
        conn.close()
        if resp.status != 200 or n != self.size:
            sys.exit("GET %s failed: %d, %d bytes" % (path, resp.status, n))
        return dt

    def rt_upload(self):
        return self._send("POST", self.sb.prefix + "/files?path=/root/bench.bin", self.data,
                          {"X-Access-Token": self.sb.token,
                           "Content-Type": "application/octet-stream"})

    def rt_upload_multipart(self):
        return self._send("POST", self.sb.prefix + "/files?path=/root/bench-mp.bin", self.mp_body,
                          {"X-Access-Token": self.sb.token, "Content-Type": self.mp_ct})

    def rt_download(self):
        return self._get(self.sb.prefix + "/files?path=/root/bench.bin",
                         {"X-Access-Token": self.sb.token})

    def v1_upload(self):
        return self._send("PUT", "/v1/sandboxes/%s/files?path=/root/bench.bin" % self.v1_id,
                          self.data, {"X-API-Key": self.cd.api_key,
                                      "Content-Type": "application/octet-stream"})

    def v1_download(self):
        return self._get("/v1/sandboxes/%s/files?path=/root/bench.bin" % self.v1_id,
                         {"X-API-Key": self.cd.api_key})

    def e2b_headers(self):
        # e2b.md §1: the sandbox's envd (port 49983) reached by headers, as the SDKs do
        return {"E2b-Sandbox-Id": self.e2b["sandboxID"], "E2b-Sandbox-Port": "49983",
                "X-Access-Token": self.e2b["envdAccessToken"]}

    def e2b_upload(self):
        # the SDK's Sandbox.files.write: one multipart part
        return self._send("POST", "/files?path=/home/user/bench.bin&username=user", self.mp_body,
                          dict(self.e2b_headers(), **{"Content-Type": self.mp_ct}))

    def e2b_download(self):
        return self._get("/files?path=/home/user/bench.bin&username=user", self.e2b_headers())

    def local_cp(self):
        dst = self.src + ".copy"
        t0 = time.perf_counter()
        subprocess.run(["cp", self.src, dst], check=True)
        dt = time.perf_counter() - t0
        os.unlink(dst)
        return dt


E2B_SANDBOXES = {}  # label → the E2B face's create reply (the transfer rows' E2B sandbox)

TRANSFER_ROWS = (("upload_rt_raw", "upload (runtime API, raw)", "rt_upload"),
                 ("upload_rt_multipart", "upload (runtime API, multipart)", "rt_upload_multipart"),
                 ("download_rt", "download (runtime API)", "rt_download"),
                 ("upload_v1", "upload (/v1 PUT)", "v1_upload"),
                 ("download_v1", "download (/v1 GET)", "v1_download"),
                 ("upload_e2b", "upload (E2B envd, multipart)", "e2b_upload"),
                 ("download_e2b", "download (E2B envd)", "e2b_download"))


def bench_transfer(daemons, size_mib, rounds):
    size = size_mib * MiB
    src = os.path.join(daemons[0][1].data_dir, "bench-transfer.bin")
    with open(src, "wb") as f:
        f.write(os.urandom(size))
    try:
        ts = [(label, Transfer(cd, sb, v1_id, E2B_SANDBOXES[label], src, size))
              for label, cd, sb, v1_id in daemons]
        res = {}
        for rnd in range(rounds + 1):  # round 0 warms up: first writes allocate blocks
            for label, t in ts:
                for key, _, method in TRANSFER_ROWS:
                    gbs = size / 1e9 / getattr(t, method)()
                    if rnd:
                        res.setdefault((label, key), []).append(gbs)
                gbs = size / 1e9 / ts[0][1].local_cp()
                if rnd:
                    res.setdefault(("host", "cp"), []).append(gbs)
    finally:
        os.unlink(src)
    cp = statistics.median(res[("host", "cp")])
    print("transfers of %d MiB, %d rounds, GB/s (10^9 bytes/s): median, best, median/cp"
          % (size_mib, rounds))
    for key, name, _ in TRANSFER_ROWS:
        for label, _ in ts:
            v = res[(label, key)]
            print("  %-16s %-34s %6.2f  %6.2f   %.2fx cp" % (label, name, statistics.median(v),
                                                           max(v), statistics.median(v) / cp))
    v = res[("host", "cp")]
    print("  %-16s %-34s %6.2f  %6.2f" % ("host", "local cp (same file, data dir)",
                                         statistics.median(v), max(v)))
    me = daemons[0][0]
    for key, _, _ in TRANSFER_ROWS:
        row("%s_%dMiB" % (key, size_mib), statistics.median(res[(me, key)]), "GB/s", cp,
            "local_cp")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--baseline", help="a build directory to measure side by side")
    ap.add_argument("--only", default="run,get,transfer")
    ap.add_argument("--count", type=int, default=300, help="/run calls")
    ap.add_argument("--seconds", type=int, default=5, help="per wrk run")
    ap.add_argument("--size", type=int, default=100, help="MiB per transfer")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    build = os.path.abspath(os.path.join(os.path.dirname(HERE), args.build))
    os.environ["COVE_BUILD_DIR"] = build
    import coveharness

    only = set(args.only.split(","))
    print("features: user namespaces on (every sandbox), network off (--network none: these "
          "rows never touch the sandbox's network), disk: ext4 image per sandbox")
    builds = [("this build", build)]
    if args.baseline:
        builds.append(("baseline", os.path.abspath(args.baseline)))
    daemons = []
    try:
        for label, b in builds:
            coveharness.COVED = os.path.join(b, "coved")  # start() and purge() use it
            cd = coveharness.Coved(extra_args=["--libexec-dir", b]).start()
            cd.binary = coveharness.COVED
            sb = cd.create(timeout=3600)
            st, v1, _ = cd.v1("POST", "/sandboxes", {})
            if st != 201:
                sys.exit("/v1 create failed: %s %s" % (st, v1))
            st, e2b, _ = cd.request("POST", "/sandboxes", {"timeout": 3600})
            if st != 201:
                sys.exit("E2B create failed: %s %s" % (st, e2b))
            E2B_SANDBOXES[label] = e2b
            daemons.append((label, cd, sb, v1["id"]))
        if "run" in only:
            bench_run(daemons, args.count)
        if "get" in only:
            bench_get(daemons, args.seconds, args.rounds)
        if "transfer" in only:
            bench_transfer(daemons, args.size, args.rounds)
    finally:
        for _, cd, _, _ in daemons:
            coveharness.COVED = cd.binary
            cd.__exit__(None, None, None)


if __name__ == "__main__":
    main()
