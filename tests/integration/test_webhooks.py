"""Lifecycle events and signed, durable webhooks (control-plane.md §12) against real receivers.

A small HTTP server on loopback plays the receiver: signatures are checked with Python's own
hmac, receivers answer 200, 500, slowly or not at all (down), and coved is killed with SIGKILL
and restarted while deliveries wait — every event still arrives, in order per sandbox, and a
repeat always carries a higher X-Cove-Delivery-Attempt (its retry reason).
"""
import hashlib
import hmac
import http.server
import json
import os
import shutil
import socket
import tempfile
import threading
import time
import unittest

from coveharness import Coved, free_port

ALL_TYPES = ["sandbox.lifecycle.created", "sandbox.lifecycle.paused",
             "sandbox.lifecycle.resumed", "sandbox.lifecycle.updated", "sandbox.lifecycle.killed"]
SECRET = "s3cr3t-value-for-tests"


class Receiver:
    """A loopback HTTP server recording every POST; the path picks the answer:
    /ok → 200, /fail → 500, /slow → 200 after `slow` seconds, /dead → 200 (dead letters)."""

    def __init__(self, port=None, slow=12.0):
        self.port = port or free_port()
        self.slow = slow
        self.got = []
        self.arrived = 0  # requests that began (answered or not)
        self.lock = threading.Lock()
        self.srv = None

    def start(self):
        rec = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                path = self.path.split("?")[0]
                with rec.lock:
                    rec.arrived += 1
                if path == "/slow":
                    time.sleep(rec.slow)
                code = 500 if path == "/fail" else 200
                with rec.lock:
                    rec.got.append({"path": path, "headers": {k.lower(): v for k, v in
                                                              self.headers.items()},
                                    "body": body, "code": code, "time": time.time()})
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), H)
        self.srv.daemon_threads = True
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()
        return self

    def stop(self):
        if self.srv:
            self.srv.shutdown()
            self.srv.server_close()
            self.srv = None

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def wait(self, pred, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if pred(list(self.got)):
                    return list(self.got)
            time.sleep(0.1)
        with self.lock:
            raise AssertionError("receiver: condition not met; got %d requests: %s" % (
                len(self.got), [(g["path"], g["headers"].get("x-cove-event-type"),
                                 g["headers"].get("x-cove-delivery-attempt")) for g in self.got]))


def verify(tc, req):
    h = req["headers"]
    ts = h["x-cove-timestamp"]
    want = "v1=" + hmac.new(SECRET.encode(), ts.encode() + b"." + req["body"],
                            hashlib.sha256).hexdigest()
    tc.assertEqual(h["x-cove-signature"], want)
    tc.assertLess(abs(int(ts) - time.time()), 120)
    tc.assertEqual(h["content-type"], "application/json")
    ev = json.loads(req["body"])
    tc.assertEqual(h["x-cove-event-id"], ev["id"])
    tc.assertEqual(h["x-cove-event-type"], ev["type"])
    tc.assertRegex(h["x-cove-delivery-id"], r"^dlv_[a-z0-9]{20}$")
    tc.assertRegex(h["x-cove-webhook-id"], r"^whk_[a-z0-9]{20}$")
    return ev


def webhook(cd, url, events=None, **extra):
    body = {"name": "hook", "url": url, "events": events or ALL_TYPES, "signatureSecret": SECRET}
    body.update(extra)
    st, out, _ = cd.api("POST", "/events/webhooks", body)
    assert st == 201, out
    return out


def err(tc, resp, status, fragment=None):
    st, body, _ = resp
    tc.assertEqual(st, status, body)
    tc.assertEqual(body["code"], status)
    if fragment:
        tc.assertIn(fragment.lower(), body["message"].lower())
    return body


class Webhooks(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.rx = Receiver().start()
        cls.cd = Coved(extra_args=["--webhook-allow-private", "true"]).start()

    @classmethod
    def tearDownClass(cls):
        cls.cd.__exit__(None, None, None)
        cls.rx.stop()

    def tearDown(self):
        st, hooks, _ = self.cd.api("GET", "/events/webhooks")
        for w in hooks:
            self.cd.api("DELETE", "/events/webhooks/" + w["id"])

    # ---- CRUD and validation (§12.3) ----
    def test_create_validation(self):
        good = {"name": "n", "url": "https://example.com/h", "events": ["sandbox.lifecycle.killed"],
                "signatureSecret": "12345678"}
        cases = [
            ({"name": None}, "name"), ({"url": None}, "url"), ({"events": None}, "events"),
            ({"signatureSecret": None}, "signatureSecret"), ({"name": ""}, "name"),
            ({"name": "x" * 129}, "name"), ({"url": "ftp://example.com/h"}, "url"),
            ({"url": "/relative"}, "url"), ({"url": "https://example.com/" + "a" * 2040}, "url"),
            ({"url": "http://"}, "url"), ({"url": 5}, "url"), ({"events": []}, "events"),
            ({"events": ["sandbox.lifecycle.exploded"]}, "events"), ({"events": "x"}, "events"),
            ({"signatureSecret": "1234567"}, "signatureSecret"),
            ({"signatureSecret": "x" * 257}, "signatureSecret"),
            ({"retryPolicy": {"maxAttempts": 0}}, "maxAttempts"),
            ({"retryPolicy": {"maxAttempts": 11}}, "maxAttempts"),
            ({"retryPolicy": {"delaySeconds": list(range(1, 11))}}, "delaySeconds"),
            ({"retryPolicy": {"delaySeconds": [0]}}, "delaySeconds"),
            ({"retryPolicy": {"delaySeconds": [3601]}}, "delaySeconds"),
            ({"retryPolicy": {"deadLetterEnabled": True}}, "deadLetterUrl"),
            ({"retryPolicy": 3}, "retryPolicy"), ({"deadLetterUrl": "nope"}, "deadLetterUrl"),
            ({"enabled": "yes"}, "enabled"),
        ]
        for change, field in cases:
            body = dict(good)
            for k, v in change.items():
                if v is None:
                    body.pop(k)
                else:
                    body[k] = v
            e = err(self, self.cd.api("POST", "/events/webhooks", body), 400)
            self.assertIn(field, e["message"], change)
        err(self, self.cd.api("POST", "/events/webhooks", "{nope"), 400)
        st, hooks, _ = self.cd.api("GET", "/events/webhooks")
        self.assertEqual(hooks, [])

    def test_crud(self):
        w = webhook(self.cd, "https://example.com/h", ["sandbox.lifecycle.killed"] * 2,
                    retryPolicy={"maxAttempts": 5, "delaySeconds": [1, 2.0]})
        self.assertRegex(w["id"], r"^whk_[a-z0-9]{20}$")
        self.assertEqual(w["teamId"], "team_default")
        self.assertEqual(w["events"], ["sandbox.lifecycle.killed"])
        self.assertTrue(w["enabled"])
        self.assertEqual(w["retryPolicy"], {"maxAttempts": 5, "delaySeconds": [1, 2],
                                            "deadLetterEnabled": False})
        self.assertIn("createdAt", w)
        for obj in (w, self.cd.api("GET", "/events/webhooks/" + w["id"])[1],
                    self.cd.api("GET", "/events/webhooks")[1][0]):
            self.assertNotIn("signatureSecret", obj)
            self.assertNotIn(SECRET, json.dumps(obj))
        # PATCH: only what is given changes; a bad field changes nothing
        st, p, _ = self.cd.api("PATCH", "/events/webhooks/" + w["id"], {
            "enabled": False, "deadLetterUrl": "https://example.com/dl",
            "retryPolicy": {"deadLetterEnabled": True}})
        self.assertEqual(st, 200, p)
        self.assertFalse(p["enabled"])
        self.assertEqual(p["url"], "https://example.com/h")
        self.assertEqual(p["retryPolicy"], {"maxAttempts": 5, "delaySeconds": [1, 2],
                                            "deadLetterEnabled": True})
        self.assertEqual(p["deadLetterUrl"], "https://example.com/dl")
        err(self, self.cd.api("PATCH", "/events/webhooks/" + w["id"], {"name": ""}), 400)
        st, g, _ = self.cd.api("GET", "/events/webhooks/" + w["id"])
        self.assertEqual(g["name"], "hook")
        err(self, self.cd.api("PATCH", "/events/webhooks/whk_nope", {"enabled": True}), 404)
        err(self, self.cd.api("GET", "/events/webhooks/whk_nope"), 404, "not found")
        st, d, _ = self.cd.api("DELETE", "/events/webhooks/" + w["id"])
        self.assertEqual((st, d), (200, {"deleted": True}))
        err(self, self.cd.api("DELETE", "/events/webhooks/" + w["id"]), 404)

    def test_fifty_per_team(self):
        for i in range(50):
            webhook(self.cd, "https://example.com/h%d" % i)
        e = err(self, self.cd.api("POST", "/events/webhooks", {
            "name": "one too many", "url": "https://example.com/x", "events": ALL_TYPES,
            "signatureSecret": SECRET}), 429)
        self.assertEqual(e["error"]["code"], "RESOURCE_EXHAUSTED")

    # ---- events (§12.1, §12.2) and their delivery ----
    def test_lifecycle_events_delivered_signed_in_order(self):
        cd, rx = self.cd, self.rx
        w = webhook(cd, rx.url("/ok"))
        n0 = len(rx.got)
        sb = cd.create()
        cd.api("POST", "/sandboxes/%s/timeout" % sb.id, {"timeout": 600})
        st, _, _ = cd.api("POST", "/sandboxes/%s/pause" % sb.id)
        self.assertEqual(st, 204)
        st, _, _ = cd.api("POST", "/sandboxes/%s/connect" % sb.id, {"timeout": 0})
        self.assertEqual(st, 201)
        sb.delete()
        want = ["created", "updated", "paused", "resumed", "killed"]
        got = rx.wait(lambda g: len([x for x in g[n0:] if json.loads(x["body"])["sandboxId"]
                                     == sb.id]) >= len(want))
        mine = [x for x in got[n0:] if json.loads(x["body"])["sandboxId"] == sb.id]
        evs = [verify(self, x) for x in mine]
        self.assertEqual([e["type"].split(".")[-1] for e in evs], want)
        for x in mine:
            self.assertEqual(x["headers"]["x-cove-webhook-id"], w["id"])
            self.assertEqual(x["headers"]["x-cove-delivery-attempt"], "1")
        # the event bodies are exactly what the events route lists
        st, listed, _ = cd.api("GET", "/events/sandboxes/%s?orderAsc=true" % sb.id)
        self.assertEqual(listed, evs)
        c, u, p, r, k = evs
        self.assertEqual(c["version"], "v1")
        self.assertRegex(c["id"], r"^evt_[a-z0-9]{20}$")
        self.assertEqual(c["sandboxTeamId"], "team_default")
        self.assertEqual(c["eventData"]["timeout"], 300)
        self.assertEqual(c["eventData"]["templateID"], c["sandboxTemplateId"])
        self.assertIn("endAt", u["eventData"])
        self.assertEqual(p["eventData"], {"reason": "request"})
        self.assertEqual(r["eventData"], {"trigger": "connect"})
        self.assertEqual(k["eventData"], {"reason": "deleted"})
        self.assertEqual(c["sandboxExecutionId"], sb.id + "-1")
        self.assertEqual(r["sandboxExecutionId"], sb.id + "-2")  # changes on resume
        # deliveries: delivered, one attempt each
        st, ds, _ = cd.api("GET", "/events/webhooks/%s/deliveries?limit=100" % w["id"])
        self.assertEqual(st, 200)
        mine_d = [d for d in ds if d["eventId"] in {e["id"] for e in evs}]
        self.assertEqual(len(mine_d), 5)
        for d in mine_d:
            self.assertEqual((d["status"], d["attempts"], d["httpStatus"]), ("delivered", 1, 200))
            self.assertEqual(d["namespaceId"], "team_default")
            self.assertEqual(d["url"], rx.url("/ok"))
            self.assertIn("deliveredAt", d)
            self.assertNotIn("nextAttemptAt", d)

    def test_event_listing_queries(self):
        sb = self.cd.create()
        sb.delete()
        st, evs, _ = self.cd.api("GET", "/events/sandboxes/" + sb.id)
        self.assertEqual([e["type"] for e in evs],
                         ["sandbox.lifecycle.killed", "sandbox.lifecycle.created"])  # newest first
        st, evs, _ = self.cd.api("GET", "/events/sandboxes/%s?types=sandbox.lifecycle.created"
                                 % sb.id)
        self.assertEqual(len(evs), 1)
        st, alias, _ = self.cd.api("GET", "/events?limit=1")
        st, main, _ = self.cd.api("GET", "/events/sandboxes?limit=1")
        self.assertEqual(alias, main)
        st, evs, _ = self.cd.api("GET", "/events/sandboxes?limit=1&offset=1&orderAsc=1")
        self.assertEqual(len(evs), 1)
        st, evs, _ = self.cd.api("GET", "/events/sandboxes/nosuchsandboxxxxxxxx")
        self.assertEqual((st, evs), (200, []))
        for q in ("limit=0", "limit=101", "offset=-1", "orderAsc=maybe",
                  "types=sandbox.lifecycle.created,sandbox.lifecycle.nope", "limit=x"):
            err(self, self.cd.api("GET", "/events/sandboxes?" + q), 400)

    def test_failing_receiver_retries_then_dead_letters(self):
        cd, rx = self.cd, self.rx
        w = webhook(cd, rx.url("/fail"), ["sandbox.lifecycle.created"],
                    retryPolicy={"maxAttempts": 2, "delaySeconds": [1], "deadLetterEnabled": True},
                    deadLetterUrl=rx.url("/dead"))
        w2 = webhook(cd, rx.url("/fail"), ["sandbox.lifecycle.created"],
                     retryPolicy={"maxAttempts": 1, "deadLetterEnabled": True},
                     deadLetterUrl=rx.url("/fail?dl"))
        sb = cd.create()
        got = rx.wait(lambda g: any(x["path"] == "/dead" and json.loads(x["body"])["sandboxId"]
                                    == sb.id for x in g))
        mine = [x for x in got if json.loads(x["body"])["sandboxId"] == sb.id and
                x["headers"]["x-cove-webhook-id"] == w["id"]]
        self.assertEqual([(x["path"], x["headers"]["x-cove-delivery-attempt"]) for x in mine],
                         [("/fail", "1"), ("/fail", "2"), ("/dead", "2")])
        self.assertEqual(mine[2]["headers"]["x-cove-dead-letter"], "true")
        self.assertEqual(mine[2]["body"], mine[0]["body"])
        verify(self, mine[2])
        self.assertGreaterEqual(mine[1]["time"] - mine[0]["time"], 0.9)  # the policy's delay

        def final(wid):
            for _ in range(100):
                st, ds, _ = cd.api("GET", "/events/webhooks/%s/deliveries" % wid)
                if ds and ds[0]["status"] not in ("pending", "retrying") and \
                        (ds[0]["status"] != "failed" or "deadLetterError" in ds[0]):
                    return ds[0]
                time.sleep(0.1)
            self.fail("delivery of %s did not finish: %s" % (wid, ds))
        d = final(w["id"])
        self.assertEqual(d["status"], "dead_lettered")
        self.assertEqual((d["attempts"], d["maxAttempts"], d["httpStatus"]), (2, 2, 500))
        self.assertIn("500", d["error"])
        self.assertEqual(d["deadLetterUrl"], rx.url("/dead"))
        d2 = final(w2["id"])
        self.assertEqual(d2["status"], "failed")
        self.assertIn("500", d2["deadLetterError"])
        # filters
        st, ds, _ = cd.api("GET", "/events/webhook-deliveries?status=dead_lettered&webhookID="
                           + w["id"])
        self.assertEqual([x["id"] for x in ds], [d["id"]])
        st, ds, _ = cd.api("GET", "/events/webhook-deliveries?eventID=" + d["eventId"])
        self.assertEqual(len(ds), 2)
        for q in ("status=lost", "limit=0", "limit=101", "offset=-2", "orderAsc=2"):
            err(self, cd.api("GET", "/events/webhook-deliveries?" + q), 400)
        err(self, cd.api("GET", "/events/webhooks/whk_nope/deliveries"), 404)
        # replay: a new pending delivery of the same event, sent again
        n0 = len(rx.got)
        st, rp, _ = cd.api("POST", "/events/webhook-deliveries/%s/replay" % d["id"])
        self.assertEqual(st, 202, rp)
        self.assertEqual((rp["status"], rp["attempts"], rp["eventId"]),
                         ("pending", 0, d["eventId"]))
        self.assertNotEqual(rp["id"], d["id"])
        got = rx.wait(lambda g: any(x["headers"].get("x-cove-delivery-id") == rp["id"]
                                    for x in g[n0:]))
        err(self, cd.api("POST", "/events/webhook-deliveries/dlv_nope/replay"), 404)
        sb.delete()

    def test_slow_receiver_times_out(self):
        cd, rx = self.cd, self.rx
        w = webhook(cd, rx.url("/slow"), ["sandbox.lifecycle.created"],
                    retryPolicy={"maxAttempts": 1})
        sb = cd.create()
        for _ in range(300):
            st, ds, _ = cd.api("GET", "/events/webhooks/%s/deliveries" % w["id"])
            if ds and ds[0]["status"] == "failed":
                break
            time.sleep(0.1)
        self.assertEqual(ds[0]["status"], "failed")
        self.assertIn("no answer within 10 s", ds[0]["error"])
        sb.delete()

    def test_disabled_webhook_gets_nothing(self):
        w = webhook(self.cd, self.rx.url("/ok"), enabled=False)
        sb = self.cd.create()
        sb.delete()
        st, ds, _ = self.cd.api("GET", "/events/webhooks/%s/deliveries" % w["id"])
        self.assertEqual(ds, [])


class PausedExpiry(unittest.TestCase):
    """--paused-max-age: a sandbox paused longer than that is deleted, with the killed event
    {reason: paused_expired} (control-plane.md §3.2, §12.1); a resumed one starts afresh."""

    def test_paused_sandbox_expires(self):
        with Coved(extra_args=["--paused-max-age", "2"]) as cd:
            sb = cd.create(timeout=600)
            keep = cd.create(timeout=600)
            for s in (sb, keep):
                st, _, _ = cd.api("POST", "/sandboxes/%s/pause" % s.id)
                self.assertEqual(st, 204)
            st, _, _ = cd.api("POST", "/sandboxes/%s/connect" % keep.id, {"timeout": 0})
            self.assertEqual(st, 201)  # resumed: no longer paused, so never paused_expired
            for _ in range(100):
                st, _, _ = cd.api("GET", "/sandboxes/" + sb.id)
                if st == 404:
                    break
                time.sleep(0.1)
            self.assertEqual(st, 404)
            st, evs, _ = cd.api("GET", "/events/sandboxes/%s?orderAsc=true" % sb.id)
            self.assertEqual([e["type"].split(".")[-1] for e in evs],
                             ["created", "paused", "killed"])
            self.assertEqual(evs[-1]["eventData"], {"reason": "paused_expired"})
            time.sleep(2.5)
            st, body, _ = cd.api("GET", "/sandboxes/" + keep.id)
            self.assertEqual((st, body["state"]), (200, "running"))
            keep.delete()


class AddressPolicy(unittest.TestCase):
    """Without webhook-allow-private, loopback and private targets are refused at connect time,
    also behind a name that resolves to them."""

    def test_loopback_refused_by_address(self):
        rx = Receiver().start()
        try:
            with Coved() as cd:
                webhook(cd, rx.url("/ok"), ["sandbox.lifecycle.created"],
                        retryPolicy={"maxAttempts": 1})
                webhook(cd, "http://localhost:%d/ok" % rx.port, ["sandbox.lifecycle.created"],
                        retryPolicy={"maxAttempts": 1})
                sb = cd.create()
                for _ in range(100):
                    st, ds, _ = cd.api("GET", "/events/webhook-deliveries")
                    if len(ds) == 2 and all(d["status"] == "failed" for d in ds):
                        break
                    time.sleep(0.1)
                self.assertEqual([d["status"] for d in ds], ["failed", "failed"])
                for d in ds:
                    self.assertIn("refused to connect to", d["error"])
                    self.assertIn("loopback", d["error"])
                    self.assertIn("webhook-allow-private", d["error"])
                self.assertEqual(rx.got, [])
                st, text, _ = cd.request("GET", "/metrics")
                self.assertIn(b'cove_webhook_deliveries_total{status="refused"} 2', text)
                sb.delete()
        finally:
            rx.stop()


class Durability(unittest.TestCase):
    """kill -9 of coved while the receiver is down, and again while an attempt is in flight:
    every event arrives, in order per sandbox, repeats only with a higher attempt number."""

    def test_nothing_lost_across_kill9(self):
        data = tempfile.mkdtemp(prefix="cove-test-wh-")
        rx_port = free_port()
        rx = Receiver(port=rx_port, slow=3.0)
        cd = Coved(data_dir=data, extra_args=["--webhook-allow-private", "true"])
        try:
            cd.start()
            w = webhook(cd, "http://127.0.0.1:%d/slow" % rx_port,
                        retryPolicy={"maxAttempts": 10, "delaySeconds": [1]})
            a, b = cd.create(), cd.create()
            cd.api("POST", "/sandboxes/%s/pause" % a.id)
            cd.api("POST", "/sandboxes/%s/connect" % a.id, {"timeout": 0})
            b.delete()
            time.sleep(1.5)  # attempts fail: nobody listens
            cd.kill9()

            rx.start()  # up, but slow: attempts will be in flight when coved dies again
            cd = Coved(data_dir=data, api_key=cd.api_key,
                       extra_args=["--webhook-allow-private", "true"])
            cd.start()
            cd.api("POST", "/sandboxes/%s/timeout" % a.id, {"timeout": 900})
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not rx.arrived:
                time.sleep(0.05)  # until an attempt reached the receiver: it is open now
            self.assertGreater(rx.arrived, 0)
            cd.kill9()

            cd = Coved(data_dir=data, api_key=cd.api_key,
                       extra_args=["--webhook-allow-private", "true"])
            cd.start()
            a.cd = cd
            a.delete()
            st, events, _ = cd.api("GET", "/events/sandboxes?limit=100&orderAsc=true")
            self.assertEqual(len(events), 7)  # a: created paused resumed updated killed; b: 2
            want = {e["id"] for e in events}

            def all_delivered(g):
                return want <= {json.loads(x["body"])["id"] for x in g if x["code"] == 200}
            got = rx.wait(all_delivered, timeout=180)
            for x in got:
                verify(self, x)
            # in order per sandbox: first arrivals follow the events' order
            for sid in (a.id, b.id):
                order = [e["id"] for e in events if e["sandboxId"] == sid]
                seen = []
                for x in got:
                    ev = json.loads(x["body"])
                    if ev["sandboxId"] == sid and ev["id"] not in seen:
                        seen.append(ev["id"])
                self.assertEqual(seen, order)
            # a repeat of a delivery always says why: a higher attempt number
            by_delivery = {}
            for x in got:
                by_delivery.setdefault(x["headers"]["x-cove-delivery-id"], []).append(
                    int(x["headers"]["x-cove-delivery-attempt"]))
            for dlv, attempts in by_delivery.items():
                self.assertEqual(attempts, sorted(set(attempts)), dlv)
            st, ds, _ = cd.api("GET", "/events/webhook-deliveries?limit=100")
            for _ in range(100):
                st, ds, _ = cd.api("GET", "/events/webhook-deliveries?limit=100")
                if all(d["status"] == "delivered" for d in ds):
                    break
                time.sleep(0.1)
            self.assertEqual({d["status"] for d in ds}, {"delivered"})
            self.assertTrue(any("interrupted" in (d.get("error") or "") or d["attempts"] > 1
                                for d in ds))
            self.assertEqual(w["id"], ds[0]["webhookId"])
            # the second kill cut an attempt off: recorded as interrupted at the next start
            self.assertIn("interrupted by the last stop", cd.read_log() + open(
                os.path.join(data, "coved.log"), errors="replace").read())
        finally:
            rx.stop()
            cd.stop()
            cd.purge()
            shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
