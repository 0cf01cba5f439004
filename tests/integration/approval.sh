# Manual approval (label approval = "manual", RFC 7030 4.2.3): a request is
# held and answered 202 with the configured Retry-After; the same client
# repeating it gets 202 while it waits, 200 with the certificate once an
# operator approved it (`kipuka request approve`), 403 once rejected. The OTP
# is used once, when the request is first held; its repeats authenticate with
# it only for that request. Held requests expire (approval_ttl), and then a
# repeat is a new request. simpleenroll, simplereenroll and serverkeygen.
# A repeat is recognised by label, operation, identity, public key, subject
# and SANs: a client that signs its CSR again on every retry (libest's
# estclient) is picked up on the OTP and the mTLS paths.
kp_init --label held --label heldcb
check "approval = \"manual\" in [label.held]" cfg_add label.held approval '"manual"'
check "approval = \"manual\" in [label.heldcb]" cfg_add label.heldcb approval '"manual"'
check "channel_binding = \"required\" in [label.heldcb]" \
    cfg_set label.heldcb channel_binding '"required"'
# Requests here carry SANs of every kind (IP too): which names an OTP may
# certify is otp_identity.sh's subject.
check "otp_subject = \"any\" in [label.held]" cfg_set label.held otp_subject '"any"'
check "est.retry_after = 17" cfg_set est retry_after 17
check "enable est.serverkeygen" cfg_add est serverkeygen true
kp_start
fetch_chain || { echo "Bail out! cannot fetch /cacerts"; exit 1; }
cd "$T" || exit 1

rq() { "$KIPUKA" request "$@" -c "$CFG"; }
# rq_state ID: the STATE column of `kipuka request list` for that id
rq_state() { rq list 2>/dev/null | awk -v id="$1" '$1 == id { print $2 }'; }
last_request() { db "select max(id) from pending_requests"; }
# der NAME: NAME.csr as DER in NAME.der
der() { openssl req -in "$1.csr" -outform DER -out "$1.der"; }
# resign KEY NAME SUBJ [openssl req args...]: a new CSR NAME for KEY.key, as a
# client signs it again for a retry (ECDSA: a new signature each time)
resign() {
    local key=$1 name=$2 subj=$3; shift 3
    openssl req -new -key "$key.key" -out "$name.csr" -subj "$subj" "$@" 2>/dev/null &&
        der "$name" && base64 "$name.der" >"$name.csr.b64"
}
# differ A B: A.der and B.der are other bytes
differ() { ! cmp -s "$1.der" "$2.der"; }

# --- pending -> approve ---
make_csr a "/CN=held-001.example.com"
otp_id_create held-001 --label held
before=$(cert_count)
expect_eq "simpleenroll to a manual label answers 202" 202 \
    "$(post_csr a.csr.b64 "$BASE/held/simpleenroll" -u "held-001:$OTP")"
expect_eq "with Retry-After: est.retry_after" 17 "$(header Retry-After)"
expect_no_new_cert "held request" "$before"
id=$(last_request)
expect_eq "request list shows it pending" pending "$(rq_state "$id")"
expect_eq "the OTP was used when the request was held" used "$(otp_state "$OTP_ID")"
expect_eq "audited as held" 1 \
    "$(audit_count "event = 'simpleenroll' and outcome = 'pending' and subject = 'held-001'")"
expect_eq "the same request again: 202" 202 \
    "$(post_csr a.csr.b64 "$BASE/held/simpleenroll" -u "held-001:$OTP")"
expect_eq "again with Retry-After 17" 17 "$(header Retry-After)"
expect_eq "still one held request" "$id" "$(last_request)"
make_csr other "/CN=held-001.example.com"
expect_eq "another CSR with that used OTP: 401" 401 \
    "$(post_csr other.csr.b64 "$BASE/held/simpleenroll" -u "held-001:$OTP")"
expect_eq "the held CSR with a wrong OTP: 401" 401 \
    "$(post_csr a.csr.b64 "$BASE/held/simpleenroll" -u "held-001:AAAAAAAAAAAAAAAAAAAA")"
expect_eq "the held CSR under another entity name: 401" 401 \
    "$(post_csr a.csr.b64 "$BASE/held/simpleenroll" -u "held-002:$OTP")"

