"""The transfer paths of issue 10 (docs/design/transfers.md), as a user sees them:

- uploads: a gzip body is decoded on its way to the file (raw runtime API and /v1); multipart
  data full of CRs and near-delimiters, cut across coved's 512 KiB body batches, arrives byte
  for byte; a client that stops mid-upload leaves neither the file nor a temporary file nor
  an open descriptor in coved;
- downloads (the agent passes the opened file, coved sends it with sendfile): ranges, a file
  on another filesystem of the sandbox (/proc: refused for sendfile, streamed instead), a
  client that stops mid-download, and no descriptor left behind.
"""
import gzip
import http.client
import os
import socket
import time
import unittest

from coveharness import Coved

MiB = 1 << 20


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


class TransferPathsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cd = Coved.for_class(cls)
        cls.sb = cls.cd.create(timeout=600)
        cls.tok = {"X-Access-Token": cls.sb.token}

    def request(self, method, path, body=None, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.cd.port, timeout=300)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            return r.status, r.read(), r
        finally:
            conn.close()

    def rt_path(self, path):
        return self.sb.prefix + "/files?path=" + path

    def download(self, path, rng=None):
        h = dict(self.tok)
        if rng:
            h["Range"] = rng
        return self.request("GET", self.rt_path(path), headers=h)

    def ls(self, d):
        out = self.sb.run("ls", "-A", d)
        self.assertEqual(out["exit_code"], 0, out)
        return out["stdout"].split()

    def wait_fds(self, baseline, what):
        deadline = time.time() + 15
        while fd_count(self.cd.proc.pid) > baseline and time.time() < deadline:
            time.sleep(0.1)
        self.assertLessEqual(fd_count(self.cd.proc.pid), baseline,
                             "coved holds more descriptors after %s" % what)

    # ---- uploads ----

    def test_gzip_upload_large(self):
        # compressible and random halves, 24 MiB decoded: many 64 KiB decode blocks, batches
        data = (b"cove transfer " * (12 * MiB // 14 + 1))[:12 * MiB] + os.urandom(12 * MiB)
        st, body, _ = self.request("POST", self.rt_path("/root/gz.bin"), gzip.compress(data, 1),
                                   dict(self.tok, **{"Content-Encoding": "gzip"}))
        self.assertEqual(st, 200, body[:300])
        st, got, _ = self.download("/root/gz.bin")
        self.assertEqual((st, len(got), got == data), (200, len(data), True))

        st, v1, _ = self.cd.v1("POST", "/sandboxes", {})
        self.assertEqual(st, 201, v1)
        path = "/v1/sandboxes/%s/files?path=/root/gz.bin" % v1["id"]
        key = {"X-API-Key": self.cd.api_key}
        st, body, _ = self.request("PUT", path, gzip.compress(data, 1),
                                   dict(key, **{"Content-Encoding": "gzip"}))
        self.assertEqual(st, 204, body[:300])
        st, got, _ = self.request("GET", path, headers=key)
        self.assertEqual((st, len(got), got == data), (200, len(data), True))
        self.cd.v1("DELETE", "/sandboxes/%s" % v1["id"])

    def test_multipart_crs_and_near_delimiters_across_batches(self):
        b = "bnd-pxfer-91"
        # every way to almost be the delimiter, again and again, past several batches
        unit = (b"\r" + b"\r\n" + b"\r\n-" + b"\r\n--" + b"\r\n--bnd" + b"\r\n--bnd-pxfer-9" +
                b"\r\n-- bnd-pxfer-91" + os.urandom(37) + b"\r\r\n\n")
        data = (unit * (3 * MiB // len(unit) + 1))[:3 * MiB] + b"\r\n--bnd-pxfer-9"
        other = os.urandom(700 * 1024) + b"\r"
        body = (("--%s\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a.bin\"\r\n\r\n"
                 % b).encode() + data +
                ("\r\n--%s\r\nContent-Disposition: form-data; name=\"f\"; filename=\"b.bin\"\r\n\r\n"
                 % b).encode() + other + ("\r\n--%s--\r\n" % b).encode())
        st, out, _ = self.request("POST", self.rt_path("/root/mpdir/"), body,
                                  dict(self.tok, **{"Content-Type":
                                                    "multipart/form-data; boundary=" + b}))
        self.assertEqual(st, 200, out[:300])
        for name, want in (("a.bin", data), ("b.bin", other)):
            st, got, _ = self.download("/root/mpdir/" + name)
            self.assertEqual((st, len(got), got == want), (200, len(want), True), name)

    def abandon_upload(self, path, headers, first, announced):
        s = socket.create_connection(("127.0.0.1", self.cd.port), timeout=30)
        head = "POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n" % (path, announced)
        head += "".join("%s: %s\r\n" % kv for kv in headers.items()) + "\r\n"
        s.sendall(head.encode() + first)
        time.sleep(0.5)
        s.close()

    def test_client_stopping_mid_upload_leaves_nothing(self):
        self.request("GET", self.rt_path("/root/none"), headers=self.tok)  # warm the pools
        baseline = fd_count(self.cd.proc.pid)
        self.sb.run("mkdir", "-p", "/root/cut")
        # raw: 8 MiB of the 64 MiB announced
        self.abandon_upload(self.rt_path("/root/cut/raw.bin"), self.tok, os.urandom(8 * MiB),
                            64 * MiB)
        # multipart: one part begun, 3 MiB in (past the held-back first part's 1 MiB)
        b = "cut-bnd"
        first = (("--%s\r\nContent-Disposition: form-data; name=\"f\"; filename=\"mp.bin\"\r\n"
                  "\r\n" % b).encode() + os.urandom(3 * MiB))
        self.abandon_upload(self.rt_path("/root/cut/"),
                            dict(self.tok, **{"Content-Type": "multipart/form-data; boundary=" + b}),
                            first, 32 * MiB)
        self.wait_fds(baseline, "abandoned uploads")
        deadline = time.time() + 15
        while self.ls("/root/cut") and time.time() < deadline:
            time.sleep(0.2)
        self.assertEqual(self.ls("/root/cut"), [], "a partial or temporary file was left")

    # ---- downloads ----

    def test_download_ranges_from_the_passed_file(self):
        data = os.urandom(3 * MiB + 17)
        st, body, _ = self.request("POST", self.rt_path("/root/rng.bin"), data, self.tok)
        self.assertEqual(st, 200, body[:300])
        st, got, r = self.download("/root/rng.bin")
        self.assertEqual((st, got == data, r.getheader("Accept-Ranges")), (200, True, "bytes"))
        for rng, a, z in (("bytes=0-0", 0, 0), ("bytes=1048570-2097160", 1048570, 2097160),
                          ("bytes=-100", len(data) - 100, len(data) - 1),
                          ("bytes=3145000-", 3145000, len(data) - 1)):
            st, got, r = self.download("/root/rng.bin", rng)
            self.assertEqual(st, 206, rng)
            self.assertEqual(got, data[a:z + 1], rng)
            self.assertEqual(r.getheader("Content-Range"), "bytes %d-%d/%d" % (a, z, len(data)))
        st, _, r = self.download("/root/rng.bin", "bytes=%d-" % (len(data) + 5))
        self.assertEqual((st, r.getheader("Content-Range")), (416, "bytes */%d" % len(data)))
        st, got, _ = self.request("POST", self.rt_path("/root/empty.bin"), b"", self.tok)
        st, got, _ = self.download("/root/empty.bin")
        self.assertEqual((st, got), (200, b""))

    def test_download_from_proc_and_tmp_is_served(self):
        # /proc is no filesystem coved reads for the agent: the bytes are streamed instead
        want = self.sb.run("cat", "/proc/version")["stdout"].encode()
        st, got, _ = self.download("/proc/version")
        self.assertEqual(st, 200)
        self.assertIn(got, (b"", want))  # procfs reports size 0: what files.read gave too
        self.sb.run("sh", "-c", "printf tmpdata > /tmp/t.txt")
        st, got, _ = self.download("/tmp/t.txt")
        self.assertEqual((st, got), (200, b"tmpdata"))
        st, got, _ = self.download("/root/does-not-exist")
        self.assertEqual(st, 404)

    def test_downloads_leave_no_descriptor(self):
        data = os.urandom(8 * MiB)
        st, body, _ = self.request("POST", self.rt_path("/root/fds.bin"), data, self.tok)
        self.assertEqual(st, 200, body[:300])
        self.download("/root/fds.bin")
        baseline = fd_count(self.cd.proc.pid)
        for _ in range(10):
            st, got, _ = self.download("/root/fds.bin")
            self.assertEqual((st, got == data), (200, True))
        for _ in range(3):  # a client that reads 1 MiB and goes away
            s = socket.create_connection(("127.0.0.1", self.cd.port), timeout=30)
            s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nX-Access-Token: %s\r\n\r\n"
                       % (self.rt_path("/root/fds.bin"), self.sb.token)).encode())
            got = 0
            while got < MiB:
                k = len(s.recv(65536))
                if not k:
                    break
                got += k
            s.close()
        self.wait_fds(baseline, "downloads")


if __name__ == "__main__":
    unittest.main()
