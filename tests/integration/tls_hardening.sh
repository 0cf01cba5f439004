# TLS hardening, seen from openssl s_client: TLS 1.2 offers only ECDHE with
# AEAD (no RSA key exchange, no CBC unless tls.allow_cbc, never NULL or
# anonymous suites), no client-initiated renegotiation, no session tickets
# (TLS 1.2 session-ID resumption only), and a client without SNI is served.
# TLS 1.1 and 1.0 refusal is checked in transport.sh.
kp_init
kp_start
fetch_chain || { echo "Bail out! cannot fetch /cacerts"; exit 1; }
cd "$T" || exit 1

# s12 NAME CIPHERS [s_client args...]: a TLS 1.2 handshake offering only
# CIPHERS (SECLEVEL=0: only the server may refuse); output in NAME.out,
# exit status in RC
s12() {
    local n=$1 c=$2; shift 2
    timeout 20 openssl s_client -connect "localhost:$PORT" -tls1_2 -cipher "$c:@SECLEVEL=0" \
        -CAfile ca-chain.pem "$@" </dev/null >"$n.out" 2>&1
    RC=$?
}
# refused NAME: the server answered the ClientHello with a handshake_failure
# alert (40): the client did offer the suites, the server took none
refused() {
    test "$RC" -ne 0 && grep -q 'Cipher is (NONE)' "$1.out" && grep -q 'alert number 40' "$1.out"
}
# accepted NAME CIPHER: the TLS 1.2 handshake completed with CIPHER ("New,"
# names the version the suite was defined in, "Protocol" the one in use)
accepted() {
    test "$RC" = 0 && grep -q "^New, TLSv1\.[0-2], Cipher is $2\$" "$1.out" &&
        grep -q '^ *Protocol *: TLSv1.2$' "$1.out"
}

# --- the server key from kipuka init is ECDSA P-256 ---
check "kipuka init makes an ECDSA server key" \
    sh -c "openssl x509 -in '$SRV/tls/server.pem' -noout -text | grep -q id-ecPublicKey"
s12 ecdsa_gcm ECDHE-ECDSA-AES128-GCM-SHA256
check "TLS 1.2 ECDHE-ECDSA-AES128-GCM-SHA256 connects (control)" accepted ecdsa_gcm \
    ECDHE-ECDSA-AES128-GCM-SHA256
for c in ECDHE-ECDSA-AES128-SHA256 ECDHE-ECDSA-AES128-SHA ECDHE-ECDSA-AES256-SHA; do
    s12 "cbc_$c" "$c"
    check "TLS 1.2 CBC suite $c is refused" refused "cbc_$c"
done
# This client's OpenSSL cannot even offer RC4, 3DES or EXPORT suites; it
# offers every NULL-encryption and anonymous suite it has.
s12 weak 'NULL:eNULL:aNULL:RC4:3DES:EXPORT:DES:MD5'
check "an offer of only NULL/anonymous/RC4/3DES/EXPORT suites is refused" refused weak
check "(the client did offer NULL suites)" \
    sh -c "openssl ciphers 'eNULL:@SECLEVEL=0' | grep -q NULL"

# --- SNI is optional: devices that send none are served ---
timeout 20 openssl s_client -connect "localhost:$PORT" -noservername -CAfile ca-chain.pem \
    -verify_return_error </dev/null >nosni.out 2>&1
check "a handshake without SNI completes and the certificate verifies" \
    sh -c "grep -q '^New, TLSv1.3' nosni.out && grep -q 'Verify return code: 0 (ok)' nosni.out"

