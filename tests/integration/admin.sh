# The admin API (/admin), /metrics and the CRLs: every route with and without
# credentials, revocation refusing mTLS and showing in a CRL that verifies,
# counters moving after enrollments.
kp_init
kp_start
fetch_chain || { echo "Bail out! cannot fetch /cacerts"; exit 1; }
cd "$T" || exit 1
TOKEN=$(cat "$SRV/admin.token")
ADMIN=${BASE%/.well-known/est}/admin
ROOT=${BASE%/.well-known/est}

check "kipuka init wrote admin.token with mode 0600" \
    test "$(stat -c %a "$SRV/admin.token")" = 600
check "the config keeps only the token's SHA-256" \
    sh -c "! grep -q '$TOKEN' '$CFG' && grep -q \"$(printf %s "$TOKEN" | sha256sum | cut -d' ' -f1)\" '$CFG'"

# areq METHOD PATH [curl args]: admin request with the token; prints the status
areq() {
    local m=$1 p=$2; shift 2
    req -X "$m" -H "Authorization: Bearer $TOKEN" "$@" "$ADMIN$p"
}
# jq_body FILTER: FILTER applied to the last response body
jq_body() { jq -r "$1" "$T/resp.body"; }

# --- every route refuses without credentials, and with a wrong token ---
for route in "GET /health" "GET /health/db" "GET /health/ca" "GET /cas" "GET /cas/default" \
    "GET /certs" "GET /certs/0a" "POST /certs/0a/revoke" "POST /otp/generate" "GET /otp" \
    "DELETE /otp/1" "GET /audit"; do
    set -- $route
    code=$(req -X "$1" "$ADMIN$2")
    expect_eq "$1 /admin$2 without credentials: 401" 401 "$code"
    code=$(req -X "$1" -H "Authorization: Bearer wrong-token" "$ADMIN$2")
    expect_eq "$1 /admin$2 with a wrong token: 401" 401 "$code"
done
req "$ADMIN/health" >/dev/null
expect_eq "the 401 challenges for a bearer token" 'Bearer realm="kipuka-admin"' \
    "$(header WWW-Authenticate)"
check "the 401 body is JSON with error unauthorized" \
    test "$(jq_body .error)" = unauthorized
code=$(req -H "Authorization: Basic $(printf 'admin:%s' "$TOKEN" | base64 -w0)" "$ADMIN/health")
expect_eq "the token as HTTP Basic is refused: 401" 401 "$code"

# --- health ---
expect_eq "GET /admin/health: 200" 200 "$(areq GET /health)"
expect_eq "health body" "healthy 1" "$(jq_body '"\(.status) \(.ca_count)"')"
check "health carries the version" test "$(jq_body .version)" = "$("$KIPUKA" version | awk '{print $2}')"
expect_eq "GET /admin/health/db: 200" 200 "$(areq GET /health/db)"
expect_eq "GET /admin/health/ca: 200" 200 "$(areq GET /health/ca)"
expect_eq "POST /admin/health: 405" 405 "$(areq POST /health)"
expect_eq "GET /admin/nope: 404" 404 "$(areq GET /nope)"

# --- CAs ---
expect_eq "GET /admin/cas: 200" 200 "$(areq GET /cas)"
expect_eq "one CA, label default, subject of ca.pem" \
    "1 default $(openssl x509 -in "$SRV/ca/ca.pem" -noout -subject -nameopt RFC2253 | sed 's/^subject=//')" \
    "$(jq_body '"\(.cas | length) \(.cas[0].label) \(.cas[0].subject)"')"
expect_eq "GET /admin/cas/default: 200" 200 "$(areq GET /cas/default)"
expect_eq "its serial is ca.pem's" \
    "$(openssl x509 -in "$SRV/ca/ca.pem" -noout -serial | cut -d= -f2 | tr A-F a-f | sed 's/^0*//')" \
    "$(jq_body .serial | sed 's/^0*//')"
expect_eq "GET /admin/cas/nope: 404 unknown_label" "404 unknown_label" \
    "$(areq GET /cas/nope) $(jq_body .error)"

