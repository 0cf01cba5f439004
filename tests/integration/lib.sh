# Helpers for integration tests: a throwaway deployment, the real kipuka
# binary on a free loopback port, and TAP assertions.
# Environment: KIPUKA (binary path), set by meson. KIPUKA_TEST_STORE=postgresql
# runs the test on a PostgreSQL database of its own, created on the server
# at KIPUKA_TEST_PG_URL (scripts/test.sh starts one) and dropped at exit;
# otherwise (sqlite, the default) on the SQLite file $DB.

KIPUKA=${KIPUKA:?KIPUKA must point to the kipuka binary}
T=$(mktemp -d /tmp/kipuka-it.XXXXXX)
SRV=$T/srv
CFG=$SRV/kipuka.toml
DB=$SRV/kipuka.db
PORT=
BASE=
SERVER_PID=
_n=0
_failed=0

STORE_KIND=${KIPUKA_TEST_STORE:-sqlite}
PG_DB=
PG_URL=
if [ "$STORE_KIND" = postgresql ]; then
    if [ -z "${KIPUKA_TEST_PG_URL:-}" ]; then
        rm -rf "$T"
        echo "1..0 # SKIP KIPUKA_TEST_PG_URL is not set: this PostgreSQL run needs a server" \
            "(scripts/test.sh starts one; or scripts/pg-cluster.sh start DIR)"
        exit 0
    fi
    # One database per test run: the test's name and our pid.
    PG_DB=kp_it_$(printf '%s' "${1:-test}" | tr 'A-Z' 'a-z' | tr -c 'a-z0-9_' _)_$$
    PG_URL=${KIPUKA_TEST_PG_URL%/*}/$PG_DB
fi

# pg_admin SQL: run SQL on the test server's own database.
pg_admin() {
    [ -n "${KIPUKA_TEST_PG_URL:-}" ] &&
        PGOPTIONS="-c client_min_messages=warning" \
            psql "$KIPUKA_TEST_PG_URL" -X -q -v ON_ERROR_STOP=1 -c "$1" >/dev/null
}

cleanup() {
    [ -n "$SERVER_PID" ] && kill -KILL "$SERVER_PID" 2>/dev/null
    [ -n "$PG_DB" ] && pg_admin "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)"
    rm -rf "$T"
}
trap cleanup EXIT

ok() { _n=$((_n + 1)); echo "ok $_n - $*"; }
not_ok() {
    _n=$((_n + 1)); _failed=$((_failed + 1)); echo "not ok $_n - $*"
}
# check DESC CMD...: passes when CMD exits 0.
check() {
    local desc=$1; shift
    if "$@" >"$T/check.out" 2>&1; then ok "$desc"; else
        not_ok "$desc"; sed 's/^/#   /' "$T/check.out" | head -20
    fi
}
# expect_eq DESC WANT GOT
expect_eq() {
    if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1"; echo "#   want: $2"; echo "#   got:  $3"; fi
}
# finish: stop the server, print the plan line; KP_KEEP=DIR keeps a copy of
# the scratch directory there for a look after the run.
finish() {
    [ -n "${KP_KEEP:-}" ] && cp -r "$T" "$KP_KEEP"
    [ -n "$SERVER_PID" ] && kp_stop
    echo "1..$_n"
    [ "$_failed" = 0 ]
}

# kp_init [init args...]: a fresh deployment in $SRV, on a free port; with
# PostgreSQL, on a fresh database (the SQLite file init made stays unused).
kp_init() {
    "$KIPUKA" init --dir "$SRV" --port 0 "$@" 2>"$T/init.log" || {
        cat "$T/init.log" >&2; echo "Bail out! kipuka init failed"; exit 1; }
    [ "$STORE_KIND" = postgresql ] || return 0
    pg_admin "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" &&
        pg_admin "CREATE DATABASE $PG_DB" &&
        cfg_set store url "\"$PG_URL\"" || {
        echo "Bail out! cannot create PostgreSQL database $PG_DB"; exit 1; }
}

# kp_start: run the server and wait for its readiness line (no fixed sleep).
kp_start() {
    : >"$T/server.out"
    "$KIPUKA" serve -c "$CFG" >"$T/server.out" 2>"$T/server.log" &
    SERVER_PID=$!
    for _ in $(seq 1 400); do
        if grep -q "listening on" "$T/server.out" 2>/dev/null; then break; fi
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then break; fi
        sleep 0.025
    done
    PORT=$(sed -n 's|.*listening on https://[^:]*:\([0-9]*\)/.*|\1|p' "$T/server.out" | head -1)
    if [ -z "$PORT" ]; then
        cat "$T/server.log" >&2
        echo "Bail out! kipuka serve did not start"; exit 1
    fi
    BASE=https://localhost:$PORT/.well-known/est
}

# kp_stop: SIGTERM and expect a clean exit (under ASan, leaks make it non-zero).
kp_stop() {
    local rc
    kill -TERM "$SERVER_PID"
    wait "$SERVER_PID"; rc=$?
    SERVER_PID=
    if [ "$rc" = 0 ]; then ok "server exits cleanly on SIGTERM"; else
        not_ok "server exits cleanly on SIGTERM (status $rc)"; tail -30 "$T/server.log" | sed 's/^/#   /'
    fi
}

# new_otp ENTITY [otp create args...]: prints a fresh OTP.
new_otp() {
    local e=$1; shift
    "$KIPUKA" otp create -c "$CFG" --entity "$e" "$@" 2>/dev/null
}

# make_csr NAME SUBJ [ec:P-256|ec:P-384|rsa:N] [extra openssl req args...]
# writes $T/NAME.key, $T/NAME.csr (PEM) and $T/NAME.csr.b64 (base64 DER)
make_csr() {
    local name=$1 subj=$2 kt=${3:-ec:P-256}; shift 3 2>/dev/null || shift $#
    local newkey
    case $kt in
    ec:*) newkey="-newkey ec -pkeyopt ec_paramgen_curve:${kt#ec:}" ;;
    rsa:*) newkey="-newkey rsa:${kt#rsa:}" ;;
    esac
    # shellcheck disable=SC2086
    openssl req -new $newkey -keyout "$T/$name.key" -out "$T/$name.csr" -nodes \
        -subj "$subj" "$@" 2>/dev/null || return 1
    openssl req -in "$T/$name.csr" -outform DER | base64 >"$T/$name.csr.b64"
}

# fetch_chain: /cacerts -> $T/ca-chain.pem (as the spec's first example does)
fetch_chain() {
    curl -sf --cacert "$SRV/ca/ca.pem" -o "$T/cacerts.p7b" "$BASE/cacerts" &&
        base64 -d "$T/cacerts.p7b" | openssl pkcs7 -inform DER -print_certs -out "$T/ca-chain.pem"
}

# enroll_otp NAME USER:OTP [label/]: POST NAME's CSR; prints the HTTP status;
# the body lands in $T/NAME.p7b
enroll_otp() {
    curl -s -o "$T/$1.p7b" -w '%{http_code}' -X POST --cacert "$T/ca-chain.pem" -u "$2" \
        -H "Content-Type: application/pkcs10" --data-binary @"$T/$1.csr.b64" \
        "$BASE/${3:-}simpleenroll"
}

# p7_to_pem FILE.p7b OUT.pem: decode a certs-only response
p7_to_pem() { base64 -d "$1" | openssl pkcs7 -inform DER -print_certs -out "$2"; }

# db QUERY: run SQL on the server's database (SQLite file or PostgreSQL),
# printing rows as sqlite3 does: columns joined by |, NULL as empty.
db() {
    if [ "$STORE_KIND" = postgresql ]; then
        psql "$PG_URL" -X -A -t -q -v ON_ERROR_STOP=1 -c "$1"
    else
        sqlite3 "$DB" "$1"
    fi
}

# db_raw: everything the database holds, as bytes (the SQLite files with
# their WAL, or a dump of the PostgreSQL database), to grep for secrets.
db_raw() {
    if [ "$STORE_KIND" = postgresql ]; then pg_dump "$PG_URL"; else cat "$DB"*; fi
}

# ---- helpers added for the enrollment, CLI and transport tests ----

# cert_count: rows in the certificates table
cert_count() { db "select count(*) from certificates"; }
# audit_count [WHERE]: rows in the audit table
audit_count() { db "select count(*) from audit${1:+ where $1}"; }

# expect_no_new_cert DESC BEFORE: the certificates table still holds BEFORE rows
expect_no_new_cert() { expect_eq "$1: no certificate row written" "$2" "$(cert_count)"; }

# req [curl args...]: one HTTPS request trusting $T/ca-chain.pem; prints the
# status; body in $T/resp.body, headers in $T/resp.h
req() {
    rm -f "$T/resp.body" "$T/resp.h"
    curl -s -o "$T/resp.body" -D "$T/resp.h" -w '%{http_code}' --cacert "$T/ca-chain.pem" "$@"
}

# post_csr FILE URL [curl args...]: POST FILE as application/pkcs10; prints the status
post_csr() {
    local f=$1 url=$2; shift 2
    req -X POST -H "Content-Type: application/pkcs10" --data-binary @"$f" "$@" "$url"
}

# header NAME: value of response header NAME in $T/resp.h (last one, CR stripped)
header() {
    tr -d '\r' <"$T/resp.h" | sed -n "s/^$1: *//Ip" | tail -1
}

