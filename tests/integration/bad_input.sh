# Hostile and broken requests: each gets its status code, writes no
# certificate row, and (when it reached the enrollment handler) an audit row.
# Requests carry a valid OTP unless the test is about the OTP, so that the
# status is caused by the input under test and not by missing credentials.
kp_init
# Not a test of which names an OTP may certify (otp_identity.sh is): its CSRs
# carry names other than their OTP's entity id.
check "otp_subject = \"any\" in [label.default]" cfg_set label.default otp_subject '"any"'
kp_start
fetch_chain || { echo "Bail out! cannot fetch /cacerts"; exit 1; }
cd "$T" || exit 1

make_csr good "/CN=good.example.com" ec:P-256
openssl req -in good.csr -outform DER -out good.der

# refused DESC WANT_STATUS OUTCOME CURL_ARGS...: send, then assert the status,
# that no certificate row appeared, and that one audit row was added with that
# outcome (OUTCOME "error": any outcome but ok; "-": no audit assertion, for
# refusals before the enrollment handler: routing, method, body size)
refused() {
    local desc=$1 want=$2 outcome=$3 before abefore code; shift 3
    before=$(cert_count)
    abefore=$(audit_count)
    code=$(req "$@")
    expect_eq "$desc answers $want" "$want" "$code"
    expect_no_new_cert "$desc" "$before"
    if [ "$outcome" = error ]; then
        expect_eq "$desc: one audit row with an error outcome" "$((abefore + 1))|1" \
            "$(audit_count)|$(db "select outcome != 'ok' from audit order by id desc limit 1")"
    elif [ "$outcome" != - ]; then
        expect_eq "$desc: audited as $outcome" "$((abefore + 1))|$outcome" \
            "$(audit_count)|$(db "select outcome from audit order by id desc limit 1")"
    fi
}
pkcs10=(-H "Content-Type: application/pkcs10")

# one OTP for all the 400s: none of them may consume it
otp_id_create dev-bad || echo "# otp create failed"
bad_otp=$OTP bad_otp_id=$OTP_ID
auth=(-u "dev-bad:$bad_otp")

printf 'this is not a CSR\000\001\002 at all' >garbage.bin
refused "garbage body" 400 error -X POST "${pkcs10[@]}" "${auth[@]}" \
    --data-binary @garbage.bin "$BASE/simpleenroll"
head -c $(($(stat -c %s good.der) / 2)) good.der >truncated.der
refused "truncated DER" 400 error -X POST "${pkcs10[@]}" "${auth[@]}" \
    --data-binary @truncated.der "$BASE/simpleenroll"
base64 -w0 truncated.der >truncated.b64
refused "truncated DER, base64" 400 error -X POST "${pkcs10[@]}" "${auth[@]}" \
    --data-binary @truncated.b64 "$BASE/simpleenroll"
# junk characters in the middle of valid base64
awk 'NR == 2 { $0 = substr($0, 1, 10) "*!~" substr($0, 11) } { print }' good.csr.b64 >junk.b64
check "junk fixture differs from the good base64" sh -c "! cmp -s junk.b64 good.csr.b64"
refused "base64 with junk characters" 400 invalid_base64 -X POST "${pkcs10[@]}" "${auth[@]}" \
    --data-binary @junk.b64 "$BASE/simpleenroll"
refused "wrong Content-Type text/plain" 415 unsupported_media_type -X POST \
    -H "Content-Type: text/plain" "${auth[@]}" --data-binary @good.csr.b64 "$BASE/simpleenroll"
refused "Content-Type application/pkcs10-foo (no prefix match)" 415 error -X POST \
    -H "Content-Type: application/pkcs10-foo" "${auth[@]}" --data-binary @good.csr.b64 \
    "$BASE/simpleenroll"
refused "missing Content-Type" 400 missing_content_type -X POST -H "Content-Type:" "${auth[@]}" \
    --data-binary @good.csr.b64 "$BASE/simpleenroll"
refused "empty body" 400 error -X POST "${pkcs10[@]}" "${auth[@]}" --data-binary '' \
    "$BASE/simpleenroll"

