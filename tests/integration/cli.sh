# The command line: help and version, init's refusal to overwrite and its
# file modes, otp create/list/revoke, cert list/show, config errors with
# FILE:LINE, and that no OTP ever reaches the log or the database file.

# --- help and version ---
check "kipuka --help exits 0" "$KIPUKA" --help
check "kipuka --help lists the commands" \
    sh -c "'$KIPUKA' --help | grep -q init && '$KIPUKA' --help | grep -q serve &&
           '$KIPUKA' --help | grep -q otp && '$KIPUKA' --help | grep -q cert"
check "kipuka version exits 0 and prints kipuka VERSION" \
    sh -c "'$KIPUKA' version | grep -Eq '^kipuka [0-9]+\.[0-9]+'"
check "kipuka version --help exits 0" "$KIPUKA" version --help
for sub in init serve otp cert; do
    check "kipuka $sub --help exits 0 and prints usage" \
        sh -c "'$KIPUKA' $sub --help >'$T/help.out' 2>&1 && grep -qi usage '$T/help.out'"
done
check "an unknown command exits non-zero" sh -c "! '$KIPUKA' frobnicate"

# --- init ---
kp_init
snapshot() { (cd "$SRV" && find . -type f | sort | xargs sha256sum); }
snapshot >"$T/init.before"
"$KIPUKA" init --dir "$SRV" --port 0 >"$T/reinit.out" 2>"$T/reinit.err"
rc=$?
check "init on an existing deployment exits non-zero (status $rc)" test "$rc" -ne 0
check "init on an existing deployment says why on stderr" test -s "$T/reinit.err"
check "init on an existing deployment changes no file" \
    sh -c "snap=\$(cd '$SRV' && find . -type f | sort | xargs sha256sum); test \"\$snap\" = \"\$(cat '$T/init.before')\""
for f in ca/ca.key tls/server.key otp.key; do
    expect_eq "$f has mode 600" 600 "$(stat -c %a "$SRV/$f" 2>&1)"
done
for f in ca/ca.pem tls/server.pem kipuka.toml kipuka.db; do
    check "init created $f" test -s "$SRV/$f"
done
check "the TLS certificate is issued by the CA" \
    openssl verify -CAfile "$SRV/ca/ca.pem" "$SRV/tls/server.pem"
check "the TLS certificate names localhost and 127.0.0.1" \
    sh -c "openssl x509 -in '$SRV/tls/server.pem' -noout -ext subjectAltName |
           grep -q 'DNS:localhost' && openssl x509 -in '$SRV/tls/server.pem' -noout \
           -ext subjectAltName | grep -q 'IP Address:127.0.0.1'"

# --- otp create / list ---
"$KIPUKA" otp create -c "$CFG" --entity batch --count 3 >"$T/otp3.out" 2>"$T/otp3.err"
rc=$?
expect_eq "otp create --count 3 exits 0" 0 "$rc"
expect_eq "otp create --count 3 prints 3 lines on stdout" 3 "$(wc -l <"$T/otp3.out")"
expect_eq "the 3 OTPs are distinct" 3 "$(sort -u "$T/otp3.out" | wc -l)"
check "stdout holds only the OTPs (one token per line, no detail)" \
    sh -c "! grep -Ev '^[A-Za-z0-9._~+/=-]{8,}$' '$T/otp3.out'"
expect_eq "stderr has one detail line per OTP" 3 "$(grep -c 'otp id=' "$T/otp3.err")"
mapfile -t otps <"$T/otp3.out"
mapfile -t ids < <(sed -n 's/.*otp id=\([0-9]*\).*/\1/p' "$T/otp3.err")
"$KIPUKA" otp list -c "$CFG" >"$T/list.out" 2>&1
check "otp list has the header ID ENTITY LABEL CREATED EXPIRES USES BOUND STATE" \
    sh -c "head -1 '$T/list.out' | grep -Eq '^ID +ENTITY +LABEL +CREATED +EXPIRES +USES +BOUND +STATE'"
expect_eq "otp list shows the 3 OTPs of entity batch as active" 3 \
    "$(awk '$2 == "batch" && $NF == "active"' "$T/list.out" | wc -l)"
check "otp list does not show the OTP values" \
    sh -c "! grep -qF -e '${otps[0]}' -e '${otps[1]}' -e '${otps[2]}' '$T/list.out'"
check "otp create without --entity fails" sh -c "! '$KIPUKA' otp create -c '$CFG' >/dev/null 2>&1"
check "otp create with an unknown --label fails" \
    sh -c "! '$KIPUKA' otp create -c '$CFG' --entity x --label nope >/dev/null 2>&1"