check "kipuka request approve ID" rq approve "$id"
expect_eq "request list shows it approved" approved "$(rq_state "$id")"
check "approving it twice fails" bash -c "! '$KIPUKA' request approve '$id' -c '$CFG' 2>/dev/null"
expect_eq "audited: request.approve" 1 "$(audit_count "event = 'request.approve' and detail like 'request $id approved by cli:%'")"
expect_eq "the same request after approval: 200" 200 \
    "$(post_csr a.csr.b64 "$BASE/held/simpleenroll" -u "held-001:$OTP")"
p7_to_pem resp.body a.crt
check "a certificate for the CSR's key" \
    bash -c "cmp <(openssl x509 -in a.crt -noout -pubkey) <(openssl req -in a.csr -noout -pubkey)"
check "it verifies" openssl verify -CAfile ca-chain.pem a.crt
expect_eq "the request is issued, with that serial" "issued|$(cert_serial a.crt)" \
    "$(db "select status || '|' || serial from pending_requests where id = $id")"
expect_eq "one certificate row" $((before + 1)) "$(cert_count)"
expect_eq "once served, the used OTP no longer authenticates: 401" 401 \
    "$(post_csr a.csr.b64 "$BASE/held/simpleenroll" -u "held-001:$OTP")"

# --- a client that signs its CSR again on every retry, OTP (RFC 7030 4.2.3) ---
SAN="subjectAltName=DNS:resign-001.example.com,DNS:alt-001.example.com,IP:192.0.2.9"
make_csr rs "/CN=resign-001.example.com" ec:P-256 -addext "$SAN"
der rs
otp_id_create resign-001 --label held
before=$(cert_count)
expect_eq "re-signing client, first request: 202" 202 \
    "$(post_csr rs.csr.b64 "$BASE/held/simpleenroll" -u "resign-001:$OTP")"
rsid=$(last_request)
resign rs rs2 "/CN=resign-001.example.com" -addext "$SAN"
check "the retry's CSR is other bytes (a new ECDSA signature)" differ rs rs2
expect_eq "the re-signed retry while pending: 202" 202 \
    "$(post_csr rs2.csr.b64 "$BASE/held/simpleenroll" -u "resign-001:$OTP")"
expect_eq "with Retry-After 17" 17 "$(header Retry-After)"
expect_eq "no second row for it" "$rsid|1" \
    "$(last_request)|$(db "select count(*) from pending_requests where requester = 'resign-001'")"
make_csr rsother "/CN=resign-001.example.com" ec:P-256 -addext "$SAN"
expect_eq "another key with the used OTP: 401" 401 \
    "$(post_csr rsother.csr.b64 "$BASE/held/simpleenroll" -u "resign-001:$OTP")"
resign rs rssubj "/CN=resign-002.example.com" -addext "$SAN"
expect_eq "the same key, another subject, with the used OTP: 401" 401 \
    "$(post_csr rssubj.csr.b64 "$BASE/held/simpleenroll" -u "resign-001:$OTP")"
resign rs rssan "/CN=resign-001.example.com" -addext "subjectAltName=DNS:resign-001.example.com"
expect_eq "the same key, other SANs, with the used OTP: 401" 401 \
    "$(post_csr rssan.csr.b64 "$BASE/held/simpleenroll" -u "resign-001:$OTP")"
expect_eq "still one row, still pending" "$rsid|pending" "$(last_request)|$(rq_state "$rsid")"
# what the operator sees
rq show "$rsid" >show.out 2>&1
check "request show: every SAN, one a line" bash -c \
    "grep -qx 'san: *DNS:resign-001.example.com' show.out && grep -qx 'san: *DNS:alt-001.example.com' show.out && grep -qx 'san: *IP:192.0.2.9' show.out"
check "request show: key type and size" grep -qx 'key: *ec:P-256' show.out
check "request show: the EKU the label gives" grep -qx 'eku: *clientAuth' show.out
check "request show: the requester and how it authenticated" bash -c \
    "grep -qx 'requester: *resign-001' show.out && grep -qx 'auth: *otp' show.out"
