# Correctly signed requests that must still not be certified: unsound keys,
# weak signature digests, subjects with bad strings (tests/data/csr/hostile-*,
# made by tests/data/make-hostile-csrs.py). Each is POSTed with curl and one
# OTP: 400 with the reason in the body, no certificate row, an audit row
# with the outcome, and its OTP still unspent. Then a valid request with a
# compressed EC point gets a certificate whose key is the request's key,
# written uncompressed.
kp_init
# These requests carry names of their own: the OTP identity rules (which
# would answer 403 first) are tested in otp_identity.sh.
check "otp_subject = \"any\" in [label.default]" cfg_set label.default otp_subject '"any"'
kp_start
fetch_chain || { echo "Bail out! cannot fetch /cacerts"; exit 1; }
cd "$T" || exit 1
data=${KP_TEST_DATA:?}/csr

# refused FILE OUTCOME REASON: POST FILE (base64 DER) with an OTP of its
# own; expect 400, the reason (a fixed string) in the text/plain body, no new
# certificate, one audit row with OUTCOME and the reason, and the OTP unspent.
refused() {
    local f=$1 outcome=$2 reason=$3 before abefore code
    base64 "$data/$f" >"$f.b64"
    otp_id_create "dev-$f" || echo "# otp create failed"
    auth=(-u "dev-$f:$OTP")
    before=$(cert_count)
    abefore=$(audit_count)
    code=$(post_csr "$f.b64" "$BASE/simpleenroll" "${auth[@]}")
    expect_eq "$f answers 400" 400 "$code"
    check "$f: the answer says why ($reason)" grep -qF -- "$reason" resp.body
    expect_no_new_cert "$f" "$before"
    expect_eq "$f: one audit row, outcome $outcome, with the reason" \
        "$((abefore + 1))|$outcome|1" \
        "$(audit_count)|$(db "select outcome, instr(detail, '$reason') > 0 from audit order by id desc limit 1")"
    expect_eq "$f: its OTP is still active" active "$(otp_state "$OTP_ID")"
}

# CA/B BR 6.1.6: e = 1 is signed with d = 1 (no private key at all); e = 3
refused hostile-rsa-e1.der unsupported_key "RSA public exponent must be odd"
refused hostile-rsa-e3.der unsupported_key "RSA public exponent must be odd"
# RFC 3279 2.3.1: rsaEncryption parameters are NULL
refused hostile-rsa-params.der unsupported_key "parameters must be NULL"
# RFC 5480 2.2: hybrid point form (07)
refused hostile-ec-hybrid.der unsupported_key "EC point must be uncompressed (04) or compressed"
# weak signature digests
refused hostile-sha1.der policy_violation "CSR signed with SHA-1"
refused hostile-md5.der policy_violation "CSR signed with MD5"
# RFC 5280 4.1.2.4-4.1.2.6, CA/B BR 7.1.4: subject strings
refused hostile-cn-bmp.der policy_violation "must be PrintableString or UTF8String"
refused hostile-cn-printable-at.der policy_violation "character outside its alphabet"
refused hostile-cn-nul.der policy_violation "control character"
refused hostile-cn-escape.der policy_violation "control character"
refused hostile-country-dollar.der policy_violation "character outside its alphabet"
refused hostile-country-zz.der policy_violation "not an ISO 3166-1 alpha-2 code"
refused hostile-two-cn.der policy_violation "more than one commonName"
refused hostile-multi-rdn.der policy_violation "multi-valued RDN"
# invalid UTF-8 in a UTF8String: OpenSSL cannot parse the name at all
refused hostile-cn-overlong.der malformed_csr "malformed PKCS#10 request"

# JSON errors carry the same reason
code=$(post_csr hostile-rsa-e1.der.b64 "$BASE/simpleenroll" "${auth[@]}" \
    -H "Accept: application/json")
expect_eq "JSON: RSA e = 1 answers 400" 400 "$code"
check 'JSON: "error":"unsupported_key"' grep -q '"error": *"unsupported_key"' resp.body
check "JSON: the message names the exponent" grep -q '"message": *"RSA public exponent' resp.body

# A compressed P-256 point (02/03) is sound: issued, and written uncompressed.
base64 "$data/ec-compressed.der" >compressed.b64
before=$(cert_count)
otp=$(new_otp dev-compressed)
code=$(post_csr compressed.b64 "$BASE/simpleenroll" -u "dev-compressed:$otp")
expect_eq "a CSR with a compressed EC point enrolls (200)" 200 "$code"
expect_eq "that wrote one certificate row" $((before + 1)) "$(cert_count)"
p7_to_pem resp.body compressed.crt 2>/dev/null
openssl req -inform DER -in "$data/ec-compressed.der" -pubkey -noout >csr-pub.pem 2>/dev/null
check "the request's own key is compressed (BIT STRING of 34 bytes)" \
    sh -c "openssl asn1parse -in csr-pub.pem | grep -q 'l=  34 prim: BIT STRING'"
openssl pkey -pubin -in csr-pub.pem -pubout -ec_conv_form uncompressed >csr-pub-u.pem 2>/dev/null
openssl x509 -in compressed.crt -noout -pubkey >crt-pub.pem 2>/dev/null
check "openssl x509 -pubkey of the certificate is the request's key" \
    sh -c "[ -s crt-pub.pem ] && cmp -s crt-pub.pem csr-pub-u.pem"
check "the certificate's point is uncompressed (BIT STRING of 66 bytes)" \
    sh -c "openssl asn1parse -in crt-pub.pem | grep -q 'l=  66 prim: BIT STRING'"
check "the certificate verifies against the CA" \
    openssl verify -CAfile ca-chain.pem -purpose sslclient compressed.crt

# A CN sent as a BER constructed UTF8String is issued as DER (primitive).
base64 "$data/cn-ber-constructed.der" >ber.b64
otp=$(new_otp dev-ber)
code=$(post_csr ber.b64 "$BASE/simpleenroll" -u "dev-ber:$otp")
expect_eq "a CSR with a constructed (BER) CN string enrolls (200)" 200 "$code"
p7_to_pem resp.body ber.crt 2>/dev/null
check "the request's CN is a constructed UTF8String" \
    sh -c "openssl asn1parse -inform DER -in '$data/cn-ber-constructed.der' | grep -q 'cons: UTF8STRING'"
check "the certificate's CN is a primitive UTF8String, ber.example" \
    sh -c "openssl x509 -in ber.crt -outform DER | openssl asn1parse -inform DER | grep -q 'prim: UTF8STRING *:ber.example'"
check "no constructed string in the certificate" \
    sh -c "[ -s ber.crt ] && ! openssl x509 -in ber.crt -outform DER | openssl asn1parse -inform DER | grep -q 'cons: UTF8STRING'"
