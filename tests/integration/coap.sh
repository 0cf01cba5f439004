# EST-coaps (RFC 9148) over DTLS 1.2, driven with coap-client-openssl:
# discovery, /crts in 281 and 287, /att, enrollment and re-enrollment with a
# DTLS client certificate (and across transports), block sizes 16..1024
# both ways, 4.13 at the first block of an oversize upload (with Size1, and
# block by block without it: tests/tools/coapblocks.c), untrusted
# certificate, unknown label, wrong method, Content-Format and Accept, the
# HelloVerifyRequest cookie, 100 clients at once, /skg, a held request;
# DTLS PSK enrollment and its refusals, a PSK removed by a reload, the
# auth-failure limit shared with HTTPS, the session cap and idle expiry.
# coap-client exits 0 on failure: every check reads the code and payload.
kp_init --label iot-fleet
# [server] max_body_bytes is read by the reload test below
sed -i 's/^\[server\]$/[server]\nmax_body_bytes = 65536/' "$CFG"
# DTLS PSKs (docs/coap.md): coap-client takes a key as text, the file as hex.
# kipuka init lets the default label take PSKs, not iot-fleet.
PSK1_KEY=kipuka-psk-sensor-0001
PSK2_KEY=kipuka-psk-sensor-0002
hex() { printf %s "$1" | od -An -tx1 -v | tr -d ' \n'; }
printf 'sensor-0001 default %s\nsensor-0002 iot-fleet %s\n' "$(hex "$PSK1_KEY")" \
    "$(hex "$PSK2_KEY")" >"$SRV/coap-psk"
chmod 600 "$SRV/coap-psk"
sed -i 's/^\[coap\]$/[coap]\npsk_file = "coap-psk"/' "$CFG"
kp_start
fetch_chain || { echo "Bail out! cannot fetch /cacerts"; exit 1; }
cd "$T" || exit 1

# The coaps readiness line comes after the https one kp_start waited for.
for _ in $(seq 1 400); do
    grep -q 'listening on coaps://' "$T/server.out" && break
    sleep 0.025
done
CPORT=$(sed -n 's|.*listening on coaps://[^:]*:\([0-9]*\)/.*|\1|p' "$T/server.out" | head -1)
[ -n "$CPORT" ] || { cat "$T/server.log" >&2; echo "Bail out! no coaps listener"; exit 1; }
CU=coaps://127.0.0.1:$CPORT

# coap OUT [coap-client args...] URL: one request; prints the last response
# code (2.05, 4.04...); the payload lands in $T/OUT, the exchange in $T/coap.log
coap() {
    local out=$1; shift
    rm -f "$T/$out"
    timeout 60 coap-client-openssl -v 7 -R "$T/ca-chain.pem" -o "$T/$out" "$@" >"$T/coap.log" 2>&1
    grep -a -o ' c:[2-5]\.[0-9][0-9]' "$T/coap.log" | tail -1 | cut -c4-
}
# coap_psk OUT IDENTITY KEY [coap-client args...] URL: as coap, over a PSK
# session (no -R: coap-client would take a certificate session then)
coap_psk() {
    local out=$1 id=$2 key=$3; shift 3
    rm -f "$T/$out"
    timeout 60 coap-client-openssl -v 7 -u "$id" -k "$key" -o "$T/$out" "$@" >"$T/coap.log" 2>&1
    grep -a -o ' c:[2-5]\.[0-9][0-9]' "$T/coap.log" | tail -1 | cut -c4-
}
# metric NAME: its value on /metrics
metric() {
    curl -s --cacert "$T/ca-chain.pem" -H "Authorization: Bearer $(cat "$SRV/admin.token")" \
        "${BASE%/.well-known/est}/metrics" | sed -n "s/^$1 //p"
}
# diag: the diagnostic payload of the last answer
diag() { grep -a -o ":: '.*'" "$T/coap.log" | tail -1; }

