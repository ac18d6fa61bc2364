#!/bin/sh
# run_one.sh LOGDIR NAME CMD...: run one test, bounded in time; print its
# PASS/FAIL/SKIP line and leave the verdict in LOGDIR/NAME.verdict.
logdir=$1 name=$2
shift 2
file=$(echo "$name" | tr '/' '_')
log="$logdir/$file.log"
start=$(date +%s)
# every test is bounded in time: a hung test is a failure, not a hang
timeout -k 5 "${PARLEY_TEST_TIMEOUT:-240}" "$@" >"$log" 2>&1
rc=$?
secs=$(($(date +%s) - start))
if [ $rc -eq 0 ]; then
    echo pass >"$logdir/$file.verdict"
    echo "PASS $name (${secs}s)"
elif [ $rc -eq 77 ]; then
    echo skip >"$logdir/$file.verdict"
    echo "SKIP $name: $(tail -n 1 "$log")"
else
    echo fail >"$logdir/$file.verdict"
    # one write, so parallel runs do not interleave inside the report; the
    # test's own failed checks first, since a daemon log can fill the tail
    printf 'FAIL %s (exit %s, %ss)\n  its failed checks:\n%s\n  last lines of %s:\n%s\n' \
        "$name" "$rc" "$secs" \
        "$(grep -a -m 10 '^FAIL\|FAIL:\|checks, [0-9]* failed' "$log" | sed 's/^/    /')" \
        "$log" "$(tail -n 25 "$log" | sed 's/^/    /')"
fi
exit 0
