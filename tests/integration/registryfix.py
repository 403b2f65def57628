"""registryfix — a real OCI registry on loopback for the build-plane tests, filled with images
the tests build themselves. Nothing here talks to anything but 127.0.0.1.

    with Registry() as reg:                     # Debian's docker-registry, plain HTTP, no auth
        layer = make_layer([("bin/hello", "f", b"hi", 0o755)])
        digest = push_image(reg, "test/app", "v1", [layer], {"Env": ["A=1"]})

Registry(storage=reg.storage, htpasswd={"u": "p"}) serves the same images with Basic auth;
Registry(storage=reg.storage, token=TokenServer(users)) with the Docker token protocol (a tiny
JWT issuer in this process, signed with a throw-away RSA key through the openssl CLI).
CountingProxy(upstream) sits in front of a registry, counts requests and can slow or cut blob
transfers. busybox_image(reg, repo, tag) builds a real image from busybox-static with umoci and
pushes it with skopeo.
"""
import base64
import gzip
import hashlib
import hmac
import http.client
import http.server
import io
import json
import os
import shutil
import socket
import socketserver
import subprocess
import tarfile
import tempfile
import threading
import time
import urllib.parse

from coveharness import BUILD, free_port

OCI_PULL = os.path.join(BUILD, "tests", "oci-pull")

MT_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MT_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MT_DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MT_DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
MT_LAYER = {
    "gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
    "zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
    "none": "application/vnd.oci.image.layer.v1.tar",
    "docker": "application/vnd.docker.image.rootfs.diff.tar.gzip",
}


def tools_missing():
    """Names of the programs these tests need that this machine lacks (make deps installs them)."""
    need = ["docker-registry", "openssl", "zstd"]
    return [n for n in need if not shutil.which(n)]


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


class QuietServer(http.server.ThreadingHTTPServer):
    """An HTTP server that does no name lookup when it binds (http.server's getfqdn() would
    query this machine's resolver, see PLATFORM.md) and logs nothing."""
    daemon_threads = True

    def server_bind(self):
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = "127.0.0.1", self.server_address[1]


class QuietHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass


# ---- images ----

