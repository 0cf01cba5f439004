# What an OTP may certify (docs/otp-identity.md). Under otp_subject =
# "entity" (what `kipuka init` writes) the CSR's CN and every dNSName must be
# the OTP's entity id or a DNS name under it; IP, email and URI SANs are
# refused. A subject and SANs bound to the OTP at creation (`otp create
# --subject/--san`, POST /admin/otp/generate) bind on every label. Refusals
# are 403, audited with the reason, write no certificate and leave the OTP
# usable. Then the small ones: option ranges in `otp create` messages, entity
# ids an OTP could never authenticate with, certs?limit=0.
kp_init --label held --label open
expect_eq "kipuka init writes otp_subject = \"entity\" in every label it makes" 3 \
    "$(grep -c '^otp_subject = "entity"$' "$CFG")"
check "approval = \"manual\" in [label.held]" cfg_add label.held approval '"manual"'
check "otp_subject = \"any\" in [label.open]" cfg_set label.open otp_subject '"any"'
check "enable est.serverkeygen" cfg_add est serverkeygen true
kp_start
fetch_chain || { echo "Bail out! cannot fetch /cacerts"; exit 1; }
cd "$T" || exit 1
TOKEN=$(cat "$SRV/admin.token")
ADMIN=${BASE%/.well-known/est}/admin

# refused_403 DESC CSR-NAME USER:OTP [label/] [op]: 403, audited with the
# reason, no certificate row, no pending row
refused_403() {
    local desc=$1 name=$2 cred=$3 label=${4:-} op=${5:-simpleenroll} before audit pend code
    before=$(cert_count)
    audit=$(audit_count "outcome = 'forbidden'")
    pend=$(db "select count(*) from pending_requests")
    code=$(post_csr "$name.csr.b64" "$BASE/$label$op" -u "$cred" -H "Accept: application/json")
    expect_eq "$desc: 403" 403 "$code"
    expect_no_new_cert "$desc" "$before"
    expect_eq "$desc: one audit row, outcome forbidden" $((audit + 1)) \
        "$(audit_count "outcome = 'forbidden'")"
    expect_eq "$desc: nothing held for approval" "$pend" \
        "$(db "select count(*) from pending_requests")"
}
# last_audit: event|outcome|subject|detail of the newest audit row
last_audit() { db "select event, outcome, subject, detail from audit order by id desc limit 1"; }

CA_DN=$(openssl x509 -in "$SRV/ca/ca.pem" -noout -subject -nameopt compat | sed 's/^subject=//')

# --- otp_subject = "entity": the README's flow passes ---
make_csr readme "/CN=device-001.example.com"
otp=$(new_otp device-001)
expect_eq "entity device-001, CN=device-001.example.com: 200" 200 \
    "$(enroll_otp readme "device-001:$otp")"
make_csr bare "/CN=device-001" ec:P-256 -addext "subjectAltName=DNS:device-001,DNS:device-001.lan"
otp=$(new_otp device-001)
expect_eq "CN=device-001 with DNS:device-001 and DNS:device-001.lan: 200" 200 \
    "$(enroll_otp bare "device-001:$otp")"

# --- ... and everything else is refused, without using the OTP ---
otp_id_create device-001 --uses 3
E=$OTP
make_csr other "/CN=device-002.example.com"
refused_403 "CN=device-002.example.com for entity device-001" other "device-001:$E"
expect_eq "the audit row names the entity and the reason" \
    "simpleenroll|forbidden|device-001|CSR CN is neither the OTP's entity id nor a DNS name under it" \
    "$(last_audit)"
check "the 403 body says why" grep -q "entity id" resp.body
make_csr other2 "/CN=device-002"
refused_403 "CN=device-002 for entity device-001" other2 "device-001:$E"
make_csr prefix "/CN=device-0011.example.com"
refused_403 "CN=device-0011.example.com (entity id without the dot) for device-001" prefix \
    "device-001:$E"
make_csr bank "/CN=device-001.example.com" ec:P-256 -addext "subjectAltName=DNS:www.bank.example"
refused_403 "DNS:www.bank.example SAN for entity device-001" bank "device-001:$E"
make_csr ipsan "/CN=device-001.example.com" ec:P-256 -addext "subjectAltName=IP:192.0.2.1"
refused_403 "IP SAN under otp_subject = \"entity\"" ipsan "device-001:$E"
expect_eq "its audit row says why" \
    "simpleenroll|forbidden|device-001|CSR has a non-DNS subjectAltName (the label's otp_subject is \"entity\")" \
    "$(last_audit)"
make_csr mailsan "/CN=device-001.example.com" ec:P-256 \
    -addext "subjectAltName=email:device-001@example.com"
refused_403 "email SAN under otp_subject = \"entity\"" mailsan "device-001:$E"
make_csr noname "/O=Example"
refused_403 "a subject without CN" noname "device-001:$E"
check "a CSR with the CA's DN" make_csr cadn "$CA_DN"
refused_403 "the CA's own DN ($CA_DN)" cadn "device-001:$E"
refused_403 "the same refused on /serverkeygen" other "device-001:$E" "" serverkeygen
refused_403 "the same refused on a manual-approval label, before it is held" other \
    "device-001:$E" held/
