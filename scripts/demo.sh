#!/bin/sh
# demo.sh BUILD: show parley end to end against the fakes that exist so far.
# Grows with every connector until it shows whole conversations on all
# three platforms.
set -u
BUILD=${1:-build}
SRCDIR=$(pwd)
DEMO=$(mktemp -d /tmp/parley-demo-XXXXXX)
trap 'kill $PARLEYD $FAKE 2>/dev/null; wait 2>/dev/null; rm -rf "$DEMO"' EXIT INT TERM
PARLEYD= FAKE=

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "parleyd --version"
"$BUILD/parleyd" --version

say "parleyd --check-config examples/parley.conf (secrets are redacted)"
"$BUILD/parleyd" --check-config examples/parley.conf >"$DEMO/check.out"
echo "(exit $?)"
head -n 30 "$DEMO/check.out"
echo "   … ($(wc -l <"$DEMO/check.out") lines)"

say "an unknown key is refused with FILE:LINE"
printf '[bot]\nstate_dir = %s\nfavourite_colour = blue\n' "$DEMO" >"$DEMO/bad.conf"
"$BUILD/parleyd" --check-config "$DEMO/bad.conf"
echo "   (exit $?)"

if [ -x "$BUILD/fake_echo" ]; then
    say "a fake server on 127.0.0.1 (tests/fakes)"
    "$BUILD/fake_echo" -p 0 -d 50 >"$DEMO/fake.out" 2>"$DEMO/fake.log" &
    FAKE=$!
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        grep -q port= "$DEMO/fake.out" 2>/dev/null && break
        sleep 0.1
    done
    port=$(sed -n 's/^port=//p' "$DEMO/fake.out")
    echo "fake listening on 127.0.0.1:$port"
    curl -s -X POST --data '{"hello":"parley"}' "http://127.0.0.1:$port/demo"
    echo
fi

say "parleyd with no platform enabled: start, reload (bad, then good), stop"
cat >"$DEMO/parley.conf" <<CONF
[bot]
state_dir = $DEMO/state
log_level = debug
metrics_listen =
CONF
"$BUILD/parleyd" -c "$DEMO/parley.conf" 2>&1 &
PARLEYD=$!
sleep 0.5
echo "--- SIGHUP with a broken file: rejected, old config stays"
cp "$DEMO/parley.conf" "$DEMO/good.conf"
printf '[bot]\nlog_level = loud\n' >"$DEMO/parley.conf"
kill -HUP $PARLEYD
sleep 0.3
echo "--- SIGHUP with the good file again"
cp "$DEMO/good.conf" "$DEMO/parley.conf"
kill -HUP $PARLEYD
sleep 0.3
echo "--- SIGTERM"
kill -TERM $PARLEYD
wait $PARLEYD
echo "parleyd exited with $?"
echo "database: $(ls "$DEMO/state")"
PARLEYD=
say "demo done (connectors for Telegram, Discord and Slack land with their issues)"
