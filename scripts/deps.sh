#!/bin/sh
# deps.sh: install the Debian packages parley needs to build, run and test.
# Idempotent and quick when everything is present; `apt-get update` only
# when a package is missing and the lists cannot provide it.
set -e

# build + run time libraries, and the libuv event-lib plugin for lws
PKGS="make gcc pkg-config libcurl4-openssl-dev libjson-c-dev
libwebsockets-dev libwebsockets-evlib-uv libuv1-dev libsqlite3-dev
libsqlite3-0 sqlite3 libsodium-dev libinih-dev"
# test tools: curl (probes), jq (JSON checks in shell tests), clang + its
# runtime (fuzzers, sanitizers), valgrind, clang-format (format-check),
# systemd (systemd-analyze verify and security), prometheus (promtool check
# metrics; Debian has no promtool-only package), mandoc (man page lint),
# procps
PKGS="$PKGS curl jq clang libclang-rt-14-dev valgrind clang-format procps
systemd prometheus mandoc"
[ -n "$PARLEY_DEPS_EXTRA" ] && PKGS="$PKGS $PARLEY_DEPS_EXTRA"

missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
        grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
if [ -z "$missing" ]; then
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
echo "deps: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
# refresh the package lists only when one of the missing packages is not
# known to apt yet (a fresh machine has empty lists)
need_update=0
for p in $missing; do
    if ! apt-cache show "$p" >/dev/null 2>&1; then
        need_update=1
        break
    fi
done
if [ $need_update -eq 1 ]; then
    $SUDO apt-get update -qq
fi
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
echo "deps: done"
# promtool comes only with the prometheus server package: on a machine that
# runs systemd, do not leave a Prometheus server running because of tests.
case " $missing " in
*" prometheus "*)
    if [ -d /run/systemd/system ]; then
        $SUDO systemctl disable --now prometheus >/dev/null 2>&1 || true
        echo "deps: prometheus installed for promtool; its server is disabled"
    fi
    ;;
esac
