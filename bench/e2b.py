#!/usr/bin/env python3
"""E2B SDK round trip next to the SeaCloud API, in one run against one coved.

Round through the real JS SDK (tests/e2b/bench.mjs): Sandbox.create() + commands.run('true') +
kill(). The same work through the SeaCloud API over one keep-alive connection:
POST /api/v1/sandboxes {waitReady} → POST {envdUrl}/run {"cmd":"true"} → DELETE, in blocks of
10 rounds interleaved with the SDK's. Prints p50/p99
of both and the ratio (the SDK pays for its own HTTP client, a login shell for the command and
a Connect stream). No thresholds: the numbers are for the reader.
"""
import argparse
import http.client
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
KEY = "e2b_" + "0123456789abcdef" * 2 + "01234567"


def pct(xs, p):
    xs = sorted(xs)
    k = min(len(xs) - 1, max(0, int(round(p / 100.0 * (len(xs) - 1)))))
    return xs[k]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--count", type=int, default=100)
    args = ap.parse_args()
    os.environ["COVE_BUILD_DIR"] = os.path.abspath(os.path.join(ROOT, args.build))
    from coveharness import Coved

    e2b_dir = os.path.join(ROOT, "tests", "e2b")
    if not os.path.isdir(os.path.join(e2b_dir, "node_modules", "e2b")):
        print("e2b bench: SDK not installed (make e2b-sdk)")
        return 0
    with Coved(api_key=KEY) as cd:
        url = "http://127.0.0.1:%d" % cd.port
        env = dict(os.environ, E2B_API_URL=url, E2B_SANDBOX_URL=url, E2B_API_KEY=KEY)
        env.pop("E2B_DEBUG", None)
        conn = http.client.HTTPConnection("127.0.0.1", cd.port, timeout=120)

        def call(method, path, body=None, headers=None):
            h = {"X-API-Key": KEY, "Content-Type": "application/json"}
            h.update(headers or {})
            conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=h)
            r = conn.getresponse()
            data = r.read()
            return r.status, json.loads(data) if data else None

        def seacloud_round():
            t0 = time.monotonic()
            st, sb = call("POST", "/api/v1/sandboxes", {"waitReady": True, "timeout": 60})
            assert st == 201, (st, sb)
            st, _ = call("POST", "/envd/%s/run" % sb["sandboxID"], {"cmd": "true"},
                         {"X-Access-Token": sb["envdAccessToken"]})
            assert st == 200
            st, _ = call("DELETE", "/api/v1/sandboxes/" + sb["sandboxID"])
            assert st == 204
            return (time.monotonic() - t0) * 1000

        # Interleaved blocks, so that both see the same machine (other work comes and goes);
        # the node process's own start and its first (warm-up) round are outside its timings.
        sdk, sea = [], []
        seacloud_round()  # warm-up
        block = max(1, min(10, args.count))
        while len(sdk) < args.count:
            n = min(block, args.count - len(sdk))
            p = subprocess.run(["node", "bench.mjs", str(n)], cwd=e2b_dir, env=env,
                               stdout=subprocess.PIPE, text=True, check=True)
            sdk += json.loads(p.stdout.strip().splitlines()[-1])
            sea += [seacloud_round() for _ in range(n)]
        conn.close()
    print("e2b sdk  create+run+kill: p50 %7.1f ms  p99 %7.1f ms  (%d rounds)" % (pct(sdk, 50), pct(sdk, 99), len(sdk)))
    print("seacloud create+run+kill: p50 %7.1f ms  p99 %7.1f ms  (%d rounds)" % (pct(sea, 50), pct(sea, 99), len(sea)))
    print("ratio e2b/seacloud: p50 %.2f  p99 %.2f" % (pct(sdk, 50) / pct(sea, 50), pct(sdk, 99) / pct(sea, 99)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
