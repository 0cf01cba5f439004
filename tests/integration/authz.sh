# Who may do what with a client certificate (docs/authorization.md), each
# with real curl and openssl against the real server:
# - a certificate authenticates EST only under the label that issued it, and
#   mTLS /simpleenroll and /serverkeygen keep its subject and SANs;
# - a certificate of tls.client_ca that kipuka did not issue is refused unless
#   the label says mtls_accept_external = true;
# - revocation is looked up by issuer and serial (the stored DER), not serial;
# - re-enrollment compares subjects exactly (RFC 7030 4.2.2);
# - admin certificates chain to admin.client_ca alone, no label certifies an
#   admin or CA subject, a config whose admin.client_ca is a label's CA is
#   refused unless admin.client_ca_may_issue, and then revocation counts.
kp_init --label other
check "est.serverkeygen = true" cfg_add est serverkeygen true
check "label other issues serverAuth certificates" cfg_set label.other eku '"serverAuth, clientAuth"'
kp_start
fetch_chain || { echo "Bail out! cannot fetch /cacerts"; exit 1; }
cd "$T" || exit 1
TOKEN=$(cat "$SRV/admin.token")
ROOT=${BASE%/.well-known/est}
ADMIN=$ROOT/admin

# last_audit: event|outcome|detail of the newest audit row
last_audit() { db "select event, outcome, detail from audit order by id desc limit 1"; }
# areq METHOD PATH [curl args]: admin request with the token; prints the status
areq() {
    local m=$1 p=$2; shift 2
    req -X "$m" -H "Authorization: Bearer $TOKEN" "$@" "$ADMIN$p"
}
# enroll_san NAME CN SAN [label/]: OTP enrollment of CN with one DNS SAN
enroll_san() {
    local otp code
    make_csr "$1" "/CN=$2" ec:P-256 -addext "subjectAltName=DNS:$3" || return 1
    otp=$(new_otp "$1") || return 1
    code=$(enroll_otp "$1" "$1:$otp" "${4:-}")
    [ "$code" = 200 ] || { echo "enroll $1: HTTP $code" >&2; return 1; }
    p7_to_pem "$T/$1.p7b" "$T/$1.crt"
}
# signed_by NAME SUBJ CA-CERT CA-KEY [SERIAL]: NAME.key and NAME.crt, a
# clientAuth certificate made with openssl, not by kipuka
signed_by() {
    printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n' >"$1.ext"
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$1.key" \
        -out "$1.req" -subj "$2" 2>/dev/null &&
        if [ -n "${5:-}" ]; then set -- "$@" -set_serial "0x$5"; else set -- "$@" "" -CAcreateserial; fi &&
        openssl x509 -req -in "$1.req" -CA "$3" -CAkey "$4" -days 30 -extfile "$1.ext" \
            "${@:6}" -out "$1.crt" 2>/dev/null
}
# new_ca NAME SUBJ: a self-signed CA NAME.pem / NAME.key
new_ca() {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$1.key" \
        -out "$1.pem" -days 30 -subj "$2" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" 2>/dev/null
}

check "dev1 enrolls on the default label (CN and DNS SAN dev1.example.com)" \
    enroll_san dev1 dev1.example.com dev1.example.com
check "device-001 enrolls on the default label" enroll_san device-001 device-001 device-001.example
check "admin2.example.com enrolls (not an admin subject yet)" \
    enroll_san admin2 admin2.example.com admin2.example.com
check "revme enrolls" enroll_san revme revme.example.com revme.example.com

# --- item 10: re-enrollment keeps the subject byte for byte ---
make_csr upper "/CN=DEVICE-001" ec:P-256 -addext "subjectAltName=DNS:device-001.example"
before=$(cert_count)
expect_eq "reenroll of CN=device-001 asking CN=DEVICE-001: 403" 403 \
    "$(post_csr upper.csr.b64 "$BASE/simplereenroll" --cert device-001.crt --key device-001.key)"
expect_no_new_cert "CN=DEVICE-001" "$before"
expect_eq "audited with the reason" \
    "simplereenroll|forbidden|CSR subject differs from the certificate being renewed" "$(last_audit)"
make_csr spaced "/CN=device-001 " ec:P-256 -addext "subjectAltName=DNS:device-001.example"
expect_eq "nor with a trailing space: 403" 403 \
    "$(post_csr spaced.csr.b64 "$BASE/simplereenroll" --cert device-001.crt --key device-001.key)"
