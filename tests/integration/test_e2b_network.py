"""The E2B face's network settings (e2b.md §2.3, §2.5) enforced by src/net, as the SeaCloud
face's are: E2B's own JavaScript SDK creates sandboxes with `allowInternetAccess` and
`network` (CIDRs and domain patterns) and replaces them with `updateNetwork` (PUT /network),
and commands inside the sandboxes show what gets through. Plain HTTP covers what the SDK does
not send (the create-time name `allow_internet_access` and its conflicts, bad entries).

coved runs in netfixture.Internet's host namespace, and so does the SDK (`ip netns exec`): no
packet leaves the machine.
"""
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coveharness import Coved, ROOT, Sandbox  # noqa: E402
from netfixture import Internet, PROBE  # noqa: E402
from test_network import network_args, probe, skip_reason  # noqa: E402

E2B_DIR = os.path.join(ROOT, "tests", "e2b")
KEY = "e2b_" + "0123456789abcdef" * 2 + "01234567"


def sdk_missing():
    if not os.path.isdir(os.path.join(E2B_DIR, "node_modules", "e2b")):
        return "E2B SDKs not installed (make test installs them into tests/e2b)"
    return skip_reason()


@unittest.skipIf(sdk_missing(), sdk_missing() or "")
class E2BNetworkTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.net = Internet().start()
        cls.addClassCleanup(cls.net.stop)  # class cleanups run last first: coved goes before it
        cls.cd = Coved.for_class(cls, api_key=KEY, **network_args(cls.net))

    def e2b_create(self, body):
        st, sb, _ = self.cd.request("POST", "/v2/sandboxes", body)
        self.assertEqual(st, 201, sb)
        self.addCleanup(self.cd.request, "DELETE", "/sandboxes/" + sb["sandboxID"])
        return Sandbox(self.cd, sb)

    def reach(self, sb, host, port):
        return probe(sb, "tcp", host, port)["result"]

    def test_sdk_network_settings(self):
        url = "http://127.0.0.1:%d" % self.cd.port
        env = dict(os.environ, E2B_API_URL=url, E2B_SANDBOX_URL=url, E2B_API_KEY=KEY, E2B_DOMAIN="")
        env.pop("E2B_DEBUG", None)
        p = subprocess.run(["ip", "netns", "exec", self.net.host_ns, "node", "scenarios.mjs", "network"],
                           cwd=E2B_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, timeout=600)
        self.assertEqual(p.returncode, 0, "scenario network failed:\n%s\n--- coved log ---\n%s" %
                         (p.stdout[-6000:], self.cd.read_log()[-3000:]))

    def test_create_time_names_and_patterns(self):
        # E2B's create-time name of the switch, a CIDR that wins over denyOut, and denied names
        sb = self.e2b_create({"timeout": 120, "allow_internet_access": False,
                              "network": {"allowOut": ["198.51.100.10"], "denyOut": ["0.0.0.0/0"]}})
        self.assertEqual(self.reach(sb, "198.51.100.10", 7000), "ok")
        self.assertIn(self.reach(sb, "198.51.100.20", 80), ("refused", "reset", "unreachable"))
        st, d, _ = self.cd.request("GET", "/sandboxes/" + sb.id)
        self.assertEqual((d["allowInternetAccess"], d["network"]["allowOut"]), (False, ["198.51.100.10/32"]))
        deny = self.e2b_create({"timeout": 120, "network": {"denyOut": ["*.allowed.test"]}})
        r = probe(deny, "resolve", "www.allowed.test")
        self.assertEqual(r["result"], "nxdomain", r)
        self.assertEqual(probe(deny, "resolve", "other.test")["addrs"], ["198.51.100.20"])
        st, d, _ = self.cd.request("GET", "/sandboxes/" + deny.id)
        self.assertIsNone(d["allowInternetAccess"])  # not set at create

    def test_put_network_keeps_public_traffic_and_mask(self):
        sb = self.e2b_create({"timeout": 120, "network": {"allowPublicTraffic": False,
                                                           "maskRequestHost": "${PORT}.example",
                                                           "denyOut": ["198.51.100.10/32"]}})
        self.assertIn(self.reach(sb, "198.51.100.10", 7000), ("refused", "reset", "unreachable"))
        st, body, _ = self.cd.request("PUT", "/sandboxes/%s/network" % sb.id,
                                      {"allowOut": ["203.0.113.10"], "allow_internet_access": False})
        self.assertEqual(st, 204, body)
        self.assertEqual(self.reach(sb, "203.0.113.10", 80), "ok")
        self.assertIn(self.reach(sb, "198.51.100.20", 80), ("refused", "reset", "unreachable"))
        st, d, _ = self.cd.request("GET", "/sandboxes/" + sb.id)
        self.assertEqual(d["network"], {"allowPublicTraffic": False, "allowOut": ["203.0.113.10/32"],
                                        "denyOut": [], "maskRequestHost": "${PORT}.example"})
        self.assertFalse(d["allowInternetAccess"])

    def test_bad_network_input(self):
        for body, msg in (({"network": {"egressProxy": {"address": "x"}}}, "network.egressProxy is not supported"),
                          ({"network": {"rules": {"a": {}}}}, "network.rules is not supported"),
                          ({"network": {"allowOut": ["2001:db8::/32"]}}, "2001:db8::/32"),
                          ({"network": {"denyOut": ["not a name!"]}}, "not a name!"),
                          ({"allow_internet_access": True, "allowInternetAccess": False},
                           "allow_internet_access conflicts with allowInternetAccess")):
            st, e, _ = self.cd.request("POST", "/v2/sandboxes", body)
            self.assertEqual((st, e["code"]), (400, 400), (body, e))
            self.assertIn(msg, e["message"])
        st, e, _ = self.cd.request("PUT", "/sandboxes/aaaaaaaaaaaaaaaaaaaa/network", {})
        self.assertEqual((st, e["code"]), (404, 404))


if __name__ == "__main__":
    unittest.main()