check "request show: the subject" grep -qx 'subject: *CN=resign-001.example.com' show.out
expect_eq "request list: auth, requester, key, EKU, subject and SANs on the row" \
    "otp resign-001 ec:P-256 clientAuth CN=resign-001.example.com DNS:resign-001.example.com,DNS:alt-001.example.com,IP:192.0.2.9" \
    "$(rq list 2>/dev/null | awk -v id="$rsid" '$1 == id { print $7, $8, $9, $10, $11, $12 }')"
check "request show of an unknown id fails" bash -c "! '$KIPUKA' request show 99999 -c '$CFG' 2>/dev/null"
check "kipuka request approve (re-signing client)" rq approve "$rsid"
resign rs rs3 "/CN=resign-001.example.com" -addext "$SAN"
check "the next retry is other bytes again" differ rs2 rs3
expect_eq "the re-signed retry after approval: 200" 200 \
    "$(post_csr rs3.csr.b64 "$BASE/held/simpleenroll" -u "resign-001:$OTP")"
p7_to_pem resp.body rs.crt
check "the certificate carries the CSR's public key" \
    bash -c "cmp <(openssl x509 -in rs.crt -noout -pubkey) <(openssl req -in rs3.csr -noout -pubkey)"
check "and every SAN that was approved" bash -c \
    "openssl x509 -in rs.crt -noout -ext subjectAltName | grep -q 'DNS:resign-001.example.com, DNS:alt-001.example.com, IP Address:192.0.2.9'"
expect_eq "one certificate, the request issued with its serial" "$((before + 1))|issued|$(cert_serial rs.crt)" \
    "$(cert_count)|$(db "select status || '|' || serial from pending_requests where id = $rsid")"
resign rs rs4 "/CN=resign-001.example.com" -addext "$SAN"
expect_eq "once served, a re-signed repeat with the used OTP: 401" 401 \
    "$(post_csr rs4.csr.b64 "$BASE/held/simpleenroll" -u "resign-001:$OTP")"

# --- what was approved is what is issued ---
make_csr ek "/CN=held-eku.example.com"
otp_id_create held-eku --label held
expect_eq "held for its EKU check: 202" 202 \
    "$(post_csr ek.csr.b64 "$BASE/held/simpleenroll" -u "held-eku:$OTP")"
ekid=$(last_request)
rq approve "$ekid" 2>/dev/null
check "the label now gives serverAuth too" cfg_set label.held eku '"clientAuth, serverAuth"'
check "reload" kp_reload
before=$(cert_count)
resign ek ek2 "/CN=held-eku.example.com"
expect_eq "approved for clientAuth only, the retry is refused: 403" 403 \
    "$(post_csr ek2.csr.b64 "$BASE/held/simpleenroll" -u "held-eku:$OTP")"
expect_no_new_cert "EKUs changed since approval" "$before"
expect_eq "audited with both EKU sets" 1 \
    "$(audit_count "outcome = 'forbidden' and detail like 'request $ekid was approved for ec:P-256 [clientAuth]; the label now gives ec:P-256 [clientAuth,serverAuth]'")"
check "the label back as approved" cfg_set label.held eku '"clientAuth"'
check "reload" kp_reload
expect_eq "then the retry is served: 200" 200 \
    "$(post_csr ek2.csr.b64 "$BASE/held/simpleenroll" -u "held-eku:$OTP")"

# --- pending -> reject ---
make_csr b "/CN=held-003.example.com"
otp=$(new_otp held-003)
expect_eq "second request: 202" 202 "$(post_csr b.csr.b64 "$BASE/held/simpleenroll" -u "held-003:$otp")"
rid=$(last_request)
check "kipuka request reject ID" rq reject "$rid"
expect_eq "request list --status rejected shows it" "$rid" \
    "$(rq list --status rejected | awk 'NR > 1 { print $1 }')"
expect_eq "the rejected request repeated: 403" 403 \
    "$(post_csr b.csr.b64 "$BASE/held/simpleenroll" -u "held-003:$otp")"
expect_eq "and again 403" 403 "$(post_csr b.csr.b64 "$BASE/held/simpleenroll" -u "held-003:$otp")"
resign b b2 "/CN=held-003.example.com"
expect_eq "re-signed, the rejected request: 403" 403 \
    "$(post_csr b2.csr.b64 "$BASE/held/simpleenroll" -u "held-003:$otp")"
