# Repeated failed authentication is cut off with 429 + Retry-After and
# audited; other entities from the same address are unaffected until the
# per-address limit.
kp_init
# Not a test of which names an OTP may certify (otp_identity.sh is): its CSRs
# carry names other than their OTP's entity id.
check "otp_subject = \"any\" in [label.default]" cfg_set label.default otp_subject '"any"'
sed -i 's/^\[server\]$/[server]\nauth_fail_limit = 3\nauth_fail_limit_addr = 6\nauth_fail_window = 30/' "$CFG"
kp_start
fetch_chain || { echo "Bail out! cannot fetch /cacerts"; exit 1; }
make_csr dev "/CN=rl.example.com" ec:P-256
good=$(new_otp victim)
other=$(new_otp bystander)

for i in 1 2 3; do
    code=$(enroll_otp dev "victim:wrong-$i")
    expect_eq "wrong OTP $i for victim answers 401" 401 "$code"
done
code=$(curl -s -o /dev/null -D "$T/h" -w '%{http_code}' -X POST --cacert "$T/ca-chain.pem" \
    -u "victim:$good" -H "Content-Type: application/pkcs10" --data-binary @"$T/dev.csr.b64" \
    "$BASE/simpleenroll")
expect_eq "after 3 failures even the right OTP answers 429" 429 "$code"
ra=$(sed -n 's/^[Rr]etry-[Aa]fter: *\([0-9]*\).*/\1/p' "$T/h")
check "429 carries Retry-After within the window (got '$ra')" \
    sh -c "[ -n '$ra' ] && [ '$ra' -ge 1 ] && [ '$ra' -le 30 ]"
expect_eq "the refusal is audited as rate_limited" "simpleenroll|rate_limited|victim" \
    "$(db "select event, outcome, subject from audit order by id desc limit 1")"
expect_eq "the victim's OTP was not consumed" 0 \
    "$(db "select count(*) from certificates where requester = 'victim'")"

code=$(enroll_otp dev "bystander:$other")
expect_eq "another entity from the same address still enrolls" 200 "$code"

for i in 1 2 3; do enroll_otp dev "guess-$i:nope" >/dev/null; done
code=$(enroll_otp dev "fresh:whatever")
expect_eq "after 6 failures from one address, the address gets 429" 429 "$code"
