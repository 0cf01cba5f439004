# GET /cacerts exactly as est-endpoints.txt shows it.
kp_init --label iot-fleet
kp_start

code=$(curl -s -o "$T/cacerts.p7b" -D "$T/h" -w '%{http_code}' --cacert "$SRV/ca/ca.pem" \
    "$BASE/cacerts")
expect_eq "/cacerts answers 200" 200 "$code"
check "Content-Type is application/pkcs7-mime; smime-type=certs-only" \
    grep -qi '^content-type: application/pkcs7-mime; smime-type=certs-only' "$T/h"
check "Content-Transfer-Encoding is base64" grep -qi '^content-transfer-encoding: base64' "$T/h"
check "body decodes with openssl pkcs7" \
    sh -c "base64 -d '$T/cacerts.p7b' | openssl pkcs7 -inform DER -print_certs -noout"
base64 -d "$T/cacerts.p7b" | openssl pkcs7 -inform DER -print_certs -out "$T/ca-chain.pem"
check "chain holds the configured CA" \
    bash -c "openssl x509 -in '$T/ca-chain.pem' -noout -fingerprint -sha256 | cmp - <(openssl x509 -in '$SRV/ca/ca.pem' -noout -fingerprint -sha256)"
check "base64 body is in lines of at most 64 characters" \
    sh -c "! awk 'length > 64' '$T/cacerts.p7b' | grep -q ."
check "server certificate verifies against the chain from /cacerts" \
    curl -sf -o /dev/null --cacert "$T/ca-chain.pem" "$BASE/cacerts"
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$T/ca-chain.pem" "$BASE/iot-fleet/cacerts")
expect_eq "labelled /iot-fleet/cacerts answers 200" 200 "$code"
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$T/ca-chain.pem" "$BASE/nope/cacerts")
expect_eq "unknown label answers 404" 404 "$code"
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$T/ca-chain.pem" -X POST "$BASE/cacerts")
expect_eq "POST /cacerts answers 405" 405 "$code"
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$T/ca-chain.pem" "$BASE/bogus")
expect_eq "unknown operation answers 404" 404 "$code"