# --- OTPs ---
code=$(areq POST /otp/generate -d '{"entity_id":"dev-a","ttl":3600,"uses":1}')
expect_eq "POST /admin/otp/generate: 201" 201 "$code"
check "its status line says 201 Created" grep -q '^HTTP/1.1 201 Created' "$T/resp.h"
OTP_A=$(jq_body .token)
OTP_A_ID=$(jq_body .id)
check "the answer has a 20-character token and expires in an hour" \
    sh -c "test ${#OTP_A} = 20 && test $(jq_body .expires_at) -ge $(($(date +%s) + 3590))"
check "the OTP is not in the server log" sh -c "! grep -q '$OTP_A' '$T/server.log'"
expect_eq "generate without entity_id: 400" 400 "$(areq POST /otp/generate -d '{}')"
expect_eq "generate with an unknown label: 400" 400 \
    "$(areq POST /otp/generate -d '{"entity_id":"x","label":"nope"}')"
expect_eq "generate with uses 0: 400" 400 "$(areq POST /otp/generate -d '{"entity_id":"x","uses":0}')"
expect_eq "generate with a non-JSON body: 400" 400 "$(areq POST /otp/generate -d 'entity_id=x')"
expect_eq "GET /admin/otp: 200" 200 "$(areq GET /otp)"
expect_eq "it lists dev-a as active" "dev-a active" \
    "$(jq_body ".otps[] | select(.id == $OTP_A_ID) | \"\(.entity_id) \(.state)\"")"

make_csr deva "/CN=dev-a.example.com" ec:P-256
expect_eq "the generated OTP enrolls: 200" 200 "$(enroll_otp deva "dev-a:$OTP_A")"
p7_to_pem "$T/deva.p7b" "$T/deva.crt"
SERIAL_A=$(cert_serial "$T/deva.crt")

code=$(areq POST /otp/generate -d '{"entity_id":"dev-b"}')
OTP_B=$(jq_body .token)
OTP_B_ID=$(jq_body .id)
expect_eq "DELETE /admin/otp/ID: 200" 200 "$(areq DELETE "/otp/$OTP_B_ID")"
make_csr devb "/CN=dev-b.example.com" ec:P-256
expect_eq "the revoked OTP no longer enrolls: 401" 401 "$(enroll_otp devb "dev-b:$OTP_B")"
expect_eq "DELETE /admin/otp/999999: 404" 404 "$(areq DELETE /otp/999999)"
expect_eq "DELETE /admin/otp/abc: 404" 404 "$(areq DELETE /otp/abc)"

# --- certificates ---
enroll_ok devc "/CN=dev-c.example.com" dev-c || not_ok "enroll dev-c"
expect_eq "GET /admin/certs: 200" 200 "$(areq GET /certs)"
expect_eq "two certificates, newest first" "2 dev-c" \
    "$(jq_body '"\(.total) \(.certificates[0].requester)"')"
expect_eq "filter by subject" "1 $SERIAL_A" \
    "$(areq GET "/certs?subject=dev-a.example" >/dev/null; jq_body '"\(.total) \(.certificates[0].serial)"')"
expect_eq "limit 1 offset 1: total 2, one row, the older one" "2 1 $SERIAL_A" \
    "$(areq GET "/certs?limit=1&offset=1" >/dev/null; jq_body '"\(.total) \(.certificates | length) \(.certificates[0].serial)"')"
expect_eq "filter by label nope: none" "0" "$(areq GET "/certs?label=nope" >/dev/null; jq_body .total)"
expect_eq "status=bogus: 400" 400 "$(areq GET "/certs?status=bogus")"
expect_eq "limit=-1: 400" 400 "$(areq GET "/certs?limit=-1")"
expect_eq "GET /admin/certs/SERIAL: 200" 200 "$(areq GET "/certs/$SERIAL_A")"
jq_body .pem >from-api.pem
check "its PEM is the certificate the client received" \
    cmp <(openssl x509 -in from-api.pem -outform DER) <(openssl x509 -in "$T/deva.crt" -outform DER)
expect_eq "GET /admin/certs/ffff: 404" 404 "$(areq GET /certs/ffff)"
expect_eq "GET /admin/certs/not-hex: 404" 404 "$(areq GET /certs/not-hex)"

