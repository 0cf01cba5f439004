# Transport: HTTP keep-alive, TLS 1.2 and 1.3 enrollment, no TLS 1.1/1.0,
# the TLS channel binding in the CSR challengePassword (tls-unique on TLS 1.2,
# RFC 9266 tls-exporter on TLS 1.3), and SIGHUP reload.
kp_init --label cb
check "set channel_binding = \"required\" in [label.cb]" \
    cfg_set label.cb channel_binding '"required"'
# Not a test of which names an OTP may certify (otp_identity.sh is): its CSRs
# carry names other than their OTP's entity id.
check "otp_subject = \"any\" in [label.default]" cfg_set label.default otp_subject '"any"'
check "otp_subject = \"any\" in [label.cb]" cfg_set label.cb otp_subject '"any"'
kp_start
fetch_chain || { echo "Bail out! cannot fetch /cacerts"; exit 1; }
cd "$T" || exit 1

# --- keep-alive: two requests in one curl command share the connection ---
curl -v -s --cacert ca-chain.pem -o /dev/null -o /dev/null -w '%{http_code} %{num_connects}\n' \
    "$BASE/cacerts" "$BASE/csrattrs" >ka.out 2>ka.err
expect_eq "two GETs in one curl: 200 on a new connection, then 200 on none" \
    "200 1|200 0" "$(paste -sd'|' ka.out)"
check "curl -v says Re-using existing connection" grep -q 'Re-using existing connection' ka.err
make_csr ka1 "/CN=ka1.example.com" ec:P-256
make_csr ka2 "/CN=ka2.example.com" ec:P-256
o1=$(new_otp ka1)
o2=$(new_otp ka2)
curl -s --cacert ca-chain.pem -w '%{http_code} %{num_connects}\n' \
    -X POST -H "Content-Type: application/pkcs10" -u "ka1:$o1" --data-binary @ka1.csr.b64 \
    -o ka1.p7b "$BASE/simpleenroll" --next \
    -s -w '%{http_code} %{num_connects}\n' --cacert ca-chain.pem \
    -X POST -H "Content-Type: application/pkcs10" -u "ka2:$o2" \
    --data-binary @ka2.csr.b64 -o ka2.p7b "$BASE/simpleenroll" >ka-post.out 2>&1
expect_eq "two enrollments in one curl (--next): both 200, one connection" \
    "200 1|200 0" "$(paste -sd'|' ka-post.out)"
o3=$(new_otp ka3)
curl -s --cacert ca-chain.pem -w '%{http_code} %{num_connects}\n' \
    -X POST -H "Content-Type: application/pkcs10" -u "ka3:wrong" --data-binary @ka1.csr.b64 \
    -o /dev/null "$BASE/simpleenroll" --next \
    -s -w '%{http_code} %{num_connects}\n' --cacert ca-chain.pem \
    -X POST -H "Content-Type: application/pkcs10" -u "ka3:$o3" \
    --data-binary @ka1.csr.b64 -o /dev/null "$BASE/simpleenroll" >ka-401.out 2>&1
expect_eq "a 401 keeps the connection: then 200 on it" "401 1|200 0" "$(paste -sd'|' ka-401.out)"

# --- TLS versions ---
make_csr t12 "/CN=tls12.example.com" ec:P-256
o=$(new_otp t12)
code=$(curl -v -s --tlsv1.2 --tls-max 1.2 -o t12.p7b -w '%{http_code}' -X POST \
    --cacert ca-chain.pem -u "t12:$o" -H "Content-Type: application/pkcs10" \
    --data-binary @t12.csr.b64 "$BASE/simpleenroll" 2>t12.err)
expect_eq "enrollment over TLS 1.2 answers 200" 200 "$code"
check "that connection was TLS 1.2" grep -q 'SSL connection using TLSv1.2' t12.err
make_csr t13 "/CN=tls13.example.com" ec:P-256
o=$(new_otp t13)
code=$(curl -v -s --tlsv1.3 -o t13.p7b -w '%{http_code}' -X POST \
    --cacert ca-chain.pem -u "t13:$o" -H "Content-Type: application/pkcs10" \
    --data-binary @t13.csr.b64 "$BASE/simpleenroll" 2>t13.err)
expect_eq "enrollment over TLS 1.3 answers 200" 200 "$code"
check "that connection was TLS 1.3" grep -q 'SSL connection using TLSv1.3' t13.err
# SECLEVEL=0 lets this client offer TLS 1.1/1.0: only the server can refuse
for v in tls1_1 tls1; do
    openssl s_client -connect "127.0.0.1:$PORT" -"$v" -cipher 'DEFAULT:@SECLEVEL=0' \
        </dev/null >"s_$v.out" 2>&1
    rc=$?
    check "openssl s_client -$v reaches the port (CONNECTED)" grep -q '^CONNECTED' "s_$v.out"
    check "openssl s_client -$v fails the handshake (status $rc)" \
        sh -c "test $rc -ne 0 && grep -q 'Cipher is (NONE)' 's_$v.out'"
