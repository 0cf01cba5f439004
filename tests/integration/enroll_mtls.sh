# POST /simpleenroll authenticated by a client certificate (the spec's mTLS
# example): allowed for the same subject (mtls_subject_match = true),
# 403 for another subject, 401 for a foreign CA or no credentials at all.
kp_init
kp_start
fetch_chain || { echo "Bail out! cannot fetch /cacerts"; exit 1; }
cd "$T" || exit 1

# A device enrolled once with an OTP holds existing-device.crt/.key.
check "OTP enrollment of the first certificate" \
    enroll_ok existing-device "/CN=device-001.example.com" device-001

# A new key and CSR with the same subject.
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
    -keyout device.key -out device.csr -nodes \
    -subj "/CN=device-001.example.com" 2>/dev/null
openssl req -in device.csr -outform DER | base64 > device.csr.b64

before=$(cert_count)
# --- the spec's mTLS example ---
# Enroll using an existing client certificate for authentication
code=$(curl -X POST \
    --cacert ca-chain.pem \
    --cert existing-device.crt \
    --key existing-device.key \
    -H "Content-Type: application/pkcs10" \
    --data-binary @device.csr.b64 \
    -o enrolled.p7b \
    -s -w '%{http_code}' \
    "$BASE/simpleenroll")
expect_eq "mTLS simpleenroll with the same subject answers 200" 200 "$code"
base64 -d enrolled.p7b 2>/dev/null | openssl pkcs7 -inform DER -print_certs -out device.crt 2>/dev/null
check "the new certificate verifies" openssl verify -CAfile ca-chain.pem device.crt
check "the new certificate carries the new key" \
    bash -c "cmp <(openssl x509 -in device.crt -noout -pubkey) <(openssl req -in device.csr -noout -pubkey)"
check "it is a new certificate (new serial)" \
    test "$(cert_serial device.crt)" != "$(cert_serial existing-device.crt)"
expect_eq "one certificate row written" $((before + 1)) "$(cert_count)"
serial=$(cert_serial device.crt)
expect_eq "the row: label, subject, auth_method mtls, status" \
    "default|CN=device-001.example.com|mtls|valid" \
    "$(db "select label, subject, auth_method, status from certificates where serial = '$serial'")"
expect_eq "audit row simpleenroll/ok written" 2 \
    "$(audit_count "event = 'simpleenroll' and outcome = 'ok'")"

# --- another subject with that certificate: 403 ---
make_csr other "/CN=device-002.example.com" ec:P-256
before=$(cert_count)
code=$(post_csr other.csr.b64 "$BASE/simpleenroll" --cert existing-device.crt --key existing-device.key)
expect_eq "mTLS simpleenroll for another subject answers 403" 403 "$code"
expect_no_new_cert "mTLS subject mismatch" "$before"
expect_eq "the refusal is audited as forbidden" "simpleenroll|forbidden" \
    "$(db "select event, outcome from audit order by id desc limit 1")"

# --- a client certificate from a foreign CA: 401 ---
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout foreign-ca.key -out foreign-ca.pem -days 30 -subj "/CN=foreign CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout foreign.key -out foreign.csr -subj "/CN=device-001.example.com" 2>/dev/null
printf 'basicConstraints=critical,CA:FALSE\nextendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature\n' >foreign.ext
openssl x509 -req -in foreign.csr -CA foreign-ca.pem -CAkey foreign-ca.key -CAcreateserial \
    -days 30 -extfile foreign.ext -out foreign.crt 2>/dev/null
check "foreign client certificate fixture is valid under its own CA" \
    openssl verify -CAfile foreign-ca.pem foreign.crt
before=$(cert_count)
code=$(post_csr device.csr.b64 "$BASE/simpleenroll" --cert foreign.crt --key foreign.key)
expect_eq "client certificate from a foreign CA answers 401" 401 "$code"
expect_eq "401 carries WWW-Authenticate: Basic realm=\"est\"" 'Basic realm="est"' \
    "$(header WWW-Authenticate)"
expect_no_new_cert "foreign client certificate" "$before"
expect_eq "the refusal is audited as unauthorized" "simpleenroll|unauthorized" \
    "$(db "select event, outcome from audit order by id desc limit 1")"

# --- a self-signed certificate with the device's subject: 401 ---
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout self.key -out self.crt -days 30 -subj "/CN=device-001.example.com" 2>/dev/null
code=$(post_csr device.csr.b64 "$BASE/simpleenroll" --cert self.crt --key self.key)
expect_eq "self-signed client certificate answers 401" 401 "$code"
expect_no_new_cert "self-signed client certificate" "$before"

# --- no credentials at all: 401 ---
code=$(post_csr device.csr.b64 "$BASE/simpleenroll")
expect_eq "no credentials answers 401" 401 "$code"
expect_eq "no credentials: WWW-Authenticate: Basic realm=\"est\"" 'Basic realm="est"' \
    "$(header WWW-Authenticate)"
expect_no_new_cert "no credentials" "$before"

# --- the certificate issued over mTLS authenticates in turn ---
code=$(post_csr device.csr.b64 "$BASE/simpleenroll" --cert device.crt --key device.key)
expect_eq "the mTLS-issued certificate can itself enroll its subject (200)" 200 "$code"
expect_eq "one more row" $((before + 1)) "$(cert_count)"
