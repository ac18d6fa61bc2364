#!/bin/sh
# test_valgrind: memcheck over integration scenarios on the real loop —
# no invalid access, no uninitialised use, no definite or indirect leak.
B=${PARLEY_BUILD:-build}
case "$B" in
*-san*|*-fuzz*) echo "skip: valgrind does not run sanitizer builds"; exit 77 ;;
esac
if ! command -v valgrind >/dev/null 2>&1; then
    echo "skip: valgrind is not installed"
    exit 77
fi
checks=0 failed=0
for t in tests/integration/test_ws tests/unit/test_store; do
    bin="$B/$t"
    [ -x "$bin" ] || continue
    checks=$((checks + 1))
    log=$(mktemp)
    if valgrind -q --leak-check=full --show-leak-kinds=definite,indirect \
        --errors-for-leak-kinds=definite,indirect --error-exitcode=99 \
        --track-fds=no "$bin" >"$log" 2>&1; then
        echo "ok: $t clean under memcheck"
    else
        failed=$((failed + 1))
        echo "FAIL: $t under memcheck:"
        tail -n 40 "$log"
    fi
    rm -f "$log"
done
# parleyd itself: start, reload (bad then good), SIGTERM, all under memcheck
T=$(mktemp -d /tmp/parley-vg-XXXXXX)
printf '[bot]\nstate_dir = %s/state\nmetrics_listen =\n' "$T" >"$T/good.conf"
cp "$T/good.conf" "$T/parley.conf"
valgrind -q --leak-check=full --show-leak-kinds=definite,indirect \
    --errors-for-leak-kinds=definite,indirect --error-exitcode=99 \
    "$B/parleyd" -c "$T/parley.conf" 2>"$T/log" &
pid=$!
i=0
while [ $i -lt 100 ] && ! grep -q "ready:" "$T/log"; do sleep 0.1; i=$((i + 1)); done
printf '[bot]\nbogus = 1\n' >"$T/parley.conf"
kill -HUP $pid; sleep 0.5
cp "$T/good.conf" "$T/parley.conf"
kill -HUP $pid; sleep 0.5
kill -TERM $pid
wait $pid
rc=$?
checks=$((checks + 1))
if [ $rc -eq 0 ] && grep -q "reload: rejected" "$T/log" &&
    grep -q "reload: applied" "$T/log"; then
    echo "ok: parleyd start/reload/stop clean under memcheck"
else
    failed=$((failed + 1))
    echo "FAIL: parleyd under memcheck (exit $rc):"
    tail -n 40 "$T/log"
fi
rm -rf "$T"

echo "$checks checks, $failed failed"
[ $failed -eq 0 ]
