# Crash safety (commit before answer): clients enroll in a loop, the server
# is killed with SIGKILL mid-load and restarted. Every certificate a client
# received must be in the store, and the database must pass integrity_check.
kp_init
# Not a test of which names an OTP may certify (otp_identity.sh is): its CSRs
# carry names other than their OTP's entity id.
check "otp_subject = \"any\" in [label.default]" cfg_set label.default otp_subject '"any"'
kp_start
fetch_chain || { echo "Bail out! cannot fetch /cacerts"; exit 1; }

CLIENTS=6
PER_CLIENT=40
make_csr crash "/CN=crash.example.com" ec:P-256
new_otp loader --uses 100000 --ttl 1h >"$T/otp"
otp=$(cat "$T/otp")

# each client enrolls until its count is reached or the server is gone
client() {
    local i=0 n=$1
    mkdir -p "$T/got/$n"
    while [ $i -lt $PER_CLIENT ]; do
        code=$(curl -s -o "$T/got/$n/$i.p7b" -w '%{http_code}' -X POST --max-time 5 \
            --cacert "$T/ca-chain.pem" -u "loader:$otp" -H "Content-Type: application/pkcs10" \
            --data-binary @"$T/crash.csr.b64" "$BASE/simpleenroll")
        [ "$code" = 200 ] || { rm -f "$T/got/$n/$i.p7b"; [ "$code" = 000 ] && return 0; }
        i=$((i + 1))
    done
}
for n in $(seq 1 $CLIENTS); do client "$n" & done

# kill once a first batch of certificates has been committed (no fixed sleep)
for _ in $(seq 1 400); do
    [ "$(db 'select count(*) from certificates')" -ge 20 ] 2>/dev/null && break
    sleep 0.025
done
kill -KILL "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null
SERVER_PID=
wait

received=$(find "$T/got" -name '*.p7b' | wc -l)
check "clients received certificates before the crash" test "$received" -gt 0

# every certificate a client holds is in the store
missing=0
for f in $(find "$T/got" -name '*.p7b'); do
    serial=$(base64 -d "$f" | openssl pkcs7 -inform DER -print_certs 2>/dev/null |
        openssl x509 -noout -serial 2>/dev/null | cut -d= -f2 | tr 'A-F' 'a-f')
    if [ -z "$serial" ] || [ "$(db "select count(*) from certificates where serial = '$serial'")" != 1 ]; then
        missing=$((missing + 1))
    fi
done
expect_eq "every received certificate ($received) is in the store" 0 "$missing"
expect_eq "the database passes integrity_check" ok "$(db 'pragma integrity_check')"
expect_eq "every issued certificate has its audit row" 0 \
    "$(db "select count(*) from certificates c where not exists
           (select 1 from audit a where a.detail = c.serial and a.outcome = 'ok')")"

# the server comes back on the same database and keeps issuing
kp_start
fetch_chain
make_csr after "/CN=after.example.com" ec:P-256
code=$(enroll_otp after "loader:$otp")
expect_eq "after a restart enrollment answers 200" 200 "$code"
