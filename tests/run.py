#!/usr/bin/env python3
"""Runs every test of Cove and ends with one line: `N passed, N failed[, N skipped]`.

Unit tests are the TAP binaries in <build>/tests/ (one per module) and the fuzz corpus
replays in <build>/tests/fuzz/ (one per harness); integration tests are the
Python unittest modules tests/integration/test_*.py and tests/security/test_*.py (the escape
and abuse suite: probes that assert a refusal), each run in its own process against the
real binaries of <build>. A test that cannot run on this machine skips with its reason.
"""
import argparse
import glob
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

UNIT_TIMEOUT = 600
INTEGRATION_TIMEOUT = 900


class SanitizerReports:
    """Reports of a sanitizer build (--sanitizers DIR, docs/testing.md). Every sanitized
    process (coved, cove-runtime, cove, the unit tests, the corpus replays) writes its ASan or
    LSan report to DIR/report.<exe>.<pid> instead of a stderr no test reads; coveharness copies
    the UBSan reports it finds in coved's log to DIR (gcc's UBSan ignores log_path next to
    ASan). After each test binary or module, new files count as one failure of it and are
    printed."""

    def __init__(self, directory, env):
        self.dir = os.path.abspath(directory)
        os.makedirs(self.dir, exist_ok=True)
        self.seen = set(os.listdir(self.dir))
        env["COVE_SANITIZER_REPORTS"] = self.dir
        common = "log_path=%s/report:log_exe_name=1" % self.dir
        # The first report ends the process (the build has -fno-sanitize-recover=all too);
        # leaks are checked at every exit. Options already in the environment come last, so
        # they win.
        env["ASAN_OPTIONS"] = ":".join(filter(None, [
            "detect_leaks=1", "halt_on_error=1", common, env.get("ASAN_OPTIONS", "")]))
        env["UBSAN_OPTIONS"] = ":".join(filter(None, [
            "print_stacktrace=1", "halt_on_error=1", common, env.get("UBSAN_OPTIONS", "")]))
        env["LSAN_OPTIONS"] = ":".join(filter(None, [common, env.get("LSAN_OPTIONS", "")]))

    def check(self, name):
        new = sorted(set(os.listdir(self.dir)) - self.seen)
        self.seen.update(new)
        if not new:
            return 0
        print("FAIL %s: %d sanitizer report(s)" % (name, len(new)))
        for f in new:
            path = os.path.join(self.dir, f)
            with open(path, errors="replace") as fh:
                text = fh.read()
            print("---- %s ----\n%s\n----" % (path, text[-6000:]))
        return 1


def run_tap(name, argv, env, timeout):
    passed = failed = skipped = 0
    start = time.monotonic()
    try:
        p = subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=timeout, text=True, errors="replace")
        out, rc = p.stdout, p.returncode
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        rc = -1
        out += "\n# timed out after %ds" % timeout
    if rc == 77:
        print("skip %s (exit 77)" % name)
        return 0, 0, 1
    for line in out.splitlines():
        if re.match(r"^ok \d+", line):
            if "# SKIP" in line:
                skipped += 1
            else:
                passed += 1
        elif re.match(r"^not ok \d+", line):
            failed += 1
            print("FAIL %s: %s" % (name, line))
    if rc != 0 and failed == 0:
        failed += 1
        print("FAIL %s: exit code %d" % (name, rc))
    if failed:
        print("---- output of %s ----\n%s\n----" % (name, out[-6000:]))
    print("%-28s %3d passed %3d failed %3d skipped  (%.1fs)" %
          (name, passed, failed, skipped, time.monotonic() - start))
    return passed, failed, skipped


