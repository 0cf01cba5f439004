# POST /serverkeygen (RFC 7030 4.4): 404 until est.serverkeygen = true; then a
# multipart/mixed answer, key part first, certificate part second, each
# base64 with its own Content-Type. The key matches the certificate, was made
# by the server (not the CSR's), and is never in the store or the log. Key
# protection: plain PKCS#8, EnvelopedData to a pre-shared key
# (DecryptKeyIdentifier) and to the client certificate's key
# (AsymmetricDecryptKeyIdentifier: RSA key transport, EC key agreement).
kp_init --label p384
kp_start
fetch_chain || { echo "Bail out! cannot fetch /cacerts"; exit 1; }
cd "$T" || exit 1

make_csr off "/CN=skg-off.example.com" ec:P-256
otp=$(new_otp skg-off)
expect_eq "serverkeygen is 404 while est.serverkeygen is off (the default)" 404 \
    "$(post_csr off.csr.b64 "$BASE/serverkeygen" -u "skg-off:$otp")"

# A pre-shared key for DecryptKeyIdentifier "kek-1" in the default label.
KEK=000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f
printf '# id key\nkek-1 %s\n' "$KEK" >"$SRV/kek.keys"
chmod 600 "$SRV/kek.keys"
check "enable est.serverkeygen" cfg_add est serverkeygen true
check "set serverkeygen_kek_file in [label.default]" \
    cfg_add label.default serverkeygen_kek_file '"kek.keys"'
check "p384 accepts only ec:P-384" cfg_set label.p384 key_types '"ec:P-384"'
# p384 archives the keys it generates under an archive key.
printf 'archive-2026 %s\n' 1f1e1d1c1b1a191817161514131211100f0e0d0c0b0a09080706050403020100 \
    >"$SRV/archive.keys"
chmod 600 "$SRV/archive.keys"
check "serverkeygen_archive = true in [label.p384]" cfg_add label.p384 serverkeygen_archive true
check "serverkeygen_archive_key_file in [label.p384]" \
    cfg_add label.p384 serverkeygen_archive_key_file '"archive.keys"'
kp_restart

# skg NAME USER:OTP|-- [curl args...]: POST NAME's CSR to serverkeygen; prints
# the status; splits the answer into NAME.part.1.* (key) and NAME.part.2.* (cert)
skg() {
    local name=$1 url=$BASE/${SKG_LABEL:-}serverkeygen code boundary; shift
    code=$(post_csr "$name.csr.b64" "$url" "$@")
    cp resp.body "$name.mime"
    cp resp.h "$name.h"
    boundary=$(header Content-Type | sed -n 's/^multipart\/mixed; *boundary=\(.*\)$/\1/p')
    [ -n "$boundary" ] && mime_parts "$name.mime" "$boundary" "$name.part"
    echo "$code"
}
# key_of NAME: the plain PKCS#8 key part -> NAME.gen.pem
key_of() { base64 -d "$1.part.1.b64" | openssl pkcs8 -inform DER -nocrypt -out "$1.gen.pem"; }
# cert_of NAME: the certificate part -> NAME.crt
cert_of() { p7_to_pem "$1.part.2.b64" "$1.crt"; }

# --- plain PKCS#8 ---
make_csr plain "/CN=skg-001.example.com" ec:P-256
otp=$(new_otp skg-001)
before=$(cert_count)
expect_eq "serverkeygen with an OTP answers 200" 200 "$(skg plain -u "skg-001:$otp")"
ct=$(tr -d '\r' <plain.h | sed -n 's/^content-type: *//Ip')
check "Content-Type is multipart/mixed with a boundary" \
    grep -Eq '^multipart/mixed; boundary=[^ ;]+$' <<<"$ct"
check "the body uses CRLF line ends" grep -q $'\r$' plain.mime
expect_eq "two parts" "2" "$(ls plain.part.*.b64 | wc -l)"
expect_eq "part 1 is the key: Content-Type application/pkcs8" "application/pkcs8" \
    "$(part_header plain.part.1.h Content-Type)"
expect_eq "part 1 Content-Transfer-Encoding: base64" "base64" \
    "$(part_header plain.part.1.h Content-Transfer-Encoding)"
expect_eq "part 2 is the certificate: certs-only" \
    "application/pkcs7-mime; smime-type=certs-only" "$(part_header plain.part.2.h Content-Type)"
expect_eq "part 2 Content-Transfer-Encoding: base64" "base64" \
    "$(part_header plain.part.2.h Content-Transfer-Encoding)"
check "the key part is unencrypted PKCS#8 (openssl pkcs8 -nocrypt)" key_of plain
check "the certificate part is certs-only PKCS#7" cert_of plain
check "the certificate verifies against /cacerts" openssl verify -CAfile ca-chain.pem plain.crt
check "the generated key matches the certificate" same_pubkey plain.gen.pem plain.crt
check "the key is not the CSR's throwaway key" bash -c '! same_pubkey plain.key plain.crt'
expect_eq "the CSR's key type was kept (P-256)" "prime256v1" \
    "$(openssl pkey -in plain.gen.pem -noout -text | sed -n 's/^ASN1 OID: //p')"
