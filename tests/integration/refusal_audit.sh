# Unauthenticated refusals are audited without letting a flood write one row
# each: per address, label, operation, outcome and reason, the first refusal
# of a window (server.auth_fail_window) is a row of its own and the rest are
# counted into one summary row, "N more refusals from ADDR in the last W s:
# REASON", written when the window closes or at shutdown. The counts add up.
# Authenticated refusals stay one row each.
kp_init
check "auth_fail_window = 4" cfg_add server auth_fail_window 4
kp_start
fetch_chain || { echo "Bail out! cannot fetch /cacerts"; exit 1; }
cd "$T" || exit 1
make_csr dev "/CN=flood.example.com" ec:P-256

# refused_total [EXTRA-WHERE]: unauthenticated refusals on record: one per
# row, N for a summary row
refused_total() {
    db "select detail from audit where outcome in ('unauthorized', 'rate_limited')${1:+ and $1}" |
        awk '/ more refusals from / { s += $1; next } { s += 1 } END { print s + 0 }'
}
refused_rows() { audit_count "outcome in ('unauthorized', 'rate_limited')"; }

# flood N NAME [curl args...]: N POSTs of the CSR on one connection; the
# statuses, one a line, in NAME.codes
flood() {
    local n=$1 name=$2; shift 2
    for _ in $(seq 1 "$n"); do
        echo "url = \"$BASE/simpleenroll\""
        echo "output = \"/dev/null\""
    done >"$name.curlrc"
    curl -s -K "$name.curlrc" -w '%{http_code}\n' -X POST --cacert ca-chain.pem \
        -H "Content-Type: application/pkcs10" --data-binary @dev.csr.b64 "$@" >"$name.codes"
}

# --- 1,000 refusals with a wrong OTP and a 600-byte user id ---
LONG_USER=flood$(head -c 600 /dev/zero | tr '\0' A)
before_rows=$(refused_rows)
start=$(date +%s)
flood 1000 f1 -u "$LONG_USER:wrong-otp"
expect_eq "1000 requests answered" 1000 "$(wc -l <f1.codes)"
expect_eq "all refused: 401 until the entity limit, then 429" 1000 \
    "$(grep -c '^401$\|^429$' f1.codes)"
n401=$(grep -c '^401$' f1.codes)
rows_now=$(($(refused_rows) - before_rows))
check "while they arrive, at most a handful of rows are written ($rows_now)" \
    test "$rows_now" -le 6
# the window closes 4 s after the first refusal; the summaries follow within ~1 s
for _ in $(seq 1 80); do
    [ "$(refused_total)" = 1000 ] && break
    sleep 0.25
done
elapsed=$(($(date +%s) - start))
expect_eq "the counts on record add up to 1000 without a restart" 1000 "$(refused_total)"
check "within the window plus a few seconds ($elapsed s)" test "$elapsed" -le 12
rows=$(($(refused_rows) - before_rows))
check "1000 refusals make at most a handful of rows ($rows)" test "$rows" -le 8
expect_eq "the 401s add up on their own ($n401)" "$n401" \
    "$(refused_total "outcome = 'unauthorized' and detail like '%unknown OTP%'")"
expect_eq "the 429s add up on their own" "$((1000 - n401))" \
    "$(refused_total "outcome = 'rate_limited'")"
check "a summary row names the address and the window" \
    test "$(audit_count "detail like '% more refusals from 127.0.0.1 in the last _ s: %'")" -ge 1
check "no row keeps more than 64 bytes of the user id" \
    test "$(db "select max(length(subject)) from audit where outcome in ('unauthorized', 'rate_limited')")" -le 64
check "the first row still names who tried" \
    test "$(audit_count "subject like 'floodAAAA%'")" -ge 1
check "no row keeps more than 200 bytes of detail" \
    test "$(db "select max(length(detail)) from audit")" -le 200

# --- refusals still counted at shutdown are written before exit ---
sleep 1 # past the entity block: "no credentials" is a reason of its own anyway
flood 50 f2
expect_eq "50 requests without credentials: 401" 50 "$(grep -c '^401$' f2.codes)"
check "before shutdown, fewer than 50 are on record (the rest are still counted)" \
    test "$(refused_total "detail like '%no credentials%'")" -lt 50
kp_stop
expect_eq "after SIGTERM the 50 refusals without credentials are all on record" 50 \
    "$(refused_total "detail like '%no credentials%'")"

# --- authenticated refusals: one row each ---
kp_start
otp=$(new_otp policy --uses 10)
make_csr weak "/CN=policy.example.com" rsa:1024 # the OTP entity's own name
before=$(audit_count "outcome = 'unsupported_key'")
for _ in 1 2 3 4 5; do
    code=$(post_csr weak.csr.b64 "$BASE/simpleenroll" -u "policy:$otp")
    [ "$code" = 400 ] || echo "# weak key: HTTP $code"
done
expect_eq "five refused CSRs of an authenticated client: five rows" "$((before + 5))" \
    "$(audit_count "outcome = 'unsupported_key'")"
