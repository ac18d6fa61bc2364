#!/bin/sh
# test_install: `make install DESTDIR=… PREFIX=/usr` puts the binaries, the
# unit, the example config and the man pages in place; the pages lint clean.
B=${PARLEY_BUILD:-build}
S=${PARLEY_SRCDIR:-.}
T=$(mktemp -d /tmp/parley-install-XXXXXX)
trap 'rm -rf "$T"' EXIT
checks=0 failed=0
ok() { checks=$((checks + 1)); if ! eval "$1"; then failed=$((failed + 1)); echo "FAIL: $1"; fi; }

# the build directory this run tests, relative to the sources
case "$B" in "$S"/*) BUILD=${B#"$S"/} ;; *) BUILD=$B ;; esac
D="$T/root"
make -C "$S" install DESTDIR="$D" PREFIX=/usr BUILD="$BUILD" >"$T/log" 2>&1
rc=$?
ok '[ $rc -eq 0 ]'
[ $rc -ne 0 ] && tail -20 "$T/log"

ok '[ -x "$D/usr/sbin/parleyd" ]'
ok '"$D/usr/sbin/parleyd" --version | grep -q "^parleyd "'
[ -f "$S/bot/parleyctl.c" ] && ok '[ -x "$D/usr/sbin/parleyctl" ]'
ok '[ -f "$D/etc/parley/parley.conf.example" ]'
ok 'cmp -s "$D/etc/parley/parley.conf.example" "$S/examples/parley.conf"'
ok '"$D/usr/sbin/parleyd" --check-config -c "$D/etc/parley/parley.conf.example" >/dev/null 2>&1'
U="$D/usr/lib/systemd/system/parleyd.service"
ok '[ -f "$U" ]'
ok 'grep -qx "ExecStart=/usr/sbin/parleyd -c /etc/parley/parley.conf" "$U"'
ok '[ "$(stat -c %a "$U")" = 644 ]'
for m in parleyd.8 parleyctl.8 parley.conf.5; do
    sec=${m##*.}
    ok '[ -f "$D/usr/share/man/man$sec/$m" ]'
done

# PREFIX=/usr/local puts the unit where systemd also looks, with the path
make -C "$S" install DESTDIR="$T/local" PREFIX=/usr/local BUILD="$BUILD" >"$T/log" 2>&1
ok 'grep -qx "ExecStart=/usr/local/sbin/parleyd -c /etc/parley/parley.conf" "$T/local/usr/local/lib/systemd/system/parleyd.service"'

# lint: mandoc's warnings (or groff's when mandoc is missing)
if command -v mandoc >/dev/null 2>&1; then
    for m in "$S"/docs/man/*.[0-9]; do
        ok 'mandoc -T lint -W warning "$m"'
    done
else
    echo "mandoc is not installed (make deps): linting with groff only"
fi
if command -v groff >/dev/null 2>&1; then
    for m in "$S"/docs/man/*.[0-9]; do
        ok '[ -z "$(groff -mdoc -w all -z "$m" 2>&1)" ]'
    done
fi
# the pages render, and parley.conf(5) names every key config.c knows
if command -v mandoc >/dev/null 2>&1; then
    mandoc -T utf8 "$S/docs/man/parley.conf.5" | col -b >"$T/conf.txt" 2>/dev/null ||
        mandoc -T ascii "$S/docs/man/parley.conf.5" >"$T/conf.txt"
    for k in $(grep -oE '^ +\{"[a-z_]+", K_' "$S/config/config.c" | tr -d ' {",' | sed 's/K_$//' | sort -u); do
        ok 'grep -qE "(^|[ .])$k( |$)" "$T/conf.txt"'
    done
fi

make -C "$S" uninstall DESTDIR="$D" PREFIX=/usr >"$T/log" 2>&1
ok '[ ! -e "$D/usr/sbin/parleyd" ] && [ ! -e "$U" ] && [ ! -e "$D/usr/share/man/man8/parleyd.8" ]'

echo "$checks checks, $failed failed"
[ $failed -eq 0 ]
