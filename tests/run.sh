#!/bin/sh
# run.sh BUILD: run every unit and integration test of one build; print
# one line per test and the closing "N passed, N failed" line.
BUILD=${1:-build}
SRCDIR=$(pwd)
export PARLEY_BUILD="$SRCDIR/$BUILD" PARLEY_SRCDIR="$SRCDIR"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
logdir="$SRCDIR/$BUILD/test-logs"
mkdir -p "$logdir"
passed=0 failed=0 skipped=0 failures=""

run_one() {
    name=$1; shift
    log="$logdir/$(echo "$name" | tr '/' '_').log"
    start=$(date +%s)
    # every test is bounded in time: a hung test is a failure, not a hang
    timeout -k 5 ${PARLEY_TEST_TIMEOUT:-240} "$@" >"$log" 2>&1
    rc=$?
    secs=$(( $(date +%s) - start ))
    if [ $rc -eq 0 ]; then
        passed=$((passed + 1)); echo "PASS $name (${secs}s)"
    elif [ $rc -eq 77 ]; then
        skipped=$((skipped + 1)); echo "SKIP $name: $(tail -n 1 "$log")"
    else
        failed=$((failed + 1)); failures="$failures $name"
        echo "FAIL $name (exit $rc, ${secs}s), last lines of $log:"
        tail -n 25 "$log" | sed 's/^/    /'
    fi
}

for t in "$BUILD"/tests/unit/test_*; do
    case "$t" in *.d|*.o) continue ;; esac
    [ -x "$t" ] && run_one "unit/${t##*/}" "$t"
done
for t in "$BUILD"/tests/integration/test_*; do
    case "$t" in *.d|*.o) continue ;; esac
    [ -x "$t" ] && run_one "integration/${t##*/}" "$t"
done
for t in tests/integration/test_*.sh; do
    [ -f "$t" ] && run_one "integration/${t##*/}" sh "$t"
done

[ -n "$failures" ] && echo "failed:$failures"
echo "tests: $passed passed, $failed failed, $skipped skipped"
[ $failed -eq 0 ]
