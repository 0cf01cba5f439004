#!/bin/sh
# Build and run every test twice: a normal build, then AddressSanitizer +
# UndefinedBehaviorSanitizer (LeakSanitizer included). Ends with the line
# "N passed, N failed" summed over both runs.
set -u
build=${1:-build}
asan=${2:-build-asan}
status=0

[ -f "$build/build.ninja" ] || meson setup "$build" --buildtype=debugoptimized || exit 1
[ -f "$asan/build.ninja" ] || meson setup "$asan" --buildtype=debug \
    -Db_sanitize=address,undefined -Db_lundef=false \
    -Dc_args=-fno-sanitize-recover=all || exit 1

for b in "$build" "$asan"; do
    ninja -C "$b" || exit 1
done

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
echo "$passed passed, $failed failed"
[ "$failed" = 0 ] || status=1
exit $status