# RSA-1024 and P-521: key types outside the label's list
make_csr rsa1024 "/CN=rsa1024.example.com" rsa:1024
refused "RSA-1024 CSR" 400 error -X POST "${pkcs10[@]}" "${auth[@]}" \
    --data-binary @rsa1024.csr.b64 "$BASE/simpleenroll"
make_csr p521 "/CN=p521.example.com" ec:P-521
refused "P-521 CSR" 400 error -X POST "${pkcs10[@]}" "${auth[@]}" \
    --data-binary @p521.csr.b64 "$BASE/simpleenroll"

# broken signature: flip one byte near the end of the DER (inside the signature)
cp good.der badsig.der
len=$(stat -c %s badsig.der)
orig=$(od -An -tu1 -j $((len - 3)) -N1 badsig.der | tr -d ' ')
printf "\\$(printf %o $(((orig ^ 0x55) & 0xff)))" |
    dd of=badsig.der bs=1 seek=$((len - 3)) conv=notrunc 2>/dev/null
check "broken-signature fixture still parses" openssl req -inform DER -in badsig.der -noout
# (openssl 3.0 req -verify exits 0 either way: read what it says)
check "broken-signature fixture fails openssl req -verify" \
    sh -c "openssl req -inform DER -in badsig.der -noout -verify 2>&1 | grep -q 'verify failure'"
base64 badsig.der >badsig.b64
refused "CSR with a broken signature" 400 bad_csr_signature -X POST "${pkcs10[@]}" "${auth[@]}" \
    --data-binary @badsig.b64 "$BASE/simpleenroll"

# --- after all those 400s the OTP is still unspent ---
expect_eq "the OTP is still active after the 400s" active "$(otp_state "$bad_otp_id")"
before=$(cert_count)
code=$(req -X POST "${pkcs10[@]}" "${auth[@]}" --data-binary @good.csr.b64 "$BASE/simpleenroll")
expect_eq "the same OTP then enrolls a good CSR (200)" 200 "$code"
expect_eq "that wrote one row" $((before + 1)) "$(cert_count)"
cp resp.body good.p7b
p7_to_pem good.p7b good.crt 2>/dev/null

# --- OTP problems: 401 ---
refused "reused OTP" 401 unauthorized -X POST "${pkcs10[@]}" "${auth[@]}" \
    --data-binary @good.csr.b64 "$BASE/simpleenroll"
expect_eq "reused OTP: WWW-Authenticate: Basic realm=\"est\"" 'Basic realm="est"' \
    "$(header WWW-Authenticate)"
refused "wrong OTP" 401 unauthorized -X POST "${pkcs10[@]}" -u "dev-bad:not-the-otp" \
    --data-binary @good.csr.b64 "$BASE/simpleenroll"
expect_eq "wrong OTP: WWW-Authenticate: Basic realm=\"est\"" 'Basic realm="est"' \
    "$(header WWW-Authenticate)"
otp=$(new_otp dev-other)
refused "valid OTP under another entity name" 401 unauthorized -X POST "${pkcs10[@]}" \
    -u "dev-bad:$otp" --data-binary @good.csr.b64 "$BASE/simpleenroll"

otp_id_create dev-exp --ttl 1s || echo "# otp create --ttl 1s failed"
exp_otp=$OTP
# poll until `otp list` calls it expired (bounded: 10 s)
for _ in $(seq 1 200); do
    [ "$(otp_state "$OTP_ID")" = expired ] && break
    sleep 0.05
done
expect_eq "otp list shows the 1 s OTP as expired" expired "$(otp_state "$OTP_ID")"
refused "expired OTP" 401 unauthorized -X POST "${pkcs10[@]}" -u "dev-exp:$exp_otp" \
    --data-binary @good.csr.b64 "$BASE/simpleenroll"

# --- routing and size ---
otp=$(new_otp dev-404)
refused "unknown label" 404 - -X POST "${pkcs10[@]}" -u "dev-404:$otp" \
    --data-binary @good.csr.b64 "$BASE/no-such-label/simpleenroll"
