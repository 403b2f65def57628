"""Sandbox networking through coved (issue 13): real sandboxes, real policies, the test internet.

coved runs inside netfixture.Internet's host namespace (`--uplink` its link to the test
internet, `--dns-upstream` the fake DNS there); the harness reaches its API in that namespace.
Probes run inside the sandboxes through the runtime API. No packet leaves the machine.
"""
import base64
import json
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coveharness import BUILD, Coved, ProcessStream, Sandbox  # noqa: E402
from netfixture import HOST_UPLINK4, PROBE, Internet, in_ns, sh  # noqa: E402

NETLAB = os.path.join(BUILD, "tests", "netlab")
POOL = "10.203.0.0/16,fd63:6f76:6500::/64"


def skip_reason():
    if os.geteuid() != 0:
        return "needs root"
    for tool in ("nsenter", "ip", "nft", "conntrack"):
        if subprocess.run(["which", tool], stdout=subprocess.DEVNULL).returncode != 0:
            return "needs %s" % tool
    return None


def network_args(net, *extra):
    return dict(netns=net.host_ns,
                extra_args=["--uplink", net.uplink, "--dns-upstream", net.dns] + list(extra))


def probe(sb, what, *args, timeout=3):
    out = sb.run("python3", "-c", PROBE, what, json.dumps(list(args)), str(timeout))
    try:
        return json.loads(out["stdout"].strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"result": "error", "error": "probe: %s" % out}


STREAMER = ("import socket,sys,time\n"
            "s=socket.create_connection((sys.argv[1],int(sys.argv[2])),5)\n"
            "print('connected',flush=True)\n"
            "while True:\n"
            " try:\n"
            "  s.sendall(b'x\\n');d=s.recv(10)\n"
            "  if not d: raise EOFError('closed')\n"
            "  print('ok',flush=True)\n"
            " except Exception as e:\n"
            "  print('dead',repr(e),flush=True);break\n"
            " time.sleep(0.05)\n")


class Streamer:
    """A TCP connection held open inside a sandbox (a process of its own, output streamed)."""

    def __init__(self, sb, host, port):
        self.ps = ProcessStream(sb, {"process": {"cmd": "python3", "args": ["-c", STREAMER, host, str(port)]}},
                                timeout=120)
        self.buf = ""
        assert self.wait_for("connected", 10), "streamer did not connect: %r" % self.buf

    def _lines(self, deadline):
        try:
            ev = self.ps.next_event(deadline)
        except TimeoutError:
            return False
        if ev is None:
            self.buf += "\nEND"
            return False
        data = ev.get("data") or {}
        if "stdout" in data:
            self.buf += base64.b64decode(data["stdout"]).decode(errors="replace")
        return True

    def wait_for(self, word, timeout):
        deadline = time.monotonic() + timeout
        start = len(self.buf)
        while time.monotonic() < deadline:
            if word in self.buf[start:]:
                return True
            if not self._lines(deadline) and word not in self.buf[start:]:
                if "END" in self.buf[start:]:
                    return False
        return word in self.buf[start:]

    def alive(self):
        """Completes round trips still (and has not reported a failure)."""
        return self.wait_for("ok", 3) and "dead" not in self.buf

    def close(self):
        self.ps.close()


