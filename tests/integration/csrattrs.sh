# GET /csrattrs as est-endpoints.txt shows it: application/csrattrs, base64
# DER listing the label's key types; challengePassword when the label
# requires the TLS channel binding.
kp_init --label strict --label p384only
check "set channel_binding = \"required\" in [label.strict]" \
    cfg_set label.strict channel_binding '"required"'
check "set key_types = \"ec:P-384\" in [label.p384only]" \
    cfg_set label.p384only key_types '"ec:P-384"'
kp_start
fetch_chain || { echo "Bail out! cannot fetch /cacerts"; exit 1; }
cd "$T" || exit 1

# --- the spec's example ---
# Fetch supported CSR attributes
code=$(curl --cacert ca-chain.pem \
    -o csrattrs.b64 \
    -s -D csrattrs.h -w '%{http_code}' \
    "$BASE/csrattrs")
# Decode and inspect (requires ASN.1 tools)
base64 -d csrattrs.b64 | openssl asn1parse -inform DER >csrattrs.txt 2>&1
asn1_rc=$?

expect_eq "/csrattrs answers 200" 200 "$code"
expect_eq "Content-Type is exactly application/csrattrs" "application/csrattrs" \
    "$(tr -d '\r' <csrattrs.h | sed -n 's/^content-type: *//Ip' | tail -1)"
expect_eq "base64 -d | openssl asn1parse succeeds" 0 "$asn1_rc"
top=$(head -1 csrattrs.txt | sed -n 's/^ *0:d=0 *hl=\([0-9]*\) *l= *\([0-9]*\) cons: SEQUENCE.*/\1 \2/p')
expect_eq "the DER is one SEQUENCE spanning the whole body" \
    "$(base64 -d csrattrs.b64 2>/dev/null | wc -c)" "$(( ${top% *} + ${top#* } ))"
for want in ecPublicKey prime256v1 secp384r1 rsaEncryption; do
    check "default csrattrs lists $want" grep -q "$want" csrattrs.txt
done
check "default csrattrs (channel_binding optional) does not ask for challengePassword" \
    sh -c "! grep -q challengePassword csrattrs.txt"
check "base64 body is in lines of at most 64 characters" \
    sh -c "test -s csrattrs.b64 && ! awk 'length > 64' csrattrs.b64 | grep -q ."

# --- a label with channel_binding = "required" ---
code=$(req -o strict.b64 "$BASE/strict/csrattrs")
expect_eq "/strict/csrattrs answers 200" 200 "$code"
expect_eq "/strict/csrattrs Content-Type is application/csrattrs" "application/csrattrs" \
    "$(header Content-Type)"
base64 -d resp.body 2>/dev/null | openssl asn1parse -inform DER >strict.txt 2>&1
check "strict csrattrs lists challengePassword" grep -q ':challengePassword' strict.txt
check "strict csrattrs still lists the key types" \
    sh -c "grep -q 'ecPublicKey' strict.txt && grep -q ':rsaEncryption' strict.txt"

# --- a label allowing only P-384 ---
code=$(req "$BASE/p384only/csrattrs")
expect_eq "/p384only/csrattrs answers 200" 200 "$code"
base64 -d resp.body 2>/dev/null | openssl asn1parse -inform DER >p384.txt 2>&1
check "p384only csrattrs lists ecPublicKey with secp384r1" \
    sh -c "grep -q 'ecPublicKey' p384.txt && grep -q ':secp384r1' p384.txt"
check "p384only csrattrs lists neither prime256v1 nor rsaEncryption" \
    sh -c "! grep -Eq ':(prime256v1|rsaEncryption)' p384.txt"

# --- method and label errors ---
expect_eq "POST /csrattrs answers 405" 405 "$(req -X POST -H 'Content-Type: application/pkcs10' \
    --data-binary @csrattrs.b64 "$BASE/csrattrs")"
expect_eq "/no-such-label/csrattrs answers 404" 404 "$(req "$BASE/no-such-label/csrattrs")"
expect_eq "csrattrs needs no authentication (no client cert, no Basic): 200" 200 \
    "$(curl -s -o /dev/null -w '%{http_code}' --cacert ca-chain.pem "$BASE/csrattrs")"
