#!/usr/bin/env python3
"""File transfer throughput through coved's runtime API next to a local copy on the host disk.

Uploads SIZE MiB (default 100) of random bytes with a raw `POST {envdUrl}/files` into the
sandbox's writable layer (/root, on the data dir's disk), downloads it with `GET /files`,
and, as the reference, writes the same bytes to a file in the data dir and reads them back
(1 MiB chunks, no fsync — the agent does not fsync either; the page cache is warm for both
reads). Each is run ROUNDS times, interleaved; prints the median and best MB/s and the
coved/local ratio. No thresholds: the numbers are for the reader.

    python3 bench/transfer.py [--build build] [--size 100] [--rounds 3]
"""
import argparse
import http.client
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "integration"))

CHUNK = 1 << 20


def upload(cd, sb, path, data):
    conn = http.client.HTTPConnection("127.0.0.1", cd.port, timeout=300)
    t0 = time.perf_counter()
    conn.request("POST", sb.prefix + "/files?path=" + path, body=data,
                 headers={"X-Access-Token": sb.token, "Content-Type": "application/octet-stream"})
    resp = conn.getresponse()
    body = resp.read()
    dt = time.perf_counter() - t0
    conn.close()
    if resp.status != 200:
        raise SystemExit("upload failed: %d %s" % (resp.status, body[:300]))
    return dt


def download(cd, sb, path, size):
    conn = http.client.HTTPConnection("127.0.0.1", cd.port, timeout=300)
    t0 = time.perf_counter()
    conn.request("GET", sb.prefix + "/files?path=" + path, headers={"X-Access-Token": sb.token})
    resp = conn.getresponse()
    n = 0
    while True:
        b = resp.read(CHUNK)
        if not b:
            break
        n += len(b)
    dt = time.perf_counter() - t0
    conn.close()
    if resp.status != 200 or n != size:
        raise SystemExit("download failed: %d, %d bytes" % (resp.status, n))
    return dt


def local_write(path, data):
    mv = memoryview(data)
    t0 = time.perf_counter()
    with open(path, "wb", buffering=0) as f:
        for o in range(0, len(mv), CHUNK):
            f.write(mv[o:o + CHUNK])
    return time.perf_counter() - t0


def local_read(path):
    t0 = time.perf_counter()
    with open(path, "rb", buffering=0) as f:
        while f.read(CHUNK):
            pass
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--size", type=int, default=100, help="MiB")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    os.environ["COVE_BUILD_DIR"] = os.path.abspath(os.path.join(os.path.dirname(HERE), args.build))
    from coveharness import Coved

    size = args.size * CHUNK
    data = os.urandom(size)
    mb = size / 1e6
    res = {"upload": [], "download": [], "local write": [], "local read": []}
    with Coved() as cd:
        sb = cd.create(timeout=600)
        ref = os.path.join(cd.data_dir, "bench-transfer.bin")
        try:
            # warm-up round (first writes allocate blocks, first reads fill caches)
            upload(cd, sb, "/root/bench.bin", data[:8 * CHUNK])
            for _ in range(args.rounds):
                res["upload"].append(mb / upload(cd, sb, "/root/bench.bin", data))
                res["download"].append(mb / download(cd, sb, "/root/bench.bin", size))
                res["local write"].append(mb / local_write(ref, data))
                res["local read"].append(mb / local_read(ref))
        finally:
            if os.path.exists(ref):
                os.unlink(ref)

    print("transfer of %d MiB, %d rounds (MB/s = 10^6 bytes/s)" % (args.size, args.rounds))
    print("%-12s %10s %10s" % ("", "median", "best"))
    for k, v in res.items():
        print("%-12s %10.0f %10.0f" % (k, statistics.median(v), max(v)))
    up = statistics.median(res["upload"]) / statistics.median(res["local write"])
    down = statistics.median(res["download"]) / statistics.median(res["local read"])
    print("ratio coved/local: upload %.2f, download %.2f" % (up, down))


if __name__ == "__main__":
    main()