# --- the chain sent: built once at start, not in every handshake: tls.cert's
# own intermediates as written, else those the trust anchors link it to,
# never the self-signed root a client must hold already (RFC 8446 4.4.2) ---
# chain_subjects NAME: the subjects of the certificates the server sent, one a line
chain_subjects() {
    timeout 20 openssl s_client -connect "localhost:$PORT" -showcerts -CAfile ca-chain.pem \
        </dev/null 2>/dev/null | sed -n 's/^ *[0-9][0-9]* s:\(.*\)/\1/p' >"$1.subjects"
    cat "$1.subjects"
}
ca_subject=$(openssl x509 -in "$SRV/ca/ca.pem" -noout -subject -nameopt oneline | sed 's/^subject=//')
expect_eq "kipuka init's server sends its certificate alone (its issuer is the root)" \
    "CN = localhost" "$(chain_subjects auto | paste -sd'|')"
cat "$SRV/tls/server.pem" "$SRV/ca/ca.pem" >"$SRV/tls/server-chain.pem"
cfg_set tls cert '"tls/server-chain.pem"'
check "SIGHUP with a tls.cert that holds the CA after the certificate" kp_reload
expect_eq "a tls.cert with its own chain is sent as written, nothing added twice" \
    "CN = localhost|$ca_subject" "$(chain_subjects file | paste -sd'|')"
# a server certificate under an intermediate that only the trust anchors hold
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout root.key \
    -subj /CN=chain-root -days 30 -out root.pem \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout mid.key \
    -subj /CN=chain-intermediate -out mid.csr 2>/dev/null
printf 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign\n' >mid.ext
openssl x509 -req -in mid.csr -CA root.pem -CAkey root.key -CAcreateserial -days 30 \
    -extfile mid.ext -out mid.pem 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout leaf.key \
    -subj /CN=localhost -out leaf.csr 2>/dev/null
printf 'subjectAltName=DNS:localhost\n' >leaf.ext
openssl x509 -req -in leaf.csr -CA mid.pem -CAkey mid.key -CAcreateserial -days 30 \
    -extfile leaf.ext -out leaf.pem 2>/dev/null
chmod 600 leaf.key
cat root.pem mid.pem >anchors.pem
cfg_set tls cert "\"$T/leaf.pem\"" && cfg_set tls key "\"$T/leaf.key\"" &&
    cfg_set tls client_ca "\"$T/anchors.pem\""
check "SIGHUP with a certificate under an intermediate held by tls.client_ca" kp_reload
expect_eq "the intermediate from the trust anchors is sent, the root is not" \
    "CN = localhost|CN = chain-intermediate" "$(chain_subjects mid | paste -sd'|')"
timeout 20 openssl s_client -connect "localhost:$PORT" -CAfile root.pem -verify_return_error \
    </dev/null >mid-verify.out 2>&1
check "a client holding only the root verifies that chain" \
    grep -q 'Verify return code: 0 (ok)' mid-verify.out
cfg_set tls cert '"tls/server.pem"' && cfg_set tls key '"tls/server.key"' &&
    cfg_set tls client_ca '"ca/ca.pem"'
check "SIGHUP back to kipuka init's certificate" kp_reload

# --- renegotiation: refused, and the server keeps serving ---
(sleep 1; echo R; sleep 2) | timeout 20 openssl s_client -connect "localhost:$PORT" -tls1_2 \
    -CAfile ca-chain.pem >reneg.out 2>&1
rc=$?
check "s_client -tls1_2 sent a renegotiation request (R)" grep -q '^RENEGOTIATING' reneg.out
check "client-initiated renegotiation fails with \"no renegotiation\" (status $rc)" \
    sh -c "test $rc -ne 0 && grep -q 'no renegotiation' reneg.out"
expect_eq "the server still answers after the refused renegotiation" 200 "$(req "$BASE/cacerts")"

# --- session resumption: no tickets; TLS 1.2 resumes from the session cache ---
s12 sess ECDHE-ECDSA-AES128-GCM-SHA256 -sess_out sess.pem
check "TLS 1.2: a session is saved" test -s sess.pem
check "TLS 1.2: the server sends no session ticket" \
    sh -c "! grep -qi 'session ticket' sess.out && ! openssl sess_id -in sess.pem -noout -text | grep -qi 'ticket'"