expect_eq "the OTP was never used: 3 uses left" 3 "$(db "select uses_left from otps where id = $OTP_ID")"
expect_eq "it still enrolls device-001.example.com: 200" 200 "$(enroll_otp readme "device-001:$E")"
expect_eq "and serverkeygen for device-001.example.com: 200" 200 \
    "$(post_csr readme.csr.b64 "$BASE/serverkeygen" -u "device-001:$E")"
expect_eq "1 use left" 1 "$(db "select uses_left from otps where id = $OTP_ID")"

# --- otp_subject = "any": today's behaviour, but never the CA's own name ---
otp=$(new_otp device-001 --uses 3)
expect_eq "otp_subject = \"any\": CN=device-002.example.com for device-001: 200" 200 \
    "$(enroll_otp other "device-001:$otp" open/)"
expect_eq "otp_subject = \"any\": DNS:www.bank.example: 200" 200 \
    "$(enroll_otp bank "device-001:$otp" open/)"
refused_403 "otp_subject = \"any\": the CA's own DN" cadn "device-001:$otp" open/

# --- a subject and SANs bound with kipuka otp create ---
otp_id_create device-001 --uses 5 --subject "/CN=printer-7.example.com/O=Example" \
    --san DNS:printer-7.example.com --san IP:192.0.2.7
B=$OTP
check "otp list shows the bound subject and SANs" sh -c \
    "'$KIPUKA' otp list -c '$CFG' | grep '^$OTP_ID ' | grep -F 'subject=/CN=printer-7.example.com/O=Example sans=DNS:printer-7.example.com,IP:192.0.2.7'"
make_csr pr_noo "/CN=printer-7.example.com"
refused_403 "--subject: a CSR without the O= the OTP was bound to" pr_noo "device-001:$B"
expect_eq "its audit row says why" \
    "simpleenroll|forbidden|device-001|CSR subject differs from the subject bound to the OTP" \
    "$(last_audit)"
make_csr pr_dev "/CN=device-001.example.com"
refused_403 "--subject binds even where otp_subject = \"entity\" would allow" pr_dev \
    "device-001:$B"
refused_403 "--subject binds on an otp_subject = \"any\" label too" pr_dev "device-001:$B" open/
make_csr pr_extra "/CN=printer-7.example.com/O=Example" ec:P-256 \
    -addext "subjectAltName=DNS:printer-7.example.com,DNS:evil.example"
refused_403 "--san: a SAN that was not bound" pr_extra "device-001:$B" open/
make_csr pr_ip "/CN=printer-7.example.com/O=Example" ec:P-256 \
    -addext "subjectAltName=IP:192.0.2.8"
refused_403 "--san: another IP address" pr_ip "device-001:$B"
make_csr pr_ok "/CN=printer-7.example.com/O=Example" ec:P-256 \
    -addext "subjectAltName=DNS:PRINTER-7.example.com,IP:192.0.2.7"
expect_eq "the bound subject with the bound SANs: 200" 200 "$(enroll_otp pr_ok "device-001:$B")"
make_csr pr_sub "/CN=printer-7.example.com/O=Example" ec:P-256 \
    -addext "subjectAltName=IP:192.0.2.7"
expect_eq "the bound subject with some of the bound SANs: 200" 200 \
    "$(enroll_otp pr_sub "device-001:$B")"
expect_eq "5 - 2 uses left" 3 "$(db "select uses_left from otps where id = $OTP_ID")"
"$KIPUKA" otp create -c "$CFG" --entity x --subject 'CN=x' >sub.out 2>sub.err
expect_eq "otp create --subject with a DN it cannot parse: exit 2, no OTP" "2|" \
    "$?|$(cat sub.out)"
check "its message names --subject" grep -q -- '--subject' sub.err
check "otp create --san refuses a type it does not know" \
    sh -c "! '$KIPUKA' otp create -c '$CFG' --entity x --san 'RID:1.2.3' >/dev/null 2>&1"

# --- the same through the admin API ---
areq() {
    local m=$1 p=$2; shift 2
    req -X "$m" -H "Authorization: Bearer $TOKEN" "$@" "$ADMIN$p"
}
code=$(areq POST /otp/generate -d '{"entity_id":"device-001","uses":3,"subject":"/CN=cam-3.example.com","sans":["DNS:cam-3.example.com"]}')
expect_eq "POST /admin/otp/generate with subject and sans: 201" 201 "$code"
A=$(jq -r .token resp.body)
AID=$(jq -r .id resp.body)
expect_eq "the answer shows them" '/CN=cam-3.example.com|DNS:cam-3.example.com' \
    "$(jq -r '.subject + "|" + (.sans | join(","))' resp.body)"
areq GET /otp >/dev/null
expect_eq "GET /admin/otp shows them" '/CN=cam-3.example.com|DNS:cam-3.example.com' \
    "$(jq -r ".otps[] | select(.id == $AID) | .subject + \"|\" + (.sans | join(\",\"))" resp.body)"
