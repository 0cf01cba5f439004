# POST /simpleenroll with an OTP (HTTP Basic), exactly as est-endpoints.txt
# shows it, then what the certificate, the store and the audit log must hold;
# then the body encodings and key types real clients send.
kp_init
kp_start
fetch_chain || { echo "Bail out! cannot fetch /cacerts"; exit 1; }
cd "$T" || exit 1

otp=$(new_otp device-001)
expect_eq "otp create prints one OTP line" 1 "$(printf '%s\n' "$otp" | grep -c .)"
before=$(cert_count)

# --- the spec's OTP example, verbatim but for the host and the OTP value ---
# Generate a private key and CSR
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
    -keyout device.key -out device.csr -nodes \
    -subj "/CN=device-001.example.com" 2>/dev/null
# Base64-encode the CSR (DER format)
openssl req -in device.csr -outform DER | base64 > device.csr.b64
# Enroll using OTP (entity-id:otp-value as HTTP Basic auth)
code=$(curl -X POST \
    --cacert ca-chain.pem \
    -u "device-001:$otp" \
    -H "Content-Type: application/pkcs10" \
    --data-binary @device.csr.b64 \
    -o enrolled.p7b \
    -s -D enrolled.h -w '%{http_code}' \
    "$BASE/simpleenroll")
# Decode the response to get the signed certificate
base64 -d enrolled.p7b | openssl pkcs7 -inform DER -print_certs -out device.crt

expect_eq "OTP simpleenroll answers 200" 200 "$code"
expect_eq "Content-Type is exactly application/pkcs7-mime; smime-type=certs-only" \
    "application/pkcs7-mime; smime-type=certs-only" \
    "$(tr -d '\r' <enrolled.h | sed -n 's/^content-type: *//Ip' | tail -1)"
expect_eq "Content-Transfer-Encoding is base64" base64 \
    "$(tr -d '\r' <enrolled.h | sed -n 's/^content-transfer-encoding: *//Ip' | tail -1)"
check "base64 body is in lines of at most 64 characters" \
    sh -c "test -s enrolled.p7b && ! awk 'length > 64' enrolled.p7b | grep -q ."
expect_eq "the PKCS#7 holds exactly the issued certificate" 1 \
    "$(grep -c 'BEGIN CERTIFICATE' device.crt 2>/dev/null)"
check "openssl verify -CAfile ca-chain.pem device.crt" openssl verify -CAfile ca-chain.pem device.crt
expect_eq "subject is the CSR's" "subject=CN=device-001.example.com" \
    "$(openssl x509 -in device.crt -noout -subject -nameopt RFC2253 2>&1)"
expect_eq "issuer is the CA" \
    "$(openssl x509 -in "$SRV/ca/ca.pem" -noout -subject -nameopt RFC2253 | sed 's/^subject=//')" \
    "$(openssl x509 -in device.crt -noout -issuer -nameopt RFC2253 2>&1 | sed 's/^issuer=//')"
check "public key is the CSR's" \
    bash -c "cmp <(openssl x509 -in device.crt -noout -pubkey) <(openssl req -in device.csr -noout -pubkey)"
openssl x509 -in device.crt -noout -text >device.txt 2>&1
expect_eq "EKU is exactly clientAuth" "TLS Web Client Authentication" \
    "$(grep -A1 'X509v3 Extended Key Usage' device.txt | tail -1 | sed 's/^ *//')"
check "basicConstraints is critical" grep -q 'X509v3 Basic Constraints: critical' device.txt
expect_eq "basicConstraints CA:FALSE" "CA:FALSE" \
    "$(grep -A1 'X509v3 Basic Constraints' device.txt | tail -1 | sed 's/^ *//')"
expect_eq "keyUsage for an EC key: digitalSignature, keyAgreement" \
    "Digital Signature, Key Agreement" \
    "$(grep -A1 'X509v3 Key Usage' device.txt | tail -1 | sed 's/^ *//')"
check "has a subjectKeyIdentifier" grep -q 'X509v3 Subject Key Identifier' device.txt
expect_eq "authorityKeyIdentifier is the CA's subjectKeyIdentifier" \
    "$(openssl x509 -in "$SRV/ca/ca.pem" -noout -ext subjectKeyIdentifier | tail -1 | sed 's/^ *//')" \
    "$(openssl x509 -in device.crt -noout -ext authorityKeyIdentifier | sed -n 's/^ *\(keyid:\)\{0,1\}\([0-9A-F:]\{20,\}\).*/\2/p')"
serial=$(cert_serial device.crt)
check "serial is 20 octets and positive ($serial)" \
    sh -c "echo '$serial' | grep -Eq '^[0-7][0-9a-f]{39}$'"
validity=$(cert_validity device.crt)
br=$(br_max_days)
check "validity is at most $br days (CA/B BR today; 200 until 2027-03-15) ($validity s)" \
    test "$validity" -le $((br * 86400))
check "validity is more than $((br - 1)) days (max_validity_days 398, capped at $br)" \
    test "$validity" -gt $(((br - 1) * 86400))
check "notAfter is not past the CA's notAfter" \
    test "$(cert_time device.crt end)" -le "$(cert_time "$SRV/ca/ca.pem" end)"
check "notBefore is not in the future" test "$(cert_time device.crt start)" -le "$(date +%s)"