def make_layer(entries, compression="gzip"):
    """entries: (name, type, data, mode[, uid, gid]) with type f(ile) d(ir) l(symlink, data =
    target) h(ard link, data = target) c(har device) p(fifo). Returns (blob, media_type, diff_id)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for e in entries:
            name, kind, data, mode = e[0], e[1], e[2], e[3]
            uid, gid = (e[4], e[5]) if len(e) > 5 else (0, 0)
            ti = tarfile.TarInfo(name)
            ti.mode, ti.uid, ti.gid, ti.mtime = mode, uid, gid, 1700000000
            payload = None
            if kind == "f":
                ti.type, payload = tarfile.REGTYPE, data or b""
                ti.size = len(payload)
            elif kind == "d":
                ti.type = tarfile.DIRTYPE
            elif kind == "l":
                ti.type, ti.linkname = tarfile.SYMTYPE, data
            elif kind == "h":
                ti.type, ti.linkname = tarfile.LNKTYPE, data
            elif kind == "c":
                ti.type, ti.devmajor, ti.devminor = tarfile.CHRTYPE, 1, 3
            elif kind == "p":
                ti.type = tarfile.FIFOTYPE
            tf.addfile(ti, io.BytesIO(payload) if payload is not None else None)
    tar = raw.getvalue()
    if compression in ("gzip", "docker"):
        blob = gzip.compress(tar, mtime=0)
    elif compression == "zstd":
        blob = subprocess.run(["zstd", "-q", "-c"], input=tar, stdout=subprocess.PIPE,
                              check=True).stdout
    else:
        blob = tar
    return blob, MT_LAYER[compression], sha256(tar)


class Registry:
    """docker-registry on 127.0.0.1:<free port>; storage may be shared with another instance."""

    def __init__(self, storage=None, htpasswd=None, token=None):
        self.dir = tempfile.mkdtemp(prefix="cove-test-registry-")
        self.storage = storage or os.path.join(self.dir, "storage")
        self.port = free_port()
        self.host = "127.0.0.1:%d" % self.port
        self.url = "http://" + self.host
        self.proc = None
        auth = ""
        if htpasswd:
            path = os.path.join(self.dir, "htpasswd")
            for user, pw in htpasswd.items():
                create = [] if os.path.exists(path) else ["-c"]
                subprocess.run(["htpasswd", "-Bb"] + create + [path, user, pw], check=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            auth = "auth:\n  htpasswd:\n    realm: cove-test\n    path: %s\n" % path
        if token:
            auth = ("auth:\n  token:\n    realm: %s/token\n    service: %s\n    issuer: %s\n"
                    "    rootcertbundle: %s\n" % (token.url, token.service, token.issuer, token.cert))
        cfg = ("version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"
               "storage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\n"
               "http:\n  addr: %s\n  secret: %s\n%s" % (self.storage, self.host, os.urandom(8).hex(), auth))
        self.config = os.path.join(self.dir, "config.yml")
        with open(self.config, "w") as f:
            f.write(cfg)

    def start(self):
        self.log = open(os.path.join(self.dir, "registry.log"), "wb")
        self.proc = subprocess.Popen(["docker-registry", "serve", self.config],
                                     stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("docker-registry exited: " + open(self.log.name).read()[-2000:])
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                c.request("GET", "/v2/")
                st = c.getresponse().status
                c.close()
                if st in (200, 401):
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("docker-registry did not come up")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
            self.log.close()
        self.proc = None

    def close(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *a):
        self.close()

    def blob_path(self, digest):
        """Where the filesystem driver keeps a blob's bytes (to corrupt it on purpose)."""
        hexd = digest.split(":", 1)[1]
        return os.path.join(self.storage, "docker/registry/v2/blobs/sha256", hexd[:2], hexd, "data")

    # -- pushing (registry HTTP API, monolithic uploads) --
    def _req(self, method, path, body=None, headers=None):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, dict(r.getheaders()), data

    def push_blob(self, repo, data):
        digest = sha256(data)
        st, h, body = self._req("POST", "/v2/%s/blobs/uploads/" % repo)
        assert st == 202, (st, body)
        loc = urllib.parse.urlsplit(h["Location"])
        q = loc.query + ("&" if loc.query else "") + "digest=" + urllib.parse.quote(digest)
        st, _, body = self._req("PUT", loc.path + "?" + q, data,
                                {"Content-Type": "application/octet-stream",
                                 "Content-Length": str(len(data))})
        assert st == 201, (st, body)
        return digest

    def push_manifest(self, repo, ref, doc, media_type):
        data = json.dumps(doc).encode()
        st, _, body = self._req("PUT", "/v2/%s/manifests/%s" % (repo, ref), data,
                                {"Content-Type": media_type})
        assert st == 201, (st, body)
        return sha256(data), len(data)


def push_image(reg, repo, tag, layers, config=None, docker=False, arch="amd64"):
    """layers: results of make_layer(). Returns (manifest digest, manifest size)."""
    cfg = {"architecture": arch, "os": "linux", "config": config or {},
           "rootfs": {"type": "layers", "diff_ids": [l[2] for l in layers]}}
    cfg_bytes = json.dumps(cfg).encode()
    cfg_digest = reg.push_blob(repo, cfg_bytes)
    descs = []
    for blob, mt, _ in layers:
        d = reg.push_blob(repo, blob)
        descs.append({"mediaType": MT_LAYER["docker"] if docker else mt, "digest": d, "size": len(blob)})
    doc = {"schemaVersion": 2,
           "mediaType": MT_DOCKER_MANIFEST if docker else MT_OCI_MANIFEST,
           "config": {"mediaType": MT_DOCKER_CONFIG if docker else MT_OCI_CONFIG,
                      "digest": cfg_digest, "size": len(cfg_bytes)},
           "layers": descs}
    return reg.push_manifest(repo, tag, doc, doc["mediaType"])


