#!/bin/bash
# Where kipuka's server CPU goes in one `make bench` scenario: a throwaway
# P-256 deployment made as bench/run.sh makes it (`kipuka init` defaults, the
# same [server] edits, server and load generator on separate cores), the load
# generator runs SCENARIO while `perf record -g` samples the server process,
# then the profile is printed: top entries by symbol (self time) and the
# children view (self + callees). Method: bench/README.md, "Profiles".
#
# Usage: bench/profile.sh enroll-otp|get-new|get-keepalive
# Environment: BENCH_SECONDS (10) recorded after a 1 s warm-up,
# BENCH_PROFILE_CLIENTS (16), BENCH_PERF_DWARF=1 for --call-graph dwarf
# (Debian's libcrypto has no frame pointers: only DWARF unwinding sees the
# callers of its functions), BENCH_PERF_DATA (keep perf.data there), and the
# CPU variables of bench/run.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

SCENARIO=${1:-}
case $SCENARIO in
enroll-otp | get-new | get-keepalive) ;;
*)
    echo "usage: bench/profile.sh enroll-otp|get-new|get-keepalive" >&2
    exit 2
    ;;
esac
CLIENTS=${BENCH_PROFILE_CLIENTS:-16}
SELF_TOP=25
CHILDREN_TOP=40

# shellcheck source=bench/lib.sh
. bench/lib.sh

command -v perf >/dev/null || die "perf is missing (Debian: linux-perf)"
CALL_GRAPH=(-g)
[ "${BENCH_PERF_DWARF:-0}" = 1 ] && CALL_GRAPH=(--call-graph dwarf)
loadgen_build

deploy ec ec:P-256
kipuka_start ec
LGARGS=(--port "$PORT" --cafile "$W/ec/ca/ca.pem" --pid "$KPID" --clients "$CLIENTS"
    --threads "$CLIENT_THREADS" --seconds "$DUR")
case $SCENARIO in
enroll-otp)
    LGARGS=(enroll "${LGARGS[@]}" --path "$EST/simpleenroll" --otp-file "$W/ec/otps"
        --entity bench --cn bench)
    ;;
get-new) LGARGS=(get "${LGARGS[@]}" --path "$EST/cacerts") ;;
get-keepalive) LGARGS=(get "${LGARGS[@]}" --path "$EST/cacerts" --keepalive) ;;
esac

log "kipuka (P-256 CA) pid $KPID: $SCENARIO, $CLIENTS clients, perf ${CALL_GRAPH[*]} for $DUR s"
on_client "$LG" "${LGARGS[@]}" >"$W/lg" 2>"$W/lg.err" &
LGPID=$!
PIDS+=("$LGPID")
# the load generator's own warm-up (1 s) is left out of the profile; perf
# runs on the client cores so that its work is not sampled as the server's
on_client sleep 1
PERF_DATA=${BENCH_PERF_DATA:-$W/perf.data}
on_client perf record "${CALL_GRAPH[@]}" -p "$KPID" -o "$PERF_DATA" -- sleep "$DUR" \
    >"$W/perf.out" 2>&1 || die "perf record failed: $(tail -3 "$W/perf.out")"
wait "$LGPID" || die "load generator failed: $(tail -3 "$W/lg.err")"
forget_pid "$LGPID"
[ -s "$W/lg.err" ] && sed 's/^/  /' "$W/lg.err" | head -6 >&2

# the first N entries of a perf report --stdio (lines that start with a
# percentage); from a file, so that no pipe is cut short under pipefail
entries() { awk -v n="$2" '/^ +[0-9.]+%/ { print; if (++i == n) exit }' "$1"; }

echo "kipuka $(git describe --always --dirty 2>/dev/null || echo '?'), $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "scenario $SCENARIO, $CLIENTS clients, $DUR s; server on CPUs $SERVER_CPUS ($THREADS" \
    "thread(s)), load generator and perf on CPUs $CLIENT_CPUS; perf record ${CALL_GRAPH[*]}"
echo "load generator: rps=$(kv "$W/lg" rps) p99_ms=$(kv "$W/lg" p99_ms)" \
    "errors=$(kv "$W/lg" errors) srv_cpu_us_per_req=$(kv "$W/lg" srv_cpu_us_per_req)" \
    "(perf slows the server: these are not bench figures)"
echo
perf report -i "$PERF_DATA" --stdio --no-children --sort sym -g none >"$W/self" 2>/dev/null ||
    die "perf report failed"
perf report -i "$PERF_DATA" --stdio --children --sort sym -g none >"$W/children" 2>/dev/null ||
    die "perf report --children failed"
echo "Top $SELF_TOP by symbol, self time (perf report --no-children --sort sym):"
entries "$W/self" "$SELF_TOP"
echo
echo "Top $CHILDREN_TOP by symbol, self + callees (perf report --children -g none --sort sym):"
entries "$W/children" "$CHILDREN_TOP"
