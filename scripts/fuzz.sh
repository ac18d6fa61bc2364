#!/bin/sh
# fuzz.sh BUILD SECONDS: run each libFuzzer target on its seed corpus and
# regression inputs, then fuzz it for SECONDS. Crashes fail the run.
set -u
BUILD=${1:-build-fuzz}
SECS=${2:-60}
failed=0 passed=0
for bin in "$BUILD"/tests/fuzz/fuzz_*; do
    case "$bin" in *.o|*.d) continue ;; esac
    [ -x "$bin" ] || continue
    name=${bin##*/fuzz_}
    seeds="tests/fuzz/corpus/$name"
    regress="tests/fuzz/regressions/$name"
    work="$BUILD/corpus/$name"
    art="$BUILD/crashes/$name/"
    mkdir -p "$work" "$art"
    log="$BUILD/fuzz-$name.log"
    # 1) every known input once: regressions must stay fixed
    inputs=$(find "$seeds" "$regress" -type f 2>/dev/null)
    if [ -n "$inputs" ]; then
        # shellcheck disable=SC2086
        if ! "$bin" -runs=0 $inputs >"$log" 2>&1; then
            echo "FAIL fuzz/$name: a seed or regression input crashes (see $log)"
            tail -n 30 "$log" | sed 's/^/    /'
            failed=$((failed + 1))
            continue
        fi
    fi
    # 2) fuzz for a bounded time
    if "$bin" -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 \
        -max_len=65536 -artifact_prefix="$art" -print_final_stats=1 \
        "$work" "$seeds" >>"$log" 2>&1; then
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
        echo "PASS fuzz/$name (${SECS}s, ${runs:-?} runs)"
        passed=$((passed + 1))
    else
        echo "FAIL fuzz/$name: crash found, input in $art (see $log)"
        tail -n 40 "$log" | sed 's/^/    /'
        failed=$((failed + 1))
    fi
done
echo "fuzz: $passed passed, $failed failed"
[ $failed -eq 0 ]