def push_index(reg, repo, tag, entries, docker=False):
    """entries: [(digest, size, os, arch)]."""
    mt = MT_DOCKER_LIST if docker else MT_OCI_INDEX
    doc = {"schemaVersion": 2, "mediaType": mt,
           "manifests": [{"mediaType": MT_DOCKER_MANIFEST if docker else MT_OCI_MANIFEST,
                          "digest": d, "size": s, "platform": {"os": o, "architecture": a}}
                         for d, s, o, a in entries]}
    return reg.push_manifest(repo, tag, doc, mt)


def busybox_image(reg, repo, tag, env=None):
    """A real image from busybox-static, built with umoci and pushed with skopeo."""
    work = tempfile.mkdtemp(prefix="cove-test-umoci-")
    try:
        layout = os.path.join(work, "layout")
        bundle = os.path.join(work, "bundle")
        run = lambda *a: subprocess.run(list(a), check=True, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE)
        run("umoci", "init", "--layout", layout)
        run("umoci", "new", "--image", layout + ":" + tag)
        run("umoci", "unpack", "--image", layout + ":" + tag, bundle)
        rootfs = os.path.join(bundle, "rootfs")
        os.makedirs(os.path.join(rootfs, "bin"), exist_ok=True)
        shutil.copy2(shutil.which("busybox"), os.path.join(rootfs, "bin", "busybox"))
        os.symlink("busybox", os.path.join(rootfs, "bin", "sh"))
        os.makedirs(os.path.join(rootfs, "etc"), exist_ok=True)
        with open(os.path.join(rootfs, "etc", "passwd"), "w") as f:
            f.write("root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000::/home/user:/bin/sh\n")
        run("umoci", "repack", "--image", layout + ":" + tag, bundle)
        args = ["umoci", "config", "--image", layout + ":" + tag, "--config.cmd", "/bin/sh"]
        for e in env or []:
            args += ["--config.env", e]
        run(*args)
        run("skopeo", "copy", "--quiet", "--dest-tls-verify=false", "oci:%s:%s" % (layout, tag),
            "docker://%s/%s:%s" % (reg.host, repo, tag))
    finally:
        shutil.rmtree(work, ignore_errors=True)


# ---- token authentication (Docker token spec, RS256 JWTs) ----

def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenServer:
    """Issues registry tokens to users with the right Basic credentials; anonymous → 401."""

    def __init__(self, users):
        self.users = users
        self.dir = tempfile.mkdtemp(prefix="cove-test-token-")
        self.key = os.path.join(self.dir, "key.pem")
        self.cert = os.path.join(self.dir, "cert.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                        self.key, "-out", self.cert, "-days", "2", "-subj", "/CN=cove-test-token"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        der = subprocess.run(["openssl", "x509", "-in", self.cert, "-outform", "DER"],
                             check=True, stdout=subprocess.PIPE).stdout
        self.x5c = base64.b64encode(der).decode()
        self.service, self.issuer = "cove-test-registry", "cove-test-issuer"
        self.requests = []
        outer = self

        class H(QuietHandler):
            def do_GET(self):
                q = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                auth = self.headers.get("Authorization", "")
                user = None
                if auth.startswith("Basic "):
                    u, _, p = base64.b64decode(auth[6:]).decode().partition(":")
                    if outer.users.get(u) == p:
                        user = u
                outer.requests.append({"user": user, "auth": auth, "query": q})
                if not user:
                    body = b'{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}'
                    self.send_response(401)
                else:
                    body = json.dumps({"token": outer.sign(user, q.get("scope", [""])[0])}).encode()
                    self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = QuietServer(("127.0.0.1", 0), H)
        self.url = "http://127.0.0.1:%d" % self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def sign(self, user, scope):
        access = []
        parts = scope.split(":")
        if len(parts) == 3 and parts[0] == "repository":
            access.append({"type": "repository", "name": parts[1], "actions": parts[2].split(",")})
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self.x5c]}
        claims = {"iss": self.issuer, "sub": user, "aud": self.service, "exp": now + 600,
                  "nbf": now - 60, "iat": now, "jti": os.urandom(8).hex(), "access": access}
        signing_input = (b64url(json.dumps(header).encode()) + "." +
                         b64url(json.dumps(claims).encode())).encode()
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", self.key], input=signing_input,
                             stdout=subprocess.PIPE, check=True).stdout
        return signing_input.decode() + "." + b64url(sig)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        shutil.rmtree(self.dir, ignore_errors=True)