expect_eq "audited: request.reject" 1 "$(audit_count "event = 'request.reject'")"
check "approving a rejected request fails" bash -c "! '$KIPUKA' request approve '$rid' -c '$CFG' 2>/dev/null"
check "an unknown id fails" bash -c "! '$KIPUKA' request approve 99999 -c '$CFG' 2>/dev/null"

# --- labels with approval = "auto" (the default) are not held ---
check "the default label still issues at once" enroll_ok auto "/CN=auto-001.example.com" auto-001

# --- simplereenroll (mTLS) ---
make_csr renew "/CN=held-001.example.com"
expect_eq "simplereenroll to the manual label: 202" 202 \
    "$(post_csr renew.csr.b64 "$BASE/held/simplereenroll" --cert a.crt --key a.key)"
rid=$(last_request)
expect_eq "held for the certificate's subject" "CN=held-001.example.com|mtls" \
    "$(db "select requester || '|' || auth_method from pending_requests where id = $rid")"
expect_eq "repeat while pending: 202" 202 \
    "$(post_csr renew.csr.b64 "$BASE/held/simplereenroll" --cert a.crt --key a.key)"
rq approve "$rid" 2>/dev/null
expect_eq "after approval: 200" 200 \
    "$(post_csr renew.csr.b64 "$BASE/held/simplereenroll" --cert a.crt --key a.key)"

# --- a client that signs its CSR again on every retry, mTLS ---
make_csr mt "/CN=held-001.example.com"
der mt
expect_eq "mTLS re-signing client, first request: 202" 202 \
    "$(post_csr mt.csr.b64 "$BASE/held/simplereenroll" --cert a.crt --key a.key)"
mtid=$(last_request)
resign mt mt2 "/CN=held-001.example.com"
check "mTLS: the retry's CSR is other bytes" differ mt mt2
expect_eq "mTLS: the re-signed retry while pending: 202" 202 \
    "$(post_csr mt2.csr.b64 "$BASE/held/simplereenroll" --cert a.crt --key a.key)"
expect_eq "mTLS: no new request for it" "$mtid" "$(last_request)"
make_csr mtother "/CN=held-001.example.com"
expect_eq "mTLS: a CSR with another key: 202" 202 \
    "$(post_csr mtother.csr.b64 "$BASE/held/simplereenroll" --cert a.crt --key a.key)"
check "mTLS: held as a new request" test "$(last_request)" -gt "$mtid"
expect_eq "mTLS: the held request shows its requester and method" "CN=held-001.example.com|mtls|ec:P-256" \
    "$(db "select requester || '|' || auth_method || '|' || key_type from pending_requests where id = $mtid")"
rq approve "$mtid" 2>/dev/null
resign mt mt3 "/CN=held-001.example.com"
expect_eq "mTLS: the re-signed retry after approval: 200" 200 \
    "$(post_csr mt3.csr.b64 "$BASE/held/simplereenroll" --cert a.crt --key a.key)"
p7_to_pem resp.body mt.crt
check "mTLS: the certificate carries the CSR's public key" \
    bash -c "cmp <(openssl x509 -in mt.crt -noout -pubkey) <(openssl req -in mt3.csr -noout -pubkey)"
expect_eq "mTLS: that request is issued" issued "$(rq_state "$mtid")"

# --- channel binding: each retry is bound to its own connection ---
# cb_open 1.3 and cb_send (lib.sh): one TLS connection and its binding
# resign_cp KEY NAME CN CHALLENGE: a new CSR NAME for KEY.key, subject CN=CN,
# challengePassword CHALLENGE
resign_cp() {
    printf '[req]\ndistinguished_name = dn\nattributes = attrs\nprompt = no\n[dn]\nCN = %s\n[attrs]\nchallengePassword = %s\n' \
        "$3" "$4" >"$2.cnf"
    openssl req -new -key "$1.key" -out "$2.csr" -config "$2.cnf" 2>/dev/null &&
        der "$2" && base64 "$2.der" >"$2.csr.b64"
}
cbpath=/.well-known/est/heldcb/simpleenroll
otp_id_create held-cb --label heldcb
cb_open 1.3
check "s_client connected and the binding was read" test -n "$CB"
make_csr_cp cb1 held-cb.example.com "$CB"
der cb1
expect_eq "a CSR bound to its connection is held: 202" 202 "$(cb_send "$cbpath" cb1 "held-cb:$OTP")"
cbid=$(last_request)
expect_eq "that CSR replayed on a new connection: 400 (its binding is the old one)" 400 \
    "$(post_csr cb1.csr.b64 "$BASE/heldcb/simpleenroll" -u "held-cb:$OTP")"