make_csr sancase "/CN=device-001" ec:P-256 -addext "subjectAltName=DNS:DEVICE-001.example"
expect_eq "nor with the SAN in upper case: 403" 403 \
    "$(post_csr sancase.csr.b64 "$BASE/simplereenroll" --cert device-001.crt --key device-001.key)"
expect_eq "  audited with the reason" \
    "simplereenroll|forbidden|CSR subjectAltName differs from the certificate being renewed" "$(last_audit)"
make_csr same "/CN=device-001" ec:P-256 -addext "subjectAltName=DNS:device-001.example"
expect_eq "control: the identical subject renews: 200" 200 \
    "$(post_csr same.csr.b64 "$BASE/simplereenroll" --cert device-001.crt --key device-001.key)"

# --- item 3: a certificate stays under the label that issued it ---
make_csr d1 "/CN=dev1.example.com" ec:P-256 -addext "subjectAltName=DNS:dev1.example.com"
before=$(cert_count)
for op in simpleenroll simplereenroll serverkeygen; do
    expect_eq "default-label certificate on label other, /$op: 403" 403 \
        "$(post_csr d1.csr.b64 "$BASE/other/$op" --cert dev1.crt --key dev1.key)"
    expect_eq "  audited: /$op, forbidden, issued under another label" \
        "$op|forbidden|client certificate was issued under another label" "$(last_audit)"
done
expect_no_new_cert "label other" "$before"

# --- item 3: mTLS /simpleenroll and /serverkeygen bind subject and SANs ---
make_csr bank "/CN=dev1.example.com" ec:P-256 -addext "subjectAltName=DNS:www.bank.example"
make_csr more "/CN=dev1.example.com" ec:P-256 \
    -addext "subjectAltName=DNS:dev1.example.com,DNS:www.bank.example"
for op in simpleenroll serverkeygen; do
    expect_eq "mTLS /$op with another SAN: 403" 403 \
        "$(post_csr bank.csr.b64 "$BASE/$op" --cert dev1.crt --key dev1.key)"
    expect_eq "  audited with the reason" \
        "$op|forbidden|CSR subjectAltName differs from the client certificate's" "$(last_audit)"
    expect_eq "mTLS /$op with one more SAN: 403" 403 \
        "$(post_csr more.csr.b64 "$BASE/$op" --cert dev1.crt --key dev1.key)"
done
expect_no_new_cert "other SANs" "$before"
expect_eq "control: mTLS /simpleenroll with the same subject and SAN: 200" 200 \
    "$(post_csr d1.csr.b64 "$BASE/simpleenroll" --cert dev1.crt --key dev1.key)"

# --- item 3: certificates of tls.client_ca that kipuka did not issue ---
new_ca ext-ca "/CN=Partner CA"
cat "$SRV/ca/ca.pem" ext-ca.pem >"$SRV/clients.pem"
check "tls.client_ca = ca.pem + Partner CA" cfg_set tls client_ca '"clients.pem"'
check "reload" kp_reload
check "external certificate made" signed_by ext "/CN=ext.example.com" ext-ca.pem ext-ca.key
make_csr extcsr "/CN=ext.example.com" ec:P-256
before=$(cert_count)
expect_eq "external certificate, /simpleenroll: 403" 403 \
    "$(post_csr extcsr.csr.b64 "$BASE/simpleenroll" --cert ext.crt --key ext.key)"
expect_eq "  audited with the reason" \
    "simpleenroll|forbidden|client certificate not issued by kipuka, and this label does not accept others (mtls_accept_external)" \
    "$(last_audit)"
expect_eq "external certificate, /simplereenroll: 403" 403 \
    "$(post_csr extcsr.csr.b64 "$BASE/simplereenroll" --cert ext.crt --key ext.key)"
expect_no_new_cert "external certificate" "$before"

# --- item 2: revocation by issuer and serial ---
REV_SERIAL=$(cert_serial revme.crt)
expect_eq "revoke revme: 200" 200 "$(areq POST "/certs/$REV_SERIAL/revoke" -d '{"reason":"keyCompromise"}')"
check "a Partner CA certificate with revme's serial made" \
    signed_by twin "/CN=twin.example.com" ext-ca.pem ext-ca.key "$REV_SERIAL"
