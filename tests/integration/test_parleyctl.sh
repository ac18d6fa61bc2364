#!/bin/sh
# test_parleyctl: parleyctl against a database (SPEC §10): overrides, bans,
# usage, stats, audit, exit codes, exports' exit codes; and a limit written
# while parleyd runs, picked up by its core within a second.  The exports'
# content (tricky text parsed back) is test_parleyctl_export.c.
B=${PARLEY_BUILD:-build}
T=$(mktemp -d /tmp/parley-ctl-XXXXXX)
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
checks=0 failed=0
ok() { checks=$((checks + 1)); if ! eval "$1"; then failed=$((failed + 1)); echo "FAIL: $1"; fi; }
[ -x "$B/parleyctl" ] || { echo "parleyctl not built"; exit 77; }
command -v sqlite3 >/dev/null || { echo "needs sqlite3"; exit 77; }

cat >"$T/p.conf" <<CONF
[bot]
state_dir = $T
admins = telegram:999
log_level = debug
metrics_listen =
[llm]
models = main
[model.main]
api = openai
base_url = http://127.0.0.1:9
api_key = sk-test
name = m
CONF
CTL="$B/parleyctl -c $T/p.conf"

# no database yet: exit 2, nothing created
$CTL limits >"$T/out" 2>&1; rc=$?; ok '[ $rc -eq 2 ]'
ok '[ ! -e "$T/parley.db" ]'
ok 'grep -q "has parleyd run" "$T/out"'

# parleyd creates it and runs; a limit from parleyctl reaches its core
"$B/parleyd" -c "$T/p.conf" 2>"$T/d.log" &
PID=$!
i=0; while [ $i -lt 100 ] && ! grep -q "ready:" "$T/d.log"; do sleep 0.05; i=$((i + 1)); done
ok 'grep -q "ready:" "$T/d.log"'
start=$(date +%s%N)
$CTL limit user telegram:11 5/60s >"$T/out" 2>&1; rc=$?; ok '[ $rc -eq 0 ]'
i=0; while [ $i -lt 300 ] && ! grep -q "core caches reloaded overrides=1" "$T/d.log"; do sleep 0.01; i=$((i + 1)); done
end=$(date +%s%N)
ms=$(( (end - start) / 1000000 ))
echo "parleyd reloaded the overrides ${ms} ms after parleyctl started"
ok 'grep -q "core caches reloaded overrides=1" "$T/d.log"'
ok '[ $ms -le 1100 ]'
$CTL ban telegram:666 2h >"$T/out" 2>&1; rc=$?; ok '[ $rc -eq 0 ]'
i=0; while [ $i -lt 300 ] && ! grep -q "core caches reloaded overrides=1 bans=1" "$T/d.log"; do sleep 0.01; i=$((i + 1)); done
ok 'grep -q "core caches reloaded overrides=1 bans=1" "$T/d.log"'
kill -TERM $PID; wait $PID; rc=$?; PID=
ok '[ $rc -eq 0 ]'

# limits, overrides, bans
$CTL limits >"$T/out" 2>&1; rc=$?; ok '[ $rc -eq 0 ]'
ok 'grep -q "limit user telegram:11 5/1m" "$T/out"'
ok 'grep -q "telegram:666 until" "$T/out"'
$CTL budget chat slack:C024 50000/1h >/dev/null; rc=$?; ok '[ $rc -eq 0 ]'
$CTL limit user telegram:11 default >/dev/null; rc=$?; ok '[ $rc -eq 0 ]'
$CTL unban telegram:666 >/dev/null; rc=$?; ok '[ $rc -eq 0 ]'
$CTL limits >"$T/out" 2>&1
ok '! grep -q "telegram:11" "$T/out"'
ok 'grep -q "budget chat slack:C024 50000/1h" "$T/out"'
ok '! grep -q "telegram:666" "$T/out"'
$CTL ban telegram:999 >"$T/out" 2>&1; rc=$?; ok '[ $rc -eq 1 ]'  # an admin
ok 'grep -q "cannot be banned" "$T/out"'