# --- revocation: mTLS refused, CRL lists it and verifies ---
make_csr reA "/CN=dev-a.example.com" ec:P-256
code=$(post_csr reA.csr.b64 "$BASE/simplereenroll" --cert deva.crt --key deva.key)
expect_eq "before revocation, dev-a re-enrolls with its certificate: 200" 200 "$code"
expect_eq "revoke with a bad reason: 400" 400 \
    "$(areq POST "/certs/$SERIAL_A/revoke" -d '{"reason":"because"}')"
expect_eq "POST /admin/certs/SERIAL/revoke: 200" 200 \
    "$(areq POST "/certs/$SERIAL_A/revoke" -d '{"reason":"keyCompromise"}')"
expect_eq "its status is revoked" "revoked" "$(areq GET "/certs/$SERIAL_A" >/dev/null; jq_body .status)"
expect_eq "revoking again: 409" 409 "$(areq POST "/certs/$SERIAL_A/revoke" -d '{}')"
expect_eq "revoking an unknown serial: 404" 404 "$(areq POST /certs/abcdef/revoke -d '{}')"
code=$(post_csr reA.csr.b64 "$BASE/simplereenroll" --cert deva.crt --key deva.key)
expect_eq "the revoked certificate cannot re-enroll: 401" 401 "$code"
code=$(post_csr reA.csr.b64 "$BASE/simpleenroll" --cert deva.crt --key deva.key)
expect_eq "nor enroll with mTLS: 401" 401 "$code"
check "each refusal is audited with the reason" \
    test "$(db "select count(*) from audit where outcome = 'unauthorized' and detail like '%revoked%'")" -ge 2
check "the revocation is audited" \
    test "$(db "select count(*) from audit where event = 'cert.revoke' and detail = '$SERIAL_A'")" = 1

code=$(curl -s -o crl.der -w '%{http_code} %{content_type}' --cacert ca-chain.pem "$ROOT/crl/default.crl")
expect_eq "GET /crl/default.crl: 200 application/pkix-crl, no credentials" \
    "200 application/pkix-crl" "$code"
check "openssl crl -verify accepts it against the CA" \
    sh -c "openssl crl -inform DER -in crl.der -CAfile '$SRV/ca/ca.pem' -noout 2>&1 | grep -q 'verify OK'"
check "it lists the revoked serial with reason Key Compromise" \
    sh -c "openssl crl -inform DER -in crl.der -noout -text | tr -d ' :' | grep -qi '$(echo "$SERIAL_A" | sed 's/^0*//')' &&
           openssl crl -inform DER -in crl.der -noout -text | grep -q 'Key Compromise'"
check "openssl verify -crl_check refuses the revoked certificate" \
    sh -c "openssl crl -inform DER -in crl.der -out crl.pem &&
           openssl verify -crl_check -CAfile '$SRV/ca/ca.pem' -CRLfile crl.pem deva.crt 2>&1 | grep -q 'revoked'"
check "and accepts a valid one" \
    openssl verify -crl_check -CAfile "$SRV/ca/ca.pem" -CRLfile crl.pem devc.crt
expect_eq "GET /crl/nope.crl: 404" 404 "$(req "$ROOT/crl/nope.crl")"
expect_eq "GET /crl/default.pem: 404" 404 "$(req "$ROOT/crl/default.pem")"

# --- audit ---
expect_eq "GET /admin/audit: 200" 200 "$(areq GET /audit)"
check "it shows the enrollments and the revocation" \
    sh -c "jq -e '[.events[].event] | index(\"cert.revoke\") and index(\"simpleenroll\")' '$T/resp.body'"
expect_eq "GET /admin/audit?limit=2: two events" 2 "$(areq GET '/audit?limit=2' >/dev/null; jq_body '.events | length')"
expect_eq "GET /admin/audit?since=far future: none" 0 \
    "$(areq GET '/audit?since=9999999999' >/dev/null; jq_body '.events | length')"

