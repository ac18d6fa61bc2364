#!/bin/sh
# test_metrics_http: parleyd's /metrics and /healthz over real HTTP (curl),
# promtool on the page, errors, keep-alive, SIGHUP rebinding (SPEC §9).
B=${PARLEY_BUILD:-build}
T=$(mktemp -d /tmp/parley-mhttp-XXXXXX)
PID=
cleanup() {
    [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT
checks=0 failed=0
ok() { checks=$((checks + 1)); if ! eval "$1"; then failed=$((failed + 1)); echo "FAIL: $1"; fi; }

if ! command -v curl >/dev/null 2>&1; then
    echo "skipped: curl is not installed (make deps)"
    exit 77
fi
PROMTOOL=$(command -v promtool)

# Ports: 127.0.0.1 only, picked from this pid so parallel runs rarely meet;
# a busy port is retried with the next one.
base=$((20000 + $$ % 20000))

# start CONF_EXTRA...: writes the config with metrics_listen on $port and
# waits for "ready" (or a failure); 0 when running.
start() {
    tries=0
    while [ $tries -lt 8 ]; do
        port=$((base + tries * 101))
        {
            printf '[bot]\nstate_dir = %s/state\nlog_level = debug\n' "$T"
            printf 'metrics_listen = 127.0.0.1:%s\n' "$port"
            printf '%b' "$1"
        } >"$T/p.conf"
        : >"$T/log"
        "$B/parleyd" -c "$T/p.conf" 2>>"$T/log" &
        PID=$!
        i=0
        while [ $i -lt 100 ]; do
            grep -q "level=info ready" "$T/log" && return 0
            kill -0 "$PID" 2>/dev/null || break
            sleep 0.05
            i=$((i + 1))
        done
        wait "$PID" 2>/dev/null
        rc=$?
        PID=
        if grep -q "address already in use" "$T/log"; then
            tries=$((tries + 1))
            continue
        fi
        echo "parleyd did not start (exit $rc):"
        cat "$T/log"
        return 1
    done
    return 1
}

stop() {
    kill -TERM "$PID"
    wait "$PID"
    rc=$?
    PID=
    return $rc
}

U="http://127.0.0.1"

# --- no platform enabled: healthy, metrics page clean ---
start "" || exit 1
ok 'grep -q "metrics: listening on 127.0.0.1:$port" "$T/log"'
code=$(curl -s -o "$T/h.json" -D "$T/h.hdr" -w '%{http_code}' "$U:$port/healthz")
ok '[ "$code" = 200 ]'
ok '[ "$(cat "$T/h.json")" = "{\"status\":\"ok\",\"database\":\"ok\",\"connectors\":{}}" ]'
ok 'grep -qi "^content-type: application/json" "$T/h.hdr"'

code=$(curl -s -o "$T/m.txt" -D "$T/m.hdr" -w '%{http_code}' "$U:$port/metrics")
ok '[ "$code" = 200 ]'
ok 'grep -qi "^content-type: text/plain; version=0.0.4" "$T/m.hdr"'
ok 'grep -q "^parley_build_info{version=\"$("$B/parleyd" --version | cut -d" " -f2)\"} 1$" "$T/m.txt"'
ok 'grep -q "^parley_uptime_seconds [0-9]" "$T/m.txt"'
ok 'grep -q "^parley_process_resident_memory_bytes [1-9][0-9]*$" "$T/m.txt"'
ok 'grep -q "^parley_process_open_fds [1-9][0-9]*$" "$T/m.txt"'
ok 'grep -q "^parley_database_size_bytes [1-9][0-9]*$" "$T/m.txt"'
ok 'grep -q "^# TYPE parley_answer_latency_seconds histogram$" "$T/m.txt"'
ok '! grep -v "^#" "$T/m.txt" | grep -qv "^parley_"'
if [ -n "$PROMTOOL" ]; then
    ok '"$PROMTOOL" check metrics <"$T/m.txt"'
    # every family populated (what real traffic produces), from the
    # registry itself: test_metrics --dump
    if [ -x "$B/tests/unit/test_metrics" ]; then
        "$B/tests/unit/test_metrics" --dump >"$T/full.txt"
        ok 'grep -q "^parley_answer_latency_seconds_bucket{platform=\"slack\",le=\"+Inf\"} 1$" "$T/full.txt"'
        ok '"$PROMTOOL" check metrics <"$T/full.txt"'
    fi
else
    echo "promtool is not installed (make deps installs prometheus): page not linted"
fi

# HEAD, errors
code=$(curl -s -I -o "$T/head" -w '%{http_code}' "$U:$port/metrics")
ok '[ "$code" = 200 ]'
code=$(curl -s -o /dev/null -D "$T/e.hdr" -w '%{http_code}' -X POST -d x "$U:$port/metrics")
ok '[ "$code" = 405 ]'
ok 'grep -qi "^allow: GET, HEAD" "$T/e.hdr"'
code=$(curl -s -o /dev/null -w '%{http_code}' "$U:$port/nope")
ok '[ "$code" = 404 ]'
pad=$(head -c 9000 /dev/zero | tr '\0' a)
code=$(curl -s -o /dev/null -w '%{http_code}' -H "X-Pad: $pad" "$U:$port/metrics")
ok '[ "$code" = 431 ]'
code=$(curl -s -o /dev/null -w '%{http_code}' --http1.0 "$U:$port/healthz")
ok '[ "$code" = 200 ]'
# keep-alive: two requests, one connection
curl -sv -o /dev/null -o /dev/null "$U:$port/metrics" "$U:$port/healthz" 2>"$T/v"
ok 'grep -qi "re-using existing connection" "$T/v"'
# the server survives all of that
code=$(curl -s -o /dev/null -w '%{http_code}' "$U:$port/healthz")
ok '[ "$code" = 200 ]'

# --- SIGHUP: a new metrics_listen rebinds; off closes ---
old=$port
new=$((old + 1))
sed -i "s/^metrics_listen = .*/metrics_listen = 127.0.0.1:$new/" "$T/p.conf"
kill -HUP "$PID"
i=0
while [ $i -lt 100 ] && ! grep -q "listening on 127.0.0.1:$new" "$T/log"; do
    sleep 0.05; i=$((i + 1))
done
if grep -q "127.0.0.1:$new: address already in use" "$T/log"; then
    echo "port $new busy: rebinding not checked"
    ok 'grep -q "reload: keeping metrics_listen=127.0.0.1:$old" "$T/log"'
else
    code=$(curl -s -o /dev/null -w '%{http_code}' "$U:$new/healthz")
    ok '[ "$code" = 200 ]'
    code=$(curl -s -o /dev/null -w '%{http_code}' "$U:$old/healthz")
    ok '[ "$code" = 000 ]'
fi
sed -i "s/^metrics_listen = .*/metrics_listen =/" "$T/p.conf"
kill -HUP "$PID"
i=0
while [ $i -lt 100 ] && ! grep -q "reload: metrics endpoint off" "$T/log"; do
    sleep 0.05; i=$((i + 1))
done
code=$(curl -s -o /dev/null -w '%{http_code}' "$U:$new/healthz")
ok '[ "$code" = 000 ]'
stop; rc=$?
ok '[ $rc -eq 0 ]'

# --- an enabled platform without a live connection: 503 ---
start "[telegram]\ntoken = 123:test\napi_base = http://127.0.0.1:1\n[llm]\nmodels = m\n[model.m]\napi = openai\nbase_url = http://127.0.0.1:1\napi_key = k\nname = x\n" || exit 1
code=$(curl -s -o "$T/h.json" -w '%{http_code}' "$U:$port/healthz")
ok '[ "$code" = 503 ]'
ok 'grep -q "\"telegram\":\"down\"" "$T/h.json"'
curl -s -o "$T/m.txt" "$U:$port/metrics"
ok 'grep -q "^parley_connector_up{platform=\"telegram\"} 0$" "$T/m.txt"'
ok 'grep -q "^parley_connector_calls_in_flight{platform=\"telegram\",kind=\"send\"} 0$" "$T/m.txt"'
[ -n "$PROMTOOL" ] && ok '"$PROMTOOL" check metrics <"$T/m.txt"'
stop; rc=$?
ok '[ $rc -eq 0 ]'

# --- a busy port at start: exit 2 with the reason ---
start "" || exit 1
busy=$port
printf '[bot]\nstate_dir = %s/state2\nmetrics_listen = 127.0.0.1:%s\n' "$T" "$busy" >"$T/q.conf"
"$B/parleyd" -c "$T/q.conf" 2>"$T/qlog"; rc=$?
ok '[ $rc -eq 2 ]'
ok 'grep -q "cannot listen on metrics_listen=127.0.0.1:$busy.*address already in use" "$T/qlog"'
stop

# the Grafana dashboard is valid JSON and only queries families that exist
S=${PARLEY_SRCDIR:-.}
if [ -f "$S/contrib/grafana-dashboard.json" ]; then
    if command -v jq >/dev/null 2>&1; then
        ok 'jq empty "$S/contrib/grafana-dashboard.json"'
    else
        echo "jq missing (make deps): the dashboard's JSON is not checked"
    fi
    "$B/tests/unit/test_metrics" --dump 2>/dev/null | sed -n 's/^# TYPE \([a-z_]*\) .*/\1/p' >"$T/families"
    for f in $(grep -o 'parley_[a-z_]*' "$S/contrib/grafana-dashboard.json" | sed 's/_bucket$//' | sort -u); do
        ok 'grep -qx "$f" "$T/families"'
    done
fi

[ $failed -eq 0 ] || cat "$T/log"
echo "$checks checks, $failed failed"
[ $failed -eq 0 ]
