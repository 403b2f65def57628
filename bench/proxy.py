#!/usr/bin/env python3
"""Port proxy throughput next to a direct connection, measured side by side in one run.

One sandbox serves a SIZE MB file with `python3 -m http.server` on its 127.0.0.1:8000. Each
round downloads it twice with the same client code (http.client, 1 MiB reads, body discarded):

  proxy   from the host through coved: GET {envdUrl}/proxy/8000/blob
  direct  from a process inside the same sandbox (via /run): GET http://127.0.0.1:8000/blob

"Direct" runs inside the sandbox rather than under `nsenter --net` on the host because the
API does not expose the sandbox's init pid, and /run is what a user has: same client code, same
loopback, same server; the only difference is the extra hop through coved (MHD, the
setns'd upstream socket, one copy per block). Rounds alternate so that machine noise hits both
alike. Prints MB/s (median and best) of both and the ratio. No thresholds.

Run as root: python3 bench/proxy.py [--build build] [--size 100] [--rounds 5]
"""
import argparse
import http.client
import json
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "integration"))

CLIENT = r'''
import http.client, json, sys, time
host, port, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
c = http.client.HTTPConnection(host, port, timeout=120)
t0 = time.perf_counter()
c.request("GET", path)
r = c.getresponse()
n = 0
while True:
    b = r.read(1 << 20)
    if not b:
        break
    n += len(b)
t1 = time.perf_counter()
print(json.dumps({"status": r.status, "bytes": n, "seconds": t1 - t0}))
'''


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--size", type=int, default=100, help="file size in MB")
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    os.environ["COVE_BUILD_DIR"] = os.path.abspath(os.path.join(os.path.dirname(HERE), args.build))
    from coveharness import Coved

    size = args.size * 1000 * 1000
    proxy_mbs, direct_mbs = [], []
    with Coved() as cd:
        sb = cd.create()
        st, out, _ = sb.rt("POST", "/file?path=/tmp/bench_client.py", CLIENT.encode(),
                           headers={"Content-Type": "application/octet-stream"})
        if st not in (200, 204):
            sys.exit("upload failed: %s %s" % (st, out))
        sb.sh("mkdir -p /tmp/www && head -c %d /dev/urandom > /tmp/www/blob" % size, timeoutMs=120000)
        sb.sh("cd /tmp/www && nohup python3 -m http.server 8000 --bind 127.0.0.1 "
              ">/dev/null 2>&1 </dev/null &")
        sb.sh("for i in $(seq 100); do python3 -c 'import socket; socket.create_connection("
              "(\"127.0.0.1\", 8000), 1)' 2>/dev/null && exit 0; sleep 0.05; done; exit 1")

        def direct():
            out = sb.run("python3", "/tmp/bench_client.py", "127.0.0.1", "8000", "/blob",
                         timeoutMs=300000)
            res = json.loads(out["stdout"])
            if res["status"] != 200 or res["bytes"] != size:
                sys.exit("direct download failed: %s" % res)
            return res["bytes"] / res["seconds"] / 1e6

        def proxy():
            c = http.client.HTTPConnection("127.0.0.1", cd.port, timeout=300)
            t0 = time.perf_counter()
            c.request("GET", "%s/proxy/8000/blob" % sb.prefix)
            r = c.getresponse()
            n = 0
            while True:
                b = r.read(1 << 20)
                if not b:
                    break
                n += len(b)
            t1 = time.perf_counter()
            c.close()
            if r.status != 200 or n != size:
                sys.exit("proxy download failed: %s, %d bytes" % (r.status, n))
            return n / (t1 - t0) / 1e6

        proxy()  # warm-up: page cache, first setns
        direct()
        for i in range(args.rounds):
            if i % 2:
                direct_mbs.append(direct())
                proxy_mbs.append(proxy())
            else:
                proxy_mbs.append(proxy())
                direct_mbs.append(direct())

    print("cove port proxy benchmark: %d MB file from python3 -m http.server, %d rounds" %
          (args.size, args.rounds))
    for name, xs in (("proxy  (host -> coved -> sandbox)", proxy_mbs),
                     ("direct (inside the sandbox)", direct_mbs)):
        print("  %-36s median %8.1f MB/s   best %8.1f MB/s" % (name, statistics.median(xs), max(xs)))
    print("ratio proxy / direct: median %.2f, best %.2f" %
          (statistics.median(proxy_mbs) / statistics.median(direct_mbs), max(proxy_mbs) / max(direct_mbs)))


if __name__ == "__main__":
    main()
