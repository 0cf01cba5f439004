# The client certificate path of mTLS enrollment: a certificate that is
# expired, not yet valid, or issued by another CA is refused with 401 and
# WWW-Authenticate, writes no certificate and leaves an audit row naming the
# reason; a valid one from the same CA enrolls (control) once the label accepts
# certificates kipuka did not issue (mtls_accept_external), and is refused
# before. The certificates are made here with `openssl ca` from the
# deployment's own CA key, so only the dates (or the issuer) differ from the
# control.
kp_init
kp_start
fetch_chain || { echo "Bail out! cannot fetch /cacerts"; exit 1; }
cd "$T" || exit 1

mkdir -p cadb
: >cadb/index.txt
echo 1000 >cadb/serial
cat >ca.cnf <<EOF
[ca]
default_ca = ca_default
[ca_default]
database = $T/cadb/index.txt
new_certs_dir = $T/cadb
serial = $T/cadb/serial
default_md = sha256
policy = any
unique_subject = no
copy_extensions = none
[any]
commonName = supplied
[ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
EOF

# client_cert NAME CA-CERT CA-KEY START END: key NAME.key and certificate
# NAME.crt for CN=NAME.example.com, valid from START to END (YYYYMMDDHHMMSSZ)
client_cert() {
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$1.key" \
        -out "$1.req" -subj "/CN=$1.example.com" 2>/dev/null &&
        openssl ca -batch -config ca.cnf -extensions ext -cert "$2" -keyfile "$3" -in "$1.req" \
            -out "$1.crt" -notext -startdate "$4" -enddate "$5" 2>"$1.ca.err"
}
past=$(date -u -d '-2 days' +%Y%m%d%H%M%SZ)
yesterday=$(date -u -d '-1 day' +%Y%m%d%H%M%SZ)
tomorrow=$(date -u -d '+1 day' +%Y%m%d%H%M%SZ)
later=$(date -u -d '+30 days' +%Y%m%d%H%M%SZ)
ca=$SRV/ca/ca.pem
cakey=$SRV/ca/ca.key

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout other-ca.key \
    -out other-ca.pem -days 30 -subj "/CN=Other CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" 2>/dev/null
check "valid client certificate made" client_cert valid "$ca" "$cakey" "$yesterday" "$later"
check "expired client certificate made" client_cert expired "$ca" "$cakey" "$past" "$yesterday"
check "not-yet-valid client certificate made" \
    client_cert notyet "$ca" "$cakey" "$tomorrow" "$later"
check "client certificate from another CA made" \
    client_cert wrongca other-ca.pem other-ca.key "$yesterday" "$later"
check "the fixtures differ only as intended (openssl verify)" sh -c "
    openssl verify -CAfile '$ca' valid.crt &&
    openssl verify -CAfile '$ca' expired.crt 2>&1 | grep -q 'certificate has expired' &&
    openssl verify -CAfile '$ca' notyet.crt 2>&1 | grep -q 'not yet valid' &&
    openssl verify -CAfile other-ca.pem wrongca.crt"

# try NAME OP REASON: POST a CSR for NAME's subject to OP over mTLS with
# NAME's certificate; expect 401, WWW-Authenticate, no new certificate and an
# audit row (OP, unauthorized, REASON in its detail)
try() {
    local n=$1 op=$2 why=$3 before code
    make_csr "csr-$n-$op" "/CN=$n.example.com" ec:P-256
    before=$(cert_count)
    code=$(post_csr "csr-$n-$op.csr.b64" "$BASE/$op" --cert "$n.crt" --key "$n.key")
    expect_eq "$n client certificate, /$op: 401" 401 "$code"
    expect_eq "$n, /$op: WWW-Authenticate: Basic realm=\"est\"" 'Basic realm="est"' \
        "$(header WWW-Authenticate)"
    expect_no_new_cert "$n, /$op" "$before"
    expect_eq "$n, /$op: audited as unauthorized, subject and reason recorded" \
        "$op|unauthorized|CN=$n.example.com|$why" \
        "$(db "select event, outcome, subject, detail from audit order by id desc limit 1")"
}
try expired simpleenroll 'certificate has expired'
try notyet simpleenroll 'certificate is not yet valid'
try wrongca simpleenroll 'unable to get local issuer certificate'
try expired simplereenroll 'certificate has expired'
try notyet simplereenroll 'certificate is not yet valid'
try wrongca simplereenroll 'unable to get local issuer certificate'

# a valid certificate of the same CA that kipuka did not issue: refused
# while the label does not accept external certificates (the default)
make_csr ok "/CN=valid.example.com" ec:P-256
before=$(cert_count)
code=$(post_csr ok.csr.b64 "$BASE/simpleenroll" --cert valid.crt --key valid.key)
expect_eq "valid certificate kipuka did not issue, /simpleenroll: 403" 403 "$code"
expect_no_new_cert "external certificate" "$before"
expect_eq "the refusal is audited as forbidden with the reason" \
    "simpleenroll|forbidden|client certificate not issued by kipuka, and this label does not accept others (mtls_accept_external)" \
    "$(db "select event, outcome, detail from audit order by id desc limit 1")"

# control: the same path once the label accepts external certificates
check "mtls_accept_external = true on the default label" \
    cfg_add label.default mtls_accept_external true
check "reload" kp_reload
code=$(post_csr ok.csr.b64 "$BASE/simpleenroll" --cert valid.crt --key valid.key)
expect_eq "valid client certificate, /simpleenroll: 200 (control)" 200 "$code"
expect_eq "valid: one certificate row, auth_method mtls" "$((before + 1))|mtls" \
    "$(cert_count)|$(db "select auth_method from certificates order by rowid desc limit 1")"
expect_eq "valid: audited as ok" "simpleenroll|ok" \
    "$(db "select event, outcome from audit order by id desc limit 1")"