# --- metrics ---
code=$(req "$ROOT/metrics")
expect_eq "GET /metrics without credentials: 401" 401 "$code"
metric() { # NAME_AND_LABELS: its value in the last /metrics body
    awk -v k="$1" '$1 == k { print $2 }' "$T/resp.body"
}
req -H "Authorization: Bearer $TOKEN" "$ROOT/metrics" >/dev/null
issued0=$(metric kipuka_certificates_issued_total)
ok200_0=$(metric 'kipuka_requests_total{op="simpleenroll",label="default",status="200"}')
fail0=$(metric kipuka_otp_failures_total)
check "text format with TYPE lines" grep -q '^# TYPE kipuka_enrollment_duration_seconds histogram' "$T/resp.body"
enroll_ok devd "/CN=dev-d.example.com" dev-d || not_ok "enroll dev-d"
make_csr deve "/CN=dev-e.example.com" ec:P-256
enroll_otp deve "dev-e:wrongwrongwrongwrong1" >/dev/null
req -H "Authorization: Bearer $TOKEN" "$ROOT/metrics" >/dev/null
expect_eq "certificates issued +1 after an enrollment" $((issued0 + 1)) "$(metric kipuka_certificates_issued_total)"
expect_eq "simpleenroll 200 for label default +1" $((${ok200_0:-0} + 1)) \
    "$(metric 'kipuka_requests_total{op="simpleenroll",label="default",status="200"}')"
expect_eq "OTP failures +1 after a wrong OTP" $((fail0 + 1)) "$(metric kipuka_otp_failures_total)"
check "the latency histogram counted the enrollments" \
    test "$(metric kipuka_enrollment_duration_seconds_count)" -ge 4
code=$(req "$BASE/no-such-label-xyz/cacerts")
req -H "Authorization: Bearer $TOKEN" "$ROOT/metrics" >/dev/null
check "an unknown label from a client makes no series of its own" \
    sh -c "! grep -q 'no-such-label-xyz' '$T/resp.body'"


# --- the CLI talks to the API, not to the database ---
KA() { "$KIPUKA" admin -c "$CFG" --server "https://localhost:$PORT" "$@"; }
check "kipuka admin health" sh -c "$(declare -f KA); KIPUKA='$KIPUKA' CFG='$CFG' PORT='$PORT'; KA health | jq -e '.status == \"healthy\"'"
OTP_CLI=$(KA otp-create --entity dev-cli --uses 1 2>"$T/cli.err")
check "kipuka admin otp-create prints a 20-character OTP alone on stdout" \
    test "${#OTP_CLI}" = 20
make_csr devcli "/CN=dev-cli.example.com" ec:P-256
expect_eq "that OTP enrolls: 200" 200 "$(enroll_otp devcli "dev-cli:$OTP_CLI")"
p7_to_pem "$T/devcli.p7b" "$T/devcli.crt"
SERIAL_CLI=$(cert_serial "$T/devcli.crt")
expect_eq "kipuka admin certs --subject finds it" "$SERIAL_CLI" \
    "$(KA certs --subject dev-cli.example 2>/dev/null | jq -r '.certificates[0].serial')"
check "kipuka admin revoke SERIAL --reason superseded" \
    sh -c "$(declare -f KA); KIPUKA='$KIPUKA' CFG='$CFG' PORT='$PORT'; KA revoke $SERIAL_CLI --reason superseded | jq -e '.status == \"revoked\"'"
check "kipuka admin revoke again fails with exit status 1" \
    sh -c "$(declare -f KA); KIPUKA='$KIPUKA' CFG='$CFG' PORT='$PORT'; ! KA revoke $SERIAL_CLI 2>/dev/null"
check "kipuka admin with a wrong token fails (401)" \
    sh -c "echo nope >'$T/bad.token'; ! '$KIPUKA' admin -c '$CFG' --server https://localhost:$PORT --token-file '$T/bad.token' health 2>'$T/bad.err' && grep -q 401 '$T/bad.err'"

# --- an admin client certificate instead of a token ---
# Admin certificates chain to admin.client_ca, a CA of their own: a
# certificate kipuka issued (tls.client_ca) is no admin credential, even
# with a listed subject (docs/authorization.md).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout admin-ca.key \
    -out admin-ca.pem -days 30 -subj "/CN=Admin CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ops.key \
    -out ops.req -subj "/CN=ops.example.com" 2>/dev/null
printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n' >ops.ext
openssl x509 -req -in ops.req -CA admin-ca.pem -CAkey admin-ca.key -CAcreateserial -days 30 \
    -extfile ops.ext -out ops.crt 2>/dev/null
