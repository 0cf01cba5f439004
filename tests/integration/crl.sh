# One complete CRL per issuing CA (RFC 5280 5.2.5, 6.3.3): labels that share
# a CA certificate serve the same CRL at /crl/LABEL.crl, listing what was
# revoked under any of them, with one crlNumber sequence that only grows; a
# label with a CA of its own lists only its own revocations.
kp_init --label a --label b
cd "$T" || exit 1
TOKEN=$(cat "$SRV/admin.token")

# A label "other" on a CA of its own (openssl writes the key with mode 0600).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
    -keyout other-ca.key -out other-ca.pem -subj "/CN=Other Test CA" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
    2>/dev/null
awk -v pem="$T/other-ca.pem" -v key="$T/other-ca.key" '
    $0 == "[label.a]" { on = 1; block = "[label.other]"; next }
    on && /^\[/ { on = 0 }
    on && $1 == "ca_cert" { $0 = "ca_cert = \"" pem "\"" }
    on && $1 == "ca_key" { $0 = "ca_key = \"" key "\"" }
    on { block = block "\n" $0 }
    END { print block }' "$CFG" >other.section
cat other.section >>"$CFG"
kp_start
fetch_chain || { echo "Bail out! cannot fetch /cacerts"; exit 1; }
ADMIN=${BASE%/.well-known/est}/admin
ROOT=${BASE%/.well-known/est}

# crl_get LABEL OUT: fetch /crl/LABEL.crl into OUT.der and OUT.pem; prints the status
crl_get() {
    local code
    code=$(curl -s -o "$2.der" -w '%{http_code}' --cacert ca-chain.pem "$ROOT/crl/$1.crl")
    openssl crl -inform DER -in "$2.der" -out "$2.pem" 2>/dev/null
    echo "$code"
}
# crl_number FILE.pem: its crlNumber in decimal
crl_number() {
    local hex
    hex=$(openssl crl -in "$1" -noout -crlnumber | cut -d= -f2)
    hex=${hex#0x}
    echo $((16#$hex))
}
# revoke SERIAL: through the admin API; prints the status
revoke() {
    req -X POST -H "Authorization: Bearer $TOKEN" -d '{"reason":"keyCompromise"}' \
        "$ADMIN/certs/$1/revoke"
}
# verify_crl CRL.pem CA.pem CERT: openssl verify with the CRL checked
verify_crl() { openssl verify -crl_check -CAfile "$2" -CRLfile "$1" "$3"; }

enroll_ok deva "/CN=dev-a.example.com" dev-a a/ || not_ok "enroll dev-a under label a"
enroll_ok devb "/CN=dev-b.example.com" dev-b b/ || not_ok "enroll dev-b under label b"
enroll_ok devd "/CN=dev-d.example.com" dev-d || not_ok "enroll dev-d under label default"
otp=$(new_otp dev-o --label other)
make_csr devo "/CN=dev-o.example.com" ec:P-256
code=$(curl -s -o devo.p7b -w '%{http_code}' -X POST --cacert ca-chain.pem -u "dev-o:$otp" \
    -H "Content-Type: application/pkcs10" --data-binary @devo.csr.b64 "$BASE/other/simpleenroll")
expect_eq "enroll dev-o under label other (its own CA)" 200 "$code"
p7_to_pem devo.p7b devo.crt
SERIAL_A=$(cert_serial deva.crt)
SERIAL_B=$(cert_serial devb.crt)

# --- before any revocation: one CRL for the shared CA ---
expect_eq "GET /crl/b.crl before any revocation: 200" 200 "$(crl_get b b0)"
N0=$(crl_number b0.pem)
check "the CRL of label b accepts dev-a (issued under label a)" verify_crl b0.pem "$SRV/ca/ca.pem" deva.crt

# --- revoke dev-a under label a ---
expect_eq "revoke dev-a (label a): 200" 200 "$(revoke "$SERIAL_A")"
expect_eq "GET /crl/b.crl: 200" 200 "$(crl_get b b1)"
check "openssl crl verifies the CRL of label b against the shared CA" \
    sh -c "openssl crl -in b1.pem -CAfile '$SRV/ca/ca.pem' -noout 2>&1 | grep -q 'verify OK'"
check "openssl verify -crl_check with the CRL of label b refuses dev-a, revoked under label a" \
    sh -c "openssl verify -crl_check -CAfile '$SRV/ca/ca.pem' -CRLfile b1.pem deva.crt 2>&1 | grep -q 'certificate revoked'"
check "and accepts dev-b, valid" verify_crl b1.pem "$SRV/ca/ca.pem" devb.crt
check "the CRL is complete: no issuingDistributionPoint" \
    sh -c "! openssl crl -in b1.pem -noout -text | grep -qi 'Issuing Distribution Point'"
expect_eq "GET /crl/a.crl: 200" 200 "$(crl_get a a1)"
expect_eq "GET /crl/default.crl: 200" 200 "$(crl_get default d1)"
check "labels a, b and default (one CA) serve the same CRL" \
    sh -c "cmp -s a1.der b1.der && cmp -s d1.der b1.der"
N1=$(crl_number b1.pem)
check "its crlNumber grew after the revocation ($N0 < $N1)" test "$N0" -lt "$N1"

# --- the label with its own CA ---
expect_eq "GET /crl/other.crl: 200" 200 "$(crl_get other o1)"
check "the CRL of label other is signed by its own CA" \
    sh -c "openssl crl -in o1.pem -CAfile other-ca.pem -noout 2>&1 | grep -q 'verify OK'"
check "it does not list dev-a (another CA's certificate)" \
    sh -c "! openssl crl -in o1.pem -noout -text | tr -d ' :' | grep -qi '$(echo "$SERIAL_A" | sed 's/^0*//')'"
check "it accepts dev-o" verify_crl o1.pem other-ca.pem devo.crt

# --- revoke dev-b under label b: every label of the CA sees both ---
expect_eq "revoke dev-b (label b): 200" 200 "$(revoke "$SERIAL_B")"
expect_eq "GET /crl/a.crl: 200" 200 "$(crl_get a a2)"
check "the CRL of label a refuses dev-b, revoked under label b" \
    sh -c "openssl verify -crl_check -CAfile '$SRV/ca/ca.pem' -CRLfile a2.pem devb.crt 2>&1 | grep -q 'certificate revoked'"
check "and still refuses dev-a" \
    sh -c "openssl verify -crl_check -CAfile '$SRV/ca/ca.pem' -CRLfile a2.pem deva.crt 2>&1 | grep -q 'certificate revoked'"
check "and accepts dev-d (label default, valid)" verify_crl a2.pem "$SRV/ca/ca.pem" devd.crt
N2=$(crl_number a2.pem)
check "the shared sequence grew again, whichever label is fetched ($N1 < $N2)" test "$N1" -lt "$N2"
expect_eq "GET /crl/default.crl: 200" 200 "$(crl_get default d2)"
check "default serves that same CRL" cmp -s d2.der a2.der

# --- crlNumber never goes back: many revocations in a row, fetched by turns ---
prev=$N2
mono=yes
for i in 1 2 3 4 5 6; do
    enroll_ok "m$i" "/CN=m$i.example.com" "m$i" "$(
        case $((i % 3)) in 0) echo a/ ;; 1) echo b/ ;; *) echo "" ;; esac
    )" || mono=no
    revoke "$(cert_serial "m$i.crt")" >/dev/null
    for l in a b default; do
        crl_get "$l" "m$i-$l" >/dev/null
        n=$(crl_number "m$i-$l.pem")
        [ "$n" -ge "$prev" ] || mono=no
        prev=$n
    done
    [ "$(openssl crl -in "m$i-a.pem" -noout -text | grep -c 'Serial Number')" = $((i + 2)) ] || mono=no
done
expect_eq "six more revocations: the crlNumber never decreases, each CRL lists them all" yes "$mono"

# --- after a restart the sequence continues upwards ---
kp_restart
ROOT=${BASE%/.well-known/est}
expect_eq "GET /crl/b.crl after a restart: 200" 200 "$(crl_get b r1)"
check "its crlNumber is above every earlier one ($prev < $(crl_number r1.pem))" \
    test "$prev" -lt "$(crl_number r1.pem)"
