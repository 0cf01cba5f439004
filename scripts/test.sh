#!/bin/sh
# Build and run every test twice: a normal build, then AddressSanitizer +
# UndefinedBehaviorSanitizer (LeakSanitizer included), each against SQLite and
# a throwaway PostgreSQL (scripts/pg-cluster.sh). Then one more check:
# scripts/fresh-build.sh builds and serves with only what `make run` installs.
# Ends with the line "N passed, N failed" summed over all of it.
set -u
build=${1:-build}
asan=${2:-build-asan}
status=0

# The unit tests are required here (-Dtests=enabled): a missing cmocka stops
# the run at setup instead of leaving the unit tests out. A build directory
# made by `make run` (tests=auto) is switched over.
[ -f "$build/build.ninja" ] || meson setup "$build" --buildtype=debugoptimized \
    -Dtests=enabled || exit 1
[ -f "$asan/build.ninja" ] || meson setup "$asan" --buildtype=debug \
    -Db_sanitize=address,undefined -Db_lundef=false \
    -Dc_args=-fno-sanitize-recover=all -Dtests=enabled || exit 1
# (--reconfigure, not meson configure: it reads meson_options.txt first, so
# a directory set up before the option existed takes it too)
src=$(cd "$(dirname "$0")/.." && pwd)
for b in "$build" "$asan"; do
    meson setup --reconfigure "$b" "$src" -Dtests=enabled >/dev/null || exit 1
done

for b in "$build" "$asan"; do
    ninja -C "$b" || exit 1
done

# One throwaway PostgreSQL for both runs: the store unit tests and the
# integration-pg suite run against it (each test in a database of its own).
here=$(cd "$(dirname "$0")" && pwd)
pgdir=$(mktemp -d /tmp/kipuka-pg.XXXXXX)
trap '"$here/pg-cluster.sh" stop "$pgdir"' EXIT
trap 'exit 130' INT TERM
KIPUKA_TEST_PG_URL=$("$here/pg-cluster.sh" start "$pgdir") || {
    echo "cannot start the test PostgreSQL cluster" >&2; exit 1; }
export KIPUKA_TEST_PG_URL
echo "== PostgreSQL for the tests: $KIPUKA_TEST_PG_URL"

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
for b in "$build" "$asan"; do
    echo "== tests in $b"
    meson test -C "$b" --print-errorlogs --num-processes 2 || status=1
done

count() {
    jq -s "[.[] | select(.result $1)] | length" "$build/meson-logs/testlog.json" \
        "$asan/meson-logs/testlog.json"
}
passed=$(count '== "OK"')
failed=$(count '!= "OK"')

# The README's first command on a machine without the test-only packages.
echo "== fresh build: only what scripts/install-deps.sh build installs"
if "$here/fresh-build.sh"; then
    passed=$((passed + 1))
else
    failed=$((failed + 1))
fi
echo "$passed passed, $failed failed"
[ "$failed" = 0 ] || status=1
exit $status