def run_unittest(name, path, env, timeout):
    start = time.monotonic()
    try:
        p = subprocess.run([sys.executable, "-m", "unittest", "-v", path], cwd=ROOT, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout,
                           text=True, errors="replace")
        out, rc = p.stdout, p.returncode
    except subprocess.TimeoutExpired as e:
        out = e.stdout if isinstance(e.stdout, str) else (e.stdout or b"").decode(errors="replace")
        rc = -1
        out += "\n# timed out after %ds" % timeout
    # Counts come from unittest's own summary ("Ran N tests" and "FAILED (failures=a,
    # errors=b, skipped=c)" or "OK (skipped=c)"), which docstrings and test output cannot skew.
    m = re.search(r"^Ran (\d+) tests?", out, re.M)
    ran = int(m.group(1)) if m else 0
    summary = re.findall(r"^(OK|FAILED)(?: \((.*)\))?$", out, re.M)
    counts = {}
    if summary:
        for part in (summary[-1][1] or "").split(","):
            if "=" in part:
                k, v = part.strip().split("=")
                counts[k] = int(v)
    failed = counts.get("failures", 0) + counts.get("errors", 0) + counts.get("unexpected successes", 0)
    skipped = counts.get("skipped", 0)
    passed = max(0, ran - failed - skipped)
    for line in out.splitlines():
        if line.startswith("FAIL: ") or line.startswith("ERROR: "):
            print("FAIL %s: %s" % (name, line))
    if rc != 0 and failed == 0:
        failed += 1
        print("FAIL %s: exit code %d" % (name, rc))
    if failed:
        print("---- output of %s ----\n%s\n----" % (name, out[-8000:]))
    print("%-28s %3d passed %3d failed %3d skipped  (%.1fs)" %
          (name, passed, failed, skipped, time.monotonic() - start))
    return passed, failed, skipped


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--only", choices=["unit", "integration", "security"])
    ap.add_argument("-k", dest="pattern", help="only tests whose name contains this")
    ap.add_argument("--sanitizers", metavar="DIR",
                    help="the build is sanitized: collect reports in DIR and fail on them")
    args = ap.parse_args()

    build = os.path.abspath(os.path.join(ROOT, args.build))
    env = dict(os.environ)
    env["COVE_BUILD_DIR"] = build
    env["PYTHONPATH"] = os.path.join(HERE, "integration") + os.pathsep + env.get("PYTHONPATH", "")
    env["PYTHONDONTWRITEBYTECODE"] = "1"

    totals = [0, 0, 0]  # passed, failed, skipped
    reports = SanitizerReports(args.sanitizers, env) if args.sanitizers else None

    def add(name, counts):
        counts = list(counts)
        if reports and reports.check(name):
            # The test's own result stands; the report is one more failure of it.
            counts[1] += 1
        for i, v in enumerate(counts):
            totals[i] += v

    if args.only in (None, "unit"):
        for check in ("check-deps", "check-banned"):
            if args.pattern and args.pattern not in check:
                continue
            r = subprocess.run([os.path.join(ROOT, "tools", check + ".sh")], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
            ok = r.returncode == 0
            print("%-28s %s" % ("static/" + check, "passed" if ok else "FAILED\n" + r.stdout))
            totals[0 if ok else 1] += 1
        # Unit tests, then the corpus replays of tests/fuzz/ (one TAP test per harness).
        binaries = [("unit/", b) for b in sorted(glob.glob(os.path.join(build, "tests", "test-*")))]
        binaries += [("fuzz/", b) for b in sorted(glob.glob(os.path.join(build, "tests", "fuzz", "fuzz-*")))]
        for prefix, binary in binaries:
            if not os.path.isfile(binary) or not os.access(binary, os.X_OK):
                continue
            name = prefix + os.path.basename(binary)[5:]
            if args.pattern and args.pattern not in name:
                continue
            add(name, run_tap(name, [binary], env, UNIT_TIMEOUT))
    suites = [s for s in ("integration", "security") if args.only in (None, s)]
    for suite in suites:
        for path in sorted(glob.glob(os.path.join(HERE, suite, "test_*.py"))):
            name = suite + "/" + os.path.basename(path)[5:-3]
            if args.pattern and args.pattern not in name:
                continue
            rel = os.path.relpath(path, ROOT)
            add(name, run_unittest(name, rel, env, INTEGRATION_TIMEOUT))

    line = "%d passed, %d failed" % (totals[0], totals[1])
    if totals[2]:
        line += ", %d skipped" % totals[2]
    print(line)
    return 1 if totals[1] or totals[0] == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