expect_eq "one certificate row written" $((before + 1)) "$(cert_count)"
expect_eq "the row: label, subject, requester, auth_method, status" \
    "default|CN=device-001.example.com|device-001|otp|valid" \
    "$(db "select label, subject, requester, auth_method, status from certificates where serial = '$serial'")"
expect_eq "the row's validity is the certificate's" \
    "$(cert_time device.crt start)|$(cert_time device.crt end)" \
    "$(db "select not_before, not_after from certificates where serial = '$serial'")"
expect_eq "one audit row simpleenroll/ok for the default label" 1 \
    "$(audit_count "event = 'simpleenroll' and outcome = 'ok' and label = 'default'")"
check "the OTP is now used (otp list)" \
    sh -c "'$KIPUKA' otp list -c '$CFG' | awk '\$2 == \"device-001\" { print \$NF }' | grep -qx used"

# --- the spec's "handling a 401" example ---
before=$(cert_count)
audit_before=$(audit_count)
curl -v -X POST \
    --cacert ca-chain.pem \
    -u "device-001:wrong-otp-value" \
    -H "Content-Type: application/pkcs10" \
    --data-binary @device.csr.b64 \
    "$BASE/simpleenroll" >wrong.out 2>wrong.err
check "wrong OTP: < HTTP/1.1 401" grep -q '^< HTTP/1.1 401' wrong.err
check 'wrong OTP: < WWW-Authenticate: Basic realm="est"' \
    grep -q '^< WWW-Authenticate: Basic realm="est"' wrong.err
expect_no_new_cert "wrong OTP" "$before"
expect_eq "wrong OTP: one audit row with outcome unauthorized" $((audit_before + 1)) \
    "$(audit_count)"
expect_eq "wrong OTP: the audit row says unauthorized" "simpleenroll|unauthorized" \
    "$(db "select event, outcome from audit order by id desc limit 1")"

# --- body encodings (RFC 8951: base64 with or without line breaks, raw DER) ---
# enroll_body NAME FILE: enroll FILE with a fresh OTP for NAME; prints the
# status, the response body lands in NAME.p7b
enroll_body() {
    local o
    o=$(new_otp "$1")
    post_csr "$2" "$BASE/simpleenroll" -u "$1:$o"
    cp "$T/resp.body" "$T/$1.p7b" 2>/dev/null
}
make_csr raw "/CN=raw.example.com" ec:P-256
openssl req -in raw.csr -outform DER -out raw.der
before=$(cert_count)
expect_eq "raw DER body answers 200" 200 "$(enroll_body raw raw.der)"
expect_eq "raw DER body: one row" $((before + 1)) "$(cert_count)"

make_csr oneline "/CN=oneline.example.com" ec:P-256
openssl req -in oneline.csr -outform DER | base64 -w0 >oneline.b64
check "one-line base64 fixture has no line break" test "$(wc -l <oneline.b64)" = 0
expect_eq "base64 on one line answers 200" 200 "$(enroll_body oneline oneline.b64)"

make_csr crlf "/CN=crlf.example.com" ec:P-256
sed 's/$/\r/' crlf.csr.b64 >crlf.b64
expect_eq "base64 with CRLF line ends answers 200" 200 "$(enroll_body crlf crlf.b64)"

# --- key types the default label allows ---
for kt in ec:P-384 rsa:2048 rsa:3072; do
    n=k-${kt/:/-}
    make_csr "$n" "/CN=$n.example.com" "$kt"
    code=$(enroll_body "$n" "$n.csr.b64")
    expect_eq "$kt CSR answers 200" 200 "$code"
    p7_to_pem "$n.p7b" "$n.crt" 2>/dev/null
    check "$kt certificate verifies" openssl verify -CAfile ca-chain.pem "$n.crt"
    check "$kt certificate carries the CSR's key" \
        bash -c "cmp <(openssl x509 -in $n.crt -noout -pubkey) <(openssl req -in $n.csr -noout -pubkey)"
done
expect_eq "keyUsage for an RSA key: digitalSignature, keyEncipherment" \
    "Digital Signature, Key Encipherment" \
    "$(openssl x509 -in k-rsa-2048.crt -noout -ext keyUsage 2>&1 | tail -1 | sed 's/^ *//')"

# --- subjectAltName from the CSR ---
make_csr san "/CN=san.example.com" ec:P-256 \
    -addext "subjectAltName=DNS:san.example.com,DNS:alt.example.com,IP:192.0.2.10"
# (an IP SAN needs binding to the OTP under otp_subject = "entity")
o=$(new_otp san --san DNS:san.example.com --san DNS:alt.example.com --san IP:192.0.2.10)
expect_eq "CSR with DNS and IP SANs bound to the OTP answers 200" 200 \
    "$(post_csr san.csr.b64 "$BASE/simpleenroll" -u "san:$o")"
cp "$T/resp.body" "$T/san.p7b" 2>/dev/null
p7_to_pem san.p7b san.crt 2>/dev/null
expect_eq "the certificate carries the CSR's SANs" \
    "DNS:san.example.com, DNS:alt.example.com, IP Address:192.0.2.10" \
    "$(openssl x509 -in san.crt -noout -ext subjectAltName 2>&1 | tail -1 | sed 's/^ *//')"
san_serial=$(cert_serial san.crt)
db_sans=$(db "select sans from certificates where serial = '$san_serial'")
check "the row's sans column lists them" \
    sh -c 'case $1 in *san.example.com*alt.example.com*192.0.2.10*) ;; *) echo "$1"; exit 1;; esac' \
    _ "$db_sans"