expect_eq "  it has the same serial" "$REV_SERIAL" "$(cert_serial twin.crt)"
make_csr revcsr "/CN=revme.example.com" ec:P-256 -addext "subjectAltName=DNS:revme.example.com"
expect_eq "the revoked kipuka certificate, /simplereenroll: 401" 401 \
    "$(post_csr revcsr.csr.b64 "$BASE/simplereenroll" --cert revme.crt --key revme.key)"
expect_eq "  audited as revoked" "simplereenroll|unauthorized|client certificate revoked" "$(last_audit)"
make_csr twincsr "/CN=twin.example.com" ec:P-256
expect_eq "the same serial from the Partner CA is judged external (403), not revoked" \
    "403|simpleenroll|forbidden|client certificate not issued by kipuka, and this label does not accept others (mtls_accept_external)" \
    "$(post_csr twincsr.csr.b64 "$BASE/simpleenroll" --cert twin.crt --key twin.key)|$(last_audit)"

check "mtls_accept_external = true on the default label" \
    cfg_add label.default mtls_accept_external true
check "reload" kp_reload
before=$(cert_count)
expect_eq "the external certificate now enrolls: 200" 200 \
    "$(post_csr extcsr.csr.b64 "$BASE/simpleenroll" --cert ext.crt --key ext.key)"
expect_eq "the Partner CA certificate with a revoked kipuka serial enrolls too: 200" 200 \
    "$(post_csr twincsr.csr.b64 "$BASE/simpleenroll" --cert twin.crt --key twin.key)"
expect_eq "two rows" $((before + 2)) "$(cert_count)"
expect_eq "the revoked kipuka certificate is still refused: 401" 401 \
    "$(post_csr revcsr.csr.b64 "$BASE/simpleenroll" --cert revme.crt --key revme.key)"
expect_eq "label other still refuses the external certificate: 403" 403 \
    "$(post_csr extcsr.csr.b64 "$BASE/other/simpleenroll" --cert ext.crt --key ext.key)"

# --- item 1: admin certificates from admin.client_ca only ---
new_ca admin-ca "/CN=Admin CA"
cp admin-ca.pem "$SRV/admin-ca.pem"
check "admin certificate made under the admin CA" \
    signed_by ops "/CN=ops.example.com" admin-ca.pem admin-ca.key
sed -i "s|^token_sha256 = .*|&\nclient_subjects = \"CN=ops.example.com;CN=admin2.example.com\"\nclient_ca = \"admin-ca.pem\"|" "$CFG"
check "reload with admin.client_subjects and admin.client_ca" kp_reload

# an OTP holder asks for an admin subject
otp=$(new_otp mallory)
before=$(cert_count)
for subj in "CN=ops.example.com" "CN=OPS.Example.com" "CN=admin2.example.com"; do
    make_csr evil "/$subj" ec:P-256
    expect_eq "OTP enrollment of the admin subject $subj: 403" 403 \
        "$(enroll_otp evil "mallory:$otp")"
    expect_eq "  audited with the reason" \
        "simpleenroll|forbidden|CSR subject is an admin subject (admin.client_subjects)" "$(last_audit)"
done
make_csr evilca "/CN=Partner CA" ec:P-256
expect_eq "OTP enrollment of a CA's subject (Partner CA, in tls.client_ca): 403" 403 \
    "$(enroll_otp evilca "mallory:$otp")"
expect_eq "  audited with the reason" "simpleenroll|forbidden|CSR subject is the subject of a CA" \
    "$(last_audit)"
make_csr evilca2 "/$(openssl x509 -in "$SRV/ca/ca.pem" -noout -subject -nameopt RFC2253 | sed 's/^subject=//')" ec:P-256
expect_eq "OTP enrollment of the issuing CA's subject: 403" 403 "$(enroll_otp evilca2 "mallory:$otp")"
make_csr evilca3 "/CN=Admin CA" ec:P-256
expect_eq "OTP enrollment of the admin CA's subject: 403" 403 "$(enroll_otp evilca3 "mallory:$otp")"
make_csr evilskg "/CN=ops.example.com" ec:P-256
expect_eq "nor through /serverkeygen: 403" 403 \
    "$(post_csr evilskg.csr.b64 "$BASE/serverkeygen" -u "mallory:$otp")"
expect_no_new_cert "admin and CA subjects" "$before"
expect_eq "no row carries an admin subject" 0 \
    "$(db "select count(*) from certificates where lower(subject) = 'cn=ops.example.com'")"
make_csr fine "/CN=mallory.example.com" ec:P-256
expect_eq "the OTP was not spent by the refusals: it still enrolls another subject (200)" 200 \
    "$(enroll_otp fine "mallory:$otp")"