check "admin certificate fixture verifies under the admin CA" openssl verify -CAfile admin-ca.pem ops.crt
cp admin-ca.pem "$SRV/admin-ca.pem"
sed -i "s|^token_sha256 = .*|&\nclient_subjects = \"CN=ops.example.com;CN=dev-c.example.com\"\nclient_ca = \"admin-ca.pem\"|" "$CFG"
check "reload with admin.client_subjects and admin.client_ca" kp_reload
expect_eq "the listed certificate of admin.client_ca opens /admin/health" 200 \
    "$(req --cert ops.crt --key ops.key "$ADMIN/health")"
expect_eq "and /metrics" 200 "$(req --cert ops.crt --key ops.key "$ROOT/metrics")"
expect_eq "a listed subject on a certificate of tls.client_ca does not: 401" 401 \
    "$(req --cert devc.crt --key devc.key "$ADMIN/health")"
# (curl sends the kipuka root with the leaf: it is in the --cacert file)
expect_eq "the refusal is audited with the chain's verify error" \
    "admin.auth|unauthorized|CN=dev-c.example.com|self-signed certificate in certificate chain" \
    "$(db "select event, outcome, subject, detail from audit order by id desc limit 1")"
expect_eq "another client certificate does not either: 401" 401 \
    "$(req --cert devd.crt --key devd.key "$ADMIN/health")"

# --- structured access log: one JSON object per request ---
cfg_set log format '"json"'
kp_restart
ADMIN=${BASE%/.well-known/est}/admin # the port changed
ROOT=${BASE%/.well-known/est}
code=$(req "$BASE/cacerts")
enroll_ok devj "/CN=dev-j.example.com" dev-j || not_ok "enroll dev-j"
sleep 0.2
grep '"msg":"request"' "$T/server.log" >access.jsonl
check "every access log line is a JSON object" jq -e . access.jsonl
check "the cacerts line: op, label, status, method, peer, ms" \
    jq -se 'map(select(.op == "cacerts")) | .[0] | .label == "default" and .status == 200 and .method == "GET" and (.peer | startswith("127.0.0.1:")) and (.ms | type == "number")' access.jsonl
check "the enrollment line names the authenticated identity" \
    jq -se 'map(select(.op == "simpleenroll" and .status == 200)) | .[-1].subject == "dev-j"' access.jsonl
check "no OTP or token in the log" \
    sh -c "! grep -q '$TOKEN' '$T/server.log' && ! grep -qi 'authorization' '$T/server.log'"

# --- requests held for manual approval ---
for route in "GET /requests" "POST /requests/1/approve" "POST /requests/1/reject"; do
    set -- $route
    expect_eq "$1 /admin$2 without credentials: 401" 401 "$(req -X "$1" "$ADMIN$2")"
done
check "approval = \"manual\" on the default label" cfg_add label.default approval '"manual"'
# the held requests below carry SANs of every kind, IP too
check "otp_subject = \"any\" on the default label" cfg_set label.default otp_subject '"any"'
check "est.retry_after = 23" cfg_set est retry_after 23
check "reload" kp_reload
make_csr held1 "/CN=held-1.example.com" ec:P-256
otp=$(new_otp held-1)
expect_eq "an enrollment is held: 202" 202 "$(post_csr held1.csr.b64 "$BASE/simpleenroll" -u "held-1:$otp")"
expect_eq "with Retry-After 23" 23 "$(header Retry-After)"
expect_eq "GET /admin/requests?status=pending: 200" 200 "$(areq GET '/requests?status=pending')"
HELD=$(jq_body '.requests[] | select(.requester == "held-1") | .id')
expect_eq "it lists the held request with its subject" "pending CN=held-1.example.com simpleenroll" \
    "$(jq_body ".requests[] | select(.id == $HELD) | \"\(.status) \(.subject) \(.operation)\"")"
