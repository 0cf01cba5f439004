# Slow clients (tests/tools/slowclient.c): connections that never send, that
# send a TLS ClientHello one byte a second, that finish TLS and then say
# nothing, or that trickle an HTTP header one byte a second are closed by the
# server once server.read_timeout has passed since accept; and 500 of them
# open at once do not keep a normal enrollment from succeeding promptly.
SLOWCLIENT=${SLOWCLIENT:?SLOWCLIENT must point to tests/tools slowclient}
kp_init
sed -i '/^\[server\]$/a read_timeout = 2' "$CFG"
kp_start
fetch_chain || { echo "Bail out! cannot fetch /cacerts"; exit 1; }
cd "$T" || exit 1

# field NAME FILE: value of NAME=... in slowclient's "closed" line
field() { sed -n "s/^closed .*$1=\([0-9-]*\).*/\1/p" "$2"; }

# --- read_timeout = 2 s: each kind of slow client is cut off ---
pids=()
for m in idle hello tls trickle; do
    "$SLOWCLIENT" "$PORT" 20 "$m" 20 >"slow-$m.out" 2>"slow-$m.err" &
    pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
for m in idle hello tls trickle; do
    expect_eq "$m: 20 connections opened, all 20 closed by the server" "ready 20|closed 20/20" \
        "$(cut -d' ' -f1-2 "slow-$m.out" | paste -sd'|')"
    min=$(field min_after_open_ms "slow-$m.out")
    max=$(field max_after_open_ms "slow-$m.out")
    check "$m: closed no sooner than read_timeout (shortest ${min:-?} ms)" test "${min:-0}" -ge 1900
    check "$m: closed within read_timeout + 2 s (longest ${max:-?} ms)" test "${max:-99999}" -le 4000
done
expect_eq "the server still answers" 200 "$(req "$BASE/cacerts")"

# --- 500 slow connections open; an enrollment still succeeds promptly ---
sed -i 's/^read_timeout = 2$/read_timeout = 30/' "$CFG"
kp_restart
pids=()
for spec in "200 idle" "150 hello" "150 trickle"; do
    set -- $spec
    "$SLOWCLIENT" "$PORT" "$1" "$2" 60 >"many-$2.out" 2>"many-$2.err" &
    pids+=($!)
done
for _ in $(seq 1 400); do
    [ "$(cat many-*.out 2>/dev/null | grep -c '^ready')" = 3 ] && break
    sleep 0.05
done
expect_eq "500 slow connections are open" 500 \
    "$(awk '/^ready/ { n += $2 } END { print n + 0 }' many-*.out)"
make_csr busy "/CN=busy.example.com" ec:P-256
otp=$(new_otp busy)
start=$(date +%s%N)
code=$(enroll_otp busy "busy:$otp")
ms=$((($(date +%s%N) - start) / 1000000))
expect_eq "an enrollment while they are open: 200" 200 "$code"
check "... within 5 s ($ms ms)" test "$ms" -lt 5000
check "the enrolled certificate verifies" \
    sh -c "base64 -d busy.p7b | openssl pkcs7 -inform DER -print_certs -out busy.crt &&
           openssl verify -CAfile ca-chain.pem busy.crt"
running=0
for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && running=$((running + 1)); done
expect_eq "the slow clients were still holding their connections (none closed yet)" \
    "3|0" "$running|$(cat many-*.out | grep -c '^closed')"
for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
check "no descriptor exhaustion or error in the server log" \
    sh -c "! grep -qi 'too many open files\|error' '$T/server.log'"
