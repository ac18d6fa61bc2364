#!/bin/sh
# bench.sh BUILD: run every benchmark and write docs/benchmarks.md.
# Numbers are reported, never asserted: a slow machine does not fail CI.
set -eu
BUILD=${1:-build}
OUT=docs/benchmarks.md
TMP=$(mktemp)
trap 'rm -f "$TMP"' EXIT

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
mem=$(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)
{
    echo "# Benchmarks"
    echo
    echo "Written by \`make bench\` ($(date -u +%Y-%m-%d)); do not edit by hand."
    echo "Reproduce with \`make bench\` on a quiet machine."
    echo
    echo "Machine: $(nproc) cores ($cpu), $mem, $(. /etc/os-release && echo "$PRETTY_NAME"),"
    echo "$(uname -sr), $(cc --version | head -n 1)."
    echo
    echo "## Daemon"
    echo
    echo "| what | measured | target |"
    echo "|---|---|---|"
    "$BUILD/tests/bench/bench_daemon" "$BUILD/parleyd" |
        sed -e 's/ms |$/ms | < 100 ms |/' -e 's/MB |$/MB | < 10 MB |/'
    for b in "$BUILD"/tests/bench/bench_*; do
        case "$b" in *.o|*.d|*/bench_daemon) continue ;; esac
        [ -x "$b" ] || continue
        echo
        echo "## ${b##*/bench_}"
        echo
        "$b"
    done
} >"$TMP"
mv "$TMP" "$OUT"
trap - EXIT
cat "$OUT"
