#!/bin/sh
# run.sh BUILD: run every unit and integration test of one build; print
# one line per test and the closing "N passed, N failed" line.
# Integration tests mostly wait on timers and sockets, so they run
# PARLEY_TEST_JOBS at a time (default 3); unit tests run one by one.
BUILD=${1:-build}
SRCDIR=$(pwd)
JOBS=${PARLEY_TEST_JOBS:-3}
export PARLEY_BUILD="$SRCDIR/$BUILD" PARLEY_SRCDIR="$SRCDIR"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
logdir="$SRCDIR/$BUILD/test-logs"
rm -rf "$logdir"
mkdir -p "$logdir"
one="$SRCDIR/tests/run_one.sh"

for t in "$BUILD"/tests/unit/test_*; do
    case "$t" in *.d|*.o) continue ;; esac
    [ -x "$t" ] && sh "$one" "$logdir" "unit/${t##*/}" "$t"
done
{
    # the slowest first, so the parallel tail is short
    for t in tests/integration/test_*.sh; do
        [ -f "$t" ] && echo "integration/${t##*/} sh $t"
    done
    for t in "$BUILD"/tests/integration/test_*; do
        case "$t" in *.d|*.o) continue ;; esac
        [ -x "$t" ] && echo "integration/${t##*/} $t"
    done
} | xargs -P "$JOBS" -L 1 sh "$one" "$logdir"

passed=$(grep -l '^pass$' "$logdir"/*.verdict 2>/dev/null | wc -l)
failed=$(grep -l '^fail$' "$logdir"/*.verdict 2>/dev/null | wc -l)
skipped=$(grep -l '^skip$' "$logdir"/*.verdict 2>/dev/null | wc -l)
if [ "$failed" -ne 0 ]; then
    echo "failed: $(grep -l '^fail$' "$logdir"/*.verdict | sed 's|.*/||; s|\.verdict$||' | tr '\n' ' ')"
fi
echo "tests: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
