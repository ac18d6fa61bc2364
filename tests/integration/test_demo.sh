#!/bin/sh
# test_demo: `make demo`'s script, end to end through the real parleyd on
# all three platforms; it fails when a conversation does not complete.
B=${PARLEY_BUILD:-build}
S=${PARLEY_SRCDIR:-.}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
cd "$S" || exit 1
sh scripts/demo.sh "$B" >"$out" 2>&1
rc=$?
checks=0 failed=0
ok() { checks=$((checks + 1)); if ! eval "$1"; then failed=$((failed + 1)); echo "FAIL: $1"; fi; }
ok '[ $rc -eq 0 ]'
ok 'grep -q "\"status\":\"ok\".*\"telegram\":\"up\",\"discord\":\"up\",\"slack\":\"up\"" "$out"'
ok 'grep -q "bot: echo: hello parley" "$out"'
ok 'grep -q "bot: 429 — you have used 3 of 3 requests per 60 s; try again in" "$out"'
ok '[ "$(grep -c "bot: echo: question" "$out")" -eq 3 ]'
ok '! grep -q "bot: echo: .*just chatting" "$out"'
ok 'grep -q "bot: echo: dana: what is parley?" "$out"'
ok 'grep -q "bot: echo: how are you?" "$out"'
ok 'grep -q "bot: echo: hi in private" "$out"'
ok 'grep -q "parleyd exited with 0" "$out"'
ok 'grep -q "discord closing code=4000" "$out"'
[ $failed -ne 0 ] && cat "$out"
echo "$checks checks, $failed failed"
[ $failed -eq 0 ]