# a certificate of tls.client_ca with an admin subject, made with the CA key
check "a tls.client_ca certificate with the admin subject made" \
    signed_by fake "/CN=ops.example.com" "$SRV/ca/ca.pem" "$SRV/ca/ca.key"
expect_eq "it does not open /admin/health: 401" 401 "$(req --cert fake.crt --key fake.key "$ADMIN/health")"
expect_eq "nor POST /admin/otp/generate: 401" 401 \
    "$(req -X POST --cert fake.crt --key fake.key -d '{"entity_id":"x"}' "$ADMIN/otp/generate")"
check "  the refusal is audited" test "$(db "select count(*) from audit where event = 'admin.auth' and subject = 'CN=ops.example.com'")" -ge 2
expect_eq "nor does the kipuka-issued CN=admin2.example.com: 401" 401 \
    "$(req --cert admin2.crt --key admin2.key "$ADMIN/health")"
expect_eq "the admin.client_ca certificate opens /admin/health: 200" 200 \
    "$(req --cert ops.crt --key ops.key "$ADMIN/health")"
expect_eq "and POST /admin/otp/generate: 201" 201 \
    "$(req -X POST --cert ops.crt --key ops.key -d '{"entity_id":"y"}' "$ADMIN/otp/generate")"
make_csr opscsr "/CN=ops.example.com" ec:P-256
expect_eq "the admin certificate is no EST credential: /simpleenroll 401" 401 \
    "$(post_csr opscsr.csr.b64 "$BASE/simpleenroll" --cert ops.crt --key ops.key)"

# a config whose admin.client_ca is a label's CA: refused at start
cp "$CFG" "$T/bad.toml"
sed -i 's|^client_ca = "admin-ca.pem"|client_ca = "ca/ca.pem"|' "$T/bad.toml"
sed -i 's|^port = .*|port = 0|' "$T/bad.toml"
cp "$T/bad.toml" "$SRV/bad.toml"
timeout 20 "$KIPUKA" serve -c "$SRV/bad.toml" >"$T/bad.out" 2>"$T/bad.err"
rc=$?
check "kipuka serve exits non-zero (status $rc) on admin.client_ca = a label's CA" \
    test "$rc" != 0 -a "$rc" != 124
check "  saying why and what to do" \
    grep -q 'admin.client_ca .*holds or issued the CA of label default.*admin.client_ca_may_issue = true' "$T/bad.err"
sed 's|^client_ca = "admin-ca.pem"|client_ca = ""|' "$CFG" >"$SRV/bad2.toml"
timeout 20 "$KIPUKA" serve -c "$SRV/bad2.toml" >"$T/bad2.out" 2>"$T/bad2.err"
rc=$?
check "kipuka serve exits non-zero (status $rc) on admin.client_subjects without admin.client_ca" \
    test "$rc" != 0 -a "$rc" != 124
check "  saying why" grep -q 'admin.client_subjects needs admin.client_ca' "$T/bad2.err"

# with the explicit override, a kipuka-issued admin certificate, then revoked
sed -i 's|^client_ca = "admin-ca.pem"|client_ca = "ca/ca.pem"\nclient_ca_may_issue = true|' "$CFG"
check "reload with admin.client_ca = the label CA and admin.client_ca_may_issue" kp_reload
expect_eq "the kipuka-issued admin2 certificate opens /admin/health: 200" 200 \
    "$(req --cert admin2.crt --key admin2.key "$ADMIN/health")"
expect_eq "and /metrics: 200" 200 "$(req --cert admin2.crt --key admin2.key "$ROOT/metrics")"
expect_eq "revoke it: 200" 200 "$(areq POST "/certs/$(cert_serial admin2.crt)/revoke" -d '{}')"
expect_eq "the revoked admin certificate: /admin/health 401" 401 \
    "$(req --cert admin2.crt --key admin2.key "$ADMIN/health")"
expect_eq "  audited as revoked" "admin.auth|unauthorized|admin client certificate revoked" "$(last_audit)"
expect_eq "the revoked admin certificate: /metrics 401" 401 \
    "$(req --cert admin2.crt --key admin2.key "$ROOT/metrics")"
expect_eq "the revoked admin certificate: POST /admin/otp/generate 401" 401 \
    "$(req -X POST --cert admin2.crt --key admin2.key -d '{"entity_id":"z"}' "$ADMIN/otp/generate")"
