# Several nodes, one PostgreSQL: two `kipuka serve` processes with the same
# CA and config directory, on two loopback ports, sharing one database. They
# must behave as one server: a single-use OTP gives one certificate over both,
# a certificate issued by one is seen by the other, serials never collide;
# when a node dies its clients carry on with the other; when PostgreSQL
# restarts the nodes answer 503 + Retry-After meanwhile and recover alone.
#
# PostgreSQL only (suite integration-pg). The test runs its own cluster
# (scripts/pg-cluster.sh) because it stops and restarts it.
# KIPUKA_MULTINODE_ENROLLS: enrollments in the serial test (default 10000;
# 2000 under AddressSanitizer, which is several times slower).

[ "$STORE_KIND" = postgresql ] || {
    echo "Bail out! multinode runs with KIPUKA_TEST_STORE=postgresql"; exit 1; }
PG_CLUSTER=${KP_SOURCE_ROOT:?}/scripts/pg-cluster.sh
PGDIR=$(mktemp -d /tmp/kipuka-pg.XXXXXX) # not in $T: the cluster's user must enter it
PID_A=
PID_B=
multinode_cleanup() {
    local p
    for p in $PID_A $PID_B; do kill -KILL "$p" 2>/dev/null; done
    cd / || true
    cleanup
    "$PG_CLUSTER" stop "$PGDIR"
}
trap multinode_cleanup EXIT
KIPUKA_TEST_PG_URL=$("$PG_CLUSTER" start "$PGDIR") || {
    echo "Bail out! cannot start a PostgreSQL cluster"; exit 1; }
