# kipuka init --ca-cert/--ca-key: serve under an existing intermediate CA.
# /cacerts must carry the issuing CA then the root, and certificates must
# verify against the root alone.
P=$T/pki
mkdir -p "$P"
openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-384 -nodes -days 3650 \
    -subj "/CN=Import Test Root" -keyout "$P/root.key" -out "$P/root.pem" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=Import Test Issuing CA" \
    -keyout "$P/int.key" -out "$P/int.csr" 2>/dev/null
printf 'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n' >"$P/ext"
openssl x509 -req -in "$P/int.csr" -CA "$P/root.pem" -CAkey "$P/root.key" -CAcreateserial \
    -days 1825 -extfile "$P/ext" -out "$P/int.pem" 2>/dev/null
cat "$P/int.pem" "$P/root.pem" >"$P/bundle.pem"

check "init refuses a key that does not match the CA" \
    sh -c "! '$KIPUKA' init --dir '$T/bad' --port 0 --ca-cert '$P/bundle.pem' --ca-key '$P/root.key'"
kp_init --ca-cert "$P/bundle.pem" --ca-key "$P/int.key"
check "the imported key is stored with mode 600" \
    sh -c "[ \"\$(stat -c %a '$SRV/ca/ca.key')\" = 600 ]"
kp_start

curl -s --cacert "$P/root.pem" -o "$T/cacerts.p7b" "$BASE/cacerts"
base64 -d "$T/cacerts.p7b" | openssl pkcs7 -inform DER -print_certs -out "$T/ca-chain.pem"
subjects=$(grep -c 'BEGIN CERTIFICATE' "$T/ca-chain.pem")
expect_eq "/cacerts holds the issuing CA and the root" 2 "$subjects"
first=$(openssl x509 -in "$T/ca-chain.pem" -noout -subject)
expect_eq "/cacerts starts with the issuing CA" "subject=CN = Import Test Issuing CA" "$first"
check "the TLS server certificate verifies against the root alone" \
    curl -sf -o /dev/null --cacert "$P/root.pem" "$BASE/cacerts"

make_csr dev "/CN=imported-1.example.com" ec:P-256
otp=$(new_otp imported-1)
code=$(enroll_otp dev "imported-1:$otp")
expect_eq "enrollment under the imported CA answers 200" 200 "$code"
p7_to_pem "$T/dev.p7b" "$T/dev.crt"
check "the certificate verifies against root + issuing CA" \
    openssl verify -CAfile "$P/root.pem" -untrusted "$P/int.pem" "$T/dev.crt"
issuer=$(openssl x509 -in "$T/dev.crt" -noout -issuer)
expect_eq "it is issued by the imported CA" "issuer=CN = Import Test Issuing CA" "$issuer"