# cfg_set SECTION KEY VALUE: set KEY in [SECTION] of $CFG (VALUE in file
# syntax, quoted strings with their quotes); fails if the key is not there.
cfg_set() {
    awk -v sec="[$1]" -v key="$2" -v val="$3" '
        /^\[/ { insec = ($0 == sec) }
        insec && $1 == key && $2 == "=" { $0 = key " = " val; done = 1 }
        { print }
        END { exit !done }' "$CFG" >"$CFG.new" || { rm -f "$CFG.new"; return 1; }
    cat "$CFG.new" >"$CFG" && rm -f "$CFG.new"
}

# kp_restart: stop (asserting a clean exit) and start again with the current $CFG
kp_restart() { kp_stop; kp_start; }

# kp_reload: SIGHUP the server and wait (polling its log) until it reports
# the reload; fails if it reported a failed reload or never answered.
kp_reload() {
    local before after=0
    before=$(grep -c 'reload' "$T/server.log")
    kill -HUP "$SERVER_PID" || return 1
    for _ in $(seq 1 400); do
        after=$(grep -c 'reload' "$T/server.log")
        [ "$after" -gt "$before" ] && break
        kill -0 "$SERVER_PID" 2>/dev/null || return 1
        sleep 0.025
    done
    [ "$after" -gt "$before" ] || return 1
    ! tail -n +"$((before + 1))" <(grep 'reload' "$T/server.log") | grep -q 'reload failed\|reload refused'
}

# otp_id_create ENTITY [otp create args...]: like new_otp, but sets OTP and
# OTP_ID (from the "otp id=N" detail line on stderr)
otp_id_create() {
    local e=$1; shift
    OTP=$("$KIPUKA" otp create -c "$CFG" --entity "$e" "$@" 2>"$T/otp.err") || return 1
    OTP_ID=$(sed -n 's/.*otp id=\([0-9]*\).*/\1/p' "$T/otp.err" | head -1)
    [ -n "$OTP" ] && [ -n "$OTP_ID" ]
}

# otp_state ID: the STATE column of `kipuka otp list` for that id
otp_state() {
    "$KIPUKA" otp list -c "$CFG" 2>/dev/null | awk -v id="$1" '$1 == id { print $NF }'
}

# enroll_ok NAME SUBJ USER [label/] [make_csr key type]: CSR + OTP + enroll;
# leaves $T/NAME.key and $T/NAME.crt; fails unless the server answered 200
enroll_ok() {
    local name=$1 subj=$2 user=$3 label=${4:-} kt=${5:-ec:P-256} otp code
    make_csr "$name" "$subj" "$kt" || return 1
    otp=$(new_otp "$user" ${label:+--label "${label%/}"}) || return 1
    code=$(enroll_otp "$name" "$user:$otp" "$label")
    [ "$code" = 200 ] || { echo "enroll $name: HTTP $code" >&2; return 1; }
    p7_to_pem "$T/$name.p7b" "$T/$name.crt"
}

# cert_time FILE.crt start|end: notBefore or notAfter in seconds since the epoch
cert_time() { date -d "$(openssl x509 -in "$1" -noout -"$2"date | cut -d= -f2)" +%s; }

# cert_validity FILE.crt: validity period in seconds, both ends included
# (RFC 5280 4.1.2.5), the measure the CA/B BR maximum applies to
cert_validity() { echo $(($(cert_time "$1" end) - $(cert_time "$1" start) + 1)); }

# cert_serial FILE.crt: serial in lowercase hex, as the store keeps it
cert_serial() {
    openssl x509 -in "$1" -noout -serial | cut -d= -f2 | tr 'A-F' 'a-f'
}

# make_csr_cp NAME CN CHALLENGE [ec:P-256|rsa:N]: like make_csr, with
# subject CN=CN and the challengePassword attribute set to CHALLENGE
make_csr_cp() {
    local name=$1 cn=$2 cp=$3 kt=${4:-ec:P-256} newkey
    case $kt in
    ec:*) newkey="-newkey ec -pkeyopt ec_paramgen_curve:${kt#ec:}" ;;
    rsa:*) newkey="-newkey rsa:${kt#rsa:}" ;;
    esac
    printf '[req]\ndistinguished_name = dn\nattributes = attrs\nprompt = no\n[dn]\nCN = %s\n[attrs]\nchallengePassword = %s\n' \
        "$cn" "$cp" >"$T/$name.cnf"
    # shellcheck disable=SC2086
    openssl req -new $newkey -keyout "$T/$name.key" -out "$T/$name.csr" -nodes \
        -config "$T/$name.cnf" 2>/dev/null || return 1
    openssl req -in "$T/$name.csr" -outform DER | base64 >"$T/$name.csr.b64"
}

