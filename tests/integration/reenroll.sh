# POST /simplereenroll as est-endpoints.txt shows it: renew with the same key,
# rekey with a new one; subject and SANs must equal the presented certificate
# (403 otherwise) unless reenroll_allow_change = true; no client cert is 401.
kp_init
kp_start
fetch_chain || { echo "Bail out! cannot fetch /cacerts"; exit 1; }
cd "$T" || exit 1

check "OTP enrollment of device.crt" enroll_ok device "/CN=device-001.example.com" device-001

# --- the spec's example: renew with the existing key ---
before=$(cert_count)
# Generate a new CSR using the existing key (or a new key for rekeying)
openssl req -new -key device.key -out renew.csr -nodes \
    -subj "/CN=device-001.example.com" 2>/dev/null
# Base64-encode the CSR
openssl req -in renew.csr -outform DER | base64 > renew.csr.b64
# Re-enroll using the current device certificate for mTLS auth
code=$(curl -X POST \
    --cacert ca-chain.pem \
    --cert device.crt \
    --key device.key \
    -H "Content-Type: application/pkcs10" \
    --data-binary @renew.csr.b64 \
    -o renewed.p7b \
    -s -D renewed.h -w '%{http_code}' \
    "$BASE/simplereenroll")
# Decode the renewed certificate
base64 -d renewed.p7b 2>/dev/null | openssl pkcs7 -inform DER -print_certs -out device-renewed.crt 2>/dev/null

expect_eq "simplereenroll (same key) answers 200" 200 "$code"
expect_eq "Content-Type is application/pkcs7-mime; smime-type=certs-only" \
    "application/pkcs7-mime; smime-type=certs-only" \
    "$(tr -d '\r' <renewed.h | sed -n 's/^content-type: *//Ip' | tail -1)"
check "renewed certificate verifies" openssl verify -CAfile ca-chain.pem device-renewed.crt
expect_eq "renewed certificate keeps the subject" "subject=CN=device-001.example.com" \
    "$(openssl x509 -in device-renewed.crt -noout -subject -nameopt RFC2253 2>&1)"
check "renewed certificate keeps the key" \
    bash -c "cmp <(openssl x509 -in device-renewed.crt -noout -pubkey) <(openssl x509 -in device.crt -noout -pubkey)"
check "renewed certificate has a new serial" \
    test "$(cert_serial device-renewed.crt)" != "$(cert_serial device.crt)"
expect_eq "one certificate row written" $((before + 1)) "$(cert_count)"
serial=$(cert_serial device-renewed.crt)
expect_eq "the row: label, subject, auth_method, status" \
    "default|CN=device-001.example.com|mtls|valid" \
    "$(db "select label, subject, auth_method, status from certificates where serial = '$serial'")"
expect_eq "audit row simplereenroll/ok" 1 \
    "$(audit_count "event = 'simplereenroll' and outcome = 'ok'")"

# --- rekey: a new key, authenticated by the renewed certificate ---
before=$(cert_count)
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout rekey.key -out rekey.csr -subj "/CN=device-001.example.com" 2>/dev/null
openssl req -in rekey.csr -outform DER | base64 > rekey.csr.b64
code=$(curl -X POST \
    --cacert ca-chain.pem \
    --cert device-renewed.crt \
    --key device.key \
    -H "Content-Type: application/pkcs10" \
    --data-binary @rekey.csr.b64 \
    -o rekeyed.p7b \
    -s -w '%{http_code}' \
    "$BASE/simplereenroll")
base64 -d rekeyed.p7b 2>/dev/null | openssl pkcs7 -inform DER -print_certs -out device-rekeyed.crt 2>/dev/null
expect_eq "simplereenroll with a new key (rekey) answers 200" 200 "$code"
check "rekeyed certificate verifies" openssl verify -CAfile ca-chain.pem device-rekeyed.crt
check "rekeyed certificate carries the new key" \
    bash -c "cmp <(openssl x509 -in device-rekeyed.crt -noout -pubkey) <(openssl req -in rekey.csr -noout -pubkey)"
expect_eq "rekey: one certificate row written" $((before + 1)) "$(cert_count)"

# --- mismatches ---
make_csr othersubj "/CN=device-002.example.com" ec:P-256
before=$(cert_count)
code=$(post_csr othersubj.csr.b64 "$BASE/simplereenroll" --cert device.crt --key device.key)
expect_eq "reenroll with another subject answers 403" 403 "$code"
expect_no_new_cert "reenroll subject mismatch" "$before"
expect_eq "the refusal is audited as simplereenroll/forbidden" "simplereenroll|forbidden" \
    "$(db "select event, outcome from audit order by id desc limit 1")"

make_csr addsan "/CN=device-001.example.com" ec:P-256 -addext "subjectAltName=DNS:device-001.example.com"
code=$(post_csr addsan.csr.b64 "$BASE/simplereenroll" --cert device.crt --key device.key)
expect_eq "reenroll adding a SAN the certificate lacks answers 403" 403 "$code"
expect_no_new_cert "reenroll SAN added" "$before"

# a certificate with SANs: equal SANs renew, different SANs do not
make_csr sandev "/CN=sandev.example.com" ec:P-256 \
    -addext "subjectAltName=DNS:sandev.example.com,IP:192.0.2.20"