# ---- discovery (RFC 9148 5.1) ----
code=$(coap wkc.txt -m get "$CU/.well-known/core")
expect_eq "GET /.well-known/core answers 2.05" 2.05 "$code"
for r in crts:'"281 287"' sen:'"281 287"' sren:'"281 287"' skg:62 att:285; do
    n=${r%%:*} ct=${r#*:}
    check "discovery lists /est/$n with rt=\"ace.est.$n\" and ct=$ct" \
        grep -qF "</est/$n>;ct=$ct;rt=\"ace.est.$n\"" wkc.txt
done

# ---- /crts ----
base64 -d cacerts.p7b >https-cacerts.der
code=$(coap crts.der -m get -A 281 "$CU/est/crts")
expect_eq "GET /est/crts (Accept 281) answers 2.05" 2.05 "$code"
check "it is Content-Format 281" grep -q 'Content-Format:281' coap.log
check "the payload is the DER /cacerts gives over HTTPS" cmp crts.der https-cacerts.der
check "openssl reads it as certs-only PKCS#7" \
    bash -c "openssl pkcs7 -inform DER -in crts.der -print_certs | grep -q 'subject=CN = kipuka demo CA'"
code=$(coap crts-default.der -m get "$CU/est/crts")
expect_eq "GET /est/crts without Accept answers 281" "2.05 281" \
    "$code $(grep -a -o 'Content-Format:[0-9]*' coap.log | tail -1 | cut -d: -f2)"
code=$(coap crt.der -m get -A 287 "$CU/.well-known/est/crts")
expect_eq "GET /.well-known/est/crts (Accept 287) answers 2.05" 2.05 "$code"
check "it is Content-Format 287" grep -q 'Content-Format:287' coap.log
check "the payload is the issuing CA certificate alone (DER)" \
    bash -c "cmp <(openssl x509 -inform DER -in crt.der -outform PEM) <(openssl x509 -in '$SRV/ca/ca.pem')"
code=$(coap lcrts.der -m get "$CU/est/iot-fleet/crts")
expect_eq "GET /est/iot-fleet/crts (a configured label) answers 2.05" 2.05 "$code"
code=$(coap lcrts.der -m get "$CU/.well-known/est/iot-fleet/crts")
expect_eq "GET /.well-known/est/iot-fleet/crts answers 2.05" 2.05 "$code"

# ---- /att ----
curl -sf --cacert ca-chain.pem "$BASE/csrattrs" | base64 -d >https-att.der
code=$(coap att.der -m get "$CU/est/att")
expect_eq "GET /est/att answers 2.05" 2.05 "$code"
check "it is Content-Format 285" grep -q 'Content-Format:285' coap.log
check "the payload is the DER CsrAttrs /csrattrs gives over HTTPS" cmp att.der https-att.der

# ---- DTLS cookie exchange: the first answer to a ClientHello is a
# HelloVerifyRequest (handshake type 3), before the server keeps any state ----
timeout 10 openssl s_client -dtls1_2 -connect "127.0.0.1:$CPORT" -msg </dev/null >dtls.msg 2>&1
first=$(awk '/^<<< .*content_type=22/ { getline; print $1; exit }' dtls.msg)
expect_eq "the server answers a ClientHello with a HelloVerifyRequest" 03 "$first"

# ---- enrollment with a DTLS client certificate ----
check "OTP enrollment over HTTPS of the device's first certificate" \
    enroll_ok dev "/CN=coap-device.example.com" coap-device
openssl req -new -key dev.key -subj "/CN=coap-device.example.com" -outform DER -out sen.csr.der
before=$(cert_count)
code=$(coap sen.der -m post -t 286 -A 281 -f sen.csr.der -c dev.crt -j dev.key "$CU/est/sen")
expect_eq "POST /est/sen with the DTLS client certificate answers 2.04" 2.04 "$code"
check "it is Content-Format 281" grep -q 'Content-Format:281' coap.log
openssl pkcs7 -inform DER -in sen.der -print_certs -out sen.pem 2>/dev/null
check "the new certificate verifies" openssl verify -CAfile ca-chain.pem sen.pem
check "it carries the CSR's key" \
    bash -c "cmp <(openssl x509 -in sen.pem -noout -pubkey) <(openssl x509 -in dev.crt -noout -pubkey)"
expect_eq "one certificate row written" $((before + 1)) "$(cert_count)"
expect_eq "the row: label, subject, auth_method mtls" "default|CN=coap-device.example.com|mtls" \
    "$(db "select label, subject, auth_method from certificates where serial = '$(cert_serial sen.pem)'")"
check "the access log names the transport" \
    grep -q 'transport="coaps".*path="/est/sen" op="simpleenroll" label="default" code="2.04"' \
    "$T/server.log"
code=$(coap sen287.der -m post -t 286 -A 287 -f sen.csr.der -c dev.crt -j dev.key \
    "$CU/.well-known/est/sen")
expect_eq "POST /.well-known/est/sen with Accept 287 answers 2.04" 2.04 "$code"
check "the payload is the certificate alone (287)" \
    bash -c "grep -q 'Content-Format:287' '$T/coap.log' &&
             openssl x509 -inform DER -in sen287.der -noout -subject | grep -q coap-device"

curl -s --cacert ca-chain.pem -H "Authorization: Bearer $(cat "$SRV/admin.token")" \
    -o metrics.txt "${BASE%/.well-known/est}/metrics"
check "/metrics counts the enrollments of both transports in one series (OTP, then 2 over coaps)" \
    grep -q '^kipuka_requests_total{op="simpleenroll",label="default",status="200"} 3$' metrics.txt
# /.well-known/core is libcoap's own; 3 + 2 /crts, /att and 2 /sen are ours
check "/metrics counts the 8 requests answered over coaps" \
    grep -q '^kipuka_coaps_requests_total 8$' metrics.txt

# ---- re-enrollment over DTLS, then the renewed certificate over HTTPS ----
openssl req -new -key dev.key -subj "/CN=coap-device.example.com" -outform DER -out sren.csr.der
code=$(coap sren.der -m post -t 286 -f sren.csr.der -c sen.pem -j dev.key "$CU/est/sren")
expect_eq "POST /est/sren with the certificate being renewed answers 2.04" 2.04 "$code"
openssl pkcs7 -inform DER -in sren.der -print_certs -out sren.pem 2>/dev/null
check "the renewed certificate verifies and is new" \
    bash -c "openssl verify -CAfile ca-chain.pem sren.pem &&
             [ \"\$(openssl x509 -in sren.pem -noout -serial)\" != \"\$(openssl x509 -in sen.pem -noout -serial)\" ]"
expect_eq "the store has it as a simplereenroll" "simplereenroll|ok" \
    "$(db "select event, outcome from audit order by id desc limit 1")"
openssl req -new -key dev.key -subj "/CN=coap-device.example.com" -outform DER | base64 >https.csr.b64
code=$(post_csr https.csr.b64 "$BASE/simplereenroll" --cert sren.pem --key dev.key)
expect_eq "the certificate renewed over CoAP re-enrolls over HTTPS (200)" 200 "$code"
code=$(coap r.der -m post -t 286 -f sren.csr.der -c dev.crt -j dev.key "$CU/est/sren")
expect_eq "and the reverse: the certificate enrolled over HTTPS re-enrolls over CoAP (2.04)" \
    2.04 "$code"

# ---- DTLS PSK (RFC 4279; docs/coap.md "PSK credentials") ----
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout psk1.key \
    -subj "/CN=sensor-0001" -outform DER -out psk1.csr.der 2>/dev/null
before=$(cert_count)
code=$(coap_psk psk1.der sensor-0001 "$PSK1_KEY" -m post -t 286 -f psk1.csr.der "$CU/est/sen")
expect_eq "PSK sensor-0001: POST /est/sen answers 2.04" 2.04 "$code"
openssl pkcs7 -inform DER -in psk1.der -print_certs -out psk1.pem 2>/dev/null
check "PSK: the certificate verifies" openssl verify -CAfile ca-chain.pem psk1.pem
check "PSK: its CN is the identity" \
    bash -c "openssl x509 -in psk1.pem -noout -subject | grep -q 'CN *= *sensor-0001$'"
expect_eq "PSK: the store has it with auth_method psk" "default|CN=sensor-0001|psk" \
    "$(db "select label, subject, auth_method from certificates where serial = '$(cert_serial psk1.pem)'")"
check "PSK: the access log names the transport and the identity" \
    grep -q 'transport="coaps".*op="simpleenroll".*code="2.04".*subject="sensor-0001"' server.log
openssl req -new -key psk1.key -subj "/CN=sensor-0001" -outform DER | base64 >psk1r.csr.b64
code=$(post_csr psk1r.csr.b64 "$BASE/simplereenroll" --cert psk1.pem --key psk1.key)
expect_eq "the certificate a PSK enrolled over CoAP re-enrolls over HTTPS (200)" 200 "$code"
check "the access log names the transport of the HTTPS renewal" \
    grep -q 'transport="https".*op="simplereenroll".*status=200' server.log
before=$(cert_count)
code=$(coap_psk r.txt sensor-0001 wrong-key-wrong-key-0001 -B 5 -m post -t 286 -f psk1.csr.der \
    "$CU/est/sen")
expect_eq "a wrong PSK key: the handshake fails, no answer" "" "$code"
code=$(coap_psk r.txt sensor-9999 "$PSK1_KEY" -B 5 -m post -t 286 -f psk1.csr.der "$CU/est/sen")
expect_eq "an unknown PSK identity: the handshake fails, no answer" "" "$code"
check "the server is alive after failed handshakes" kill -0 "$SERVER_PID"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout psk2.key \
    -subj "/CN=sensor-0002" -outform DER -out psk2.csr.der 2>/dev/null
code=$(coap_psk r.txt sensor-0002 "$PSK2_KEY" -m post -t 286 -f psk2.csr.der "$CU/est/sen")
expect_eq "a PSK bound to iot-fleet on the default label gets 4.03" 4.03 "$code"
code=$(coap_psk r.txt sensor-0002 "$PSK2_KEY" -m post -t 286 -f psk2.csr.der \
    "$CU/est/iot-fleet/sen")
expect_eq "a PSK on its own label without allow_psk gets 4.03" 4.03 "$code"
code=$(coap_psk r.txt sensor-0001 "$PSK1_KEY" -m post -t 286 -f psk2.csr.der "$CU/est/sen")
expect_eq "a PSK's CSR naming another entity gets 4.03" 4.03 "$code"
code=$(coap_psk r.txt sensor-0001 "$PSK1_KEY" -m post -t 286 -f psk1.csr.der "$CU/est/sren")
expect_eq "a PSK on /sren gets 4.03 (no certificate to renew)" 4.03 "$code"
expect_no_new_cert "refused PSK requests" "$before"

# ---- block-wise both ways (RFC 7959): an RSA-4096 CSR (1.1 KB) up in
# Block1, /crts (458 bytes) down in Block2 ----
make_csr big "/CN=coap-device.example.com" rsa:4096
openssl req -in big.csr -outform DER -out big.csr.der
for b in 16 64 256 1024; do
    code=$(coap big$b.der -b "$b" -m post -t 286 -f big.csr.der -c dev.crt -j dev.key "$CU/est/sen")
    last=$(( ($(stat -c %s big.csr.der) - 1) / b ))
    ok_blocks=no
    grep -q "Block1:$last/_/$b" coap.log && ok_blocks=yes
    expect_eq "block size $b: the CSR went up in $b-byte blocks (last #$last), 2.04" "2.04 yes" \
        "$code $ok_blocks"
    check "block size $b: the certificate is whole and carries the RSA-4096 key" \
        bash -c "openssl pkcs7 -inform DER -in big$b.der -print_certs | openssl x509 -noout -text |
                 grep -q 'Public-Key: (4096 bit)'"
    code=$(coap crts$b.der -b "$b" -m get "$CU/est/crts")
    if [ "$b" -lt 458 ]; then
        last=$(( (458 - 1) / b ))
        check "block size $b: /crts came down in $b-byte blocks (last #$last)" \
            grep -q "Block2:$last/_/$b" coap.log
    fi
    check "block size $b: /crts arrives whole" cmp crts$b.der https-cacerts.der
done

# ---- refusals ----
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout self.key -out self.crt -days 30 -subj "/CN=coap-device.example.com" 2>/dev/null
before=$(cert_count)
code=$(coap r.txt -m post -t 286 -f sen.csr.der -c self.crt -j self.key "$CU/est/sen")
expect_eq "an untrusted (self-signed) client certificate gets 4.01" 4.01 "$code"
code=$(coap r.txt -m post -t 286 -f sen.csr.der "$CU/est/sen")
expect_eq "no credentials at all get 4.01" 4.01 "$code"
expect_no_new_cert "refused enrollments" "$before"
code=$(coap r.txt -m get "$CU/est/no-such-label/crts")
expect_eq "an unknown label gets 4.04" 4.04 "$code"
code=$(coap r.txt -m post -t 286 -f sen.csr.der -c dev.crt -j dev.key \
    "$CU/.well-known/est/no-such-label/sen")
expect_eq "an unknown label on a POST gets 4.04" 4.04 "$code"
code=$(coap r.txt -m get "$CU/est/fullcmc")
expect_eq "an unknown resource gets 4.04" 4.04 "$code"
code=$(coap r.txt -m post -t 286 -f sen.csr.der "$CU/est/crts")
expect_eq "POST /est/crts gets 4.05" 4.05 "$code"
code=$(coap r.txt -m get "$CU/est/sen")
expect_eq "GET /est/sen gets 4.05" 4.05 "$code"
code=$(coap r.txt -m put -t 286 -f sen.csr.der "$CU/est/sen")
expect_eq "PUT /est/sen gets 4.05" 4.05 "$code"
code=$(coap r.txt -m post -t 0 -f sen.csr.der -c dev.crt -j dev.key "$CU/est/sen")
expect_eq "a CSR as Content-Format 0 gets 4.15" 4.15 "$code"
code=$(coap r.txt -m post -f sen.csr.der -c dev.crt -j dev.key "$CU/est/sen")
expect_eq "a CSR without Content-Format gets 4.15" 4.15 "$code"
code=$(coap r.txt -m get -A 286 "$CU/est/crts")
expect_eq "an Accept /crts cannot produce gets 4.06" 4.06 "$code"
expect_no_new_cert "refused requests" "$before"

# ---- a second server on the same UDP port refuses to start (libcoap binds
# with SO_REUSEADDR, which would let it take half the datagrams) ----
awk -v p="$CPORT" '/^\[/ { c = ($0 == "[coap]") } c && $1 == "port" { $0 = "port = " p } { print }' \
    "$CFG" >"$SRV/second.toml"
timeout 20 "$KIPUKA" serve -c "$SRV/second.toml" >second.out 2>second.err
rc=$?
expect_eq "a second server on the coaps port exits 1, saying why" "1 yes" \
    "$rc $(grep -q "UDP 127.0.0.1:$CPORT is in use" second.err && echo yes)"

# ---- 100 clients at once ----
mkdir -p many
pids=
# On a loaded machine a handshake may time out: each client tries up to 3
# times (what counts is that all get their answer and the server stays up).
for i in $(seq 1 100); do
    (for _ in 1 2 3; do
        rm -f "many/$i.der"
        timeout 60 coap-client-openssl -v 4 -B 20 -R ca-chain.pem -m get -o "many/$i.der" \
            "$CU/est/crts" >>"many/$i.log" 2>&1
        cmp -s "many/$i.der" https-cacerts.der && break
    done) &
    pids="$pids $!"
done
# shellcheck disable=SC2086
wait $pids
n=0
for i in $(seq 1 100); do
    if cmp -s "many/$i.der" https-cacerts.der; then n=$((n + 1)); else
        echo "# client $i:"; tail -3 "many/$i.log" | sed 's/^/#   /'; fi
done
expect_eq "100 concurrent DTLS clients all get /crts" 100 "$n"
check "the server is still alive" kill -0 "$SERVER_PID"

# ---- over server.max_body_bytes: 4.13 at the first block (reload applies it) ----
cfg_set server max_body_bytes 1024
check "SIGHUP reload" kp_reload
before=$(cert_count)
code=$(coap r.txt -b 64 -m post -t 286 -f big.csr.der -c dev.crt -j dev.key "$CU/est/sen")
expect_eq "an RSA-4096 CSR over max_body_bytes = 1024 gets 4.13" 4.13 "$code"
check "the 4.13 carries Size1 = 1024" grep -q 'c:4.13.*Size1:1024' coap.log
check "the client sent no second block" bash -c "! grep -q 'Block1:1/' '$T/coap.log'"
# a device that sends no Size1: the blocks are counted as they come
"$COAPBLOCKS" 127.0.0.1 "$CPORT" est/sen big.csr.der 2 dev.crt dev.key >blocks.txt 2>&1
expect_eq "without Size1, 64-byte blocks: 2.31 for the 16 within 1024 bytes, 4.13 at the 17th" \
    "16 4.13" "$(grep -c '^2\.31$' blocks.txt) $(tail -1 blocks.txt)"
expect_no_new_cert "oversize upload" "$before"
code=$(coap small.der -m post -t 286 -f sen.csr.der -c dev.crt -j dev.key "$CU/est/sen")
expect_eq "a small CSR still enrolls after the reload" 2.04 "$code"

# ---- /skg (RFC 9148 5.8): multipart-core with the key (284), then the
# certificate (281); est.serverkeygen switched on by a reload ----
# mp_split FILE PREFIX: a 4-item multipart-core (RFC 8710) into PREFIX.1.der
# and PREFIX.2.der; prints the two Content-Formats
mp_split() {
    local f=$1 p=$2 hex pos=1 out= i b ai n v
    hex=$(od -An -tx1 -v "$f" | tr -d ' \n')
    [ "${hex:0:2}" = 84 ] || return 1
    for i in 1 2 3 4; do
        b=$((16#${hex:pos*2:2}))
        ai=$((b & 31))
        pos=$((pos + 1))
        case $ai in 24) n=1 ;; 25) n=2 ;; 26) n=4 ;; *) n=0 ;; esac
        if [ "$n" = 0 ]; then v=$ai; else
            v=$((16#${hex:pos*2:n*2}))
            pos=$((pos + n))
        fi
        if [ $((i % 2)) = 1 ]; then out="$out${out:+ }$v"; else
            tail -c +$((pos + 1)) "$f" | head -c "$v" >"$p.$((i / 2)).der"
            pos=$((pos + v))
        fi
    done
    echo "$out"
}
check "enable est.serverkeygen" cfg_add est serverkeygen true
check "SIGHUP reload" kp_reload
code=$(coap skg.cbor -m post -t 286 -A 62 -f sen.csr.der -c dev.crt -j dev.key "$CU/est/skg")
expect_eq "POST /est/skg answers 2.04 with Content-Format 62" "2.04 62" \
    "$code $(grep -a -o 'Content-Format:[0-9]*' coap.log | tail -1 | cut -d: -f2)"
expect_eq "multipart-core: the key as 284, then the certificate as 281" "284 281" \
    "$(mp_split skg.cbor skg)"
openssl pkcs7 -inform DER -in skg.2.der -print_certs -out skg.pem 2>/dev/null
check "the certificate verifies and is for the generated key" \
    bash -c "openssl verify -CAfile ca-chain.pem skg.pem &&
             cmp <(openssl pkey -inform DER -in skg.1.der -pubout) <(openssl x509 -in skg.pem -noout -pubkey)"
code=$(coap r.txt -m post -t 286 -A 281 -f sen.csr.der -c dev.crt -j dev.key "$CU/est/skg")
expect_eq "an Accept other than 62 on /skg gets 4.06" 4.06 "$code"

openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout /dev/null \
    -subj "/CN=sensor-0001" -outform DER -out pskskg.csr.der 2>/dev/null
code=$(coap_psk pskskg.cbor sensor-0001 "$PSK1_KEY" -m post -t 286 -f pskskg.csr.der "$CU/est/skg")
expect_eq "PSK: POST /est/skg answers 2.04, multipart-core 284 then 281" "2.04 284 281" \
    "$code $(mp_split pskskg.cbor pskskg)"
openssl pkcs7 -inform DER -in pskskg.2.der -print_certs -out pskskg.pem 2>/dev/null
check "PSK /skg: the certificate verifies, names the identity and is for the key" \
    bash -c "openssl verify -CAfile ca-chain.pem pskskg.pem &&
             openssl x509 -in pskskg.pem -noout -subject | grep -q 'CN *= *sensor-0001$' &&
             cmp <(openssl pkey -inform DER -in pskskg.1.der -pubout) <(openssl x509 -in pskskg.pem -noout -pubkey)"

# ---- held for manual approval: 5.03 with Max-Age (RFC 9148 5.7) ----
check "approval = \"manual\" on the default label" cfg_add label.default approval '"manual"'
check "est.retry_after = 17" cfg_set est retry_after 17
check "SIGHUP reload" kp_reload
openssl req -new -key dev.key -subj "/CN=coap-device.example.com" -outform DER -out held.csr.der
before=$(cert_count)
code=$(coap r.txt -m post -t 286 -f held.csr.der -c dev.crt -j dev.key "$CU/est/sen")
expect_eq "an enrollment on a manual label answers 5.03" 5.03 "$code"
check "with Max-Age 17 (est.retry_after)" grep -q 'c:5.03.*Max-Age:17' coap.log
expect_no_new_cert "held request" "$before"
id=$(db "select max(id) from pending_requests")
check "kipuka request approve ID" "$KIPUKA" request approve "$id" -c "$CFG"
code=$(coap held.der -m post -t 286 -f held.csr.der -c dev.crt -j dev.key "$CU/est/sen")
expect_eq "the same request after approval answers 2.04" 2.04 "$code"
check "with the certificate" \
    bash -c "openssl pkcs7 -inform DER -in held.der -print_certs | openssl x509 -noout -subject |
             grep -q coap-device"

# ---- a reload that removes a PSK refuses new handshakes with it ----
sed -i '/^sensor-0001 /d' "$SRV/coap-psk"
check "SIGHUP reload without sensor-0001" kp_reload
code=$(coap_psk r.txt sensor-0001 "$PSK1_KEY" -B 5 -m get "$CU/est/crts")
expect_eq "the removed PSK's handshake fails" "" "$code"

# ---- DTLS sessions: at most coap.max_sessions kept (the oldest idle one
# goes), and a session idle past coap.session_timeout is dropped ----
# (and the auth-failure limit the test after this one uses, from a fresh count)
printf 'sensor-0003 default %s\n' "$(hex "$PSK1_KEY")" >>"$SRV/coap-psk"
cfg_add coap max_sessions 2
cfg_add coap session_timeout 3
cfg_add server auth_fail_limit_addr 3
kp_restart
CPORT=
for _ in $(seq 1 400); do
    CPORT=$(sed -n 's|.*listening on coaps://[^:]*:\([0-9]*\)/.*|\1|p' "$T/server.out" | head -1)
    [ -n "$CPORT" ] && break
    sleep 0.025
done
CU=coaps://127.0.0.1:$CPORT
# four clients, each asking /crts 5 times a second apart on its session:
# a new one takes the place of the least recently used
for i in 1 2 3 4; do
    timeout 60 coap-client-openssl -v 4 -G 5 -m get -o "kept$i.der" "$CU/est/crts" \
        >"kept$i.log" 2>&1 &
    eval "kept_pid$i=\$!"
    sleep 0.4
done
most=0
for _ in 1 2 3 4 5 6; do
    n=$(metric kipuka_coaps_sessions)
    [ "$n" -gt "$most" ] && most=$n
    sleep 0.3
done
check "four clients at once, coap.max_sessions = 2: 1 or 2 sessions kept, never more ($most)" \
    test "$most" -ge 1 -a "$most" -le 2
wait "$kept_pid1" "$kept_pid2" "$kept_pid3" "$kept_pid4"
size=$(stat -c %s https-cacerts.der)
expect_eq "the newest session got all 5 answers" "$((5 * size))" "$(stat -c %s kept4.der)"
dropped=0
for i in 1 2 3; do
    [ "$(stat -c %s "kept$i.der" 2>/dev/null || echo 0)" -lt "$((5 * size))" ] &&
        dropped=$((dropped + 1))
done
check "older sessions were dropped for newer ones: their clients got fewer ($dropped)" \
    test "$dropped" -ge 1
check "the server is still alive" kill -0 "$SERVER_PID"
# a client that vanishes without closing its session (no close_notify)
coap-client-openssl -v 4 -G 30 -m get -o idle.der "$CU/est/crts" >idle.log 2>&1 &
idle_pid=$!
for _ in $(seq 1 100); do [ -s idle.der ] && break; sleep 0.05; done
kill -KILL "$idle_pid"
wait "$idle_pid" 2>/dev/null
expect_eq "the killed client's session is kept while idle" 1 "$(metric kipuka_coaps_sessions)"
n=1
for _ in $(seq 1 60); do
    n=$(metric kipuka_coaps_sessions)
    [ "$n" = 0 ] && break
    sleep 0.25
done
expect_eq "and dropped once idle past session_timeout = 3 s" 0 "$n"

# ---- one auth-failure budget per address for both transports: bad OTPs
# over HTTPS up to auth_fail_limit_addr, then a PSK enrollment over CoAP
# from the same address gets 4.29 with Max-Age (the restart above began a
# fresh count) ----
make_csr bad "/CN=nobody" >/dev/null 2>&1
for i in 1 2 3; do
    code=$(enroll_otp bad "nobody-$i:not-an-otp")
    expect_eq "HTTPS: a wrong OTP ($i of 3) gets 401" 401 "$code"
done
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout /dev/null \
    -subj "/CN=sensor-0003" -outform DER -out psk3.csr.der 2>/dev/null
code=$(coap_psk r.txt sensor-0003 "$PSK1_KEY" -m post -t 286 -f psk3.csr.der "$CU/est/sen")
expect_eq "then CoAP from the same address gets 4.29" 4.29 "$code"
check "with Max-Age" grep -q 'c:4.29.*Max-Age:[1-9]' coap.log