# br_max_days: the CA/B Forum BR 6.3.2 (ballot SC-081) maximum validity in
# days for a certificate issued now
br_max_days() {
    local now
    now=$(date +%s)
    if [ "$now" -lt 1773532800 ]; then echo 398     # before 2026-03-15
    elif [ "$now" -lt 1805068800 ]; then echo 200   # before 2027-03-15
    elif [ "$now" -lt 1868227200 ]; then echo 100   # before 2029-03-15
    else echo 47; fi
}

# cfg_add SECTION KEY VALUE: add a key that is not in $CFG yet, right after
# the [SECTION] header (VALUE in file syntax); fails without that section.
cfg_add() {
    awk -v sec="[$1]" -v line="$2 = $3" '
        { print }
        $0 == sec { print line; done = 1 }
        END { exit !done }' "$CFG" >"$CFG.new" || { rm -f "$CFG.new"; return 1; }
    cat "$CFG.new" >"$CFG" && rm -f "$CFG.new"
}

# mime_parts FILE BOUNDARY PREFIX: split a multipart/mixed body into
# PREFIX.N.h (the part's headers) and PREFIX.N.b64 (its body), N from 1.
mime_parts() {
    rm -f "$3".*.h "$3".*.b64
    tr -d '\r' <"$1" | awk -v b="--$2" -v out="$3" '
        $0 == b "--" { n = 0; next }
        $0 == b { k++; n = k; inh = 1; next }
        n && inh && $0 == "" { inh = 0; next }
        n && inh { print > (out "." n ".h"); next }
        n { print > (out "." n ".b64") }'
}

