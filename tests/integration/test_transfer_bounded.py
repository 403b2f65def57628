"""Large transfers stream through coved (issue 10): uploads and downloads far larger than any
buffer coved keeps leave its peak RSS where it was, and the bytes arrive intact, through the
runtime API (raw and multipart) and the /v1 files routes, with an identity and a chunked body.
"""
import hashlib
import http.client
import os
import unittest

from coveharness import Coved

MiB = 1 << 20
SIZE = 256 * MiB         # far past every buffer of coved's (largest: 1 MiB frames)
RSS_GROWTH_MAX = 64 * MiB  # generous: allocator slack, not a body


def peak_rss(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM for %d" % pid)


def pattern_chunks(total, seed, chunk=4 * MiB):
    """Deterministic incompressible-looking bytes, generated piecewise (never whole here)."""
    block = hashlib.sha256(seed).digest() * (chunk // 32)
    sent = 0
    i = 0
    while sent < total:
        n = min(chunk, total - sent)
        # vary each chunk so that a misplaced chunk changes the digest
        yield (i.to_bytes(8, "big") + block[8:])[:n]
        sent += n
        i += 1


def digest_of(total, seed):
    h = hashlib.sha256()
    for c in pattern_chunks(total, seed):
        h.update(c)
    return h.hexdigest()


class TransferBoundedTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cd = Coved.for_class(cls)
        cls.sb = cls.cd.create(timeout=600)

    def upload(self, method, path, headers, chunked, body_iter):
        conn = http.client.HTTPConnection("127.0.0.1", self.cd.port, timeout=300)
        try:
            if chunked:
                conn.request(method, path, body=body_iter, headers=headers, encode_chunked=True)
            else:
                conn.putrequest(method, path)
                for k, v in headers.items():
                    conn.putheader(k, v)
                conn.endheaders()
                for c in body_iter:
                    conn.send(c)
            r = conn.getresponse()
            return r.status, r.read()
        finally:
            conn.close()

    def download_digest(self, path, headers):
        conn = http.client.HTTPConnection("127.0.0.1", self.cd.port, timeout=300)
        try:
            conn.request("GET", path, headers=headers)
            r = conn.getresponse()
            self.assertEqual(r.status, 200)
            h = hashlib.sha256()
            n = 0
            while True:
                b = r.read(4 * MiB)
                if not b:
                    break
                h.update(b)
                n += len(b)
            return n, h.hexdigest()
        finally:
            conn.close()

    def check_bounded(self, before):
        grown = peak_rss(self.cd.proc.pid) - before
        self.assertLess(grown, RSS_GROWTH_MAX,
                        "coved's peak RSS grew by %d MiB during the transfer" % (grown // MiB))

    def test_runtime_api_raw_identity_and_chunked(self):
        tok = {"X-Access-Token": self.sb.token, "Content-Type": "application/octet-stream"}
        for chunked, seed in ((False, b"identity"), (True, b"chunked")):
            path = self.sb.prefix + "/files?path=/root/big-%s.bin" % seed.decode()
            before = peak_rss(self.cd.proc.pid)
            h = dict(tok)
            if not chunked:
                h["Content-Length"] = str(SIZE)
            st, body = self.upload("POST", path, h, chunked, pattern_chunks(SIZE, seed))
            self.assertEqual(st, 200, body[:300])
            n, dig = self.download_digest(path, {"X-Access-Token": self.sb.token})
            self.assertEqual((n, dig), (SIZE, digest_of(SIZE, seed)))
            self.check_bounded(before)

    def test_runtime_api_multipart(self):
        b = "cove-test-boundary-7c1e"
        head = ("--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"m.bin\"\r\n"
                "Content-Type: application/octet-stream\r\n\r\n" % b).encode()
        tail = ("\r\n--%s--\r\n" % b).encode()
        size = 128 * MiB

        def body():
            yield head
            yield from pattern_chunks(size, b"multipart")
            yield tail

        before = peak_rss(self.cd.proc.pid)
        path = self.sb.prefix + "/files?path=/root/mp.bin"
        st, out = self.upload("POST", path, {"X-Access-Token": self.sb.token,
                                             "Content-Type": "multipart/form-data; boundary=" + b},
                              True, body())
        self.assertEqual(st, 200, out[:300])
        n, dig = self.download_digest(path, {"X-Access-Token": self.sb.token})
        self.assertEqual((n, dig), (size, digest_of(size, b"multipart")))
        self.check_bounded(before)

    def test_v1_files(self):
        st, v1, _ = self.cd.v1("POST", "/sandboxes", {})
        self.assertEqual(st, 201, v1)
        try:
            size = 100 * MiB  # the /v1 upload limit (v1-api.md §10.2)
            path = "/v1/sandboxes/%s/files?path=/root/v1.bin" % v1["id"]
            before = peak_rss(self.cd.proc.pid)
            st, out = self.upload("PUT", path, {"X-API-Key": self.cd.api_key,
                                                "Content-Length": str(size)},
                                  False, pattern_chunks(size, b"v1"))
            self.assertEqual(st, 204, out[:300])
            n, dig = self.download_digest(path, {"X-API-Key": self.cd.api_key})
            self.assertEqual((n, dig), (size, digest_of(size, b"v1")))
            self.check_bounded(before)
        finally:
            self.cd.v1("DELETE", "/sandboxes/" + v1["id"])


if __name__ == "__main__":
    unittest.main()