refused_403 "admin-bound subject: CN=device-001.example.com" pr_dev "device-001:$A"
make_csr cam_bad "/CN=cam-3.example.com" ec:P-256 -addext "subjectAltName=DNS:cam-4.example.com"
refused_403 "admin-bound SANs: DNS:cam-4.example.com" cam_bad "device-001:$A" open/
make_csr cam "/CN=cam-3.example.com" ec:P-256 -addext "subjectAltName=DNS:cam-3.example.com"
expect_eq "admin-bound subject and SAN: 200" 200 "$(enroll_otp cam "device-001:$A")"
KA() { "$KIPUKA" admin -c "$CFG" --server "https://localhost:$PORT" "$@"; }
KOTP=$(KA otp-create --entity device-001 --subject /CN=cam-9.example.com --san DNS:cam-9.example.com 2>/dev/null)
check "kipuka admin otp-create --subject --san prints an OTP" test "${#KOTP}" = 20
make_csr cam9_bad "/CN=cam-9.example.com" ec:P-256 -addext "subjectAltName=IP:192.0.2.9"
refused_403 "kipuka admin otp-create bindings: an IP SAN that was not bound" cam9_bad \
    "device-001:$KOTP" open/
make_csr cam9 "/CN=cam-9.example.com" ec:P-256 -addext "subjectAltName=DNS:cam-9.example.com"
expect_eq "kipuka admin otp-create bindings: the bound name enrolls: 200" 200 \
    "$(enroll_otp cam9 "device-001:$KOTP")"
check "kipuka admin otp-create --san with a bad type fails" \
    sh -c "! '$KIPUKA' admin -c '$CFG' --server 'https://localhost:$PORT' otp-create --entity x --san X:y >/dev/null 2>&1"
for bad in '"subject":"CN=x"' '"subject":"/NOPE=x"' '"subject":7' '"sans":"DNS:x"' '"sans":[]' \
    '"sans":["FOO:x"]' '"sans":["IP:300.1.1.1"]' '"sans":["DNS:a b"]' '"sans":[1]'; do
    expect_eq "generate with $bad: 400" 400 \
        "$(areq POST /otp/generate -d "{\"entity_id\":\"x\",$bad}")"
done
many=$(for i in $(seq 1 33); do printf '"DNS:h%d.example",' "$i"; done)
expect_eq "generate with 33 sans: 400" 400 \
    "$(areq POST /otp/generate -d "{\"entity_id\":\"x\",\"sans\":[${many%,}]}")"

# --- entity ids an OTP could never authenticate with ---
otps_before=$(db "select count(*) from otps")
expect_eq "generate with ':' in entity_id: 400" 400 \
    "$(areq POST /otp/generate -d '{"entity_id":"dev:1"}')"
check "its message names the ':'" grep -q "':'" resp.body
expect_eq "generate with a control character in entity_id: 400" 400 \
    "$(areq POST /otp/generate -d '{"entity_id":"dev\u00011"}')"
expect_eq "generate with a newline in entity_id: 400" 400 \
    "$(areq POST /otp/generate -d '{"entity_id":"dev\n1"}')"
expect_eq "no OTP row was written" "$otps_before" "$(db "select count(*) from otps")"
check "otp create --entity with a tab fails" \
    sh -c "! '$KIPUKA' otp create -c '$CFG' --entity \"\$(printf 'a\tb')\" >/dev/null 2>&1"

# --- otp create says which option is out of range, and the range ---
"$KIPUKA" otp create -c "$CFG" --entity x --uses 100000000 >/dev/null 2>uses.err
expect_eq "--uses 100000000: named, with its range" \
    "kipuka: --uses must be a whole number from 1 to 1000000" "$(cat uses.err)"
"$KIPUKA" otp create -c "$CFG" --entity x --count 0 >/dev/null 2>count.err
expect_eq "--count 0: named, with its range" \
    "kipuka: --count must be a whole number from 1 to 100000" "$(cat count.err)"
"$KIPUKA" otp create -c "$CFG" --entity x --ttl 400d >/dev/null 2>ttl.err
expect_eq "--ttl 400d: named, with its range" \
    "kipuka: --ttl must be a duration from 1s to 366d (90s, 30m, 24h, 7d)" "$(cat ttl.err)"

# --- certs?limit=0 does not lift the cap ---
check "more than one certificate is in the store" test "$(cert_count)" -gt 1
expect_eq "GET /admin/certs?limit=0: 400" 400 "$(areq GET '/certs?limit=0')"
check "its message gives the range" grep -q "1 to 1000" resp.body
expect_eq "GET /admin/certs?limit=1: 200" 200 "$(areq GET '/certs?limit=1')"
expect_eq "limit=1 lists one" 1 "$(jq '.certificates | length' resp.body)"
expect_eq "GET /admin/certs?limit=1001: 400" 400 "$(areq GET '/certs?limit=1001')"