# part_header PREFIX.N.h NAME: a header's value in one part
part_header() { sed -n "s/^$2: *//Ip" "$1" | tail -1; }

# same_pubkey KEY.pem CERT.pem: the certificate carries the key's public half
same_pubkey() {
    [ "$(openssl pkey -in "$1" -pubout 2>/dev/null)" = "$(openssl x509 -in "$2" -noout -pubkey 2>/dev/null)" ] &&
        [ -n "$(openssl pkey -in "$1" -pubout 2>/dev/null)" ]
}

# cb_open 1.2|1.3: open a TLS connection with openssl s_client driven through a
# fifo, wait (polling) until the handshake is done, and set CB to the base64 of
# that connection's binding: tls-unique (the client Finished, RFC 5929) on
# TLS 1.2, the 32-byte EXPORTER-Channel-Binding (RFC 9266) on TLS 1.3.
cb_open() {
    local ver=$1 hex
    rm -f cb.in cb.out cb.err
    mkfifo cb.in
    openssl s_client -connect "127.0.0.1:$PORT" -servername localhost -CAfile ca-chain.pem \
        -verify_return_error -nocommands -ign_eof -msg -tls${ver/./_} \
        -keymatexport EXPORTER-Channel-Binding -keymatexportlen 32 <cb.in >cb.out 2>cb.err &
    CB_PID=$!
    exec {CB_FD}>cb.in
    for _ in $(seq 1 400); do
        grep -q 'Keying material:' cb.out && break
        kill -0 "$CB_PID" 2>/dev/null || break
        sleep 0.025
    done
    if [ "$ver" = 1.3 ]; then
        hex=$(sed -n 's/^ *Keying material: *\([0-9A-Fa-f]*\).*/\1/p' cb.out | head -1)
    else
        hex=$(grep -A1 '^>>> TLS 1.2, Handshake \[length 0010\], Finished' cb.out |
            sed -n '2p' | tr -s ' ' | cut -d' ' -f6-17 | tr -d ' ')
    fi
    [ -n "$hex" ] || { CB=; return 1; }
    CB=$(printf '%b' "$(echo "$hex" | sed 's/../\\x&/g')" | base64 -w0)
}
# cb_send PATH CSRNAME USER:OTP: send the enrollment on the cb_open connection
# (Connection: close), wait (polling, 20 s at most) for the server to close
# it; prints the HTTP status
cb_send() {
    local len
    len=$(stat -c %s "$2.csr.b64")
    (   # a subshell: if s_client is gone, SIGPIPE ends only this writer
        printf 'POST %s HTTP/1.1\r\nHost: localhost:%s\r\n' "$1" "$PORT"
        printf 'Authorization: Basic %s\r\n' "$(printf '%s' "$3" | base64 -w0)"
        printf 'Content-Type: application/pkcs10\r\nContent-Length: %s\r\n' "$len"
        printf 'Connection: close\r\n\r\n'
        cat "$2.csr.b64"
    ) >&"$CB_FD"
    exec {CB_FD}>&-
    for _ in $(seq 1 800); do
        kill -0 "$CB_PID" 2>/dev/null || break
        sleep 0.025
    done
    kill "$CB_PID" 2>/dev/null
    wait "$CB_PID" 2>/dev/null
    grep -a -m1 -o '^HTTP/1\.[01] [0-9][0-9][0-9]' cb.out | cut -d' ' -f2
}