class FileStreamer:
    """The streamer as a detached process writing to a file inside the sandbox: it outlives
    the HTTP stream (and coved itself)."""

    def __init__(self, sb, host, port):
        self.sb = sb
        self.path = "/tmp/streamer-%s.log" % os.urandom(3).hex()
        code = STREAMER.replace("'", "'\\''")
        r = sb.sh("setsid nohup python3 -c '%s' %s %d > %s 2>&1 < /dev/null &" % (code, host, port, self.path))
        assert r["exit_code"] == 0, r
        assert self.wait_for("connected", 10), self.text()

    def text(self):
        return self.sb.sh("cat %s" % self.path)["stdout"]

    def wait_for(self, word, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if word in self.text():
                return True
            time.sleep(0.05)
        return word in self.text()

    def alive(self):
        before = self.text().count("ok")
        time.sleep(0.5)
        t = self.text()
        return t.count("ok") > before and "dead" not in t


@unittest.skipIf(skip_reason(), skip_reason())
class NetworkTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.net = Internet().start()
        cls.addClassCleanup(cls.net.stop)  # class cleanups run last first: coved goes before it
        cls.cd = Coved.for_class(cls, **network_args(cls.net))

    def setUp(self):
        self.cleanups = []

    def tearDown(self):
        for fn in reversed(self.cleanups):
            try:
                fn()
            except Exception:  # noqa: BLE001 — cleanup goes on
                pass

    # -- helpers --
    def sandbox(self, cd=None, **network):
        cd = cd or self.cd
        body = {"network": network} if network else {}
        sb = cd.create(**body)
        self.cleanups.append(sb.delete)
        return sb

    def tcp(self, sb, host, port):
        return probe(sb, "tcp", host, port)["result"]

    def assertReach(self, sb, host, port, want=True):
        r = self.tcp(sb, host, port)
        if want:
            self.assertEqual(r, "ok", "%s:%s should be reachable" % (host, port))
        else:
            self.assertIn(r, ("refused", "reset", "unreachable", "timeout"),
                          "%s:%s should be refused" % (host, port))

    def resolve(self, sb, name):
        r = probe(sb, "resolve", name)
        return r["addrs"] if r["result"] == "ok" else r["result"]

    def put_network(self, sb, body, cd=None):
        return (cd or self.cd).api("PUT", "/sandboxes/%s/network" % sb.id, body)

    # -- what a sandbox gets --
    def test_sandbox_network_setup(self):
        sb = self.sandbox()
        out = sb.sh("cat /etc/resolv.conf; cat /etc/hosts; echo COVE=$COVE_SANDBOX_ID $COVE_API_URL;"
                    " stat -c '%a %U' /run/cove/access-token; cat /run/cove/access-token")["stdout"]
        self.assertIn("nameserver 10.203.0.1", out)
        self.assertIn("10.203.0.1\tcove.internal", out)
        self.assertIn("COVE=%s http://cove.internal:%d" % (sb.id, self.cd.port), out)
        self.assertIn("600 root", out)
        self.assertTrue(out.strip().endswith(sb.token))
        # cove.internal: coved's API, with the sandbox's own token for heartbeats
        r = sb.sh("python3 - <<'EOF'\n"
                  "import json, os, urllib.request\n"
                  "tok = open('/run/cove/access-token').read().strip()\n"
                  "req = urllib.request.Request(os.environ['COVE_API_URL'] + '/api/v1/sandboxes/'"
                  " + os.environ['COVE_SANDBOX_ID'] + '/heartbeat', data=b'{\"status\":\"healthy\"}',"
                  " headers={'X-Access-Token': tok, 'Content-Type': 'application/json'})\n"
                  "print(json.load(urllib.request.urlopen(req, timeout=5))['data'])\n"
                  "EOF")
        self.assertIn("'received': True", r["stdout"], r)

    def test_allow_all_by_default(self):
        sb = self.sandbox()
        self.assertReach(sb, "198.51.100.10", 80)
        self.assertReach(sb, "2001:db8:1::10", 80)
        self.assertEqual(probe(sb, "udp", "198.51.100.10", 7001)["result"], "ok")
        self.assertEqual(self.resolve(sb, "other.test"), ["198.51.100.20"])
        self.assertEqual(self.resolve(sb, "nosuch.test"), "nxdomain")
        self.assertEqual(self.resolve(sb, "cove.internal"), ["10.203.0.1"])

    def test_policies_at_create(self):
        deny_all = self.sandbox(allowInternetAccess=False)
        self.assertReach(deny_all, "198.51.100.10", 80, False)
        self.assertReach(deny_all, "2001:db8:1::10", 80, False)
        self.assertEqual(self.resolve(deny_all, "other.test"), "nxdomain")
        allow = self.sandbox(allowInternetAccess=False, allowOut=["198.51.100.10"])
        self.assertReach(allow, "198.51.100.10", 7000)
        self.assertReach(allow, "198.51.100.20", 80, False)
        deny = self.sandbox(denyOut=["198.51.100.20/32"])
        self.assertReach(deny, "198.51.100.10", 80)
        self.assertReach(deny, "198.51.100.20", 80, False)
        override = self.sandbox(denyOut=["0.0.0.0/0"], allowOut=["198.51.100.10/32"])
        self.assertReach(override, "198.51.100.10", 80)
        self.assertReach(override, "203.0.113.10", 80, False)
        # the top-level allowInternetAccess of the create body is the same switch
        st, body, _ = self.cd.api("POST", "/sandboxes", {"waitReady": True, "allowInternetAccess": False})
        self.assertEqual(st, 201, body)
        self.cleanups.append(lambda: self.cd.api("DELETE", "/sandboxes/" + body["sandboxID"]))
        self.assertFalse(body["network"]["allowInternetAccess"])

    def test_domain_rules(self):
        sb = self.sandbox(allowInternetAccess=False, allowOut=["*.allowed.test", "other.test"])
        self.assertReach(sb, "198.51.100.10", 80, False)
        self.assertEqual(self.resolve(sb, "allowed.test"), "nxdomain")
        self.assertEqual(self.resolve(sb, "www.other.test"), "nxdomain")
        self.assertEqual(self.resolve(sb, "www.allowed.test"), ["198.51.100.10"])
        r = sb.sh("python3 -c \"import urllib.request;"
                  "print(urllib.request.urlopen('http://www.allowed.test/',timeout=5).read().decode())\"")
        self.assertIn("hello from 198.51.100.10:80", r["stdout"], r)
        self.assertReach(sb, "198.51.100.10", 7000, False)  # names open TCP 80/443 only
        sb2 = self.sandbox(denyOut=["*.allowed.test"])
        self.assertEqual(self.resolve(sb2, "www.allowed.test"), "nxdomain")
        self.assertEqual(self.resolve(sb2, "other.test"), ["198.51.100.20"])

    def test_domain_ttl_expiry(self):
        sb = self.sandbox(allowInternetAccess=False, allowOut=["short.test"])
        self.assertEqual(self.resolve(sb, "short.test"), ["198.51.100.20"])  # TTL 2 s
        self.assertReach(sb, "198.51.100.20", 80)
        time.sleep(5 + 2)  # the TTL raised to the 5 s floor, and a margin
        self.assertReach(sb, "198.51.100.20", 80, False)

    def test_never_reachable_under_any_policy(self):
        other = self.sandbox()
        listener = ("import socket\ns=socket.socket(socket.AF_INET6);s.setsockopt(socket.IPPROTO_IPV6,"
                    "socket.IPV6_V6ONLY,0);s.bind(('::',9999));s.listen(8)\nwhile True:\n"
                    " c,a=s.accept();c.sendall(b'hi');c.close()\n")
        ps = ProcessStream(other, {"process": {"cmd": "python3", "args": ["-c", listener]}})
        self.cleanups.append(ps.close)
        addrs = other.sh("ip -4 -br addr show eth0; ip -6 -br addr show eth0")["stdout"]
        a4 = addrs.split("\n")[0].split()[2].split("/")[0]
        a6 = [w for w in addrs.split("\n")[1].split() if w.startswith("fd63")][0].split("/")[0]
        for network in ({}, {"allowOut": ["0.0.0.0/0"]}, {"allowInternetAccess": False}):
            sb = self.sandbox(**network)
            with self.subTest(network=network):
                self.assertReach(sb, "169.254.169.254", 80, False)
                self.assertReach(sb, "fd00:ec2::254", 80, False)
                self.assertReach(sb, HOST_UPLINK4, self.cd.port, False)  # coved's port, by the host's address
                self.assertReach(sb, HOST_UPLINK4, 22, False)
                self.assertReach(sb, "10.203.0.1", 22, False)
                self.assertReach(sb, a4, 9999, False)
                self.assertReach(sb, a6, 9999, False)
                self.assertReach(sb, "10.203.0.1", self.cd.port)  # only cove.internal
                self.assertNotEqual(probe(sb, "dns", self.net.dns, "other.test", "A")["result"], "ok")

    def test_put_network_cuts_open_connection(self):
        sb = self.sandbox()
        s4 = Streamer(sb, "198.51.100.10", 7000)
        self.cleanups.append(s4.close)
        s6 = Streamer(sb, "2001:db8:1::10", 7000)
        self.cleanups.append(s6.close)
        self.assertTrue(s4.alive() and s6.alive())
        st, body, _ = self.put_network(sb, {"denyOut": ["198.51.100.0/24"]})
        self.assertEqual(st, 204, body)
        self.assertTrue(s4.wait_for("dead", 1.0), "not cut within 1 s: %r" % s4.buf[-200:])
        self.assertTrue(s6.alive(), "a connection the new policy allows must survive")
        st, body, _ = self.cd.api("GET", "/sandboxes/" + sb.id)
        self.assertEqual(body["network"]["denyOut"], ["198.51.100.0/24"])
        self.assertEqual(body["network"]["allowInternetAccess"], True)  # kept (partial update)
        # the same policy again: nothing more happens
        self.assertEqual(self.put_network(sb, {"denyOut": ["198.51.100.0/24"]})[0], 204)
        self.assertTrue(s6.alive())
        st, events, _ = self.cd.api("GET", "/events/sandboxes/%s?limit=100" % sb.id)
        self.assertEqual(st, 200, events)
        updated = [e for e in events if e["type"] == "sandbox.lifecycle.updated"
                   and "network" in (e.get("eventData") or {})]
        self.assertTrue(updated, events)
        self.assertEqual(updated[0]["eventData"]["network"]["denyOut"], ["198.51.100.0/24"])

    def test_paused_sandbox_gets_policy_on_resume(self):
        sb = self.sandbox()
        self.assertReach(sb, "198.51.100.10", 80)
        self.assertEqual(self.cd.api("POST", "/sandboxes/%s/pause" % sb.id)[0], 204)
        st, body, _ = self.put_network(sb, {"allowInternetAccess": False})
        self.assertEqual(st, 204, body)
        self.assertEqual(self.cd.api("GET", "/sandboxes/" + sb.id)[1]["network"]["allowInternetAccess"], False)
        st, body, _ = self.cd.api("POST", "/sandboxes/%s/connect" % sb.id, {"timeout": 0})
        self.assertEqual(st, 201, body)
        self.assertReach(sb, "198.51.100.10", 80, False)

    def test_metrics_count_network_bytes(self):
        """control-plane.md §9.1: the sandbox's traffic shows in its network rates (read from the
        host end of its veth: recv is what the sandbox received)."""
        sb = self.sandbox()
        # ~1 MB/s through the echo server for up to 30 s, in the background
        sb.sh("nohup python3 -c '\n"
              "import socket, time\n"
              "s = socket.create_connection((\"198.51.100.10\", 7000))\n"
              "line = b\"x\" * 9999 + b\"\\n\"\n"
              "f = s.makefile(\"rb\")\n"
              "end = time.time() + 30\n"
              "while time.time() < end:\n"
              "    for _ in range(10):\n"
              "        s.sendall(line); f.readline()\n"
              "    time.sleep(0.1)\n"
              "' >/dev/null 2>&1 &")
        deadline = time.monotonic() + 30
        m = {}
        while time.monotonic() < deadline:
            st, m, _ = self.cd.api("GET", "/sandboxes/%s/metrics" % sb.id)
            self.assertEqual(st, 200, m)
            if m.get("networkRecvBytesPerSecond", 0) > 100000 and \
                    m.get("networkSentBytesPerSecond", 0) > 100000:
                break
            time.sleep(1)
        self.assertGreater(m.get("networkRecvBytesPerSecond", 0), 100000, m)
        self.assertGreater(m.get("networkSentBytesPerSecond", 0), 100000, m)
        self.assertGreater(m.get("networkRecvPacketsPerSecond", 0), 0, m)
        self.assertEqual(m.get("networkRecvErrorsPerSecond"), 0, m)

    def test_bad_input(self):
        sb = self.sandbox()
        cases = [
            ({"allowOut": ["10.0.0.0/33"]}, "10.0.0.0/33"),
            ({"denyOut": ["2001:db8::/32"]}, "2001:db8::/32"),
            ({"allowOut": ["exa mple.com"]}, "exa mple.com"),
            ({"allowOut": ["*.*.example.com"]}, "*.*.example.com"),
            ({"allowOut": ["10.0.0.%d" % i for i in range(257)]}, "more than 256"),
            ({"allowInternetAccess": "yes"}, "allowInternetAccess"),
        ]
        for network, needle in cases:
            with self.subTest(network=network):
                st, body, _ = self.cd.api("POST", "/sandboxes", {"network": network})
                self.assertEqual(st, 400, body)
                self.assertIn(needle, body["message"])
                st, body, _ = self.put_network(sb, network)
                self.assertEqual(st, 400, body)
                self.assertIn(needle, body["message"])
        st, body, _ = self.put_network(sb, {"unknown": 1})
        self.assertEqual((st, body["message"]), (400, "no network policy fields"))
        st, body, _ = self.cd.api("PUT", "/sandboxes/nosuchsandbox0000000/network", {"denyOut": []})
        self.assertEqual(st, 404)

    def test_port_proxy_still_works(self):
        sb = self.sandbox(allowInternetAccess=False)
        server = ("import socketserver\nclass H(socketserver.StreamRequestHandler):\n"
                  " def handle(self):\n  self.rfile.readline()\n"
                  "  self.wfile.write(b'HTTP/1.0 200 OK\\r\\nContent-Length: 2\\r\\n\\r\\nok')\n"
                  "socketserver.TCPServer.allow_reuse_address=True\n"
                  "socketserver.TCPServer(('127.0.0.1',8123),H).serve_forever()\n")
        ps = ProcessStream(sb, {"process": {"cmd": "python3", "args": ["-c", server]}})
        self.cleanups.append(ps.close)
        deadline = time.monotonic() + 10
        while True:
            st, body, _ = sb.rt("GET", "/proxy/8123/", raw=True)
            if st == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        self.assertEqual((st, body), (200, b"ok"))

    # -- the /v1 face (v1-api.md §5): deny before allow, ports, IPv6, sites --
    def v1_sandbox(self, egress):
        st, b, _ = self.cd.v1("POST", "/sandboxes", {"egress": egress} if egress else {})
        self.assertEqual(st, 201, b)
        self.cleanups.append(lambda: self.cd.v1("DELETE", "/sandboxes/" + b["id"]))
        st, obj, _ = self.cd.api("POST", "/sandboxes/%s/connect" % b["id"], {"timeout": 0})
        self.assertIn(st, (200, 201), obj)
        return b, Sandbox(self.cd, obj)

    def test_v1_egress(self):
        b, sb = self.v1_sandbox({"mode": "deny_all", "allow_cidrs": ["198.51.100.0/24", "2001:db8:1::/64"],
                                 "deny_cidrs": ["198.51.100.20"], "allow_ports": [80, 7000]})
        self.assertEqual(b["egress"]["deny_cidrs"], ["198.51.100.20/32"])
        self.assertReach(sb, "198.51.100.10", 80)
        self.assertReach(sb, "198.51.100.10", 7000)
        self.assertReach(sb, "198.51.100.10", 443, False)        # not an allowed port
        self.assertNotEqual(probe(sb, "udp", "198.51.100.10", 7001)["result"], "ok")
        self.assertReach(sb, "198.51.100.20", 80, False)         # denies first
        self.assertReach(sb, "2001:db8:1::10", 80)               # IPv6 on this face
        self.assertReach(sb, "203.0.113.10", 80, False)
        # the SeaCloud view of it (§11), IPv6 included
        net = self.cd.api("GET", "/sandboxes/" + b["id"])[1]["network"]
        self.assertEqual(net["allowInternetAccess"], False)
        self.assertIn("2001:db8:1::/64", net["allowOut"])
        # a SeaCloud PUT takes over, with its own order (allow overrides deny)
        st, body, _ = self.put_network(sb, {"allowOut": ["198.51.100.0/24"], "denyOut": ["198.51.100.20"]})
        self.assertEqual(st, 204, body)
        self.assertReach(sb, "198.51.100.20", 80)
        self.assertReach(sb, "198.51.100.10", 443)
        st, g, _ = self.cd.v1("GET", "/sandboxes/" + b["id"])
        self.assertEqual(g["egress"]["allow_cidrs"], ["198.51.100.0/24"])

    def test_v1_sites(self):
        b, sb = self.v1_sandbox({"mode": "deny_all", "allow_domains": ["allowed.test"],
                                 "deny_domains": ["deep.www.allowed.test"]})
        self.assertEqual(self.resolve(sb, "allowed.test"), ["198.51.100.10"])      # the site
        self.assertEqual(self.resolve(sb, "www.allowed.test"), ["198.51.100.10"])  # and below
        self.assertEqual(self.resolve(sb, "deep.www.allowed.test"), "nxdomain")    # deny first
        self.assertEqual(self.resolve(sb, "other.test"), "nxdomain")
        self.assertReach(sb, "198.51.100.10", 80)
        b2, sb2 = self.v1_sandbox(None)
        self.assertEqual(b2["egress"]["mode"], "allow_all")
        self.assertReach(sb2, "203.0.113.10", 80)

    def test_cli_network_update(self):
        sb = self.sandbox()
        cove = os.path.join(BUILD, "cove")
        p = subprocess.run(in_ns(self.net.host_ns, [
            cove, "--url", "http://127.0.0.1:%d" % self.cd.port, "--api-key", self.cd.api_key,
            "sandbox", "network", "update", sb.id, "--allow-internet-access", "false",
            "--allow-out", "198.51.100.10/32,*.allowed.test"]),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        net = self.cd.api("GET", "/sandboxes/" + sb.id)[1]["network"]
        self.assertEqual((net["allowInternetAccess"], net["allowOut"]),
                         (False, ["198.51.100.10/32", "*.allowed.test"]))
        self.assertReach(sb, "198.51.100.10", 80)
        self.assertReach(sb, "198.51.100.20", 80, False)

        def cli(*args):
            p = subprocess.run(in_ns(self.net.host_ns, [
                cove, "--url", "http://127.0.0.1:%d" % self.cd.port, "--api-key", self.cd.api_key]
                + list(args)), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
            self.assertEqual(p.returncode, 0, p.stderr)
            return p.stdout
        out = cli("sandbox", "network", "get", sb.id)
        self.assertIn("allowInternetAccess:   false", out)
        self.assertIn("allowOut:              198.51.100.10/32, *.allowed.test", out)
        self.assertIn("denyOut:               -", out)
        got = json.loads(cli("--output", "json", "sandbox", "network", "get", sb.id))
        self.assertEqual(got, {"sandboxID": sb.id, "network": net})
        cli("sandbox", "network", "set", sb.id, "--allow-internet-access", "true")  # the alias
        self.assertTrue(json.loads(cli("--output", "json", "sandbox", "network", "show", sb.id))
                        ["network"]["allowInternetAccess"])
        self.assertReach(sb, "198.51.100.20", 80)


@unittest.skipIf(skip_reason(), skip_reason())
class NetworkLifecycleTest(unittest.TestCase):
    """Each test with its own test internet and coved: restarts, deletes, purges."""

    def setUp(self):
        self.net = Internet().start()
        self.addCleanup(self.net.stop)

    def leftovers(self):
        out = subprocess.run(in_ns(self.net.host_ns, [NETLAB]), input=json.dumps({"op": "leftovers", "pool": POOL}) + "\n",
                             stdout=subprocess.PIPE, text=True, timeout=30).stdout
        return json.loads(out)

    def test_kill9_restart_keeps_networks_and_policies(self):
        cd = Coved.for_test(self, **network_args(self.net))
        kept = cd.create(network={"allowInternetAccess": False, "allowOut": ["198.51.100.10", "other.test"]})
        gone = cd.create()
        s = FileStreamer(kept, "198.51.100.10", 7000)
        self.assertTrue(s.alive())
        cd.kill9()
        cd.start()
        self.assertTrue(s.alive(), "an established connection survives coved's restart")
        self.assertEqual(probe(kept, "tcp", "198.51.100.10", 80)["result"], "ok")
        self.assertNotEqual(probe(kept, "tcp", "198.51.100.20", 80)["result"], "ok")
        r = probe(kept, "resolve", "other.test")
        self.assertEqual(r.get("addrs"), ["198.51.100.20"], r)
        self.assertEqual(probe(kept, "tcp", "198.51.100.20", 80)["result"], "ok")
        self.assertEqual(probe(gone, "tcp", "203.0.113.10", 80)["result"], "ok")
        st, body, _ = cd.api("PUT", "/sandboxes/%s/network" % kept.id, {"allowOut": []})
        self.assertEqual(st, 204, body)
        self.assertTrue(s.wait_for("dead", 1.0))

    def test_delete_and_purge_leave_nothing(self):
        cd = Coved.for_test(self, **network_args(self.net))
        a = cd.create()
        b = cd.create(network={"allowOut": ["*.allowed.test"]})
        for sb in (a, b):
            self.assertEqual(probe(sb, "tcp", "198.51.100.10", 80)["result"], "ok")
        probe(b, "resolve", "www.allowed.test")
        a_addr = a.sh("ip -4 -br addr show eth0")["stdout"].split()[2].split("/")[0]
        self.assertEqual(a.delete()[0], 204)
        cd.wait_teardown()
        ct = sh(in_ns(self.net.host_ns, ["conntrack", "-L", "-s", a_addr]), check=False).stdout
        self.assertEqual(ct.strip(), "")
        links = sh(["ip", "-n", self.net.host_ns, "-j", "link"]).stdout
        self.assertEqual(sum(1 for l in json.loads(links) if l["ifname"].startswith("cove-")), 1)
        cd.stop()
        cd.purge()
        left = self.leftovers()
        self.assertEqual((left["links"], left["table"], left["conntrack"]), (0, False, 0), left)
        self.assertEqual(sh(in_ns(self.net.host_ns, ["nft", "list", "ruleset"])).stdout.strip(), "")
        names = sorted(l["ifname"] for l in json.loads(sh(["ip", "-n", self.net.host_ns, "-j", "link"]).stdout))
        self.assertEqual(names, sorted(["lo", self.net.uplink]))
        for knob in ("ipv4/conf/%s/forwarding" % self.net.uplink,
                     "ipv6/conf/%s/force_forwarding" % self.net.uplink, "ipv6/conf/all/forwarding"):
            path = "/proc/sys/net/" + knob
            if os.path.exists(path):
                v = sh(in_ns(self.net.host_ns, ["cat", path])).stdout.strip()
                self.assertEqual(v, "0", "purge turns %s off again" % knob)

    def test_network_none(self):
        cd = Coved.for_test(self, netns=self.net.host_ns, extra_args=["--network", "none"])
        sb = cd.create()
        out = sb.sh("cat /proc/net/dev; cat /run/cove/access-token")["stdout"]
        self.assertIn("lo:", out)
        self.assertNotIn("eth0", out)
        self.assertTrue(out.strip().endswith(sb.token))
        self.assertNotEqual(probe(sb, "tcp", "198.51.100.10", 80)["result"], "ok")
        self.assertEqual(sh(in_ns(self.net.host_ns, ["nft", "list", "ruleset"])).stdout.strip(), "")

    def test_default_policy_setting(self):
        cd = Coved.for_test(self, **network_args(self.net, "--network-default-policy",
                                                 '{"allowInternetAccess":false,"allowOut":["198.51.100.10"]}'))
        sb = cd.create()
        self.assertEqual(sb.obj["network"]["allowOut"], ["198.51.100.10/32"])
        self.assertEqual(probe(sb, "tcp", "198.51.100.10", 80)["result"], "ok")
        self.assertNotEqual(probe(sb, "tcp", "198.51.100.20", 80)["result"], "ok")
        own = cd.create(network={"allowInternetAccess": True})
        self.assertEqual(probe(own, "tcp", "198.51.100.20", 80)["result"], "ok")
        # the /v1 face: "absent → the server-wide default" (v1-api.md §4)
        st, b, _ = cd.v1("POST", "/sandboxes", {})
        self.assertEqual(st, 201, b)
        self.assertEqual((b["egress"]["mode"], b["egress"]["allow_cidrs"]), ("deny_all", ["198.51.100.10/32"]))


if __name__ == "__main__":
    unittest.main()