expect_eq "the subject comes from the CSR" "subject=CN = skg-001.example.com" \
    "$(openssl x509 -in plain.crt -noout -subject)"
expect_eq "one certificate row written" $((before + 1)) "$(cert_count)"
expect_eq "audited as serverkeygen" 1 \
    "$(audit_count "event = 'serverkeygen' and outcome = 'ok' and subject = 'skg-001'")"
priv=$(openssl ec -in plain.gen.pem -outform DER 2>/dev/null | openssl asn1parse -inform DER |
    sed -n 's/.*OCTET STRING *\[HEX DUMP\]://p' | head -1 | tr 'A-F' 'a-f')
expect_eq "the private scalar is 32 bytes" 64 "${#priv}"
check "the private key is in no database file (main, WAL)" \
    bash -c "! cat '$DB'* | od -An -tx1 -v | tr -d ' \n' | grep -q '$priv'"
keyb64=$(head -c 40 plain.part.1.b64)
check "the key is not in the server log" bash -c "! grep -qF '$keyb64' '$T/server.log' '$T/server.out'"
expect_eq "the OTP is used up" "used" "$(otp_state "$(db "select max(id) from otps")")"

# --- key type from the label when the CSR's is not allowed there ---
make_csr fallback "/CN=skg-002.example.com" ec:P-256
otp=$(new_otp skg-002)
expect_eq "serverkeygen on a P-384-only label answers 200" 200 \
    "$(SKG_LABEL=p384/ skg fallback -u "skg-002:$otp")"
key_of fallback
cert_of fallback
expect_eq "the generated key is the label's type (P-384)" "secp384r1" \
    "$(openssl pkey -in fallback.gen.pem -noout -text | sed -n 's/^ASN1 OID: //p')"

# --- archival (serverkeygen_archive) ---
fserial=$(cert_serial fallback.crt)
expect_eq "the archiving label kept one encrypted key, for that certificate" "$fserial" \
    "$(db "select serial from archived_keys")"
priv384=$(openssl ec -in fallback.gen.pem -outform DER 2>/dev/null | openssl asn1parse -inform DER |
    sed -n 's/.*OCTET STRING *\[HEX DUMP\]://p' | head -1 | tr 'A-F' 'a-f')
expect_eq "the P-384 private scalar is 48 bytes" 96 "${#priv384}"
check "the archived key is not in the database in clear" \
    bash -c "! cat '$DB'* | od -An -tx1 -v | tr -d ' \n' | grep -q '$priv384'"
check "kipuka cert key SERIAL recovers it" \
    bash -c "'$KIPUKA' cert key '$fserial' -c '$CFG' >recovered.pem 2>/dev/null"
expect_eq "the recovered key is the key the client got" \
    "$(openssl pkey -in fallback.gen.pem)" "$(openssl pkey -in recovered.pem 2>&1)"
expect_eq "recovery is audited" 1 "$(audit_count "event = 'key.recover' and detail = '$fserial'")"
check "a label without archival keeps no key" \
    test "$(db "select count(*) from archived_keys where serial = '$(cert_serial plain.crt)'")" = 0
check "cert key of a certificate without an archived key fails" \
    bash -c "! '$KIPUKA' cert key '$(cert_serial plain.crt)' -c '$CFG' >/dev/null 2>&1"

# --- RSA ---
make_csr rsa "/CN=skg-003.example.com" rsa:2048
otp=$(new_otp skg-003)
expect_eq "serverkeygen for an RSA-2048 CSR answers 200" 200 "$(skg rsa -u "skg-003:$otp")"
key_of rsa && cert_of rsa
check "an RSA key that matches its certificate" same_pubkey rsa.gen.pem rsa.crt
check "2048 bits" grep -q "Private-Key: (2048 bit" <(openssl pkey -in rsa.gen.pem -noout -text)

# make_csr_attr NAME CN OID VALUE [ec:P-256|rsa:N]: a CSR carrying one extra attribute
make_csr_attr() {
    local kt=${5:-ec:P-256} newkey
    case $kt in
    ec:*) newkey="-newkey ec -pkeyopt ec_paramgen_curve:${kt#ec:}" ;;
    rsa:*) newkey="-newkey rsa:${kt#rsa:}" ;;
    esac
    printf '[req]\ndistinguished_name = dn\nattributes = attrs\nprompt = no\n[dn]\nCN = %s\n[attrs]\n%s = %s\n' \
        "$2" "$3" "$4" >"$1.cnf"
    # shellcheck disable=SC2086
    openssl req -new $newkey -keyout "$1.key" -out "$1.csr" -nodes -config "$1.cnf" 2>/dev/null &&
        openssl req -in "$1.csr" -outform DER | base64 >"$1.csr.b64"
}
DKID=1.2.840.113549.1.9.16.2.37
ADKID=1.2.840.113549.1.9.16.2.54