s12 resume ECDHE-ECDSA-AES128-GCM-SHA256 -sess_in sess.pem
check "TLS 1.2: the session resumes by session ID (Reused)" grep -q '^Reused, TLSv1.2' resume.out
timeout 20 openssl s_client -connect "localhost:$PORT" -tls1_3 -CAfile ca-chain.pem \
    -sess_out sess13.pem </dev/null >sess13.out 2>&1
check "TLS 1.3: the server sends no ticket (no session to save)" \
    sh -c "! test -s sess13.pem && ! grep -qi 'session ticket' sess13.out"
timeout 30 openssl s_client -connect "localhost:$PORT" -tls1_3 -CAfile ca-chain.pem -reconnect \
    </dev/null >recon13.out 2>&1
expect_eq "TLS 1.3 -reconnect: every connection is a full handshake" \
    "0 6" "$(grep -c '^Reused' recon13.out) $(grep -c '^New, TLSv1.3' recon13.out)"

# --- an RSA server certificate: RSA key exchange and CBC stay refused ---
openssl req -new -newkey rsa:2048 -nodes -keyout rsa.key -out rsa.csr -subj "/CN=localhost" \
    2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >rsa.ext
openssl x509 -req -in rsa.csr -CA "$SRV/ca/ca.pem" -CAkey "$SRV/ca/ca.key" -CAcreateserial \
    -CAserial rsa.srl -days 30 -extfile rsa.ext -out rsa.pem 2>/dev/null
check "set tls.cert to an RSA certificate" cfg_set tls cert "\"$T/rsa.pem\""
check "set tls.key to its key" cfg_set tls key "\"$T/rsa.key\""
check "SIGHUP loads the RSA certificate" kp_reload
s12 rsa_gcm ECDHE-RSA-AES128-GCM-SHA256
check "RSA certificate: TLS 1.2 ECDHE-RSA-AES128-GCM-SHA256 connects (control)" accepted rsa_gcm \
    ECDHE-RSA-AES128-GCM-SHA256
for c in AES128-GCM-SHA256 AES256-GCM-SHA384 AES128-SHA; do
    s12 "rsakx_$c" "$c"
    check "RSA certificate: RSA key exchange $c is refused" refused "rsakx_$c"
done
s12 rsa_cbc ECDHE-RSA-AES128-SHA
check "RSA certificate: TLS 1.2 CBC suite ECDHE-RSA-AES128-SHA is refused" refused rsa_cbc

# --- tls.allow_cbc = true brings ECDHE CBC suites back, nothing else ---
sed -i '/^\[tls\]$/a allow_cbc = true' "$CFG"
check "SIGHUP with tls.allow_cbc = true" kp_reload
s12 cbc_on ECDHE-RSA-AES128-SHA
check "allow_cbc: ECDHE-RSA-AES128-SHA connects" accepted cbc_on ECDHE-RSA-AES128-SHA
s12 cbc_on256 ECDHE-RSA-AES128-SHA256
check "allow_cbc: ECDHE-RSA-AES128-SHA256 connects" accepted cbc_on256 ECDHE-RSA-AES128-SHA256
s12 cbc_on_rsakx AES128-SHA
check "allow_cbc: RSA key exchange AES128-SHA is still refused" refused cbc_on_rsakx
s12 cbc_on_weak 'NULL:eNULL:aNULL:RC4:3DES:EXPORT:DES:MD5'
check "allow_cbc: NULL/anonymous offers are still refused" refused cbc_on_weak
s12 cbc_prefer 'ECDHE-RSA-AES128-SHA:ECDHE-RSA-AES128-GCM-SHA256'
check "allow_cbc: AEAD is still preferred when the client offers both" accepted cbc_prefer \
    ECDHE-RSA-AES128-GCM-SHA256
