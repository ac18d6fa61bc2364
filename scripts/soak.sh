#!/bin/sh
# soak.sh BUILD: parleyd against the fakes for SOAK_SECONDS (default 600)
# with LLM faults, gateway disconnects and kill -9 about every
# SOAK_KILL_EVERY seconds (default 60; 0 = never), then a drain and a count
# by message id. Writes docs/soak.md (SOAK_REPORT overrides); exits
# non-zero when a message was lost, duplicated or left showing a partial
# streamed text. SOAK_RATE sets the traffic to Telegram and Discord in
# messages per second (default 15), SOAK_SLACK_RATE Slack's (default 0.3:
# streamed answers on Slack are bound by parley's Tier 3 chat.update gate).
# The driver is tests/bench/soak.c; on a failure it keeps parleyd's state
# and log.
set -eu
BUILD=${1:-build}
SECONDS_=${SOAK_SECONDS:-600}
KILL=${SOAK_KILL_EVERY:-60}
RATE=${SOAK_RATE:-15}
SLACK_RATE=${SOAK_SLACK_RATE:-0.3}
OUT=${SOAK_REPORT:-docs/soak.md}
TMP=$(mktemp)
trap 'rm -f "$TMP"' EXIT

echo "soak: ${SECONDS_} s, kill -9 every ~${KILL} s, ${RATE} + ${SLACK_RATE} (Slack) msg/s → $OUT"
rc=0
"$BUILD/tests/bench/soak" "$BUILD/parleyd" "$SECONDS_" "$KILL" "$TMP" "$RATE" "$SLACK_RATE" || rc=$?
if [ -s "$TMP" ]; then
    {
        cat "$TMP"
        echo
        echo "Machine: $(nproc) cores, $(uname -sr); load average at the end:" \
            "$(cut -d' ' -f1-3 /proc/loadavg)."
    } >"$OUT"
    cat "$OUT"
fi
exit $rc
