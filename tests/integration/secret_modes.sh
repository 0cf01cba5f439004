# Secret files readable by group or others are refused, at start and on
# SIGHUP, with one message naming the file, its mode and the fix: the CA key,
# otp.key, the TLS key, the serverkeygen KEK file, the archive key file and
# the DTLS PSK file. A malformed PSK line is refused naming its line, not its key.
kp_init --label archiving
cd "$T" || exit 1

# A KEK file and an archive key file, as an operator writes them (mode 0600).
printf 'kek-1 %s\n' 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f \
    >"$SRV/kek.keys"
printf 'archive-1 %s\n' 1f1e1d1c1b1a191817161514131211100f0e0d0c0b0a09080706050403020100 \
    >"$SRV/archive.keys"
# DTLS pre-shared keys (docs/coap.md). kipuka init lets its default label take
# them and no other.
expect_eq "kipuka init: allow_psk = true on [label.default] only" "[label.default]" \
    "$(awk '/^\[/ { sec = $0 } /^allow_psk = true$/ { print sec }' "$CFG")"
PSK_KEY=5ec4e75ec4e75ec4e75ec4e75ec4e75e
printf '# IDENTITY LABEL HEXKEY\nsensor-01 default %s\n' "$PSK_KEY" >"$SRV/coap-psk"
chmod 600 "$SRV/kek.keys" "$SRV/archive.keys" "$SRV/coap-psk"
printf '\n[coap]\npsk_file = "coap-psk"\n' >>"$CFG"
check "enable est.serverkeygen" cfg_add est serverkeygen true
check "serverkeygen_kek_file in [label.default]" \
    cfg_add label.default serverkeygen_kek_file '"kek.keys"'
check "serverkeygen_archive in [label.archiving]" \
    cfg_add label.archiving serverkeygen_archive true
check "serverkeygen_archive_key_file in [label.archiving]" \
    cfg_add label.archiving serverkeygen_archive_key_file '"archive.keys"'

SECRETS="ca/ca.key otp.key tls/server.key kek.keys archive.keys coap-psk"

# Every secret kipuka init and the operator wrote is 0600.
for f in $SECRETS; do
    expect_eq "$f starts with mode 600" 600 "$(stat -c %a "$SRV/$f")"
done

# refused_at_start FILE MODE: serve exits non-zero and says why and how to fix it.
refused_at_start() {
    local f=$1 mode=$2 rc
    chmod "$mode" "$SRV/$f"
    if timeout 10 "$KIPUKA" serve -c "$CFG" >"$T/s.out" 2>"$T/s.err"; then rc=0; else rc=$?; fi
    chmod 600 "$SRV/$f"
    check "mode $mode on $f: serve exits non-zero" test "$rc" -ne 0 -a "$rc" -ne 124
    check "mode $mode on $f: the message names the file, its mode and chmod 600" \
        grep -q "$SRV/$f: mode 0$mode lets group or others read it.*chmod 600 $SRV/$f" "$T/s.err"
    check "mode $mode on $f: serve never said it was listening" \
        bash -c "! grep -q 'listening on' '$T/s.out'"
}
for f in $SECRETS; do
    refused_at_start "$f" 644
done
# Group-readable alone is refused too, and so is other-writable.
refused_at_start ca/ca.key 640
refused_at_start otp.key 602
refused_at_start tls/server.key 660

# A malformed PSK line: serve names the file and the line, never the key.
cp "$SRV/coap-psk" "$T/coap-psk.good"
psk_refused() {
    local what=$1 line=$2 reason=$3 rc
    if timeout 10 "$KIPUKA" serve -c "$CFG" >"$T/s.out" 2>"$T/s.err"; then rc=0; else rc=$?; fi
    check "$what: serve exits non-zero" test "$rc" -ne 0 -a "$rc" -ne 124
    check "$what: the message names the file and line $line" \
        grep -q "$SRV/coap-psk:$line: $reason" "$T/s.err"
    check "$what: the key is not in the message" \
        bash -c "! grep -qi '5ec4e7' '$T/s.err' '$T/s.out'"
    check "$what: serve never said it was listening" \
        bash -c "! grep -q 'listening on' '$T/s.out'"
}
printf 'sensor-02 default %szz\n' "$PSK_KEY" >>"$SRV/coap-psk"
psk_refused "PSK key not hex" 3 "the key is not hex"
cp "$T/coap-psk.good" "$SRV/coap-psk"
printf 'sensor-02 nosuchlabel %s\n' "$PSK_KEY" >>"$SRV/coap-psk"
psk_refused "PSK of an unknown label" 3 "no such label"
cp "$T/coap-psk.good" "$SRV/coap-psk"
printf '\nsensor-01 default %s\n' "$PSK_KEY" >>"$SRV/coap-psk"
psk_refused "PSK identity given twice" 4 "identity already given on line 2"
cp "$T/coap-psk.good" "$SRV/coap-psk"

# With every secret at 0600 (and 0400) the server starts and serves.
chmod 400 "$SRV/otp.key"
kp_start
fetch_chain
check "mode 600/400: the server starts and answers /cacerts" test -s "$T/ca-chain.pem"

# A reload with a loosened secret is refused; the server keeps the previous one.
for f in $SECRETS; do
    chmod 644 "$SRV/$f"
    before=$(grep -c 'reload failed' "$T/server.log")
    kill -HUP "$SERVER_PID"
    for _ in $(seq 1 400); do
        [ "$(grep -c 'reload failed' "$T/server.log")" -gt "$before" ] && break
        sleep 0.025
    done
    chmod 600 "$SRV/$f"
    check "SIGHUP with mode 644 on $f: the reload fails" \
        test "$(grep -c 'reload failed' "$T/server.log")" -gt "$before"
    check "SIGHUP with mode 644 on $f: the log names the file and chmod 600" \
        grep -q "$SRV/$f: mode 0644 lets group or others read it.*chmod 600" "$T/server.log"
    expect_eq "SIGHUP with mode 644 on $f: still serving" 200 \
        "$(req "$BASE/cacerts")"
done

# A reload with a malformed PSK line is refused the same way.
before=$(grep -c 'reload failed' "$T/server.log")
printf 'sensor-03 default %s0\n' "$PSK_KEY" >>"$SRV/coap-psk"
kill -HUP "$SERVER_PID"
for _ in $(seq 1 400); do
    [ "$(grep -c 'reload failed' "$T/server.log")" -gt "$before" ] && break
    sleep 0.025
done
cp "$T/coap-psk.good" "$SRV/coap-psk"
check "SIGHUP with a malformed PSK line: the reload fails naming the line" \
    grep -q "reload failed.*$SRV/coap-psk:3: the key has an odd number of hex digits" "$T/server.log"
check "SIGHUP with a malformed PSK line: the key is not logged" \
    bash -c "! grep -qi '5ec4e7' '$T/server.log'"
expect_eq "SIGHUP with a malformed PSK line: still serving" 200 "$(req "$BASE/cacerts")"
check "SIGHUP with every secret at 0600 reloads" kp_reload
