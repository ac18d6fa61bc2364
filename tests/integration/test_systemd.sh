#!/bin/sh
# test_systemd: the unit passes `systemd-analyze verify`, and its sandbox
# scores an exposure of at most 1.5 in `systemd-analyze security` (SPEC §9).
B=${PARLEY_BUILD:-build}
S=${PARLEY_SRCDIR:-.}
UNIT="$S/systemd/parleyd.service"
if ! command -v systemd-analyze >/dev/null 2>&1; then
    echo "skipped: systemd-analyze is not installed (Debian package systemd)"
    exit 77
fi
T=$(mktemp -d /tmp/parley-systemd-XXXXXX)
trap 'rm -rf "$T"' EXIT
checks=0 failed=0
ok() { checks=$((checks + 1)); if ! eval "$1"; then failed=$((failed + 1)); echo "FAIL: $1"; fi; }

# verify needs the binary where ExecStart= says and the man pages that
# Documentation= names: a copy of the unit points at the build, MANPATH at
# the sources
case "$B" in /*) ;; *) B="$(pwd)/$B" ;; esac
sed "s#/usr/sbin/parleyd#$B/parleyd#g" "$UNIT" >"$T/parleyd.service"
mkdir -p "$T/man/man5" "$T/man/man8"
cp "$S"/docs/man/*.5 "$T/man/man5/"
cp "$S"/docs/man/*.8 "$T/man/man8/"
ok 'grep -q "^ExecStart=$B/parleyd " "$T/parleyd.service"'

MANPATH="$T/man" systemd-analyze verify "$T/parleyd.service" >"$T/verify" 2>&1
rc=$?
ok '[ $rc -eq 0 ]'
# verify also reports problems of other units on the host: only ours count
ok '! grep -i "parleyd" "$T/verify"'
[ $rc -ne 0 ] && cat "$T/verify"

systemd-analyze security --offline=yes "$T/parleyd.service" >"$T/sec" 2>&1
line=$(grep "Overall exposure level" "$T/sec")
echo "$line"
level=$(echo "$line" | sed -n 's/.*: \([0-9][0-9]*\.[0-9]*\) .*/\1/p')
ok '[ -n "$level" ]'
ok 'awk -v l="$level" "BEGIN { exit !(l <= 1.5) }"'
[ $failed -ne 0 ] && grep "✗" "$T/sec"

# the settings SPEC §9 and parleyd rely on, in the installed unit itself
for want in "Type=notify" "NotifyAccess=main" "WatchdogSec=30s" \
    "Restart=on-failure" "RestartPreventExitStatus=1" \
    "ExecReload=/bin/kill -HUP \$MAINPID" "DynamicUser=yes" \
    "StateDirectory=parley" "ConfigurationDirectory=parley" \
    "TimeoutStopSec=15s" "MemoryDenyWriteExecute=yes" \
    "SystemCallFilter=@system-service" "CapabilityBoundingSet=" \
    "LoadCredential=telegram_token"; do
    ok 'grep -qxF "$want" "$UNIT"'
done
# every cred:NAME of the example config has its LoadCredential=
for c in $(grep -o 'cred:[a-z0-9_]*' "$S/examples/parley.conf" | cut -d: -f2 | sort -u); do
    ok 'grep -qx "LoadCredential=$c" "$UNIT"'
done
# ExecStartPre's check passes on the example config (it needs no secrets)
ok '"$B/parleyd" --check-config -c "$S/examples/parley.conf" >/dev/null 2>&1'

echo "$checks checks, $failed failed"
[ $failed -eq 0 ]
