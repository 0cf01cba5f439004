# Faults: a missing CA key, a corrupt or read-only database stop the server
# at start with a clear message; a full disk at run time gives 503 with
# Retry-After, writes nothing partial, and heals without a restart.
kp_init
# Not a test of which names an OTP may certify (otp_identity.sh is): its CSRs
# carry names other than their OTP's entity id.
check "otp_subject = \"any\" in [label.default]" cfg_set label.default otp_subject '"any"'

# --- at start ---
mv "$SRV/ca/ca.key" "$T/ca.key.saved"
if "$KIPUKA" serve -c "$CFG" >"$T/s.out" 2>"$T/s.err"; then rc=0; else rc=$?; fi
check "serve exits non-zero when the CA key is missing" test "$rc" -ne 0
check "and says which file" grep -q "ca/ca.key" "$T/s.err"
mv "$T/ca.key.saved" "$SRV/ca/ca.key"

cp "$SRV/tls/server.pem" "$T/server.pem.saved"
: >"$SRV/tls/server.pem"
if "$KIPUKA" serve -c "$CFG" >"$T/s.out" 2>"$T/s.err"; then rc=0; else rc=$?; fi
expect_eq "serve exits 1 (no crash) when the TLS certificate is empty" 1 "$rc"
check "and names the file" grep -q "tls/server.pem" "$T/s.err"
cp "$T/server.pem.saved" "$SRV/tls/server.pem"

cp "$DB" "$T/db.saved"
head -c 8192 /dev/urandom >"$DB"
rm -f "$DB-wal" "$DB-shm"
if "$KIPUKA" serve -c "$CFG" >"$T/s.out" 2>"$T/s.err"; then rc=0; else rc=$?; fi
check "serve exits non-zero on a corrupt database" test "$rc" -ne 0
check "and names the store" grep -q "store" "$T/s.err"
cp "$T/db.saved" "$DB"

# --- at run time: the database on a 512 KiB tmpfs ---
MNT=$T/mnt
mkdir -p "$MNT"
if ! mount -t tmpfs -o size=512k tmpfs "$MNT" 2>"$T/mount.err"; then
    not_ok "mount a small tmpfs for the disk-full test (needs root): $(cat "$T/mount.err")"
    return 0 2>/dev/null || exit 1
fi
trap 'umount "$MNT" 2>/dev/null; cleanup' EXIT
cp "$DB" "$MNT/kipuka.db"
DB=$MNT/kipuka.db
sed -i "s|^url = .*|url = \"sqlite:$DB\"|" "$CFG"
kp_start
fetch_chain
make_csr full "/CN=full.example.com" ec:P-256
otp=$(new_otp filler --uses 100000)

ok200=0 code=200
for _ in $(seq 1 2000); do
    code=$(curl -s -o /dev/null -D "$T/h" -w '%{http_code}' -X POST --cacert "$T/ca-chain.pem" \
        -u "filler:$otp" -H "Content-Type: application/pkcs10" --data-binary @"$T/full.csr.b64" \
        "$BASE/simpleenroll")
    [ "$code" = 200 ] || break
    ok200=$((ok200 + 1))
done
expect_eq "a full disk answers 503" 503 "$code"
check "the 503 carries Retry-After" grep -qi '^retry-after: [0-9]' "$T/h"
check "the server logs the full disk" grep -qi "full" "$T/server.log"
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$T/ca-chain.pem" "$BASE/cacerts")
expect_eq "/cacerts still answers 200 with the disk full" 200 "$code"

mount -o remount,size=4m "$MNT"
code=$(enroll_otp full "filler:$otp")
expect_eq "once space is back, enrollment answers 200 without a restart" 200 "$code"
ok200=$((ok200 + 1))
expect_eq "exactly the certificates clients received are stored" "$ok200" \
    "$(db 'select count(*) from certificates')"
expect_eq "the database passes integrity_check" ok "$(db 'pragma integrity_check')"

kp_stop

# --- a read-only database at start (a read-only mount cannot happen under an
# open writer, so this is where it shows up) ---
mount -o remount,ro "$MNT"
if "$KIPUKA" serve -c "$CFG" >"$T/s.out" 2>"$T/s.err"; then rc=0; else rc=$?; fi
check "serve exits non-zero on a read-only database" test "$rc" -ne 0
check "and names the store" grep -q "store" "$T/s.err"
mount -o remount,rw "$MNT"
kp_start
code=$(enroll_otp full "filler:$otp")
expect_eq "writable again: enrollment answers 200" 200 "$code"
kp_stop
umount "$MNT"