otp=$(new_otp sandev --san DNS:sandev.example.com --san IP:192.0.2.20)
expect_eq "OTP enrollment with SANs answers 200" 200 "$(enroll_otp sandev "sandev:$otp")"
p7_to_pem sandev.p7b sandev.crt 2>/dev/null
openssl req -new -key sandev.key -out sansame.csr -subj "/CN=sandev.example.com" \
    -addext "subjectAltName=DNS:sandev.example.com,IP:192.0.2.20" 2>/dev/null
openssl req -in sansame.csr -outform DER | base64 >sansame.csr.b64
before=$(cert_count)
code=$(post_csr sansame.csr.b64 "$BASE/simplereenroll" --cert sandev.crt --key sandev.key)
expect_eq "reenroll with the same SANs answers 200" 200 "$code"
expect_eq "same SANs: one row" $((before + 1)) "$(cert_count)"
openssl req -new -key sandev.key -out sandiff.csr -subj "/CN=sandev.example.com" \
    -addext "subjectAltName=DNS:sandev.example.com,IP:192.0.2.21" 2>/dev/null
openssl req -in sandiff.csr -outform DER | base64 >sandiff.csr.b64
before=$(cert_count)
code=$(post_csr sandiff.csr.b64 "$BASE/simplereenroll" --cert sandev.crt --key sandev.key)
expect_eq "reenroll with a changed SAN answers 403" 403 "$code"
expect_no_new_cert "reenroll SAN mismatch" "$before"
openssl req -new -key sandev.key -out sandrop.csr -subj "/CN=sandev.example.com" \
    -addext "subjectAltName=DNS:sandev.example.com" 2>/dev/null
openssl req -in sandrop.csr -outform DER | base64 >sandrop.csr.b64
code=$(post_csr sandrop.csr.b64 "$BASE/simplereenroll" --cert sandev.crt --key sandev.key)
expect_eq "reenroll dropping a SAN answers 403" 403 "$code"
expect_no_new_cert "reenroll SAN dropped" "$before"

# --- no client certificate ---
otp=$(new_otp device-001)
code=$(post_csr renew.csr.b64 "$BASE/simplereenroll" -u "device-001:$otp")
expect_eq "reenroll with an OTP but no client certificate answers 401" 401 "$code"
expect_eq "401 carries WWW-Authenticate: Basic realm=\"est\"" 'Basic realm="est"' \
    "$(header WWW-Authenticate)"
expect_no_new_cert "reenroll with OTP only" "$before"
code=$(post_csr renew.csr.b64 "$BASE/simplereenroll")
expect_eq "reenroll without any credentials answers 401" 401 "$code"
expect_no_new_cert "reenroll without credentials" "$before"

# --- a presented certificate that is expired, or self-signed: 401 ---
# (INTEROP.md: reenroll must check the presented certificate's validity)
mkdir -p xca && : >xca/index.txt && echo 01 >xca/serial
printf '%s\n' '[ca]' 'default_ca = x' '[x]' "database = $T/xca/index.txt" \
    "new_certs_dir = $T/xca" "serial = $T/xca/serial" 'default_md = sha256' 'policy = p' \
    'x509_extensions = ext' '[p]' 'commonName = supplied' '[ext]' \
    'basicConstraints = critical,CA:FALSE' 'keyUsage = critical,digitalSignature' \
    'extendedKeyUsage = clientAuth' >xca.cnf
openssl ca -batch -config xca.cnf -cert "$SRV/ca/ca.pem" -keyfile "$SRV/ca/ca.key" \
    -in renew.csr -startdate 20200101000000Z -enddate 20200201000000Z -notext \
    -out expired.crt >/dev/null 2>&1
check "expired fixture is issued by the CA and has expired" \
    sh -c "openssl verify -CAfile ca-chain.pem expired.crt 2>&1 | grep -q 'certificate has expired'"
code=$(post_csr renew.csr.b64 "$BASE/simplereenroll" --cert expired.crt --key device.key)
expect_eq "reenroll presenting an expired certificate answers 401" 401 "$code"
expect_no_new_cert "reenroll with an expired certificate" "$before"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout self.key -out self.crt -days 30 -subj "/CN=device-001.example.com" 2>/dev/null
openssl req -new -key self.key -out self-renew.csr -subj "/CN=device-001.example.com" 2>/dev/null
openssl req -in self-renew.csr -outform DER | base64 >self-renew.csr.b64
code=$(post_csr self-renew.csr.b64 "$BASE/simplereenroll" --cert self.crt --key self.key)
expect_eq "reenroll presenting a self-signed certificate answers 401" 401 "$code"
expect_no_new_cert "reenroll with a self-signed certificate" "$before"

# --- reenroll_allow_change = true permits the changed subject ---
check "set reenroll_allow_change = true in [label.default]" \
    cfg_set label.default reenroll_allow_change true
kp_restart
code=$(post_csr othersubj.csr.b64 "$BASE/simplereenroll" --cert device.crt --key device.key)
expect_eq "with reenroll_allow_change, a changed subject answers 200" 200 "$code"
cp "$T/resp.body" changed.p7b
p7_to_pem changed.p7b changed.crt 2>/dev/null
expect_eq "the certificate has the new subject" "subject=CN=device-002.example.com" \
    "$(openssl x509 -in changed.crt -noout -subject -nameopt RFC2253 2>&1)"
expect_eq "changed subject: one row" $((before + 1)) "$(cert_count)"
code=$(post_csr renew.csr.b64 "$BASE/simplereenroll")
expect_eq "with reenroll_allow_change, no client certificate still answers 401" 401 "$code"