# ---- a counting, throttling proxy ----

class CountingProxy:
    """Forwards GET/HEAD to a registry. counts[path] = number of requests; ranges = the Range
    headers seen. delay: seconds to sleep before answering a blob; cut_after: the first blob
    response of at least that size is cut after that many bytes (connection closed)."""

    def __init__(self, upstream_port, delay=0.0, cut_after=None):
        self.counts, self.ranges, self.delay = {}, [], delay
        self.cut_after, self.lock = cut_after, threading.Lock()
        outer = self

        class H(QuietHandler):
            def do_GET(self):
                with outer.lock:
                    outer.counts[self.path] = outer.counts.get(self.path, 0) + 1
                    if self.headers.get("Range"):
                        outer.ranges.append((self.path, self.headers["Range"]))
                is_blob = "/blobs/" in self.path
                if is_blob and outer.delay:
                    time.sleep(outer.delay)
                c = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=60)
                hdrs = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                c.request(self.command, self.path, headers=hdrs)
                r = c.getresponse()
                data = r.read()
                c.close()
                cut = None
                with outer.lock:
                    if is_blob and outer.cut_after and len(data) > outer.cut_after and r.status == 200:
                        cut, outer.cut_after = outer.cut_after, None
                self.send_response(r.status)
                for k, v in r.getheaders():
                    if k.lower() not in ("connection", "transfer-encoding", "content-length"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command == "HEAD":
                    return
                if cut is not None:
                    self.wfile.write(data[:cut])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.wfile.write(data)

            do_HEAD = do_GET

        self.httpd = QuietServer(("127.0.0.1", 0), H)
        self.port = self.httpd.server_address[1]
        self.host = "127.0.0.1:%d" % self.port
        self.url = "http://" + self.host
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def blob_gets(self, digest):
        return sum(n for p, n in self.counts.items() if p.endswith("/blobs/" + digest))

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


# ---- the driver ----

def oci_pull(data_dir, ref, mirrors=(), username=None, password=None, unpack=True, flatten=False,
             timeout=300):
    """Runs tests/tools/oci-pull. Returns (exit code, parsed JSON or None, stderr)."""
    argv = [OCI_PULL, "--data-dir", data_dir]
    for m in mirrors:
        argv += ["--mirror", m]
    env = dict(os.environ)
    if username is not None:
        argv += ["--username", username]
    if password is not None:
        env["COVE_TEST_REGISTRY_PASSWORD"] = password
        argv += ["--password-env", "COVE_TEST_REGISTRY_PASSWORD"]
    if not unpack:
        argv.append("--no-unpack")
    if flatten:
        argv.append("--flatten")
    argv.append(ref)
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                       timeout=timeout, text=True)
    out = json.loads(p.stdout) if p.returncode == 0 and p.stdout.strip() else None
    return p.returncode, out, p.stdout + p.stderr


