#!/bin/sh
# Install the Debian packages kipuka builds and tests with, only those missing.
# Usage: scripts/install-deps.sh [build|test]
#        scripts/install-deps.sh --list [build|test]   (print them, install nothing)
# "build" is everything `make run` needs (scripts/fresh-build.sh proves it in
# every `make test`); "test" adds what only the tests use.
set -eu
list=
if [ "${1:-}" = --list ]; then
    list=1
    shift
fi
# libc6-dev: gcc only recommends it, and we install without recommends.
pkgs="gcc libc6-dev make pkg-config meson ninja-build libssl-dev openssl libevent-dev
      libsqlite3-dev sqlite3 libinih-dev libjansson-dev libpq-dev libcoap3-dev curl ca-certificates"
if [ "${1:-build}" = test ]; then
    pkgs="$pkgs libcmocka-dev clang llvm libclang-rt-14-dev jq postgresql libcoap3-bin"
fi
if [ -n "$list" ]; then
    # shellcheck disable=SC2086
    echo $pkgs
    exit 0
fi
missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
        missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "installing:$missing" >&2
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# shellcheck disable=SC2086
$sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