# usage errors exit 1
$CTL limit user 11 5/60s >/dev/null 2>&1; rc=$?; ok '[ $rc -eq 1 ]'
$CTL limit user telegram:11 5/xx >/dev/null 2>&1; rc=$?; ok '[ $rc -eq 1 ]'
$CTL ban telegram:1 soon >/dev/null 2>&1; rc=$?; ok '[ $rc -eq 1 ]'
$CTL frob >/dev/null 2>&1; rc=$?; ok '[ $rc -eq 1 ]'
$CTL feedback export --format xml >/dev/null 2>&1; rc=$?; ok '[ $rc -eq 1 ]'
$CTL feedback export --since yesterday >/dev/null 2>&1; rc=$?; ok '[ $rc -eq 1 ]'
"$B/parleyctl" -c "$T/missing.conf" limits >/dev/null 2>&1; rc=$?; ok '[ $rc -eq 1 ]'
"$B/parleyctl" --help >"$T/out"; rc=$?; ok '[ $rc -eq 0 ]'
ok 'grep -q "feedback export" "$T/out"'

# rows for usage, stats and history purge; the exports of tricky text are
# parsed back in test_parleyctl_export.c
sqlite3 "$T/parley.db" <<'SQL'
INSERT INTO conversations (id, platform, chat_id, thread_id, created_ms) VALUES (1, 'telegram', '-100', '', 1);
INSERT INTO messages (id, conversation_id, role, user_id, text, tokens, created_ms) VALUES (10, 1, 'user', '11', 'He said "hi", then left', 3, 1731000000000);
INSERT INTO messages (id, conversation_id, role, user_id, text, tokens, created_ms) VALUES (11, 1, 'assistant', NULL, ' answer, with "quotes" ', 4, 1731000000001);
INSERT INTO answers (id, conversation_id, message_id, platform, user_id, model, created_ms) VALUES (5, 1, 11, 'telegram', '11', 'main', 1731000000001);
INSERT INTO feedback (answer_id, platform, user_id, vote, created_ms, updated_ms) VALUES (5, 'telegram', '12', -1, 1731000000002, 1731000000002);
INSERT INTO feedback (answer_id, platform, user_id, vote, created_ms, updated_ms) VALUES (5, 'telegram', '13', 1, 1600000000000, 1600000000000);
INSERT INTO messages (id, conversation_id, role, user_id, text, tokens, created_ms) VALUES (12, 1, 'user', '14', 'other', 1, 1731000000003);
INSERT INTO usage (scope, platform, target, day, requests, limited, tokens_in, tokens_out, cost_micro_usd) VALUES ('user', 'telegram', '11', 20040, 3, 1, 30, 20, 1500);
INSERT INTO stats_daily (day, requests, answers) VALUES (20040, 3, 2);
SQL
ok '[ $? -eq 0 ]'
$CTL feedback export >"$T/fb.csv" 2>/dev/null; rc=$?; ok '[ $rc -eq 0 ]'
ok '[ "$(grep -c "^5," "$T/fb.csv")" -eq 2 ]'
$CTL feedback export --format json --since 2024-01-01 >"$T/fb.json" 2>/dev/null; rc=$?; ok '[ $rc -eq 0 ]'
$CTL history export --format=json telegram:11 >"$T/h.json" 2>/dev/null; rc=$?; ok '[ $rc -eq 0 ]'
$CTL history export >"$T/h.csv" 2>/dev/null; rc=$?; ok '[ $rc -eq 0 ]'

# usage, stats, audit
$CTL usage telegram:11 >"$T/out" 2>&1; rc=$?; ok '[ $rc -eq 0 ]'
ok 'grep -q "2024-11-13  telegram:11  requests=3 limited=1 tokens_in=30 tokens_out=20 cost=\$0.001500" "$T/out"'
$CTL stats >"$T/out" 2>&1; rc=$?; ok '[ $rc -eq 0 ]'
ok 'grep -q "^requests: " "$T/out"'
ok 'grep -q "(3)" "$T/out"'
$CTL history purge telegram:11 >"$T/out" 2>&1; rc=$?; ok '[ $rc -eq 0 ]'
ok 'grep -q "deleted 2 history messages" "$T/out"'
ok '[ "$(sqlite3 "$T/parley.db" "SELECT count(*) FROM messages")" = 1 ]'
$CTL audit >"$T/out" 2>&1; rc=$?; ok '[ $rc -eq 0 ]'
ok '[ "$(grep -c "parleyctl:" "$T/out")" -eq 6 ]'
ok 'grep -q "limit user telegram:11 5/1m" "$T/out"'
ok 'grep -q "history purge telegram:11" "$T/out"'
$CTL audit 2 >"$T/out" 2>&1; ok '[ "$(wc -l <"$T/out")" -eq 2 ]'
ok '[ "$(sqlite3 "$T/parley.db" "SELECT count(*) FROM audit WHERE platform IS NULL")" -eq 6 ]'

echo "$checks checks, $failed failed"
[ $failed -eq 0 ]
