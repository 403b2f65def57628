#!/bin/sh
# Runs the libFuzzer harnesses of tests/fuzz/ (see tests/fuzz/README.md).
#
#   tools/fuzz.sh [HARNESS...]          fuzz each harness for $FUZZ_SECONDS (default 60)
#   tools/fuzz.sh --merge [HARNESS...]  add the inputs of the work corpus that reach new
#                                       coverage to tests/fuzz/corpus/<h>/ (minimised, for git)
#
# The build is $FUZZ_BUILD (default build-fuzz/: clang, -Dfuzzing=true,
# -Dsanitize=address,undefined). New corpus entries go to $FUZZ_BUILD/fuzz-corpus/<h>/ and
# crash inputs to $FUZZ_BUILD/fuzz-artifacts/<h>/, both outside git. The seed corpus in
# tests/fuzz/corpus/<h>/ is read, never written (except by --merge). Exit status 1 when a
# harness crashed: replay the input with build/tests/fuzz/fuzz-<h> <file> (or the fuzz binary).
set -eu
cd "$(dirname "$0")/.."

FUZZ_SECONDS=${FUZZ_SECONDS:-60}
FUZZ_BUILD=${FUZZ_BUILD:-build-fuzz}
merge=0
if [ "${1:-}" = "--merge" ]; then
        merge=1
        shift
fi

harnesses="$*"
if [ -z "$harnesses" ]; then
        for f in tests/fuzz/fuzz-*.c; do
                h=${f#tests/fuzz/fuzz-}
                h=${h%.c}
                [ "$h" = main ] || harnesses="$harnesses $h"
        done
fi

if ! command -v clang >/dev/null 2>&1; then
        echo "fuzz: clang is missing (make deps installs it)" >&2
        exit 1
fi
# werror off: a clang-only warning anywhere must not stop fuzzing (the gcc build has -Werror).
if [ ! -f "$FUZZ_BUILD/build.ninja" ]; then
        CC=clang meson setup "$FUZZ_BUILD" -Dfuzzing=true -Dsanitize=address,undefined \
                -Dwerror=false >/dev/null
fi
targets=""
for h in $harnesses; do
        [ -f "tests/fuzz/fuzz-$h.c" ] || { echo "fuzz: no harness tests/fuzz/fuzz-$h.c" >&2; exit 2; }
        targets="$targets tests/fuzz/fuzz-$h"
done
# shellcheck disable=SC2086 # word splitting wanted
if ! ninja -C "$FUZZ_BUILD" $targets >"$FUZZ_BUILD/fuzz-build.log" 2>&1; then
        tail -n 30 "$FUZZ_BUILD/fuzz-build.log" >&2
        echo "fuzz: building the harnesses failed (log: $FUZZ_BUILD/fuzz-build.log)" >&2
        exit 1
fi

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:halt_on_error=1:abort_on_error=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

if [ "$merge" = 1 ]; then
        for h in $harnesses; do
                work="$FUZZ_BUILD/fuzz-corpus/$h"
                [ -d "$work" ] || continue
                before=$(find "tests/fuzz/corpus/$h" -type f | wc -l)
                "$FUZZ_BUILD/tests/fuzz/fuzz-$h" -merge=1 "tests/fuzz/corpus/$h" "$work" \
                        >"$FUZZ_BUILD/fuzz-$h.merge.log" 2>&1
                after=$(find "tests/fuzz/corpus/$h" -type f | wc -l)
                echo "$h: $((after - before)) inputs added to tests/fuzz/corpus/$h"
        done
        exit 0
fi

status=0
printf '%-12s %12s %10s %8s %8s  %s\n' harness executions exec/s corpus crashes result
for h in $harnesses; do
        work="$FUZZ_BUILD/fuzz-corpus/$h"
        art="$FUZZ_BUILD/fuzz-artifacts/$h"
        log="$FUZZ_BUILD/fuzz-$h.log"
        mkdir -p "$work" "$art"
        rc=0
        "$FUZZ_BUILD/tests/fuzz/fuzz-$h" -max_total_time="$FUZZ_SECONDS" -timeout=10 \
                -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$art/" \
                "$work" "tests/fuzz/corpus/$h" >"$log" 2>&1 || rc=$?
        execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
        rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
        crashes=$(grep -c 'Test unit written to' "$log" || true)
        files=$(find "$work" -type f | wc -l)
        result=ok
        if [ "$rc" != 0 ]; then
                result="FAILED (exit $rc, see $log)"
                status=1
        fi
        printf '%-12s %12s %10s %8s %8s  %s\n' "$h" "${execs:-?}" "${rate:-?}" "$files" \
                "$crashes" "$result"
        if [ "$rc" != 0 ]; then
                grep -E 'ERROR:|runtime error:|invariant failed|SUMMARY|Test unit written' "$log" |
                        head -n 8 | sed 's/^/    /'
        fi
done
exit $status