refused "serverkeygen (not enabled)" 404 - -X POST "${pkcs10[@]}" -u "dev-404:$otp" \
    --data-binary @good.csr.b64 "$BASE/serverkeygen"
refused "fullcmc (not enabled)" 404 - -X POST \
    -H "Content-Type: application/pkcs7-mime; smime-type=CMC-request" -u "dev-404:$otp" \
    --data-binary @good.csr.b64 "$BASE/fullcmc"
refused "GET simpleenroll" 405 - -u "dev-404:$otp" "$BASE/simpleenroll"
head -c $((10 * 1024 * 1024)) /dev/zero | tr '\0' 'A' >big.b64
refused "10 MB body" 413 - -X POST "${pkcs10[@]}" -u "dev-404:$otp" \
    --data-binary @big.b64 "$BASE/simpleenroll"
head -c $((65536 + 1)) /dev/zero | tr '\0' 'A' >justover.b64
refused "body of max_body_bytes + 1 (no Expect: 100-continue)" 413 - -X POST "${pkcs10[@]}" \
    -H "Expect:" -u "dev-404:$otp" --data-binary @justover.b64 "$BASE/simpleenroll"
expect_eq "the server still answers after the 413s" 200 "$(req "$BASE/cacerts")"
expect_eq "the OTP used for the 404/405/413 requests still enrolls (200)" 200 \
    "$(req -X POST "${pkcs10[@]}" -u "dev-404:$otp" --data-binary @good.csr.b64 "$BASE/simpleenroll")"

# --- reenroll ---
make_csr other "/CN=other.example.com" ec:P-256
refused "reenroll with a mismatched subject" 403 forbidden -X POST "${pkcs10[@]}" \
    --cert good.crt --key good.key --data-binary @other.csr.b64 "$BASE/simplereenroll"
openssl req -new -key good.key -subj "/CN=good.example.com" -outform DER 2>/dev/null |
    base64 >renew.b64
refused "reenroll without a client certificate" 401 unauthorized -X POST "${pkcs10[@]}" \
    --data-binary @renew.b64 "$BASE/simplereenroll"
refused "reenroll with a broken-signature CSR" 400 bad_csr_signature -X POST "${pkcs10[@]}" \
    --cert good.crt --key good.key --data-binary @badsig.b64 "$BASE/simplereenroll"

# --- JSON error bodies with Accept: application/json ---
otp=$(new_otp dev-json)
code=$(req -X POST "${pkcs10[@]}" -H "Accept: application/json" -u "dev-json:$otp" \
    --data-binary @junk.b64 "$BASE/simpleenroll")
expect_eq "Accept: application/json, junk base64: 400" 400 "$code"
expect_eq "JSON error Content-Type" "application/json" "$(header Content-Type)"
check 'JSON error body has "error":"invalid_base64"' grep -q '"error": *"invalid_base64"' resp.body
check 'JSON error body has a "message"' grep -q '"message": *"[^"]' resp.body
code=$(req -X POST "${pkcs10[@]}" -H "Accept: text/html, application/json;q=0.9" \
    -u "dev-json:wrong" --data-binary @good.csr.b64 "$BASE/simpleenroll")
expect_eq "JSON 401 (Accept lists application/json second)" 401 "$code"
check 'JSON 401 body has "error":"unauthorized"' grep -q '"error": *"unauthorized"' resp.body
code=$(req -H "Accept: application/json" "$BASE/no-such-label/cacerts")
expect_eq "JSON 404 for an unknown label" 404 "$code"
check 'JSON 404 body has "error":"unknown_label"' grep -q '"error": *"unknown_label"' resp.body
code=$(req -X POST "${pkcs10[@]}" -u "dev-json:$otp" --data-binary @junk.b64 "$BASE/simpleenroll")
expect_eq "without Accept: application/json the error is text/plain" "400|text/plain" \
    "$code|$(header Content-Type | cut -d';' -f1)"
check "the text/plain error body is not JSON" sh -c "! grep -q '\"error\"' resp.body"