class PullCase:
    """Mixin for a unittest.TestCase that pulls with oci_pull(): one Registry for the class
    (cls.reg), a fresh data dir per test (self.data) and a witness directory outside it, which
    assert_witness_untouched() checks; assert_nothing_published() checks that no layer was
    published in the data dir. Put it before unittest.TestCase in the bases."""

    @classmethod
    def setUpClass(cls):
        cls.reg = Registry().start()

    @classmethod
    def tearDownClass(cls):
        cls.reg.close()

    def setUp(self):
        self.data = tempfile.mkdtemp(prefix="cove-test-pull-")
        self.witness = tempfile.mkdtemp(prefix="cove-test-witness-")
        with open(os.path.join(self.witness, "file"), "w") as f:
            f.write("witness\n")

    def tearDown(self):
        shutil.rmtree(self.data, ignore_errors=True)
        shutil.rmtree(self.witness, ignore_errors=True)

    def assert_witness_untouched(self):
        self.assertEqual(os.listdir(self.witness), ["file"])
        with open(os.path.join(self.witness, "file")) as f:
            self.assertEqual(f.read(), "witness\n")

    def assert_nothing_published(self):
        layers = os.path.join(self.data, "layers")
        if os.path.isdir(layers):
            self.assertEqual([n for n in os.listdir(layers) if not n.startswith(".")], [])
            self.assertEqual(os.listdir(os.path.join(layers, ".tmp")), [])


class FakeECR:
    """Amazon ECR's GetAuthorizationToken on loopback: checks the request's AWS Signature
    Version 4 with an independent implementation (Python's hmac) against the keys it knows,
    and answers a token that decodes to "AWS:<password>" — or AWS's error for a bad signature
    or an unknown key. requests records what it saw."""

    TARGET = "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken"

    def __init__(self, keys, password):
        self.keys, self.password, self.requests = dict(keys), password, []
        outer = self

        class H(QuietHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                ok, why = outer.check(self.command, self.headers, body)
                outer.requests.append({"ok": ok, "why": why, "headers": dict(self.headers)})
                if ok:
                    tok = base64.b64encode(("AWS:" + outer.password).encode()).decode()
                    st, out = 200, {"authorizationData": [{
                        "authorizationToken": tok, "expiresAt": time.time() + 43200,
                        "proxyEndpoint": "https://123456789012.dkr.ecr.us-east-1.amazonaws.com"}]}
                else:
                    st, out = 400, {"__type": "com.amazon.coral.service#"
                                              "UnrecognizedClientException",
                                    "message": "The security token included in the request is "
                                               "invalid."}
                data = json.dumps(out).encode()
                self.send_response(st)
                self.send_header("Content-Type", "application/x-amz-json-1.1")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = QuietServer(("127.0.0.1", 0), H)
        self.port = self.server.server_address[1]
        self.url = "http://127.0.0.1:%d/" % self.port
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def check(self, method, headers, body):
        auth = headers.get("Authorization", "")
        if method != "POST" or headers.get("X-Amz-Target") != self.TARGET:
            return False, "not GetAuthorizationToken"
        if not auth.startswith("AWS4-HMAC-SHA256 "):
            return False, "not SigV4"
        parts = dict(p.strip().split("=", 1) for p in auth[len("AWS4-HMAC-SHA256 "):].split(","))
        key_id, date, region, service, term = parts["Credential"].split("/")
        if key_id not in self.keys or service != "ecr" or term != "aws4_request":
            return False, "unknown key or scope"
        amz_date = headers["X-Amz-Date"]
        names = parts["SignedHeaders"].split(";")
        canon = "".join("%s:%s\n" % (n, headers[n].strip()) for n in names)
        creq = "\n".join([method, "/", "", canon, parts["SignedHeaders"],
                          hashlib.sha256(body).hexdigest()])
        scope = "/".join([date, region, service, term])
        to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                             hashlib.sha256(creq.encode()).hexdigest()])
        k = ("AWS4" + self.keys[key_id]).encode()
        for part in (date, region, service, term):
            k = hmac.new(k, part.encode(), hashlib.sha256).digest()
        want = hmac.new(k, to_sign.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(want, parts["Signature"]):
            return False, "signature mismatch"
        if not {"host", "x-amz-date", "x-amz-target"} <= set(names):
            return False, "headers not signed"
        return True, region

    def close(self):
        self.server.shutdown()
        self.server.server_close()
