#!/usr/bin/env python3
"""Sandbox lifecycle latency next to the kernel floor, measured side by side in one run.

For each of N sandboxes: POST /sandboxes {waitReady:true} → POST {envdUrl}/run {"cmd":"true"}
→ DELETE /sandboxes/{id}, over one keep-alive HTTP connection. In the same run, interleaved in
rounds so that machine noise hits both alike, the floor program (bench/floor.c: namespaces +
overlay + pivot_root + exec true) runs the same number of times. Prints p50/p99 of both and
the ratio. No thresholds: the numbers are for the reader.
"""
import argparse
import http.client
import json
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "integration"))


def pct(xs, p):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = min(len(xs) - 1, max(0, int(round(p / 100.0 * (len(xs) - 1)))))
    return xs[k]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--count", type=int, default=200)
    args = ap.parse_args()
    build = os.path.abspath(os.path.join(os.path.dirname(HERE), args.build))
    os.environ["COVE_BUILD_DIR"] = build
    from coveharness import Coved

    floor_bin = os.path.join(build, "bench", "bench-floor")
    rounds = 10
    per_round = max(1, args.count // rounds)
    total = per_round * rounds

    create_ms, run_ms, delete_ms, cycle_ms, floor_ms = [], [], [], [], []
    with Coved() as cd:
        conn = http.client.HTTPConnection("127.0.0.1", cd.port, timeout=60)
        hk = {"X-API-Key": cd.api_key, "Content-Type": "application/json"}

        def call(method, path, body=None, headers=hk):
            conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
            r = conn.getresponse()
            data = r.read()
            return r.status, data

        # warm-up (first create pays cold caches)
        for _ in range(3):
            st, data = call("POST", "/api/v1/sandboxes", {"waitReady": True})
            call("DELETE", "/api/v1/sandboxes/" + json.loads(data)["sandboxID"])

        for _ in range(rounds):
            out = subprocess.run([floor_bin, str(per_round)], stdout=subprocess.PIPE, text=True,
                                 check=True, env=dict(os.environ, BENCH_RAW="1")).stdout
            floor_ms += [float(x) for x in re.findall(r"^sample ([0-9.]+)$", out, re.M)]
            for _ in range(per_round):
                t0 = time.perf_counter()
                st, data = call("POST", "/api/v1/sandboxes", {"waitReady": True})
                t1 = time.perf_counter()
                if st != 201:
                    sys.exit("create failed: %s %s" % (st, data[:300]))
                sb = json.loads(data)
                st, data = call("POST", "/envd/%s/run" % sb["sandboxID"], {"cmd": "true"},
                                headers={"X-Access-Token": sb["envdAccessToken"],
                                         "Content-Type": "application/json"})
                t2 = time.perf_counter()
                if st != 200:
                    sys.exit("run failed: %s %s" % (st, data[:300]))
                st, data = call("DELETE", "/api/v1/sandboxes/" + sb["sandboxID"])
                t3 = time.perf_counter()
                if st != 204:
                    sys.exit("delete failed: %s %s" % (st, data[:300]))
                create_ms.append((t1 - t0) * 1000)
                run_ms.append((t2 - t1) * 1000)
                delete_ms.append((t3 - t2) * 1000)
                cycle_ms.append((t3 - t0) * 1000)
        conn.close()

    print("cove lifecycle benchmark: %d sandboxes, %d floor runs, interleaved in %d rounds" %
          (total, len(floor_ms), rounds))
    rows = [("create(waitReady)", create_ms), ("/run true", run_ms), ("delete", delete_ms),
            ("create+run+delete", cycle_ms), ("floor (ns+overlay+pivot+exec true)", floor_ms)]
    for name, xs in rows:
        print("  %-36s p50 %8.2f ms   p99 %8.2f ms" % (name, pct(xs, 50), pct(xs, 99)))
    f50 = pct(floor_ms, 50)
    print("ratio create+run+delete / floor: p50 %.1fx, p99 %.1fx" %
          (pct(cycle_ms, 50) / f50, pct(cycle_ms, 99) / pct(floor_ms, 99)))
    print("ratio create(waitReady) / floor: p50 %.1fx" % (pct(create_ms, 50) / f50))
    # bench/report.py's table (issue 10's rows this script measures)
    print("features: user namespaces on, network off (--network none)")
    first = [c + r for c, r in zip(create_ms, run_ms)]
    for name, xs, ref, ref_name in (("create_to_first_run_p50", first, f50, "floor_p50"),
                                    ("create_to_first_run_p99", first, pct(floor_ms, 99), "floor_p99"),
                                    ("delete_p50", delete_ms, f50, "floor_p50")):
        v = pct(xs, 99 if name.endswith("p99") else 50)
        print("ROW %s %.3f ms ratio=%.2f ref=%s" % (name, v, v / ref, ref_name))


if __name__ == "__main__":
    main()
