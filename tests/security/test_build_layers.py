"""Hostile OCI layers (build-plane.md §7.4): an image from a registry an attacker controls
tries to write outside its layer — "..", absolute names, symlinks and hard links leading out,
device nodes, FIFOs, ids no sandbox can map. Each pull must fail with a message naming the
entry, leave the host untouched (a witness directory outside the data dir is checked) and
publish no layer. Driven through tests/tools/oci-pull against a real registry on loopback."""
import os
import unittest

import registryfix as rf

MISSING = rf.tools_missing()


@unittest.skipIf(MISSING, "missing tools: %s (make deps installs them)" % ", ".join(MISSING))
class HostileLayerTest(rf.PullCase, unittest.TestCase):
    def hostile(self, name, entries, fragment):
        layer = rf.make_layer(entries)
        rf.push_image(self.reg, "test/hostile", name, [layer])
        rc, _, text = rf.oci_pull(self.data, "%s/test/hostile:%s" % (self.reg.host, name))
        self.assertEqual(rc, 1, text)
        self.assertIn(fragment, text)
        self.assert_witness_untouched()
        self.assert_nothing_published()

    def test_dotdot_name(self):
        rel = os.path.relpath(self.witness, "/")
        self.hostile("dotdot", [("../../../../../../" + rel + "/pwned", "f", b"x", 0o644)],
                     "leaves the archive root")

    def test_absolute_name(self):
        self.hostile("absname", [(self.witness + "/pwned", "f", b"x", 0o644)],
                     "absolute names are not allowed")

    def test_absolute_symlink_then_entry_through_it(self):
        self.hostile("abslink", [("evil", "l", self.witness, 0o777), ("evil/pwned", "f", b"x", 0o644)],
                     "lies under a symbolic link")

    def test_relative_symlink_up_then_entry_through_it(self):
        rel = os.path.relpath(self.witness, "/")
        self.hostile("rellink", [("up", "l", "../../../../../../../../" + rel, 0o777),
                                 ("up/pwned", "f", b"x", 0o644)], "lies under a symbolic link")

    def test_hard_link_out_absolute(self):
        self.hostile("hardlink", [("hl", "h", self.witness + "/file", 0o644)],
                     "absolute names are not allowed")

    def test_hard_link_out_dotdot(self):
        rel = os.path.relpath(self.witness, "/")
        self.hostile("hardlink2", [("hl", "h", "../../../../../../../../" + rel + "/file", 0o644)],
                     "leaves the archive root")

    def test_hard_link_to_name_not_in_archive(self):
        self.hostile("hardlink3", [("hl", "h", "etc/shadow", 0o644)], "points outside the archive")

    def test_device_node(self):
        self.hostile("device", [("dev/mem", "c", None, 0o600)],
                     "device nodes, FIFOs and sockets are not allowed")

    def test_fifo(self):
        self.hostile("fifo", [("p", "p", None, 0o600)], "device nodes, FIFOs and sockets are not allowed")

    def test_owner_no_sandbox_can_map(self):
        self.hostile("bigid", [("f", "f", b"x", 0o644, 100000, 0)], "outside 0-65535")

    def test_symlink_is_kept_as_a_link(self):
        w = self.witness
        ok = rf.make_layer([("evil", "l", w + "/file", 0o777)])
        rf.push_image(self.reg, "test/hostile", "linkonly", [ok])
        rc, out, text = rf.oci_pull(self.data, "%s/test/hostile:linkonly" % self.reg.host)
        self.assertEqual(rc, 0, text)
        self.assertEqual(os.readlink(os.path.join(out["layers"][0]["path"], "evil")), w + "/file")
        self.assert_witness_untouched()

if __name__ == "__main__":
    unittest.main()
