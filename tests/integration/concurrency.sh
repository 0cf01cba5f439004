# Concurrent enrollments: a single-use OTP races to exactly one certificate;
# distinct OTPs in parallel all succeed with distinct serials.
kp_init
# Not a test of which names an OTP may certify (otp_identity.sh is): its CSRs
# carry names other than their OTP's entity id.
check "otp_subject = \"any\" in [label.default]" cfg_set label.default otp_subject '"any"'
# a short window: refusals after the OTP is used up are counted into one
# summary row per window (docs/audit.md), written 2 s later
cfg_add server auth_fail_window 2 || echo "Bail out! cannot set auth_fail_window"
kp_start
fetch_chain || { echo "Bail out! cannot fetch /cacerts"; exit 1; }
cd "$T" || exit 1

# race N USER:OTP PREFIX: N parallel enrollments of PREFIX-i CSRs (made
# beforehand so the requests start together); statuses in PREFIX-i.code
race() {
    local n=$1 cred=$2 p=$3 i pids=()
    for i in $(seq 1 "$n"); do
        curl -s -o "$p-$i.p7b" -w '%{http_code}\n' -X POST --cacert ca-chain.pem -u "$cred" \
            -H "Content-Type: application/pkcs10" --data-binary @"$p-$i.csr.b64" \
            "$BASE/simpleenroll" >"$p-$i.code" &
        pids+=($!)
    done
    wait "${pids[@]}"
}

# --- one single-use OTP, raced by 2 and then by 10 clients ---
for n in 2 10; do
    for i in $(seq 1 "$n"); do make_csr "same$n-$i" "/CN=same$n-$i.example.com" ec:P-256; done
    otp=$(new_otp racer$n)
    before=$(cert_count)
    abefore=$(db "select coalesce(max(id), 0) from audit")
    race "$n" "racer$n:$otp" "same$n"
    codes=$(cat same$n-*.code | sort | uniq -c | awk '{ printf "%s:%s ", $2, $1 }')
    expect_eq "$n concurrent enrollments with one OTP: one 200" 1 \
        "$(cat same$n-*.code | grep -c '^200$')"
    expect_eq "$n concurrent enrollments with one OTP: the others 401 ($codes)" $((n - 1)) \
        "$(cat same$n-*.code | grep -c '^401$')"
    expect_eq "$n concurrent enrollments with one OTP: exactly one certificate row" \
        $((before + 1)) "$(cert_count)"
    expect_eq "$n concurrent enrollments with one OTP: the row is racer$n's" 1 \
        "$(db "select count(*) from certificates where requester = 'racer$n'")"
    # unauthorized refusals on record: 1 per row, N per summary row
    audited() {
        echo "$(db "select count(*) from audit where id > $abefore and event = 'simpleenroll' and outcome = 'ok'")|$(
            db "select detail from audit where id > $abefore and event = 'simpleenroll' and outcome = 'unauthorized'" |
                awk '/ more refusals from / { s += $1; next } { s += 1 } END { print s + 0 }')"
    }
    for _ in $(seq 1 40); do
        [ "$(audited)" = "1|$((n - 1))" ] && break
        sleep 0.25
    done
    expect_eq "$n concurrent enrollments: one ok audit row, $((n - 1)) unauthorized on record" \
        "1|$((n - 1))" "$(audited)"
done

# --- an OTP with --uses 3, raced by 10 clients: exactly 3 certificates ---
for i in $(seq 1 10); do make_csr "uses3-$i" "/CN=uses3-$i.example.com" ec:P-256; done
otp=$(new_otp racer-uses3 --uses 3)
before=$(cert_count)
race 10 "racer-uses3:$otp" uses3
codes=$(cat uses3-*.code | sort | uniq -c | awk '{ printf "%s:%s ", $2, $1 }')
expect_eq "10 concurrent enrollments with a 3-use OTP: three 200 ($codes)" 3 \
    "$(cat uses3-*.code | grep -c '^200$')"
expect_eq "10 concurrent enrollments with a 3-use OTP: seven 401" 7 \
    "$(cat uses3-*.code | grep -c '^401$')"
expect_eq "10 concurrent enrollments with a 3-use OTP: exactly three rows" \
    $((before + 3)) "$(cert_count)"

# --- 20 distinct OTPs in parallel ---
"$KIPUKA" otp create -c "$CFG" --entity fleet --count 20 >fleet.otps 2>/dev/null
expect_eq "20 OTPs created" 20 "$(sort -u fleet.otps | wc -l)"
mapfile -t fotps <fleet.otps
for i in $(seq 1 20); do make_csr "fleet-$i" "/CN=fleet-$i.example.com" ec:P-256; done
before=$(cert_count)
pids=()
for i in $(seq 1 20); do
    curl -s -o "fleet-$i.p7b" -w '%{http_code}\n' -X POST --cacert ca-chain.pem \
        -u "fleet:${fotps[$((i - 1))]}" -H "Content-Type: application/pkcs10" \
        --data-binary @"fleet-$i.csr.b64" "$BASE/simpleenroll" >"fleet-$i.code" &
    pids+=($!)
done
wait "${pids[@]}"
expect_eq "20 parallel enrollments with distinct OTPs all answer 200" 20 \
    "$(cat fleet-*.code | grep -c '^200$')"
expect_eq "20 certificate rows written" $((before + 20)) "$(cert_count)"
for i in $(seq 1 20); do
    p7_to_pem "fleet-$i.p7b" "fleet-$i.crt" 2>/dev/null && cert_serial "fleet-$i.crt"
done >fleet.serials
expect_eq "20 serials, all distinct" "20|20" "$(wc -l <fleet.serials)|$(sort -u fleet.serials | wc -l)"
bad=0
for i in $(seq 1 20); do
    s=$(openssl x509 -in "fleet-$i.crt" -noout -subject -nameopt RFC2253 2>/dev/null)
    [ "$s" = "subject=CN=fleet-$i.example.com" ] || bad=$((bad + 1))
done
expect_eq "each client got the certificate for its own CSR" 0 "$bad"
expect_eq "each serial has its row" 20 \
    "$(for s in $(cat fleet.serials); do db "select count(*) from certificates where serial = '$s'"; done | grep -c '^1$')"
expect_eq "the server still answers" 200 "$(req "$BASE/cacerts")"
