# EST labels (RFC 7030 3.2.2): the spec's labelled enrollment, unknown labels,
# OTPs bound to one label, and per-label key type policy.
kp_init --label iot-fleet --label corp-devices
check "set key_types = \"ec:P-256\" in [label.iot-fleet]" \
    cfg_set label.iot-fleet key_types '"ec:P-256"'
kp_start
fetch_chain || { echo "Bail out! cannot fetch /cacerts"; exit 1; }
cd "$T" || exit 1

# --- the spec's "Example with an EST label" ---
otp=$(new_otp device-001)
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
    -keyout device.key -out device.csr -nodes \
    -subj "/CN=device-001.example.com" 2>/dev/null
openssl req -in device.csr -outform DER | base64 > device.csr.b64
before=$(cert_count)
code=$(curl -X POST \
    --cacert ca-chain.pem \
    -u "device-001:$otp" \
    -H "Content-Type: application/pkcs10" \
    --data-binary @device.csr.b64 \
    -o enrolled.p7b \
    -s -w '%{http_code}' \
    "$BASE/corp-devices/simpleenroll")
expect_eq "labelled simpleenroll to corp-devices answers 200" 200 "$code"
base64 -d enrolled.p7b 2>/dev/null | openssl pkcs7 -inform DER -print_certs -out device.crt 2>/dev/null
check "the certificate verifies" openssl verify -CAfile ca-chain.pem device.crt
expect_eq "one certificate row written" $((before + 1)) "$(cert_count)"
serial=$(cert_serial device.crt)
expect_eq "the row has label corp-devices" "corp-devices" \
    "$(db "select label from certificates where serial = '$serial'")"
expect_eq "the audit row has label corp-devices" "simpleenroll|ok|corp-devices" \
    "$(db "select event, outcome, label from audit order by id desc limit 1")"

# --- unknown label ---
otp=$(new_otp device-001)
before=$(cert_count)
code=$(post_csr device.csr.b64 "$BASE/no-such-label/simpleenroll" -u "device-001:$otp")
expect_eq "simpleenroll to an unknown label answers 404" 404 "$code"
expect_no_new_cert "unknown label" "$before"
code=$(req "$BASE/no-such-label/csrattrs")
expect_eq "csrattrs of an unknown label answers 404" 404 "$code"
# the OTP was not spent by the 404
expect_eq "the OTP still works on a known label (200)" 200 \
    "$(post_csr device.csr.b64 "$BASE/simpleenroll" -u "device-001:$otp")"
expect_eq "that enrollment is labelled default" "default" \
    "$(db "select label from certificates order by issued_at desc, rowid desc limit 1")"

# --- an OTP bound to iot-fleet ---
otp_id_create sensor-7 --label iot-fleet || echo "# otp create --label iot-fleet failed"
make_csr sensor "/CN=sensor-7.iot.example.com" ec:P-256
before=$(cert_count)
code=$(post_csr sensor.csr.b64 "$BASE/corp-devices/simpleenroll" -u "sensor-7:$OTP")
expect_eq "iot-fleet OTP on corp-devices answers 403" 403 "$code"
expect_no_new_cert "OTP bound to another label" "$before"
expect_eq "the refusal is audited as forbidden on corp-devices" "simpleenroll|forbidden|corp-devices" \
    "$(db "select event, outcome, label from audit order by id desc limit 1")"
code=$(post_csr sensor.csr.b64 "$BASE/simpleenroll" -u "sensor-7:$OTP")
expect_eq "iot-fleet OTP on the unlabelled path answers 403" 403 "$code"
expect_no_new_cert "OTP bound to another label (default)" "$before"
expect_eq "the OTP is still active after the 403s" active "$(otp_state "$OTP_ID")"
code=$(post_csr sensor.csr.b64 "$BASE/iot-fleet/simpleenroll" -u "sensor-7:$OTP")
expect_eq "iot-fleet OTP on iot-fleet answers 200" 200 "$code"
cp "$T/resp.body" sensor.p7b
p7_to_pem sensor.p7b sensor.crt 2>/dev/null
expect_eq "the row has label iot-fleet" "iot-fleet" \
    "$(db "select label from certificates where serial = '$(cert_serial sensor.crt)'")"
expect_eq "one row" $((before + 1)) "$(cert_count)"

# --- a renewal stays under the label that issued the certificate ---
openssl req -new -key "$T/sensor.key" -subj "/CN=sensor-7.iot.example.com" -outform DER 2>/dev/null |
    base64 >sensor-renew.csr.b64
before=$(cert_count)
code=$(post_csr sensor-renew.csr.b64 "$BASE/corp-devices/simplereenroll" \
    --cert sensor.crt --key "$T/sensor.key")
expect_eq "an iot-fleet certificate renewed on corp-devices answers 403" 403 "$code"
expect_no_new_cert "cross-label renewal" "$before"
code=$(post_csr sensor-renew.csr.b64 "$BASE/iot-fleet/simplereenroll" \
    --cert sensor.crt --key "$T/sensor.key")
expect_eq "the same renewal on iot-fleet answers 200" 200 "$code"

# --- key_types = "ec:P-256" on iot-fleet ---
make_csr rsa "/CN=rsa-dev.iot.example.com" rsa:2048
make_csr p384 "/CN=rsa-dev.iot.example.com" ec:P-384
before=$(cert_count)
otp=$(new_otp rsa-dev)
code=$(post_csr rsa.csr.b64 "$BASE/iot-fleet/simpleenroll" -u "rsa-dev:$otp")
expect_eq "RSA-2048 CSR on iot-fleet (ec:P-256 only) answers 400" 400 "$code"
expect_no_new_cert "RSA on an EC-only label" "$before"
expect_eq "the refusal is audited with an error outcome" "simpleenroll|iot-fleet" \
    "$(db "select event, label from audit where outcome not in ('ok') order by id desc limit 1")"
code=$(post_csr p384.csr.b64 "$BASE/iot-fleet/simpleenroll" -u "rsa-dev:$otp")
expect_eq "P-384 CSR on iot-fleet (ec:P-256 only) answers 400" 400 "$code"
expect_no_new_cert "P-384 on a P-256-only label" "$before"
code=$(post_csr rsa.csr.b64 "$BASE/corp-devices/simpleenroll" -u "rsa-dev:$otp")
expect_eq "the same RSA CSR on corp-devices answers 200 (policy is per label)" 200 "$code"
expect_eq "one row, label corp-devices" "$((before + 1))|corp-devices" \
    "$(cert_count)|$(db "select label from certificates order by issued_at desc, rowid desc limit 1")"

# --- labelled cacerts and csrattrs follow the label ---
expect_eq "/iot-fleet/cacerts answers 200" 200 "$(req "$BASE/iot-fleet/cacerts")"
expect_eq "/iot-fleet/csrattrs answers 200" 200 "$(req "$BASE/iot-fleet/csrattrs")"
base64 -d "$T/resp.body" 2>/dev/null | openssl asn1parse -inform DER >iot-attrs.txt 2>&1
check "iot-fleet csrattrs lists prime256v1" grep -q prime256v1 iot-attrs.txt
check "iot-fleet csrattrs does not list rsaEncryption or secp384r1" \
    sh -c "! grep -Eq 'rsaEncryption|secp384r1' iot-attrs.txt"
check "cert list --label iot-fleet lists only the iot-fleet certificate" \
    sh -c "out=\$('$KIPUKA' cert list -c '$CFG' --label iot-fleet) &&
           echo \"\$out\" | grep -q '^$(cert_serial sensor.crt)' &&
           ! echo \"\$out\" | grep -q '^$serial'"