req -H "Authorization: Bearer $TOKEN" "$ROOT/metrics" >/dev/null
expect_eq "/metrics: one pending request" 1 "$(metric kipuka_pending_requests)"
expect_eq "status=bogus: 400" 400 "$(areq GET '/requests?status=bogus')"
expect_eq "POST /admin/requests/ID/approve: 200" 200 "$(areq POST "/requests/$HELD/approve")"
expect_eq "approving again: 404 (no longer pending)" 404 "$(areq POST "/requests/$HELD/approve")"
expect_eq "GET on approve: 405" 405 "$(areq GET "/requests/$HELD/approve")"
expect_eq "the client repeats its request: 200" 200 \
    "$(post_csr held1.csr.b64 "$BASE/simpleenroll" -u "held-1:$otp")"
p7_to_pem resp.body held1.crt
check "with a certificate that verifies" openssl verify -CAfile ca-chain.pem held1.crt
make_csr held2 "/CN=held-2.example.com" ec:P-256
otp=$(new_otp held-2)
expect_eq "another is held: 202" 202 "$(post_csr held2.csr.b64 "$BASE/simpleenroll" -u "held-2:$otp")"
HELD2=$(KA requests --status pending 2>/dev/null | jq -r '.requests[] | select(.requester == "held-2") | .id')
check "kipuka admin reject ID" sh -c "$(declare -f KA); KIPUKA='$KIPUKA' CFG='$CFG' PORT='$PORT'; KA reject $HELD2 | jq -e '.status == \"rejected\"'"
expect_eq "the rejected request repeated: 403" 403 \
    "$(post_csr held2.csr.b64 "$BASE/simpleenroll" -u "held-2:$otp")"
check "both decisions are audited with the admin's identity" \
    test "$(db "select count(*) from audit where event in ('request.approve', 'request.reject') and detail like '%admin token%'")" = 2
expect_eq "POST /admin/requests/999999/reject: 404" 404 "$(areq POST /requests/999999/reject)"

# --- what the operator sees of a held request: every SAN, key, EKUs, requester ---
make_csr held3 "/CN=held-3.example.com" rsa:2048 \
    -addext "subjectAltName=DNS:held-3.example.com,DNS:alt-3.example.com,IP:192.0.2.33"
otp=$(new_otp held-3)
expect_eq "an RSA request with three SANs is held: 202" 202 \
    "$(post_csr held3.csr.b64 "$BASE/simpleenroll" -u "held-3:$otp")"
expect_eq "GET /admin/requests: 200" 200 "$(areq GET '/requests?status=pending')"
H3='.requests[] | select(.requester == "held-3")'
expect_eq "it lists every SAN" "DNS:held-3.example.com|DNS:alt-3.example.com|IP:192.0.2.33" \
    "$(jq_body "$H3 | .sans | join(\"|\")")"
expect_eq "the key type and size" rsa:2048 "$(jq_body "$H3 | .key_type")"
expect_eq "the EKUs the label puts in the certificate" clientAuth "$(jq_body "$H3 | .ekus | join(\",\")")"
expect_eq "the requester and how it authenticated" "held-3 otp CN=held-3.example.com" \
    "$(jq_body "$H3 | \"\(.requester) \(.auth_method) \(.subject)\"")"
expect_eq "and the request's fingerprint (64 hex digits)" 64 \
    "$(jq_body "$H3 | .fingerprint | select(test(\"^[0-9a-f]+$\")) | length")"
expect_eq "kipuka admin requests shows them too" \
    "rsa:2048 clientAuth DNS:held-3.example.com,DNS:alt-3.example.com,IP:192.0.2.33 held-3 otp" \
    "$(KA requests --status pending 2>/dev/null |
        jq -r "$H3 | \"\(.key_type) \(.ekus | join(\",\")) \(.sans | join(\",\")) \(.requester) \(.auth_method)\"")"
check "EKUs follow the label: serverAuth too" cfg_set label.default eku '"clientAuth, serverAuth"'
check "reload" kp_reload
make_csr held4 "/CN=held-4.example.com" ec:P-384
otp=$(new_otp held-4)
expect_eq "a P-384 request is held: 202" 202 \
    "$(post_csr held4.csr.b64 "$BASE/simpleenroll" -u "held-4:$otp")"
areq GET '/requests?status=pending' >/dev/null
expect_eq "it shows ec:P-384, both EKUs and no SAN" "ec:P-384 clientAuth,serverAuth 0" \
    "$(jq_body '.requests[] | select(.requester == "held-4") | "\(.key_type) \(.ekus | join(",")) \(.sans | length)"')"