done
openssl s_client -connect "127.0.0.1:$PORT" -tls1_2 -cipher 'DEFAULT:@SECLEVEL=0' \
    -CAfile ca-chain.pem </dev/null >s_tls1_2.out 2>&1
expect_eq "the same s_client command with -tls1_2 connects (control)" 0 "$?"

# --- TLS channel binding (label cb: channel_binding = "required") ---
# The binding is per connection, so the CSR carrying it must travel on the
# connection it was read from: openssl s_client is driven through a fifo as
# that client. (A small C client in tests/ may replace this later; the
# negative cases below need only curl.)
# cb_open and cb_send are in lib.sh.
cbpath=/.well-known/est/cb/simpleenroll

for ver in 1.3 1.2; do
    n=cb${ver/./}
    cb_open "$ver"
    check "TLS $ver: s_client connected and the binding was read" test -n "$CB"
    check "TLS $ver: the s_client session is TLS $ver" grep -q "^New, TLSv$ver, Cipher is" cb.out
    want_len=$([ "$ver" = 1.3 ] && echo 32 || echo 12)
    expect_eq "TLS $ver: the binding is $want_len bytes" "$want_len" \
        "$(printf '%s' "$CB" | base64 -d 2>/dev/null | wc -c)"
    make_csr_cp "$n" "$n.example.com" "$CB"
    echo "$CB" >"$n.binding"
    o=$(new_otp "$n")
    before=$(cert_count)
    code=$(cb_send "$cbpath" "$n" "$n:$o")
    expect_eq "TLS $ver: CSR carrying this connection's binding answers 200" 200 "$code"
    expect_eq "TLS $ver: its row was written (label cb)" "$((before + 1))|cb" \
        "$(cert_count)|$(db "select label from certificates where subject = 'CN=$n.example.com'")"
done

# The same CSRs replayed on other connections: their bindings no longer match.
make_csr cbnone "/CN=cbnone.example.com" ec:P-256
o=$(new_otp cbnone)
before=$(cert_count)
code=$(post_csr cbnone.csr.b64 "$BASE/cb/simpleenroll" -u "cbnone:$o")
expect_eq "channel_binding required: CSR without challengePassword answers 400" 400 "$code"
expect_no_new_cert "CSR without the binding" "$before"
make_csr_cp cbwrong cbwrong.example.com "$(head -c 32 /dev/zero | tr '\0' 'x' | base64 -w0)"
code=$(post_csr cbwrong.csr.b64 "$BASE/cb/simpleenroll" -u "cbnone:$o" --tlsv1.3)
expect_eq "TLS 1.3: CSR with a wrong 32-byte binding answers 400" 400 "$code"
expect_no_new_cert "CSR with a wrong binding" "$before"
make_csr_cp cbwrong12 cbwrong12.example.com "$(head -c 12 /dev/zero | tr '\0' 'x' | base64 -w0)"
code=$(post_csr cbwrong12.csr.b64 "$BASE/cb/simpleenroll" -u "cbnone:$o" --tlsv1.2 --tls-max 1.2)
expect_eq "TLS 1.2: CSR with a wrong 12-byte binding answers 400" 400 "$code"
make_csr_cp cbplain cbplain.example.com "not-a-binding"
code=$(post_csr cbplain.csr.b64 "$BASE/cb/simpleenroll" -u "cbnone:$o")
expect_eq "channel_binding required: a plain challengePassword answers 400" 400 "$code"
o2=$(new_otp cb13r)
code=$(post_csr cb13.csr.b64 "$BASE/cb/simpleenroll" -u "cb13r:$o2" --tlsv1.3)
expect_eq "TLS 1.3: a CSR bound to an earlier connection, replayed, answers 400" 400 "$code"
code=$(post_csr cb12.csr.b64 "$BASE/cb/simpleenroll" -u "cb13r:$o2" --tlsv1.2 --tls-max 1.2)
expect_eq "TLS 1.2: a CSR bound to an earlier connection, replayed, answers 400" 400 "$code"
expect_no_new_cert "replayed bindings and plain passwords" "$before"
expect_eq "the OTP survived all those 400s" 200 \
    "$(post_csr ka1.csr.b64 "$BASE/simpleenroll" -u "cbnone:$o")"

