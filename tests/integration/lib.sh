# Helpers for integration tests: a throwaway deployment, the real kipuka
# binary on a free loopback port, and TAP assertions.
# Environment: KIPUKA (binary path), set by meson.

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

cleanup() {
    [ -n "$SERVER_PID" ] && kill -KILL "$SERVER_PID" 2>/dev/null
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
finish() {
    [ -n "$SERVER_PID" ] && kp_stop
    echo "1..$_n"
    [ "$_failed" = 0 ]
}

# kp_init [init args...]: a fresh deployment in $SRV, on a free port.
kp_init() {
    "$KIPUKA" init --dir "$SRV" --port 0 "$@" 2>"$T/init.log" || {
        cat "$T/init.log" >&2; echo "Bail out! kipuka init failed"; exit 1; }
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

# db QUERY: run SQL on the server's SQLite file
db() { sqlite3 "$DB" "$1"; }
