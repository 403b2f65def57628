#!/usr/bin/env python3
"""`make bench`: runs the benchmark scripts of bench/ and prints issue 10's table, every row
next to the reference it was measured against in the same run.

Each script prints its own human-readable output (passed through) and one machine line per
row it measured:

    ROW <name> <value> <unit> ratio=<x> ref=<reference name>

This script collects those lines from whichever of the scripts below are present (the create
side's scripts may land later: a missing script is listed as "not present", a failing one as
failed, and the others still run) and prints one table at the end, with the features that
were on (user namespaces, network) as the scripts report them on a line `features: ...`.

    python3 bench/report.py [--build build] [--quick] [--only io,create,...]
"""
import argparse
import os
import re
import shlex
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

ROW_RE = re.compile(r"^ROW (\S+) (\S+) (\S+) ratio=(\S+) ref=(\S+)\s*$")


def scripts(build, quick):
    """(key, file that must exist, argv). Quick: fewer iterations, same rows. The create side's
    scripts are bench/create*.py (any number) and bench/scale.py; until one of create*.py is
    there, bench/lifecycle.py gives the create/run/delete rows."""
    py = sys.executable
    q = quick
    out = [("io", os.path.join(HERE, "io.py"),
            [py, os.path.join(HERE, "io.py"), "--build", build] +
            (["--count", "100", "--seconds", "3", "--rounds", "2"] if q else []))]
    creates = sorted(f for f in os.listdir(HERE) if f.startswith("create") and f.endswith(".py"))
    for f in creates:
        out.append((f[:-3], os.path.join(HERE, f), [py, os.path.join(HERE, f), "--build", build]))
    if not creates:
        out.append(("lifecycle", os.path.join(HERE, "lifecycle.py"),
                    [py, os.path.join(HERE, "lifecycle.py"), "--build", build, "--count",
                     "50" if q else "200"]))
    out.append(("scale", os.path.join(HERE, "scale.py"),
                [py, os.path.join(HERE, "scale.py"), "--build", build]))
    return out


def run(key, argv):
    print("==== %s: %s" % (key, " ".join(shlex.quote(a) for a in argv)), flush=True)
    t0 = time.monotonic()
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         cwd=ROOT)
    rows, features = [], []
    for line in p.stdout:
        sys.stdout.write(line)
        sys.stdout.flush()
        m = ROW_RE.match(line.strip())
        if m:
            rows.append(m.groups())
        elif line.startswith("features:"):
            features.append(line[len("features:"):].strip())
    rc = p.wait()
    print("==== %s: exit %d after %.0f s" % (key, rc, time.monotonic() - t0), flush=True)
    return rc, rows, features


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--quick", action="store_true", help="fewer iterations (a smoke run)")
    ap.add_argument("--only", help="comma-separated keys: io, create*, lifecycle, scale")
    args = ap.parse_args()
    build = os.path.abspath(os.path.join(ROOT, args.build))
    only = set(args.only.split(",")) if args.only else None

    table, notes = [], []
    for key, path, argv in scripts(build, args.quick):
        if only and key not in only:
            continue
        if not os.path.exists(path):
            notes.append("%s: not present (%s)" % (key, os.path.relpath(path, ROOT)))
            continue
        rc, rows, features = run(key, argv)
        if rc != 0:
            notes.append("%s: FAILED (exit %d)" % (key, rc))
        for f in features:
            notes.append("%s: %s" % (key, f))
        table += [(key,) + r for r in rows]

    print()
    print("issue 10 — every row as a ratio to its reference, measured in the same run "
          "(%d CPUs, load %.1f at the end)" % (os.cpu_count(), os.getloadavg()[0]))
    print("%-10s %-34s %14s %-6s %8s  %s" % ("script", "row", "value", "unit", "ratio",
                                              "reference"))
    for key, name, value, unit, ratio, ref in table:
        print("%-10s %-34s %14s %-6s %8s  %s" % (key, name, value, unit, ratio, ref))
    if not table:
        print("(no rows)")
    for n in notes:
        print("  " + n)
    return 1 if any("FAILED" in n for n in notes) else 0


if __name__ == "__main__":
    sys.exit(main())
