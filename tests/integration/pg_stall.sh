# The event loops never wait on the database: while PostgreSQL holds every
# enrollment (a lock on the certificates table), GET /cacerts still answers at
# once, and the held enrollments complete when the lock goes. PostgreSQL only.
[ "$STORE_KIND" = postgresql ] || {
    echo "Bail out! pg_stall runs with KIPUKA_TEST_STORE=postgresql"; exit 1; }
kp_init
# Not a test of which names an OTP may certify (otp_identity.sh is): its CSRs
# carry names other than their OTP's entity id.
check "otp_subject = \"any\" in [label.default]" cfg_set label.default otp_subject '"any"'
sed -i 's/^\[server\]$/[server]\nthreads = 1/' "$CFG" # one loop: any stall would show
kp_start
fetch_chain || { echo "Bail out! cannot fetch /cacerts"; exit 1; }
cd "$T" || exit 1

otp=$("$KIPUKA" otp create -c "$CFG" --entity staller --uses 100 2>/dev/null)
for i in $(seq 1 12); do make_csr "s$i" "/CN=stall-$i.example.com" ec:P-256; done

# A session that holds an exclusive lock on certificates until this test
# commits it (a FIFO feeds psql), so a slow machine cannot end it early.
mkfifo lock.fifo
psql "$PG_URL" -X -q -v ON_ERROR_STOP=1 <lock.fifo >lock.out 2>&1 &
locker=$!
exec 7>lock.fifo
echo "BEGIN; LOCK TABLE certificates IN ACCESS EXCLUSIVE MODE;" >&7
for _ in $(seq 1 100); do # until the lock is held
    [ "$(db "select count(*) from pg_locks l join pg_class c on c.oid = l.relation where c.relname = 'certificates' and l.mode = 'AccessExclusiveLock' and l.granted")" = 1 ] && break
    sleep 0.05
done
check "a session holds an exclusive lock on certificates" \
    test "$(db "select count(*) from pg_locks l join pg_class c on c.oid = l.relation where c.relname = 'certificates' and l.mode = 'AccessExclusiveLock' and l.granted")" = 1
start=$(date +%s.%N)
enrollers=
for i in $(seq 1 12); do
    curl -s -o "s$i.p7b" -w '%{http_code}\n' -X POST --cacert ca-chain.pem -u "staller:$otp" \
        -H "Content-Type: application/pkcs10" --data-binary @"s$i.csr.b64" \
        "$BASE/simpleenroll" >"s$i.code" &
    enrollers="$enrollers $!"
done
sleep 1
slowest=0
for _ in $(seq 1 20); do
    t=$(curl -s -o /dev/null -w '%{time_total}' --cacert ca-chain.pem "$BASE/cacerts")
    slowest=$(awk -v a="$slowest" -v b="$t" 'BEGIN { print (b > a) ? b : a }')
done
check "meanwhile 20 GET /cacerts each answer within 0.5 s (slowest ${slowest}s)" \
    awk -v s="$slowest" 'BEGIN { exit !(s < 0.5) }'
check "the enrollments are still waiting" sh -c "! grep -q . s*.code"
sleep 2 # held for at least 4 s in all, however fast the checks above ran
echo "COMMIT;" >&7
exec 7>&-
wait "$locker"
# shellcheck disable=SC2086
wait $enrollers # not a bare wait: the server runs in the background too
end=$(date +%s.%N)
expect_eq "once the lock goes, all 12 enrollments answer 200" 12 "$(cat s*.code | grep -c '^200$')"
check "they waited for it (${start} -> ${end})" awk -v a="$start" -v b="$end" 'BEGIN { exit !(b - a >= 4) }'
expect_eq "12 certificates stored" 12 "$(cert_count)"
