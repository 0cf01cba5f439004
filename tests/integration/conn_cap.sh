# Connection cap: with server.max_connections reached, a new connection
# completes TLS and gets 503 with Retry-After and Connection: close; past a
# small allowance (max_connections / 10 + 16) new connections are closed at
# once, without TLS. Within the cap the server keeps serving, and it never
# runs out of descriptors: at start it raises its open file limit to the hard
# limit and lowers max_connections (with a warning) if that is still short.
SLOWCLIENT=${SLOWCLIENT:?SLOWCLIENT must point to tests/tools slowclient}
kp_init
sed -i '/^\[server\]$/a max_connections = 20' "$CFG"
kp_start
fetch_chain || { echo "Bail out! cannot fetch /cacerts"; exit 1; }
cd "$T" || exit 1

# hold NAME COUNT: slowclient holding COUNT TLS connections (silent) for 60 s
# in the background; waits for its "ready" line and sets HOLD_PID
hold() {
    "$SLOWCLIENT" "$PORT" "$2" tls 60 >"$1.out" 2>"$1.err" &
    HOLD_PID=$!
    for _ in $(seq 1 400); do
        grep -q '^ready' "$1.out" && return 0
        sleep 0.025
    done
    return 1
}
# opened NAME: connections slowclient NAME got through TLS
opened() { awk '/^ready/ { print $2 }' "$1.out"; }
# wait_status WANT: poll GET /cacerts (5 s at most) until it answers WANT
wait_status() {
    for _ in $(seq 1 100); do
        [ "$(req "$BASE/cacerts")" = "$1" ] && return 0
        sleep 0.05
    done
    return 1
}

check "19 connections held" hold first 19
expect_eq "... all 19 opened" 19 "$(opened first)"
expect_eq "the 20th connection is served: 200" 200 "$(req "$BASE/cacerts")"
kill "$HOLD_PID"; wait "$HOLD_PID" 2>/dev/null
check "20 connections held (max_connections)" hold first 20
first=$HOLD_PID
code=$(req "$BASE/cacerts"); rc=$?
expect_eq "over the cap: 503 after TLS, curl exit 0" "503 0" "$code $rc"
expect_eq "503 carries Retry-After (est.retry_after)" 30 "$(header Retry-After)"
expect_eq "503 says Connection: close" close "$(header Connection)"
expect_eq "503 body says why" "server busy: too many connections, retry later" \
    "$(cat "$T/resp.body")"
make_csr capped "/CN=capped.example.com" ec:P-256
otp=$(new_otp capped)
before=$(cert_count)
expect_eq "an enrollment over the cap: 503" 503 "$(enroll_otp capped "capped:$otp")"
expect_no_new_cert "enrollment over the cap" "$before"

check "40 more connections attempted" hold second 40
second=$HOLD_PID
n=$(opened second)
check "at most the allowance of 18 got TLS (got ${n:-?}), the rest were closed" \
    sh -c "test '${n:-0}' -ge 1 && test '${n:-99}' -le 18"
req "$BASE/cacerts" >/dev/null
rc=$?
check "allowance used up: a new connection is closed before TLS (curl exit $rc)" \
    sh -c "test $rc = 35 || test $rc = 56"

kill "$second"; wait "$second" 2>/dev/null
check "the allowance frees up: 503 again" wait_status 503
kill "$first"; wait "$first" 2>/dev/null
check "under the cap again: 200" wait_status 200
expect_eq "and the OTP that met the 503 still enrolls: 200" 200 \
    "$(enroll_otp capped "capped:$otp")"
check "the cap is logged as a warning with a count" \
    grep -q 'warn .*max_connections (20) reached: refused [0-9]* connection' "$T/server.log"
check "no descriptor exhaustion" sh -c "! grep -qi 'too many open files' '$T/server.log'"

# --- a low open file limit: max_connections is lowered at start ---
kp_stop
sed -i '/^max_connections = 20$/d' "$CFG"
real=$KIPUKA
printf '#!/bin/sh\nexec prlimit --nofile=256:256 "%s" "$@"\n' "$real" >limited.sh
chmod +x limited.sh
KIPUKA=$T/limited.sh
kp_start
KIPUKA=$real
low=$(sed -n 's/.*server.max_connections 10000 lowered to \([0-9]*\):.*/\1/p' "$T/server.log")
check "ulimit -n 256: start warns that max_connections 10000 is lowered (to ${low:-?})" \
    sh -c "test -n '$low' && test '$low' -lt 256"
check "300 connections attempted against it" hold flood 300
n=$(opened flood)
check "some got TLS (${n:-?}), within the lowered cap and its allowance" \
    sh -c "test '${n:-0}' -ge 1 && test '${n:-999}' -le $((low + low / 10 + 16))"
fds=$(ls "/proc/$SERVER_PID/fd" | wc -l)
check "the server holds fewer descriptors than its limit ($fds < 256)" test "$fds" -lt 256
kill "$HOLD_PID"; wait "$HOLD_PID" 2>/dev/null
check "after the flood: 200" wait_status 200
check "no descriptor exhaustion" sh -c "! grep -qi 'too many open files' '$T/server.log'"
