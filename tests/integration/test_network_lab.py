"""Sandbox networking (src/net) end to end, driven by netlab the way coved drives it.

Everything runs in namespaces of netfixture.Internet: the library runs in the fixture's "host"
namespace with the fixture's uplink and fake DNS; each "sandbox" is an empty network namespace
the test made, probed through nsenter. No packet can leave the machine (netfixture.py).
"""
import json
import os
import re
import select
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from netfixture import Internet, in_ns, HOST_UPLINK4  # noqa: E402
from coveharness import BUILD  # noqa: E402

NETLAB = os.path.join(BUILD, "tests", "netlab")
API_PORT = 18080


def skip_reason():
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    if not os.path.exists(NETLAB):
        return "netlab not built"
    for tool in ("nsenter", "ip", "nft", "ping"):
        if subprocess.run(["which", tool], stdout=subprocess.DEVNULL).returncode != 0:
            return "needs %s" % tool
    return None


class Lab:
    """One netlab process in the fixture's host namespace."""

    def __init__(self, net, open_args=None):
        self.net = net
        self.proc = subprocess.Popen(in_ns(net.host_ns, [NETLAB]), stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        if open_args is not False:
            args = dict(op="open", uplinks=[net.uplink], dns=[net.dns], apiPort=API_PORT)
            args.update(open_args or {})
            r = self.cmd(**args)
            if not r.get("ok"):
                raise AssertionError("netlab open: %s" % r)

    def cmd(self, **c):
        self.proc.stdin.write(json.dumps(c) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise AssertionError("netlab died (exit %s)" % self.proc.poll())
        return json.loads(line)

    def ok(self, **c):
        r = self.cmd(**c)
        if not r.get("ok"):
            raise AssertionError("netlab %s: %s" % (c.get("op"), r))
        return r

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self):
        if self.proc.poll() is None:
            try:
                self.cmd(op="close")
            except (AssertionError, OSError):
                pass
            try:
                self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except OSError:
                pass


class Listener:
    """A TCP listener inside a namespace that answers every connection with 'hi'."""

    CODE = ("import socket,sys\n"
            "s=socket.socket(socket.AF_INET6);s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
            "s.setsockopt(socket.IPPROTO_IPV6,socket.IPV6_V6ONLY,0)\n"
            "s.bind(('::',int(sys.argv[1])));s.listen(16);print('ready',flush=True)\n"
            "while True:\n c,a=s.accept();c.sendall(b'hi\\n');c.close()\n")

    def __init__(self, ns, port):
        self.proc = subprocess.Popen(in_ns(ns, [sys.executable, "-c", self.CODE, str(port)]),
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline().strip() == "ready"

    def stop(self):
        self.proc.kill()
        self.proc.wait(10)


class Streamer:
    """An open TCP connection from a namespace to an echo server: one round trip every 50 ms,
    printing 'ok' per round trip and 'dead <error>' when the connection fails."""

    CODE = ("import socket,sys,time\n"
            "fam=socket.AF_INET6 if ':' in sys.argv[1] else socket.AF_INET\n"
            "s=socket.socket(fam);s.settimeout(5);s.connect((sys.argv[1],int(sys.argv[2])))\n"
            "print('connected',flush=True)\n"
            "while True:\n"
            " try:\n"
            "  s.sendall(b'x\\n');d=s.recv(10)\n"
            "  if not d: raise EOFError('closed by peer')\n"
            "  print('ok',flush=True)\n"
            " except Exception as e:\n"
            "  print('dead',repr(e),flush=True);break\n"
            " time.sleep(0.05)\n")

    def __init__(self, ns, host, port):
        self.proc = subprocess.Popen(in_ns(ns, [sys.executable, "-c", self.CODE, host, str(port)]),
                                     stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().strip()
        if line != "connected":
            raise AssertionError("streamer to %s:%s: %r" % (host, port, line))

    def wait_dead(self, timeout):
        """Seconds until the streamer reported its connection dead, or None."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            r, _, _ = select.select([self.proc.stdout], [], [], 0.05)
            if r:
                line = self.proc.stdout.readline()
                if line.startswith("dead") or not line:
                    return time.monotonic() - start
        return None

    def alive(self):
        """Still completing round trips (reads what is buffered, then waits for one more)."""
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            r, _, _ = select.select([self.proc.stdout], [], [], 0.2)
            if r:
                line = self.proc.stdout.readline()
                if line.startswith("dead") or not line:
                    return False
                if line.strip() == "ok":
                    return True
        return False

    def stop(self):
        self.proc.kill()
        self.proc.wait(10)


SEACLOUD = lambda **n: {"network": n}  # noqa: E731
V1 = lambda **e: {"egress": e}  # noqa: E731


@unittest.skipIf(skip_reason(), skip_reason())
class NetworkLabTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.net = Internet().start()
        cls.lab = Lab(cls.net)
        cls.gateway = None

    @classmethod
    def tearDownClass(cls):
        cls.lab.stop()
        cls.net.stop()

    def setUp(self):
        self.cleanups = []

    def tearDown(self):
        for fn in reversed(self.cleanups):
            fn()

    # -- helpers --
    @staticmethod
    def _quiet(fn, *a, **kw):
        try:
            fn(*a, **kw)
        except (AssertionError, OSError, ValueError):
            pass

    def sandbox(self, policy=None, lab=None):
        lab = lab or self.lab
        ns = self.net.add_netns()
        sid = "sb-" + os.urandom(4).hex()
        info = lab.ok(op="attach", id=sid, netns="/run/netns/" + ns, policy=policy)
        info["id"], info["ns"] = sid, ns
        self.cleanups.append(lambda: self._quiet(lab.cmd, op="detach", id=sid))
        return info

    def probe(self, sb, what, *args, **kw):
        return self.net.probe(sb["ns"], what, *args, **kw)["result"]

    def tcp(self, sb, host, port):
        return self.probe(sb, "tcp", host, port)

    def assertReach(self, sb, host, port, want=True):
        r = self.tcp(sb, host, port)
        if want:
            self.assertEqual(r, "ok", "%s:%s should be reachable" % (host, port))
        else:
            self.assertNotEqual(r, "ok", "%s:%s should be refused" % (host, port))
            self.assertIn(r, ("refused", "reset", "unreachable", "timeout"))

    def dns(self, sb, name, qtype="A"):
        r = self.net.probe(sb["ns"], "dns", sb["gateway4"], name, qtype)
        self.assertEqual(r["result"], "ok", r)
        return r["rcode"], r["addrs"]

    def policy(self, sb, policy):
        return self.lab.ok(op="policy", id=sb["id"], policy=policy)

    # -- the fixture itself --
    def test_fixture_is_hermetic(self):
        for ns in (self.net.inet_ns,):
            for fam in ("-4", "-6"):
                routes = self.net.ip(ns, fam, "route", "show", "default").stdout.strip()
                self.assertEqual(routes, "", "the test internet must have no default route")
        self.net.check_not_on_host()
        links = json.loads(self.net.ip(self.net.host_ns, "-j", "link").stdout)
        names = {l["ifname"] for l in links}
        self.assertIn(self.net.uplink, names)
        self.assertTrue(all(n in ("lo", self.net.uplink, "cove0") or n.startswith("cove-") for n in names), names)

    # -- policies --
    def test_allow_all(self):
        sb = self.sandbox()
        self.assertReach(sb, "198.51.100.10", 80)
        self.assertReach(sb, "203.0.113.10", 80)
        self.assertReach(sb, "2001:db8:1::10", 80)
        self.assertEqual(self.probe(sb, "udp", "198.51.100.10", 7001), "ok")
        self.assertEqual(self.probe(sb, "udp", "2001:db8:1::10", 7001), "ok")
        self.assertEqual(self.probe(sb, "ping", "198.51.100.10"), "ok")
        self.assertEqual(self.dns(sb, "other.test"), (0, ["198.51.100.20"]))
        self.assertEqual(self.dns(sb, "nosuch.test")[0], 3)
        body = self.net.probe(sb["ns"], "tcp", "198.51.100.10", 80)["body"]
        self.assertIn("to " + HOST_UPLINK4, body)  # masqueraded behind the host's uplink

    def test_deny_all(self):
        for policy in (SEACLOUD(allowInternetAccess=False), V1(mode="deny_all")):
            sb = self.sandbox(policy)
            self.assertReach(sb, "198.51.100.10", 80, False)
            self.assertReach(sb, "2001:db8:1::10", 80, False)
            self.assertNotEqual(self.probe(sb, "udp", "198.51.100.10", 7001), "ok")
            self.assertNotEqual(self.probe(sb, "ping", "198.51.100.10"), "ok")
            self.assertEqual(self.dns(sb, "other.test")[0], 3)  # NXDOMAIN
            self.assertEqual(self.dns(sb, "cove.internal"), (0, [sb["gateway4"]]))

    def test_seacloud_allow_list(self):
        sb = self.sandbox(SEACLOUD(allowInternetAccess=False, allowOut=["198.51.100.10"]))
        self.assertReach(sb, "198.51.100.10", 80)
        self.assertReach(sb, "198.51.100.10", 7000)
        self.assertEqual(self.probe(sb, "udp", "198.51.100.10", 7001), "ok")
        self.assertReach(sb, "198.51.100.20", 80, False)
        self.assertReach(sb, "203.0.113.10", 80, False)

    def test_seacloud_deny_list(self):
        sb = self.sandbox(SEACLOUD(denyOut=["198.51.100.20/32", "203.0.113.0/24"]))
        self.assertReach(sb, "198.51.100.10", 80)
        self.assertReach(sb, "198.51.100.20", 80, False)
        self.assertReach(sb, "203.0.113.10", 80, False)
        self.assertNotEqual(self.probe(sb, "ping", "198.51.100.20"), "ok")

    def test_seacloud_allow_overrides_deny(self):
        sb = self.sandbox(SEACLOUD(denyOut=["0.0.0.0/0"], allowOut=["198.51.100.10/32"]))
        self.assertReach(sb, "198.51.100.10", 80)
        self.assertReach(sb, "198.51.100.20", 80, False)
        self.assertReach(sb, "2001:db8:1::10", 80)  # denyOut held IPv4 only

    def test_v1_deny_before_allow(self):
        sb = self.sandbox(V1(mode="deny_all", allow_cidrs=["198.51.100.0/24"],
                             deny_cidrs=["198.51.100.20"]))
        self.assertReach(sb, "198.51.100.10", 80)
        self.assertReach(sb, "198.51.100.20", 80, False)
        self.assertReach(sb, "203.0.113.10", 80, False)
        sb2 = self.sandbox(V1(mode="allow_all", deny_cidrs=["198.51.100.0/24"]))
        self.assertReach(sb2, "198.51.100.10", 80, False)
        self.assertReach(sb2, "203.0.113.10", 80)

    def test_v1_allow_ports(self):
        sb = self.sandbox(V1(mode="deny_all", allow_cidrs=["198.51.100.10", "2001:db8:1::10"],
                             allow_ports=[80]))
        self.assertReach(sb, "198.51.100.10", 80)
        self.assertReach(sb, "2001:db8:1::10", 80)
        self.assertReach(sb, "198.51.100.10", 443, False)
        self.assertReach(sb, "198.51.100.10", 7000, False)
        self.assertNotEqual(self.probe(sb, "udp", "198.51.100.10", 7001), "ok")
        self.assertNotEqual(self.probe(sb, "ping", "198.51.100.10"), "ok")

    def test_ipv6(self):
        sb = self.sandbox(V1(mode="deny_all", allow_cidrs=["2001:db8:1::/64"]))
        self.assertReach(sb, "2001:db8:1::10", 80)
        self.assertReach(sb, "2001:db8:1::10", 7000)
        self.assertEqual(self.probe(sb, "udp", "2001:db8:1::10", 7001), "ok")
        self.assertReach(sb, "198.51.100.10", 80, False)
        sb2 = self.sandbox(V1(mode="allow_all", deny_cidrs=["2001:db8::/32"]))
        self.assertReach(sb2, "2001:db8:1::10", 80, False)
        self.assertReach(sb2, "198.51.100.10", 80)

    # -- domains --
    def test_domains_seacloud(self):
        sb = self.sandbox(SEACLOUD(allowInternetAccess=False, allowOut=["*.allowed.test", "other.test"]))
        self.assertReach(sb, "198.51.100.10", 80, False)  # nothing learnt yet
        self.assertEqual(self.dns(sb, "allowed.test")[0], 3)  # *.x is not the apex
        self.assertEqual(self.dns(sb, "www.other.test")[0], 3)  # exact name only
        self.assertEqual(self.dns(sb, "internet.test")[0], 3)
        self.assertEqual(self.dns(sb, "www.allowed.test"), (0, ["198.51.100.10"]))
        self.assertReach(sb, "198.51.100.10", 80)
        self.assertReach(sb, "198.51.100.10", 443)
        self.assertReach(sb, "198.51.100.10", 7000, False)  # learnt addresses: TCP 80/443 only
        self.assertNotEqual(self.probe(sb, "udp", "198.51.100.10", 7001), "ok")
        self.assertReach(sb, "198.51.100.20", 80, False)
        self.assertEqual(self.dns(sb, "other.test"), (0, ["198.51.100.20"]))
        self.assertReach(sb, "198.51.100.20", 80)

    def test_domains_deny_and_v1_sites(self):
        sb = self.sandbox(SEACLOUD(denyOut=["*.allowed.test"]))
        self.assertEqual(self.dns(sb, "www.allowed.test")[0], 3)
        self.assertEqual(self.dns(sb, "allowed.test")[0], 0)
        self.assertEqual(self.dns(sb, "other.test")[0], 0)
        sb2 = self.sandbox(V1(mode="deny_all", allow_domains=["allowed.test"],
                              deny_domains=["deep.www.allowed.test"]))
        self.assertEqual(self.dns(sb2, "allowed.test")[0], 0)
        self.assertEqual(self.dns(sb2, "www.allowed.test")[0], 0)
        self.assertEqual(self.dns(sb2, "deep.www.allowed.test")[0], 3)  # deny first
        self.assertEqual(self.dns(sb2, "other.test")[0], 3)
        self.assertReach(sb2, "198.51.100.10", 80)

    def test_domain_cname_and_ipv6(self):
        sb = self.sandbox(SEACLOUD(allowInternetAccess=False, allowOut=["alias.test", "v6.test"]))
        self.assertReach(sb, "198.51.100.20", 80, False)
        self.assertEqual(self.dns(sb, "alias.test"), (0, ["198.51.100.20"]))
        self.assertReach(sb, "198.51.100.20", 80)  # the CNAME target's address is learnt
        self.assertEqual(self.dns(sb, "v6.test", "AAAA"), (0, ["2001:db8:1::10"]))
        self.assertReach(sb, "2001:db8:1::10", 80)

    def test_domain_ttl_expiry(self):
        sb = self.sandbox(SEACLOUD(allowInternetAccess=False, allowOut=["short.test"]))
        self.assertEqual(self.dns(sb, "short.test"), (0, ["198.51.100.20"]))  # TTL 2
        self.assertReach(sb, "198.51.100.20", 80)
        time.sleep(5 + 2)  # the TTL, raised to the 5 s floor, and a margin
        self.assertReach(sb, "198.51.100.20", 80, False)
        self.dns(sb, "short.test")
        self.assertReach(sb, "198.51.100.20", 80)

    def test_resolver_is_the_only_dns(self):
        sb = self.sandbox()
        r = self.net.probe(sb["ns"], "dns", self.net.dns, "other.test", "A")
        self.assertNotEqual(r["result"], "ok", "a sandbox must not reach another DNS server")
        before = len(self.net.dns_queries())
        self.dns(sb, "www.other.test")
        queries = self.net.dns_queries()[before:]
        self.assertEqual([q[0] for q in queries], [HOST_UPLINK4])  # forwarded by the host

    def test_resolver_edge_cases(self):
        sb = self.sandbox(SEACLOUD(denyOut=["*.blocked.test"]))
        g = sb["gateway4"]
        r = self.net.probe(sb["ns"], "dnstcp", g, "other.test", "A")
        self.assertEqual((r["result"], r["rcode"], r["addrs"], r["id_ok"]), ("ok", 0, ["198.51.100.20"], True))
        r = self.net.probe(sb["ns"], "dnstcp", g, "x.blocked.test", "A")
        self.assertEqual(r["rcode"], 3)
        # two questions: FORMERR; opcode STATUS: NOTIMP; a response sent as a query: FORMERR
        two = "abcd01000002000000000000" + "0161047465737400" + "00010001" * 1 + "0162047465737400" + "00010001"
        self.assertEqual(self.net.probe(sb["ns"], "dnsraw", g, two)["rcode"], 1)
        status = "abcd10000001000000000000" + "0161047465737400" + "00010001"
        self.assertEqual(self.net.probe(sb["ns"], "dnsraw", g, status)["rcode"], 4)
        resp = "abcd81000001000000000000" + "0161047465737400" + "00010001"
        self.assertEqual(self.net.probe(sb["ns"], "dnsraw", g, resp)["rcode"], 1)
        # garbage: no answer at all, and the resolver still serves afterwards
        self.assertEqual(self.net.probe(sb["ns"], "dnsraw", g, "00ff", timeout=1)["result"], "timeout")
        self.assertEqual(self.dns(sb, "other.test")[0], 0)
        # a label holding a dot matches no pattern: "x.blocked" + "test" is not x.blocked.test,
        # so only the fallback (allow) applies — it is forwarded, and the test DNS knows no such name
        odd = "abcd01000001000000000000" + "097801626c6f636b6564" + "0474657374" + "00" + "00010001"
        self.assertEqual(self.net.probe(sb["ns"], "dnsraw", g, odd)["rcode"], 3)

    def test_resolver_without_upstream_answers_servfail(self):
        net = Internet().start()
        self.cleanups.append(net.stop)
        lab = Lab(net, open_args={"dns": ["198.51.100.99"]})  # nothing listens there
        self.cleanups.append(lab.stop)
        sb = self.sandbox(lab=lab)
        r = net.probe(sb["ns"], "dns", sb["gateway4"], "other.test", "A", timeout=8)
        self.assertEqual((r["result"], r["rcode"]), ("ok", 2))
        r = net.probe(sb["ns"], "dns", sb["gateway4"], "cove.internal", "A")
        self.assertEqual((r["rcode"], r["addrs"]), (0, [sb["gateway4"]]))

    # -- always denied --
    def test_always_denied_under_every_policy(self):
        host_listener = Listener(self.net.host_ns, API_PORT)
        self.cleanups.append(host_listener.stop)
        other = self.sandbox()
        other_listener = Listener(other["ns"], 9999)
        self.cleanups.append(other_listener.stop)
        # Without any policy in the way, these answer: the refusals below are Cove's.
        self.assertEqual(self.net.probe(self.net.host_ns, "tcp", "169.254.169.254", 80)["result"], "ok")
        self.assertEqual(self.net.probe(self.net.host_ns, "tcp", HOST_UPLINK4, API_PORT)["result"], "ok")
        self.assertEqual(self.net.probe(self.net.host_ns, "tcp", other["addr4"], 9999)["result"], "ok")
        for policy in (None, SEACLOUD(allowOut=["0.0.0.0/0"]),
                       V1(mode="deny_all", allow_cidrs=["0.0.0.0/0", "::/0"]),
                       SEACLOUD(allowInternetAccess=False)):
            sb = self.sandbox(policy)
            with self.subTest(policy=policy):
                self.assertReach(sb, "169.254.169.254", 80, False)
                self.assertReach(sb, "fd00:ec2::254", 80, False)
                self.assertReach(sb, HOST_UPLINK4, API_PORT, False)  # coved's port, not via cove.internal
                self.assertReach(sb, HOST_UPLINK4, 22, False)
                self.assertReach(sb, sb["gateway4"], 22, False)
                self.assertReach(sb, other["addr4"], 9999, False)
                self.assertReach(sb, other["addr6"], 9999, False)
                self.assertNotEqual(self.probe(sb, "ping", HOST_UPLINK4), "ok")
                self.assertNotEqual(self.probe(sb, "ping", other["addr4"]), "ok")
                # cove.internal: coved's API port on the gateway, whatever the policy
                self.assertReach(sb, sb["gateway4"], API_PORT)

    def test_spoofed_source_is_dropped(self):
        sb = self.sandbox()
        self.net.ip(sb["ns"], "addr", "add", "10.203.0.250/32", "dev", "eth0")
        code = ("import socket;s=socket.socket();s.settimeout(2);s.bind(('10.203.0.250',0))\n"
                "try:\n s.connect(('198.51.100.10',80));print('ok')\nexcept Exception as e: print(repr(e))")
        out = self.net.run_in(sb["ns"], [sys.executable, "-c", code]).stdout
        self.assertNotIn("ok", out.split("\n")[0])

    # -- runtime changes --
    def test_policy_change_cuts_open_connection(self):
        sb = self.sandbox()
        s4 = Streamer(sb["ns"], "198.51.100.10", 7000)
        self.cleanups.append(s4.stop)
        s6 = Streamer(sb["ns"], "2001:db8:1::10", 7000)
        self.cleanups.append(s6.stop)
        self.assertTrue(s4.alive() and s6.alive())
        self.policy(sb, V1(mode="allow_all", deny_cidrs=["198.51.100.10"]))
        took = s4.wait_dead(1.0)
        self.assertIsNotNone(took, "the forbidden connection was not cut within 1 s")
        self.assertTrue(s6.alive(), "a connection the new policy allows must survive")
        self.assertReach(sb, "198.51.100.10", 80, False)
        # The same policy again changes nothing: the allowed connection still lives.
        self.policy(sb, V1(mode="allow_all", deny_cidrs=["198.51.100.10"]))
        self.assertTrue(s6.alive())
        self.assertReach(sb, "198.51.100.10", 80, False)

    def test_policy_change_forgets_names_no_longer_allowed(self):
        sb = self.sandbox(SEACLOUD(allowInternetAccess=False, allowOut=["other.test"]))
        self.dns(sb, "other.test")
        self.assertReach(sb, "198.51.100.20", 80)
        self.policy(sb, SEACLOUD(allowInternetAccess=False, allowOut=["*.allowed.test"]))
        self.assertReach(sb, "198.51.100.20", 80, False)
        self.assertEqual(self.dns(sb, "other.test")[0], 3)

    # -- restart, teardown, purge --
    def test_restart_readopts_and_sweeps(self):
        net = Internet().start()
        self.cleanups.append(net.stop)
        lab = Lab(net)
        self.cleanups.append(lab.stop)
        policy = SEACLOUD(allowInternetAccess=False, allowOut=["198.51.100.10", "other.test"])
        kept = self.sandbox(policy, lab=lab)
        gone = self.sandbox(None, lab=lab)
        streamer = Streamer(kept["ns"], "198.51.100.10", 7000)
        self.cleanups.append(streamer.stop)
        lab.kill9()
        lab2 = Lab(net)
        self.cleanups.append(lab2.stop)
        self.assertTrue(streamer.alive(), "established connections survive a restart")
        self.assertEqual(net.probe(kept["ns"], "tcp", "198.51.100.10", 80)["result"], "ok")
        lab2.ok(op="adopt", id=kept["id"], policy=policy)
        self.assertEqual(lab2.cmd(op="adopt", id="sb-never-existed", policy=None)["errno"], 2)
        self.assertEqual(lab2.ok(op="sweep")["swept"], 1)
        self.assertNotIn('"%s"' % gone["ifname"], net.ip(net.host_ns, "-j", "link").stdout)
        self.assertEqual(net.probe(kept["ns"], "tcp", "198.51.100.10", 80)["result"], "ok")
        self.assertNotEqual(net.probe(kept["ns"], "tcp", "198.51.100.20", 80)["result"], "ok")
        r = net.probe(kept["ns"], "dns", kept["gateway4"], "other.test", "A")
        self.assertEqual((r["rcode"], r["addrs"]), (0, ["198.51.100.20"]))
        self.assertEqual(net.probe(kept["ns"], "tcp", "198.51.100.20", 80)["result"], "ok")
        self.assertNotEqual(net.probe(gone["ns"], "tcp", "198.51.100.10", 80)["result"], "ok")
        # A changed policy after the restart still cuts.
        lab2.ok(op="policy", id=kept["id"], policy=SEACLOUD(allowInternetAccess=False))
        self.assertIsNotNone(streamer.wait_dead(1.0))

    # -- the libnftnl batches make what the libnftables text made --
    # The objects the text of ruleset.h needs around a sandbox's (docs/design/network.md §3).
    SCAFFOLD = """add table inet cove
add set inet cove src4 { type ifname . ipv4_addr; }
add set inet cove src6 { type ifname . ipv6_addr; }
add map inet cove egress { type ifname : verdict; }
add set inet cove learn4 { type ifname . ipv4_addr; flags timeout; size 16777216; }
add set inet cove learn6 { type ifname . ipv6_addr; flags timeout; size 16777216; }
add chain inet cove deny
"""

    def nft_list(self, ns, *what):
        return json.loads(self.net.run_in(ns, ["nft", "-j", "list"] + list(what)).stdout)["nftables"]

    def sandbox_objects(self, ns, sb):
        """A sandbox's chain (its rules' expressions) and its elements in the shared sets."""
        slot = sb["ifname"].split("-")[1]
        chains = [o["chain"]["name"] for o in self.nft_list(ns, "chains", "inet") if "chain" in o]
        rules = None
        if "s_" + slot in chains:
            rules = [o["rule"]["expr"] for o in self.nft_list(ns, "chain", "inet", "cove", "s_" + slot)
                     if "rule" in o]
        elems = {}
        for name in ("egress", "src4", "src6", "learn4", "learn6"):
            kind = "map" if name == "egress" else "set"
            items = self.nft_list(ns, kind, "inet", "cove", name)
            mine = []
            for e in next(o[kind] for o in items if kind in o).get("elem", []):
                key = e["elem"]["val"] if isinstance(e, dict) and "elem" in e else e
                if json.dumps(key).count('"%s"' % sb["ifname"]):
                    mine.append(json.dumps(key if name.startswith("learn") else e, sort_keys=True))
            elems[name] = sorted(mine)
        return rules, elems

    def netlink_exprs(self, ns, sb):
        """The kernel's expressions of the sandbox's rules (`nft --debug=netlink`), each lookup
        into an anonymous set replaced by that set's elements (keys and interval flags)."""
        out = self.net.run_in(ns, ["nft", "--debug=netlink", "list", "chain", "inet", "cove",
                                   "s_" + sb["ifname"].split("-")[1]]).stdout
        sets, rules, cur = {}, [], None
        for line in out.splitlines():
            if line.startswith("inet cove @"):
                cur = sets.setdefault(line.split("@")[1], [])
            elif line.startswith("inet cove s_"):
                cur = None
                rules.append([])
            elif line.startswith("\telement") and cur is not None:
                cur.append(line.strip())
            elif line.startswith("  [") and rules:
                rules[-1].append(line.strip())
        for r in rules:
            for i, e in enumerate(r):
                m = re.search(r"set (__set\d+)", e)
                if m:
                    r[i] = e.replace(m.group(1), repr(sorted(sets.get(m.group(1), []))))
        return rules

    def reference_objects(self, sb, policy, generation):
        """What ruleset.h's libnftables text makes of the same sandbox, in a scratch namespace."""
        ns = self.net.add_netns()
        text = self.lab.ok(op="text", slot=int(sb["ifname"].split("-")[1], 16), generation=generation,
                           addr4=sb["addr4"], addr6=sb.get("addr6"), policy=policy)["text"]
        self.net.run_in(ns, ["nft", "-f", "-"], input=self.SCAFFOLD + text)
        return self.sandbox_objects(ns, sb), self.netlink_exprs(ns, sb)

    def assertSameAsText(self, sb, policy):
        rules, elems = self.sandbox_objects(self.net.host_ns, sb)
        self.assertIsNotNone(rules, "chain of %s" % sb["ifname"])
        generation = rules[0][0]["match"]["right"]  # ct mark <generation> accept
        (want_rules, want_elems), want_exprs = self.reference_objects(sb, policy, generation)
        self.assertEqual(rules, want_rules, "rules of %s under %s" % (sb["ifname"], policy))
        exprs = self.netlink_exprs(self.net.host_ns, sb)
        self.assertTrue(all(exprs), exprs)
        self.assertEqual(exprs, want_exprs, "netlink expressions of %s under %s" % (sb["ifname"], policy))
        for name in ("egress", "src4", "src6"):
            self.assertEqual(elems[name], want_elems[name], name)
        return elems

    def test_nftnl_objects_match_the_text_path(self):
        policies = [
            None,
            SEACLOUD(allowInternetAccess=False),
            SEACLOUD(denyOut=["0.0.0.0/0"], allowOut=["198.51.100.10/32", "*.allowed.test"]),
            SEACLOUD(denyOut=["198.51.100.20/32", "203.0.113.0/24", "10.16.0.0/12"]),
            V1(mode="deny_all", allow_cidrs=["198.51.100.0/25", "198.51.100.128/25", "203.0.113.7",
                                             "2001:db8:1::10", "2001:db8::/33"],
               deny_cidrs=["198.51.100.20", "0.0.0.0/8", "224.0.0.0/3", "2001:db8::/32"],
               allow_ports=[443, 80, 8080], allow_domains=["allowed.test"]),
            V1(mode="deny_all", allow_cidrs=["0.0.0.0/0", "::/0"], allow_ports=[22]),
            V1(mode="allow_all", deny_cidrs=["198.51.100.0/24", "192.0.2.0/23"]),
        ]
        sbs = [self.sandbox(p) for p in policies]
        for sb, policy in zip(sbs, policies):
            with self.subTest(policy=policy):
                self.assertSameAsText(sb, policy)
        # learnt addresses, then a policy change that forgets them, then the teardown
        sb = sbs[2]
        self.assertEqual(self.dns(sb, "www.allowed.test")[0], 0)
        learnt = self.sandbox_objects(self.net.host_ns, sb)[1]["learn4"]
        self.assertEqual(learnt, ['{"concat": ["%s", "198.51.100.10"]}' % sb["ifname"]])
        changed = V1(mode="deny_all", allow_cidrs=["203.0.113.0/24"], allow_ports=[443])
        self.policy(sb, changed)
        elems = self.assertSameAsText(sb, changed)
        self.assertEqual((elems["learn4"], elems["learn6"]), ([], []))
        self.policy(sb, policies[2])
        self.assertEqual(self.dns(sb, "www.allowed.test")[0], 0)
        for s in sbs:
            self.lab.ok(op="detach", id=s["id"])
            rules, elems = self.sandbox_objects(self.net.host_ns, s)
            self.assertIsNone(rules, "chain of %s after detach" % s["ifname"])
            self.assertEqual(elems, {k: [] for k in elems}, "elements of %s after detach" % s["ifname"])
        # the anonymous sets of the detached sandboxes' rules went with them
        self.assertEqual([o for o in self.nft_list(self.net.host_ns, "sets", "inet")
                          if "set" in o and o["set"]["name"].startswith("__set")], [])

    def test_failed_batch_applies_nothing_and_names_the_operation(self):
        net = Internet().start()
        self.cleanups.append(net.stop)
        lab = Lab(net)
        self.cleanups.append(lab.stop)
        # learn6 unreferenced (no sandbox yet): without it, an attach's batch fails at its
        # IPv6 learnt-address rule, after its chain, map entry and earlier rules
        net.run_in(net.host_ns, ["nft", "delete", "set", "inet", "cove", "learn6"])
        ns = net.add_netns()
        r = lab.cmd(op="attach", id="sb-broken", netns="/run/netns/" + ns, policy=None)
        self.assertFalse(r["ok"])
        self.assertEqual(r["errno"], 2, r)
        self.assertIn("nftables: add rule to chain s_", r["error"])
        listing = net.run_in(net.host_ns, ["nft", "list", "table", "inet", "cove"]).stdout
        self.assertNotIn("chain s_", listing)
        self.assertIsNone(re.search(r'"cove-[0-9a-f]+"', listing), listing)  # no element of it
        self.assertNotIn("cove-", net.ip(net.host_ns, "link").stdout)

    def test_detach_and_purge_leave_nothing(self):
        net = Internet().start()
        self.cleanups.append(net.stop)
        lab = Lab(net)
        self.cleanups.append(lab.stop)
        a = self.sandbox(lab=lab)
        b = self.sandbox(SEACLOUD(allowOut=["*.allowed.test"]), lab=lab)
        self.assertEqual(net.probe(a["ns"], "tcp", "198.51.100.10", 80)["result"], "ok")
        net.probe(b["ns"], "dns", b["gateway4"], "www.allowed.test", "A")
        streamer = Streamer(b["ns"], "198.51.100.10", 7000)
        self.cleanups.append(streamer.stop)
        lab.ok(op="detach", id=a["id"])
        links = net.ip(net.host_ns, "-j", "link").stdout
        self.assertNotIn('"%s"' % a["ifname"], links)
        self.assertIn('"%s"' % b["ifname"], links)
        ruleset = net.run_in(net.host_ns, ["nft", "list", "ruleset"]).stdout
        slot_a = a["ifname"].split("-")[1]
        self.assertNotIn("s_%s " % slot_a, ruleset)
        self.assertNotIn("l4_%s " % slot_a, ruleset)
        ct = net.run_in(net.host_ns, ["conntrack", "-L", "-s", a["addr4"]], check=False).stdout
        self.assertEqual(ct.strip(), "")
        ct = net.run_in(net.host_ns, ["conntrack", "-L", "-f", "ipv4", "-s", "10.203.0.0/16"], check=False)
        self.assertIn(b["addr4"], ct.stdout)  # the check below can see entries
        lab.ok(op="close")
        lab.ok(op="purge")
        self.assertNotEqual(net.probe(b["ns"], "tcp", "198.51.100.10", 80, timeout=1)["result"], "ok")
        left = lab.ok(op="leftovers")
        self.assertEqual((left["links"], left["table"], left["conntrack"]), (0, False, 0))
        links = json.loads(net.ip(net.host_ns, "-j", "link").stdout)
        self.assertEqual(sorted(l["ifname"] for l in links), sorted(["lo", net.uplink]))
        self.assertEqual(net.run_in(net.host_ns, ["nft", "list", "ruleset"]).stdout.strip(), "")
        for fam, pool in (("ipv4", "10.203.0.0/16"), ("ipv6", "fd63:6f76:6500::/64")):
            ct = net.run_in(net.host_ns, ["conntrack", "-L", "-f", fam, "-s", pool], check=False)
            self.assertEqual(ct.stdout.strip(), "", "conntrack entries of sandboxes are left")
        for knob in ("ipv4/conf/%s/forwarding", "ipv6/conf/%s/force_forwarding", "ipv6/conf/all/forwarding"):
            path = "/proc/sys/net/" + (knob % net.uplink if "%s" in knob else knob)
            if os.path.exists(path):
                v = net.run_in(net.host_ns, ["cat", path]).stdout.strip()
                self.assertEqual(v, "0", "purge turns %s off again" % path)

    def test_bad_configuration(self):
        net = Internet().start()
        self.cleanups.append(net.stop)
        lab = Lab(net, open_args=False)
        self.cleanups.append(lab.stop)
        r = lab.cmd(op="open", uplinks=["nosuchlink0"], dns=[net.dns])
        self.assertFalse(r["ok"])
        self.assertIn("nosuchlink0", r["error"])
        r = lab.cmd(op="open", uplinks=[net.uplink], pool="203.0.113.0/24")
        self.assertFalse(r["ok"])
        self.assertIn("overlaps route 203.0.113.0/24", r["error"])
        r = lab.cmd(op="open", uplinks=[net.uplink], pool="10.0.0.0/30")
        self.assertFalse(r["ok"])
        self.assertIn("network pool", r["error"])
        r = lab.cmd(op="open", uplinks=[net.uplink], dns=["dns.example"])
        self.assertFalse(r["ok"])
        self.assertIn("dns.example", r["error"])


if __name__ == "__main__":
    unittest.main()
