#!/bin/sh
# Fails when a C file differs from what clang-format 14 makes of it with the repo's
# .clang-format (STYLE.md §11). Checks the files given, or every tracked C source and header.
# `make format` fixes them.
set -eu
cd "$(dirname "$0")/.."
cf=$(command -v clang-format-14 || command -v clang-format || true)
if [ -z "$cf" ]; then
        echo "check-format: clang-format is missing (make deps installs it)" >&2
        exit 1
fi
# Other versions break lines differently: the tree is formatted with 14 (Debian 12).
if ! "$cf" --version | grep -q 'version 14\.'; then
        echo "check-format: $cf is not clang-format 14: $("$cf" --version)" >&2
        exit 1
fi
if [ $# -eq 0 ]; then
        set -- $(git ls-files '*.c' '*.h')
fi
bad=0
for f in "$@"; do
        "$cf" --dry-run -Werror "$f" >/dev/null 2>&1 || { echo "not formatted: $f"; bad=1; }
done
if [ "$bad" = 1 ]; then
        echo "check-format: run 'make format' (clang-format -i) on the files above" >&2
fi
exit $bad
