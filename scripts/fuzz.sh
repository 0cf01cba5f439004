#!/bin/sh
# Run every libFuzzer harness of tests/fuzz/ for a while (`make fuzz`).
#
#   scripts/fuzz.sh BUILD_DIR SECONDS
#
# Configures BUILD_DIR with clang, -Dfuzz=true and ASan+UBSan when it is not
# yet, builds, then runs each tests/fuzz/fuzz_NAME for SECONDS seconds with its
# checked-in corpus (read only) and dictionary. New inputs go to a scratch
# corpus outside the repository ($FUZZ_WORK, default /tmp/kipuka-fuzz); crash
# inputs to $FUZZ_WORK/artifacts/. Prints per harness the runs, cov and ft of
# libFuzzer's last stats line and whether it crashed; exits 1 if any did.
#
# Environment:
#   FUZZ_WORK=DIR     scratch corpora, logs and crash artifacts
#   FUZZ_TARGETS="csr est"  only these harnesses (default: all that were built)
#   FUZZ_MERGE=1      afterwards, merge what the scratch corpus adds in
#                     coverage into tests/fuzz/corpus/NAME/ (libFuzzer
#                     -merge=1, which keeps only inputs with new features)
set -u

usage() {
    echo "usage: $0 BUILD_DIR SECONDS" >&2
    exit 2
}
[ $# -eq 2 ] || usage
build=$1
seconds=$2
case $seconds in '' | *[!0-9]*) usage ;; esac

root=$(cd "$(dirname "$0")/.." && pwd)
work=${FUZZ_WORK:-/tmp/kipuka-fuzz}
fuzzdir=$root/tests/fuzz

# -fsanitize=fuzzer-no-link instruments the project's own sources for
# coverage; without it libFuzzer would be guided by the harness file alone.
if [ ! -f "$build/build.ninja" ]; then
    CC=${FUZZ_CC:-clang} meson setup "$build" "$root" --buildtype=debugoptimized \
        -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false \
        -Dc_args="-fsanitize=fuzzer-no-link -fno-sanitize-recover=all" || exit 1
else
    meson configure "$build" -Dfuzz=true >/dev/null || exit 1
fi
ninja -C "$build" || exit 1

targets=${FUZZ_TARGETS:-}
if [ -z "$targets" ]; then
    for exe in "$build"/tests/fuzz/fuzz_*; do
        [ -x "$exe" ] && [ -f "$exe" ] && targets="$targets ${exe##*/fuzz_}"
    done
fi
if [ -z "$targets" ]; then
    echo "no libFuzzer harness in $build/tests/fuzz (is -Dfuzz=true set?)" >&2
    exit 1
fi

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:halt_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
mkdir -p "$work/artifacts" || exit 1

crashed=0
summary=""
for name in $targets; do
    exe=$build/tests/fuzz/fuzz_$name
    seeds=$fuzzdir/corpus/$name
    scratch=$work/corpus/$name
    log=$work/$name.log
    if [ ! -x "$exe" ]; then
        echo "$exe: not built" >&2
        exit 1
    fi
    mkdir -p "$scratch" || exit 1
    set -- -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$work/artifacts/$name-"
    [ -f "$fuzzdir/$name.dict" ] && set -- "$@" -dict="$fuzzdir/$name.dict"

    echo "== fuzz_$name for ${seconds}s (log $log)"
    "$exe" "$@" "$scratch" "$seeds" >"$log" 2>&1
    rc=$?

    # The last "#N <event> cov: C ft: F ..." line; "Done N runs" when present.
    stats=$(grep -E '^#[0-9]+' "$log" | tail -n 1)
    runs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$log" | tail -n 1)
    [ -n "$runs" ] || runs=$(printf '%s\n' "$stats" | sed -n 's/^#\([0-9]*\).*/\1/p')
    cov=$(printf '%s\n' "$stats" | sed -n 's/.*cov: \([0-9]*\).*/\1/p')
    ft=$(printf '%s\n' "$stats" | sed -n 's/.*ft: \([0-9]*\).*/\1/p')
    if [ $rc -ne 0 ] || grep -qE '^==[0-9]+==ERROR|deadly signal|fuzz invariant failed' "$log"; then
        result="CRASHED (exit $rc; input: $(grep -o "$work/artifacts/$name-[^ ]*" "$log" |
            tail -n 1))"
        crashed=1
        grep -E 'ERROR|SUMMARY|invariant|runtime error' "$log" | head -n 5 >&2
    else
        result=ok
    fi
    line=$(printf '%-10s runs %-10s cov %-6s ft %-7s %s' "$name" "${runs:-?}" "${cov:-?}" \
        "${ft:-?}" "$result")
    echo "$line"
    summary="$summary$line
"

    if [ "${FUZZ_MERGE:-0}" = 1 ] && [ "$result" = ok ]; then
        echo "   merging new coverage into $seeds"
        "$exe" -merge=1 -max_len=65536 -timeout=10 -rss_limit_mb=2048 "$seeds" "$scratch" \
            >"$work/$name.merge.log" 2>&1 || {
            echo "   merge failed: see $work/$name.merge.log" >&2
            crashed=1
        }
    fi
done

echo "== summary ($seconds s each)"
printf '%s' "$summary"
exit $crashed
