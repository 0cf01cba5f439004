#!/bin/bash
# Where an enrollment's instructions go, independent of the machine's load:
# kipuka serve (threads = 1, kipuka init's config otherwise) under valgrind
# --tool=callgrind answers OTP simpleenrolls (P-256, a new TLS 1.3
# connection each) from bench-loadgen for S seconds; a run without requests
# is subtracted, and each stage's inclusive count is divided by the
# enrollments answered 200. Instructions miss the kernel (system calls,
# fsync, context switches): bench/run.sh measures time.
# Usage: bench/enroll-cost.sh [KIPUKA-BINARY] [SECONDS]   (bench/README.md, Profiles)
set -u
BIN=${1:-build/kipuka}
SECS=${2:-20}
LG=build/bench-loadgen
command -v callgrind_annotate >/dev/null || { echo "enroll-cost: needs callgrind_annotate" >&2; exit 1; }
[ -x "$LG" ] || { echo "enroll-cost: $LG is missing (bench/run.sh builds it)" >&2; exit 1; }
# shellcheck source=bench/callgrind.sh
. "$(dirname "$0")/callgrind.sh"
cg_deploy "$BIN"
"$BIN" otp create -c "$CFG" --entity bench --uses 1000000 --count 4 --ttl 24h >"$W/otps" 2>/dev/null ||
    { echo "enroll-cost: otp create failed" >&2; exit 1; }

# run SECONDS OUT: serve under callgrind, enroll for SECONDS (0: none)
run() {
    cg_serve "$BIN" "$CFG" "$2"
    if [ "$1" -gt 0 ]; then
        "$LG" enroll --port "$CG_PORT" --cafile "$W/srv/ca/ca.pem" --path /.well-known/est/simpleenroll \
            --clients 4 --otp-file "$W/otps" --entity bench --cn bench --seconds "$1" --warmup 0 \
            >"$W/lg" 2>&1 || { echo "enroll-cost: load generator failed" >&2; cat "$W/lg" >&2; }
    fi
    cg_stop
}

# incl FILE FUNCTION: the function's inclusive instructions. callgrind lists
# a function once per source file its code came from (inlined code apart)
# and once whole: the largest line is the whole.
incl() {
    callgrind_annotate --inclusive=yes --threshold=100 "$1" 2>/dev/null |
        awk -v f="$2" '{ s = $0; sub(/^ *[0-9,]+ *(\([^)]*\))? */, "", s); sub(/ \[.*$/, "", s) }
            s ~ ("(^|/|:)" f "$") { gsub(/,/, "", $1); if ($1 + 0 > max) max = $1 + 0 }
            END { if (max > 0) print max }'
}

run 0 "$W/base.out"
run "$SECS" "$W/full.out"
n=$(grep -c 'simpleenroll.* status=200' "$W/err")
[ "$n" -gt 0 ] || { echo "enroll-cost: no enrollment answered" >&2; tail -3 "$W/err" >&2; exit 1; }
total=$(($(sed -n 's/^totals: //p' "$W/full.out") - $(sed -n 's/^totals: //p' "$W/base.out")))
echo "$("$BIN" --version 2>/dev/null | head -1): $n OTP enrollments (P-256, new TLS 1.3 connection each)"
printf '%-58s %12s\n' "instructions per enrollment (callgrind, inclusive)" "count"
printf '%-58s %12d\n' "whole server, startup subtracted" $((total / n))
for f in SSL_do_handshake http_request_cb est_enroll csr_parse ca_issue store_issue \
    est_answer_cert profile_apply csr_fingerprint exchange_log; do
    v=$(incl "$W/full.out" "$f")
    [ -n "$v" ] && printf '  %-56s %12d\n' "$f" $((v / n))
done