# --- channel_binding = "optional" (the default label) ---
# A CSR without challengePassword enrolls; one that carries challengePassword
# has it checked as the binding: this connection's binding passes, anything
# else (a plain password, a binding of another length or connection) is 400,
# audited, and the OTP stays usable.
cb_open 1.3
check "optional: s_client connected and the binding was read" test -n "$CB"
make_csr_cp opt13 opt13.example.com "$CB"
o=$(new_otp opt13)
code=$(cb_send /.well-known/est/simpleenroll opt13 "opt13:$o")
expect_eq "optional, TLS 1.3: CSR carrying this connection's binding answers 200" 200 "$code"
o=$(new_otp optplain)
before=$(cert_count)
audit_before=$(audit_count "outcome = 'channel_binding' and label = 'default'")
make_csr_cp optplain optplain.example.com "not-a-binding"
expect_eq "optional: a plain challengePassword answers 400" 400 \
    "$(post_csr optplain.csr.b64 "$BASE/simpleenroll" -u "optplain:$o")"
check "optional: the 400 says the challengePassword does not match" grep -q "challengePassword does not match" resp.body
make_csr_cp opt12 opt12.example.com "$(head -c 12 /dev/urandom | base64 -w0)"
expect_eq "optional, TLS 1.3: a 12-byte challengePassword (another length) answers 400" 400 \
    "$(post_csr opt12.csr.b64 "$BASE/simpleenroll" -u "optplain:$o" --tlsv1.3)"
make_csr_cp opt48 opt48.example.com "$(head -c 48 /dev/urandom | base64 -w0)"
expect_eq "optional, TLS 1.3: a 48-byte challengePassword (another length) answers 400" 400 \
    "$(post_csr opt48.csr.b64 "$BASE/simpleenroll" -u "optplain:$o" --tlsv1.3)"
make_csr_cp opt32 opt32.example.com "$(head -c 32 /dev/urandom | base64 -w0)"
expect_eq "optional, TLS 1.2: a 32-byte challengePassword (another length) answers 400" 400 \
    "$(post_csr opt32.csr.b64 "$BASE/simpleenroll" -u "optplain:$o" --tlsv1.2 --tls-max 1.2)"
expect_eq "optional, TLS 1.3: the CSR bound to an earlier connection, replayed, answers 400" 400 \
    "$(post_csr opt13.csr.b64 "$BASE/simpleenroll" -u "optplain:$o" --tlsv1.3)"
expect_no_new_cert "optional: refused challengePasswords" "$before"
expect_eq "optional: each refusal has its audit row (outcome channel_binding)" \
    "$((audit_before + 5))" "$(audit_count "outcome = 'channel_binding' and label = 'default'")"
make_csr optnone "/CN=optnone.example.com" ec:P-256
expect_eq "optional: a CSR without challengePassword answers 200, with the OTP those 400s left" \
    200 "$(post_csr optnone.csr.b64 "$BASE/simpleenroll" -u "optplain:$o")"

# --- SIGHUP reload: max_validity_days = 30 for the default label ---
make_csr pre "/CN=pre-reload.example.com" ec:P-256
o=$(new_otp pre)
expect_eq "before reload: enrollment answers 200" 200 "$(enroll_otp pre "pre:$o")"
p7_to_pem pre.p7b pre.crt 2>/dev/null
check "before reload: validity is more than 30 days" \
    test "$(cert_validity pre.crt 2>/dev/null || echo 0)" -gt $((30 * 86400))
check "set max_validity_days = 30 in [label.default]" \
    cfg_set label.default max_validity_days 30
pid_before=$SERVER_PID
check "kill -HUP: the server reports the reload" kp_reload
check "the server process is still running" kill -0 "$pid_before"
make_csr post "/CN=post-reload.example.com" ec:P-256
o=$(new_otp post)
expect_eq "after reload: enrollment answers 200" 200 "$(enroll_otp post "post:$o")"
p7_to_pem post.p7b post.crt 2>/dev/null
v=$(cert_validity post.crt 2>/dev/null || echo 0)
check "after reload: validity is at most 30 days ($v s)" \
    sh -c "test $v -gt 0 && test $v -le $((30 * 86400))"
expect_eq "after reload: the row's not_after matches" "$(cert_time post.crt end 2>/dev/null)" \
    "$(db "select not_after from certificates where subject = 'CN=post-reload.example.com'")"
expect_eq "after reload: keep-alive still works" "200 1|200 0" \
    "$(curl -s --cacert ca-chain.pem -o /dev/null -o /dev/null -w '%{http_code} %{num_connects}\n' \
        "$BASE/cacerts" "$BASE/cacerts" | paste -sd'|')"
# a config error on reload keeps the old config and the server running
check "add an unknown key to the config" sed -i 's/^max_validity_days = 30$/max_validity_days = 30\nbogus_reload_key = 1/' "$CFG"
kill -HUP "$SERVER_PID"
for _ in $(seq 1 400); do
    grep -q 'reload failed' "$T/server.log" && break
    sleep 0.025
done
check "a bad config on SIGHUP is reported as a failed reload" grep -q 'reload failed' "$T/server.log"
check "the server keeps running after the failed reload" kill -0 "$pid_before"
expect_eq "and still serves" 200 "$(req "$BASE/cacerts")"