# --- with the server running: revoke, enroll, cert list/show ---
kp_start
fetch_chain || { echo "Bail out! cannot fetch /cacerts"; exit 1; }
make_csr dev "/CN=batch.example.com" ec:P-256
check "otp revoke ${ids[0]} exits 0" "$KIPUKA" otp revoke -c "$CFG" "${ids[0]}"
expect_eq "otp list shows it revoked" revoked "$(otp_state "${ids[0]}")"
before=$(cert_count)
expect_eq "enrolling with the revoked OTP answers 401" 401 \
    "$(enroll_otp dev "batch:${otps[0]}")"
expect_no_new_cert "revoked OTP" "$before"
check "otp revoke of an unknown id fails" \
    sh -c "! '$KIPUKA' otp revoke -c '$CFG' 99999 >/dev/null 2>&1"
expect_eq "enrolling with the second OTP answers 200" 200 "$(enroll_otp dev "batch:${otps[1]}")"
expect_eq "otp list shows the second OTP used" used "$(otp_state "${ids[1]}")"
expect_eq "the third OTP is still active" active "$(otp_state "${ids[2]}")"
p7_to_pem "$T/dev.p7b" "$T/dev.crt" 2>/dev/null
serial=$(cert_serial "$T/dev.crt")
"$KIPUKA" cert list -c "$CFG" >"$T/certs.out" 2>&1
rc=$?
expect_eq "cert list exits 0" 0 "$rc"
expect_eq "cert list shows the issued serial (lowercase hex, first column)" "$serial" \
    "$(awk -v s="$serial" '$1 == s { print $1 }' "$T/certs.out")"
check "cert list --label default shows it too" \
    sh -c "'$KIPUKA' cert list -c '$CFG' --label default | grep -q '^$serial'"
"$KIPUKA" cert show -c "$CFG" "$serial" >"$T/show.out" 2>&1
rc=$?
expect_eq "cert show exits 0" 0 "$rc"
check "cert show prints a PEM that openssl x509 parses, with that serial" \
    sh -c "openssl x509 -in '$T/show.out' -noout -serial | tr 'A-F' 'a-f' | grep -qx 'serial=$serial'"
check "cert show's PEM is the issued certificate" \
    bash -c "cmp <(openssl x509 -in '$T/show.out' -outform DER) <(openssl x509 -in '$T/dev.crt' -outform DER)"
check "cert show of an unknown serial fails" \
    sh -c "! '$KIPUKA' cert show -c '$CFG' 0123456789abcdef >/dev/null 2>&1"

# --- a config with an unknown key ---
cp "$CFG" "$T/good.toml"
line=$(($(grep -n '^\[server\]' "$CFG" | cut -d: -f1) + 1))
sed -i "${line}i no_such_key = 1" "$CFG"
check "fixture: the unknown key is on line $line" \
    sh -c "sed -n '${line}p' '$CFG' | grep -q no_such_key"
timeout 20 "$KIPUKA" serve -c "$CFG" >"$T/badcfg.out" 2>"$T/badcfg.err"
rc=$?
check "serve with an unknown config key exits non-zero (status $rc)" \
    sh -c "test $rc -ne 0 && test $rc -ne 124"
check "it names kipuka.toml:$line: on stderr" grep -q "kipuka.toml:$line:" "$T/badcfg.err"
check "it does not claim to listen" sh -c "! grep -q 'listening on' '$T/badcfg.out'"
cat "$T/good.toml" >"$CFG"

# --- the OTPs never reach the log, stdout of serve, or the database file ---
wrong="never-log-this-otp-$$"
expect_eq "a wrong OTP answers 401" 401 "$(enroll_otp dev "batch:$wrong")"
otp4=$(new_otp logcheck)
make_csr logcheck "/CN=logcheck.example.com" ec:P-256
expect_eq "another enrollment answers 200" 200 "$(enroll_otp logcheck "logcheck:$otp4")"
kp_stop
for o in "${otps[@]}" "$otp4" "$wrong"; do
    expect_eq "OTP ${o:0:4}... is not in the server log" 0 \
        "$(cat "$T/server.log" "$T/server.out" | grep -c -F -- "$o")"
    expect_eq "OTP ${o:0:4}... is not in the database files" 0 \
        "$(db_raw | grep -a -c -F -- "$o")"
done
check "the server log is not empty (it logged the enrollments)" test -s "$T/server.log"
