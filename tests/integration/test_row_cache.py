"""The manager's read cache of sandbox rows (issue 10) never serves a stale state: every
transition, timeout change and delete is visible to the very next GET and runtime-API call,
while other clients keep the cache hot with reads of the same sandbox; team visibility is the
same for cached rows as for rows read from the store.
"""
import threading
import unittest

from coveharness import Coved


class RowCacheTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cd = Coved.for_class(cls)

    def hot_readers(self, sid, stop, n=4):
        """Threads reading the sandbox without pause (each with its own connection)."""
        def loop():
            conn = self.cd.connection(30)
            try:
                while not stop.is_set():
                    conn.request("GET", "/api/v1/sandboxes/" + sid,
                                 headers={"X-API-Key": self.cd.api_key})
                    conn.getresponse().read()
            finally:
                conn.close()
        ts = [threading.Thread(target=loop, daemon=True) for _ in range(n)]
        for t in ts:
            t.start()
        return ts

    def state(self, sid):
        st, d, _ = self.cd.api("GET", "/sandboxes/" + sid)
        return st, d

    def test_transitions_are_seen_at_once_under_reads(self):
        sb = self.cd.create(timeout=600)
        sid = sb.id
        stop = threading.Event()
        readers = self.hot_readers(sid, stop)
        try:
            for _ in range(5):
                st, d = self.state(sid)
                self.assertEqual((st, d["state"]), (200, "running"))
                self.assertEqual(self.cd.api("POST", "/sandboxes/%s/pause" % sid)[0], 204)
                st, d = self.state(sid)
                self.assertEqual((st, d["state"]), (200, "paused"))
                # the runtime API reads the same rows: it must see the pause too
                st, body, _ = sb.rt("POST", "/run", {"cmd": "true"})
                self.assertEqual(st, 409, body)
                st, c, _ = self.cd.api("POST", "/sandboxes/%s/connect" % sid, {"timeout": 600})
                self.assertEqual(st, 201, c)
                st, d = self.state(sid)
                self.assertEqual((st, d["state"]), (200, "running"))
                self.assertEqual(sb.run("true")["exit_code"], 0)

            before = self.state(sid)[1]["endAt"]
            self.assertEqual(self.cd.api("POST", "/sandboxes/%s/timeout" % sid,
                                         {"timeout": 30})[0], 204)
            self.assertNotEqual(self.state(sid)[1]["endAt"], before)

            self.assertEqual(sb.delete()[0], 204)
            st, d = self.state(sid)
            self.assertEqual(st, 404, d)
            st, body, _ = sb.rt("POST", "/run", {"cmd": "true"})
            self.assertIn(st, (404, 502, 503), body)
            self.assertNotEqual(st, 200)
        finally:
            stop.set()
            for t in readers:
                t.join(30)
            self.cd.api("DELETE", "/sandboxes/" + sid)

    def test_other_team_does_not_see_a_cached_row(self):
        sb = self.cd.create(timeout=600)
        try:
            self.assertEqual(self.state(sb.id)[0], 200)  # cached now
            other = self.cd.add_key("team_rowcache_other")
            st, d, _ = self.cd.request("GET", "/api/v1/sandboxes/" + sb.id,
                                       headers={"X-API-Key": other}, auth=False)
            self.assertEqual(st, 404, d)
            self.assertEqual(self.state(sb.id)[0], 200)
        finally:
            sb.delete()


if __name__ == "__main__":
    unittest.main()