PG_URL=${KIPUKA_TEST_PG_URL%/*}/$PG_DB # read by lib.sh (kp_init, db)

kp_init
# Not a test of which names an OTP may certify (otp_identity.sh is): its CSRs
# carry names other than their OTP's entity id.
check "otp_subject = \"any\" in [label.default]" cfg_set label.default otp_subject '"any"'
# Many failures from one address and entity are the point here, not abuse.
sed -i 's/^\[server\]$/[server]\nauth_fail_limit = 0\nauth_fail_limit_addr = 0/' "$CFG"
CFG_A=$CFG
CFG_B=$SRV/kipuka-b.toml
cp "$CFG_A" "$CFG_B" # the same file but for the port (0: each node picks its own)

# node_spawn A|B: start node A or B (sets PID_x); node_wait A|B: wait for its
# readiness line (sets PORT_x and URL_x); node_start: both
node_spawn() {
    local cfg
    [ "$1" = A ] && cfg=$CFG_A || cfg=$CFG_B
    : >"$T/node$1.out"
    "$KIPUKA" serve -c "$cfg" >"$T/node$1.out" 2>>"$T/node$1.log" &
    eval "PID_$1=$!"
}
node_wait() {
    local n=$1 pid port=
    eval "pid=\$PID_$n"
    for _ in $(seq 1 400); do
        port=$(sed -n 's|.*listening on https://[^:]*:\([0-9]*\)/.*|\1|p' "$T/node$n.out")
        [ -n "$port" ] && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.025
    done
    [ -n "$port" ] || { cat "$T/node$n.log" >&2; echo "Bail out! node $n did not start"; exit 1; }
    eval "PORT_$n=$port URL_$n=https://localhost:$port/.well-known/est"
}
node_start() { node_spawn "$1" && node_wait "$1"; }

# Both at once: of two nodes migrating one fresh database, one waits.
node_spawn A
node_spawn B
node_wait A
node_wait B
# (every migration 1..max once, whatever the number of migrations)
expect_eq "two nodes started together on one fresh database: each migration applied once" t \
    "$(db "select count(*) = count(distinct version) and count(*) = max(version) and count(*) >= 4 from schema_migrations")"
check "the two nodes listen on different ports ($PORT_A, $PORT_B)" test "$PORT_A" != "$PORT_B"
BASE=$URL_A # for lib.sh's fetch_chain
fetch_chain || { echo "Bail out! cannot fetch /cacerts"; exit 1; }
cd "$T" || exit 1
make_csr mn "/CN=multinode.example.com" ec:P-256

# post URL USER:OTP OUT: one enrollment; prints the status
post() {
    curl -s -o "$3" -w '%{http_code}\n' -X POST --max-time 10 --cacert ca-chain.pem -u "$2" \
        -H "Content-Type: application/pkcs10" --data-binary @mn.csr.b64 "$1/simpleenroll"
}

# --- one single-use OTP, 100 clients over both nodes: exactly one certificate ---
otp=$(new_otp race1)
before=$(cert_count)
mkdir -p race
rpids=()
for i in $(seq 1 100); do
    [ $((i % 2)) = 0 ] && u=$URL_A || u=$URL_B
    post "$u" "race1:$otp" "race/$i.p7b" >"race/$i.code" &
    rpids+=($!)
done
wait "${rpids[@]}" # not a bare wait: the nodes are children too
codes=$(cat race/*.code | sort | uniq -c | awk '{ printf "%s:%s ", $2, $1 }')
expect_eq "100 concurrent enrollments on two nodes with one OTP: one 200 ($codes)" 1 \
    "$(cat race/*.code | grep -c '^200$')"
expect_eq "... and 99 answers 401" 99 "$(cat race/*.code | grep -c '^401$')"
expect_eq "... and exactly one certificate row" $((before + 1)) "$(cert_count)"
expect_eq "the OTP shows one use taken, none left" "1|0" \
    "$(db "select uses_total, uses_left from otps where entity_id = 'race1'")"

echo "# ${SECONDS}s"
# --- what one node issues, the other knows ---
otp=$(new_otp seen-by-b)
expect_eq "node A enrolls" 200 "$(post "$URL_A" "seen-by-b:$otp" a.p7b)"
p7_to_pem a.p7b a.crt
serial_a=$(cert_serial a.crt)
check "kipuka cert list with node B's config lists the certificate node A issued" \
    sh -c "'$KIPUKA' cert list -c '$CFG_B' 2>/dev/null | grep -q '^$serial_a '"
expect_eq "node B refuses the OTP node A consumed" 401 "$(post "$URL_B" "seen-by-b:$otp" b.p7b)"

echo "# ${SECONDS}s"
# --- many enrollments over both nodes: distinct serials, all stored ---
# load NAME COUNT URL...: COUNT enrollments with one multi-use OTP, spread
# over the URLs (one curl per node, 16 transfers at a time each); bodies in
# NAME/, one status per line in NAME.codes; prints the seconds it took
load() {
    local name=$1 count=$2 n t0 pids=() i=0 u otp
    shift 2
    n=$(($# > 0 ? count / $# : 0))
    otp=$(new_otp "$name" --uses "$count" --ttl 1h)
    mkdir -p "$name"
    t0=$(date +%s.%N)
    for u in "$@"; do
        i=$((i + 1))
        curl -s --no-progress-meter --parallel --parallel-max 16 -X POST --cacert ca-chain.pem -u "$name:$otp" \
            -H "Content-Type: application/pkcs10" --data-binary @mn.csr.b64 \
            -w '%{http_code}\n' -o "$name/$i-#1.p7b" "$u/simpleenroll?n=[1-$n]" \
            >"$name.$i.codes" 2>&1 &
        pids+=($!)
    done
    wait "${pids[@]}"
    awk -v a="$(date +%s.%N)" -v b="$t0" 'BEGIN { printf "%.1f", a - b }'
}
rate() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%d", n / s }'; }

if [ -n "${KIPUKA_MULTINODE_ENROLLS:-}" ]; then
    total=$KIPUKA_MULTINODE_ENROLLS
elif ldd "$KIPUKA" 2>/dev/null | grep -q libasan; then
    total=2000
else
    total=10000
fi
total=$((total / 2 * 2))
# throughput first on one node, then on two (both on this machine's cores)
one=$(load one $((total / 2)) "$URL_A")
two=$(load two "$total" "$URL_A" "$URL_B")
echo "# enrollments/s: one node $(rate $((total / 2)) "$one") ($((total / 2)) in ${one}s)," \
    "two nodes $(rate "$total" "$two") ($total in ${two}s), store PostgreSQL"
expect_eq "$total enrollments over two nodes: all answer 200" "$total" \
    "$(cat two.*.codes | grep -c '^200$')"
expect_eq "each node served half of them" "$((total / 2))|$((total / 2))" \
    "$(grep -c '^200$' two.1.codes)|$(grep -c '^200$' two.2.codes)"
expect_eq "the clients received $total responses, all different" "$total|$total" \
    "$(find two -name '*.p7b' -size +0 | wc -l)|$(sha256sum two/*.p7b | cut -c1-64 | sort -u | wc -l)"
expect_eq "the database holds $total certificates for them, $total distinct serials" \
    "$total|$total" \
    "$(db "select count(*), count(distinct serial) from certificates where requester = 'two'")"
# Reading every serial back costs four processes per file: check a sample.
find two -name '*.p7b' | sort | awk 'NR % 50 == 1' >two.sample
while read -r f; do p7_to_pem "$f" "$f.crt" && cert_serial "$f.crt"; done <two.sample |
    sort >two.serials
db "select serial from certificates where requester = 'two'" | sort >two.db
expect_eq "every sampled certificate a client received is in the database" \
    "$(wc -l <two.sample)|" "$(wc -l <two.serials)|$(comm -23 two.serials two.db | head -3)"

echo "# ${SECONDS}s"
# --- failover: node A is killed during a steady load; clients retry on B ---
CLIENTS=6
PER_CLIENT=30
otp=$(new_otp failover --uses 100000 --ttl 1h)
# client N: PER_CLIENT enrollments, each first on its node (A for odd N),
# then on the other, until one answers 200; records who answered
client() {
    local n=$1 i=0 tries code first second
    if [ $((n % 2)) = 1 ]; then first=$URL_A second=$URL_B; else first=$URL_B second=$URL_A; fi
    mkdir -p "fo/$n"
    while [ $i -lt $PER_CLIENT ]; do
        for _ in 1 2 3 4 5 6; do
            code=$(post "$first" "failover:$otp" "fo/$n/$i.p7b")
            [ "$code" = 200 ] && { echo "$first" >>"fo/$n.via"; break; }
            code=$(post "$second" "failover:$otp" "fo/$n/$i.p7b")
            [ "$code" = 200 ] && { echo "$second" >>"fo/$n.via"; break; }
            sleep 0.2
        done
        [ "$code" = 200 ] || { rm -f "fo/$n/$i.p7b"; echo "client $n: gave up ($code)" >>fo/errors; }
        i=$((i + 1))
    done
}
mkdir -p fo
cpids=()
for n in $(seq 1 $CLIENTS); do
    client "$n" &
    cpids+=($!)
done
for _ in $(seq 1 400); do # until a first batch is through (no fixed sleep)
    [ "$(cat fo/*.via 2>/dev/null | wc -l)" -ge 40 ] && break
    sleep 0.05
done
{ kill -KILL "$PID_A" && wait "$PID_A"; } 2>/dev/null
PID_A=
wait "${cpids[@]}"
expect_eq "failover: every client enrollment succeeded, on A or B" \
    "$((CLIENTS * PER_CLIENT))|" "$(cat fo/*.via | wc -l)|$(cat fo/errors 2>/dev/null)"
check "failover: node A answered before it was killed" grep -q "$PORT_A" fo/*.via
check "failover: node B answered after it" grep -q "$PORT_B" fo/*.via
for f in fo/*/*.p7b; do
    p7_to_pem "$f" "$f.crt" 2>/dev/null && cert_serial "$f.crt"
done | sort >fo.serials
db "select serial from certificates where requester = 'failover'" | sort >fo.db
expect_eq "failover: every certificate a client received is in the database" \
    "$((CLIENTS * PER_CLIENT))|" "$(wc -l <fo.serials)|$(comm -23 fo.serials fo.db | head -3)"
node_start A

echo "# ${SECONDS}s"
# --- PostgreSQL restarts during a load on both nodes ---
otp=$(new_otp pgrestart --uses 100000 --ttl 1h)
# pgload N: enroll on alternate nodes until the file stop appears; each
# answer as "status retry-after" in pg/N.codes
pgload() {
    local n=$1 i=0 u code
    while [ ! -e pg.stop ]; do
        [ $(((n + i) % 2)) = 0 ] && u=$URL_A || u=$URL_B
        code=$(curl -s -o /dev/null -D "pg/$n.h" -w '%{http_code}' -X POST --max-time 10 \
            --cacert ca-chain.pem -u "pgrestart:$otp" -H "Content-Type: application/pkcs10" \
            --data-binary @mn.csr.b64 "$u/simpleenroll")
        echo "$code $(tr -d '\r' <"pg/$n.h" | sed -n 's/^retry-after: *//Ip')" >>"pg/$n.codes"
        i=$((i + 1))
    done
}
mkdir -p pg
rm -f pg.stop
lpids=()
for n in 1 2 3 4; do
    pgload "$n" &
    lpids+=($!)
done
sleep 1
"$PG_CLUSTER" halt "$PGDIR"
sleep 2
"$PG_CLUSTER" resume "$PGDIR"
# the nodes must come back by themselves: poll each until it enrolls again
for u in "$URL_A" "$URL_B"; do
    code=
    for _ in $(seq 1 100); do
        code=$(post "$u" "pgrestart:$otp" /dev/null)
        [ "$code" = 200 ] && break
        sleep 0.1
    done
    expect_eq "after PostgreSQL restarted, ${u%/.well-known/est} enrolls again (no node restart)" \
        200 "$code"
done
sleep 1
touch pg.stop
wait "${lpids[@]}"
codes=$(cat pg/*.codes | cut -d' ' -f1 | sort | uniq -c | awk '{ printf "%s:%s ", $2, $1 }')
check "while PostgreSQL was down the nodes answered 503 ($codes)" \
    grep -q '^503 [0-9]' pg/1.codes pg/2.codes pg/3.codes pg/4.codes
expect_eq "every 503 carried Retry-After" 0 "$(cat pg/*.codes | grep -c '^503 *$')"
expect_eq "no answer other than 200 and 503 ($codes)" 0 \
    "$(cat pg/*.codes | grep -vc '^200 \|^503 ')"
check "node A still runs" kill -0 "$PID_A"
check "node B still runs" kill -0 "$PID_B"
expect_eq "nothing half-written: OTP uses taken = certificates issued with it" \
    "$(db "select count(*) from certificates where requester = 'pgrestart'")" \
    "$(db "select uses_total - uses_left from otps where entity_id = 'pgrestart'")"
expect_eq "nothing half-written: one ok audit row per certificate" "$(cert_count)" \
    "$(db "select count(*) from audit where outcome = 'ok' and event like 'simple%enroll'")"

echo "# ${SECONDS}s"
for n in A B; do
    eval "pid=\$PID_$n"
    kill -TERM "$pid"
    wait "$pid"
    rc=$?
    eval "PID_$n="
    expect_eq "node $n exits cleanly on SIGTERM" 0 "$rc"
done