make_csr cbnone "/CN=held-cb.example.com"
cp cb1.key cbnone.key
resign cbnone cbnone "/CN=held-cb.example.com"
expect_eq "its key and subject without a binding: 400 (required)" 400 \
    "$(post_csr cbnone.csr.b64 "$BASE/heldcb/simpleenroll" -u "held-cb:$OTP")"
cb_open 1.3
resign_cp cb1 cb2 held-cb.example.com "$CB"
check "re-signed with the new connection's binding: other bytes" differ cb1 cb2
expect_eq "the re-signed retry on its own connection: 202" 202 \
    "$(cb_send "$cbpath" cb2 "held-cb:$OTP")"
expect_eq "no new request for it" "$cbid" "$(last_request)"
rq approve "$cbid" 2>/dev/null
before=$(cert_count)
expect_eq "after approval, the held CSR replayed on a new connection: 400" 400 \
    "$(post_csr cb1.csr.b64 "$BASE/heldcb/simpleenroll" -u "held-cb:$OTP")"
expect_no_new_cert "a stale binding after approval" "$before"
cb_open 1.3
resign_cp cb1 cb3 held-cb.example.com "$CB"
expect_eq "after approval, re-signed for its own connection: 200" 200 \
    "$(cb_send "$cbpath" cb3 "held-cb:$OTP")"
expect_eq "the request is issued, one certificate" "issued|$((before + 1))" \
    "$(rq_state "$cbid")|$(cert_count)"

# --- serverkeygen ---
make_csr skg "/CN=held-skg.example.com"
otp=$(new_otp held-skg)
expect_eq "serverkeygen to the manual label: 202" 202 \
    "$(post_csr skg.csr.b64 "$BASE/held/serverkeygen" -u "held-skg:$otp")"
expect_eq "with Retry-After 17" 17 "$(header Retry-After)"
expect_eq "serverkeygen: the operator sees the key kipuka will generate" "ec:P-256|clientAuth|otp" \
    "$(db "select key_type || '|' || ekus || '|' || auth_method from pending_requests where id = $(last_request)")"
rq approve "$(last_request)" 2>/dev/null
expect_eq "after approval: 200" 200 \
    "$(post_csr skg.csr.b64 "$BASE/held/serverkeygen" -u "held-skg:$otp")"
boundary=$(header Content-Type | sed -n 's/^multipart\/mixed; *boundary=\(.*\)$/\1/p')
mime_parts resp.body "$boundary" skg.part
base64 -d skg.part.1.b64 | openssl pkcs8 -inform DER -nocrypt -out skg.gen.pem 2>/dev/null
p7_to_pem skg.part.2.b64 skg.crt
check "the generated key matches the issued certificate" same_pubkey skg.gen.pem skg.crt

# --- expiry ---
check "approval_ttl = \"2s\" in [label.held]" cfg_add label.held approval_ttl '"2s"'
kp_restart
make_csr late "/CN=held-late.example.com"
otp_id_create held-late
expect_eq "held again: 202" 202 "$(post_csr late.csr.b64 "$BASE/held/simpleenroll" -u "held-late:$OTP")"
lid=$(last_request)
# wait until the store says it expired (polling, at most 10 s)
for _ in $(seq 1 100); do
    [ "$(rq_state "$lid")" = expired ] && break
    sleep 0.1
done
expect_eq "request list shows it expired" expired "$(rq_state "$lid")"
check "an expired request cannot be approved" bash -c "! '$KIPUKA' request approve '$lid' -c '$CFG' 2>/dev/null"
expect_eq "after expiry the repeat is a new request: its used OTP gives 401" 401 \
    "$(post_csr late.csr.b64 "$BASE/held/simpleenroll" -u "held-late:$OTP")"
otp=$(new_otp held-late)
expect_eq "with a fresh OTP: 202 again" 202 \
    "$(post_csr late.csr.b64 "$BASE/held/simpleenroll" -u "held-late:$otp")"
check "held as a new request" test "$(last_request)" -gt "$lid"