# --- symmetric: DecryptKeyIdentifier -> EnvelopedData with a KEK recipient ---
make_csr_attr kek "skg-004.example.com" $DKID kek-1
otp=$(new_otp skg-004)
expect_eq "serverkeygen with DecryptKeyIdentifier answers 200" 200 "$(skg kek -u "skg-004:$otp")"
expect_eq "the key part is server-generated-key" \
    "application/pkcs7-mime; smime-type=server-generated-key" "$(part_header kek.part.1.h Content-Type)"
base64 -d kek.part.1.b64 >kek.part.1.der
check "the key part is not readable as plain PKCS#8" \
    bash -c '! openssl pkcs8 -inform DER -nocrypt -in kek.part.1.der -out /dev/null 2>/dev/null'
check "openssl cms -decrypt with the pre-shared key opens it" \
    openssl cms -decrypt -inform DER -in kek.part.1.der -secretkey "$KEK" \
    -secretkeyid "$(printf kek-1 | od -An -tx1 | tr -d ' \n')" -out kek.p8
check "inside is PKCS#8" openssl pkcs8 -inform DER -nocrypt -in kek.p8 -out kek.gen.pem
cert_of kek
check "that key matches the certificate" same_pubkey kek.gen.pem kek.crt
check "a wrong key does not open it" bash -c "! openssl cms -decrypt -inform DER -in kek.part.1.der \
    -secretkey 1f1e1d1c1b1a191817161514131211100f0e0d0c0b0a09080706050403020100 \
    -secretkeyid $(printf kek-1 | od -An -tx1 | tr -d ' \n') -out /dev/null 2>/dev/null"

make_csr_attr kek2 "skg-005.example.com" $DKID no-such-key
otp=$(new_otp skg-005)
before=$(cert_count)
expect_eq "an unknown DecryptKeyIdentifier is 400" 400 "$(skg kek2 -u "skg-005:$otp")"
expect_no_new_cert "unknown key id" "$before"
make_csr plain5 "/CN=skg-005.example.com" ec:P-256
expect_eq "the refused request did not use the OTP" 200 "$(skg plain5 -u "skg-005:$otp")"

# --- asymmetric: AsymmetricDecryptKeyIdentifier -> EnvelopedData to the client cert ---
check "an EC client certificate (OTP enrollment)" enroll_ok ecdev "/CN=skg-ec.example.com" skg-ec
check "an RSA client certificate (OTP enrollment)" \
    enroll_ok rsadev "/CN=skg-rsa.example.com" skg-rsa "" rsa:2048
for kind in ec rsa; do
    make_csr_attr asym-$kind "skg-$kind.example.com" $ADKID "$kind-client"
    expect_eq "$kind client: serverkeygen with AsymmetricDecryptKeyIdentifier over mTLS answers 200" \
        200 "$(skg asym-$kind --cert ${kind}dev.crt --key ${kind}dev.key)"
    expect_eq "$kind client: the key part is server-generated-key" \
        "application/pkcs7-mime; smime-type=server-generated-key" \
        "$(part_header asym-$kind.part.1.h Content-Type)"
    base64 -d asym-$kind.part.1.b64 >asym-$kind.part.1.der
    check "$kind client: openssl cms -decrypt with the client key opens it" \
        openssl cms -decrypt -inform DER -in asym-$kind.part.1.der -recip ${kind}dev.crt \
        -inkey ${kind}dev.key -out asym-$kind.p8
    openssl pkcs8 -inform DER -nocrypt -in asym-$kind.p8 -out asym-$kind.gen.pem 2>/dev/null
    cert_of asym-$kind
    check "$kind client: that key matches the new certificate" \
        same_pubkey asym-$kind.gen.pem asym-$kind.crt
done
openssl cms -cmsout -print -inform DER -in asym-ec.part.1.der >asym-ec.txt 2>&1
check "EC client: key agreement recipient (kari)" grep -q "d.kari" asym-ec.txt
openssl cms -cmsout -print -inform DER -in asym-rsa.part.1.der >asym-rsa.txt 2>&1
check "RSA client: key transport recipient (ktri)" grep -q "d.ktri" asym-rsa.txt

make_csr_attr asym-otp "skg-006.example.com" $ADKID x
otp=$(new_otp skg-006)
expect_eq "AsymmetricDecryptKeyIdentifier with OTP authentication is 400" 400 \
    "$(skg asym-otp -u "skg-006:$otp")"
expect_eq "no credentials is 401" 401 "$(skg plain)"
expect_eq "GET is 405" 405 "$(req "$BASE/serverkeygen")"

# A key file others may read stops the server at start.
kp_stop
chmod 644 "$SRV/kek.keys"
check "a world-readable serverkeygen_kek_file is refused at start" \
    bash -c "! timeout 10 '$KIPUKA' serve -c '$CFG' >/dev/null 2>'$T/bad.log'; grep -q 'chmod 600' '$T/bad.log'"
