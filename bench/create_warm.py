#!/usr/bin/env python3
"""bench/create.py with a warm pool of 50 sandboxes (issue 10): the creates that find a warm
sandbox, as `make bench`'s report collects them (rows prefixed warm_). Arguments are passed on
(e.g. --baseline DIR, --count N)."""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

if __name__ == "__main__":
    argv = [sys.executable, os.path.join(HERE, "create.py"), "--warm", "50", "--idle", "0"]
    os.execv(sys.executable, argv + sys.argv[1:])
