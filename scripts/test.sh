#!/bin/sh
# test.sh: what `make test` (and so CI) runs — the -Werror build and every
# test, the same under ASan+UBSan, then each fuzz target briefly; ends with
# one "total: N passed, N failed" line over all three phases.
set -u
MAKE=${MAKE:-make}
JOBS=$(nproc 2>/dev/null || echo 2)
LOG=$(mktemp)
trap 'rm -f "$LOG"' EXIT
status=0

phase() {
    name=$1; shift
    echo "== $name"
    "$@" 2>&1 | tee -a "$LOG"
    # the pipeline's status is tee's: read the phase's own from its summary
}

$MAKE -j"$JOBS" WERROR=1 tests || status=1
[ $status -eq 0 ] && phase "tests (build/)" sh tests/run.sh build
$MAKE -j"$JOBS" SAN=1 WERROR=1 tests || status=1
[ $status -eq 0 ] && phase "tests under ASan+UBSan (build-san/)" sh tests/run.sh build-san
$MAKE -j"$JOBS" FUZZ=1 WERROR=1 fuzz-build || status=1
[ $status -eq 0 ] && phase "fuzz targets, ${FUZZ_SECONDS:-5} s each" \
    sh scripts/fuzz.sh build-fuzz "${FUZZ_SECONDS:-5}"

passed=$(sed -n 's/^[a-z]*: \([0-9]*\) passed, \([0-9]*\) failed.*/\1/p' "$LOG" |
    awk '{s += $1} END {print s + 0}')
failed=$(sed -n 's/^[a-z]*: \([0-9]*\) passed, \([0-9]*\) failed.*/\2/p' "$LOG" |
    awk '{s += $1} END {print s + 0}')
[ "$failed" -ne 0 ] && status=1
[ $status -ne 0 ] && [ "$failed" -eq 0 ] && failed=1 # a build failed
echo "total: $passed passed, $failed failed"
exit $status
