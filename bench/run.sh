#!/bin/bash
# `make bench`: enrollment throughput, latency, CPU and memory of a real
# `kipuka serve` on loopback, over HTTPS and EST-coaps (when the build has it),
# next to the crypto-only bound (openssl speed) and nginx serving the same
# /cacerts bytes (access log on), all measured in this run. Prints tables,
# the performance targets last (printed, never asserted), and appends them to
# bench/RESULTS.md. Method: bench/README.md.
#
# Environment: BENCH_SECONDS (10) per scenario, BENCH_IDLE_CONNS (10000),
# BENCH_SERVER_CPUS / BENCH_CLIENT_CPUS (taskset lists; default: first half of
# the cores for the server, the rest for the load generator), BENCH_THREADS
# (server threads and nginx workers; default: cores in BENCH_SERVER_CPUS),
# BENCH_CLIENT_THREADS, BENCH_RESULTS (bench/RESULTS.md; "" for none).
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=bench/lib.sh
. bench/lib.sh
CLG=./build/bench-coaploadgen
RESULTS=${BENCH_RESULTS-bench/RESULTS.md}
COAP_EST=/est # RFC 9148 short paths (/est/sen, /est/crts)

# ---- tools ----
loadgen_build
# shellcheck disable=SC2046
cc -std=c11 -O2 -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 \
    -Werror -o "$CLG" bench/coaploadgen.c $(pkg-config --cflags --libs libcoap-3-openssl openssl) \
    -lpthread || die "cannot build the EST-coaps load generator (libcoap3-dev)"
if ! command -v nginx >/dev/null; then
    log "installing nginx-light (the reference server)"
    sudo=""
    [ "$(id -u)" = 0 ] || sudo=sudo
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get install -y -qq nginx-light >/dev/null 2>&1 ||
        { $sudo apt-get update -qq && $sudo apt-get install -y -qq nginx-light >/dev/null; } ||
        log "cannot install nginx: its references are left out"
fi
NGINX=$(command -v nginx || true)
[ -n "$NGINX" ] && [ "$(id -u)" != 0 ] && {
    log "nginx needs root here: its references are left out"
    NGINX=""
}

# EST-coaps on the same deployment, in a config of its own
# (kipuka-coap.toml): a build without the transport refuses its keys, and the
# HTTPS figures are then taken with kipuka.toml alone.
coap_config() { # NAME: [coap] on a free UDP port, a PSK "bench" on the default label
    local dir=$W/$1 cfg=$W/$1/kipuka-coap.toml
    (umask 077 && printf 'bench default %s\n' "$(openssl rand -hex 32)" >"$dir/coap-psk")
    cp "$dir/kipuka.toml" "$cfg"
    if grep -q '^\[coap\]$' "$cfg"; then
        sed -i -e '/^\[coap\]$/,/^\[/{/^enabled = /d;/^port = /d;/^psk_file = /d}' \
            -e 's/^\[coap\]$/[coap]\nenabled = true\nport = 0\npsk_file = "coap-psk"/' "$cfg"
    else
        printf '\n[coap]\nenabled = true\nport = 0\npsk_file = "coap-psk"\n' >>"$cfg"
    fi
    sed -i -e '/^\[label\.default\]$/,/^\[/{/^allow_psk = /d}' \
        -e 's/^\[label\.default\]$/[label.default]\nallow_psk = true/' "$cfg"
    grep -q '^allow_psk = true$' "$cfg" || die "unexpected kipuka.toml layout in $cfg"
}

CPORT=""
coap_port() { # NAME: the EST-coaps port, printed after the HTTPS line; 1 if none
    local dir=$W/$1 i
    CPORT=""
    for ((i = 0; i < WAIT_TRIES; i++)); do
        CPORT=$(sed -n 's|^kipuka: listening on coaps://.*:\([0-9]*\)/$|\1|p' "$dir/serve.out")
        [ -n "$CPORT" ] && return 0
        kill -0 "$KPID" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

NPID="" NPORT="" NPIDARGS=()
free_port() {
    local p i
    for ((i = 0; i < 50; i++)); do
        p=$((20000 + RANDOM % 20000))
        ss -Htln "sport = :$p" | grep -q . || {
            echo "$p"
            return
        }
    done
    die "no free port"
}
nginx_start() {
    local i workers
    NPORT=$(free_port)
    mkdir -p "$W/nginx"
    sed -e "s#@DIR@#$W/nginx#g" -e "s#@WWW@#$W/www#g" -e "s#@WORKERS@#$THREADS#" \
        -e "s#@PORT@#$NPORT#" -e "s#@NOFILE@#$NOFILE#" -e "s#@CONNS@#$MAX_CONNS#" \
        -e "s#@CERT@#$W/ec/tls/server.pem#" -e "s#@KEY@#$W/ec/tls/server.key#" \
        bench/nginx.conf.in >"$W/nginx/nginx.conf"
    taskset -c "$SERVER_CPUS" "$NGINX" -p "$W/nginx" -c "$W/nginx/nginx.conf" \
        -e "$W/nginx/error.log" >"$W/nginx/out" 2>&1 &
    NPID=$!
    PIDS+=("$NPID")
    for ((i = 0; i < WAIT_TRIES; i++)); do
        workers=$({ pgrep -P "$NPID" || true; } | wc -l)
        [ "$workers" -ge "$THREADS" ] &&
            curl -sf --cacert "$W/ec/ca/ca.pem" -o /dev/null \
                "https://127.0.0.1:$NPORT$EST/cacerts" && break
        kill -0 "$NPID" 2>/dev/null || die "nginx exited: $(tail -3 "$W/nginx/error.log")"
        sleep 0.1
    done
    NPIDARGS=(--pid "$NPID")
    for i in $(pgrep -P "$NPID"); do NPIDARGS+=(--pid "$i"); done
}
nginx_stop() {
    stop_pid "$NPID"
    forget_pid "$NPID"
}
nginx_rss_kb() {
    local t=0 p
    for p in "$NPID" $(pgrep -P "$NPID"); do t=$((t + $(rss_kb "$p"))); done
    echo "$t"
}

# ---- the crypto-only bound ----
log "openssl speed (one core, CPU time): ecdsap256 ecdhx25519 rsa2048"
# CPU time, not -elapsed: the bound is compared with the server's CPU time,
# and wall time on a shared machine would fold other load into it.
on_server openssl speed -seconds 3 ecdsap256 ecdhx25519 rsa2048 >"$W/speed" 2>/dev/null ||
    die "openssl speed failed"
read -r P256_SIGN P256_VERIFY < <(awk '/ecdsa \(nistp256\)/ { print $(NF-1), $NF }' "$W/speed")
read -r RSA_SIGN RSA_VERIFY < <(awk '/^rsa 2048 bits/ { print $(NF-1), $NF }' "$W/speed")
X25519=$(awk '/ecdh \(X25519\)/ { print $NF }' "$W/speed")
[ -n "$P256_SIGN" ] && [ -n "$RSA_SIGN" ] && [ -n "$X25519" ] || die "cannot read openssl speed"
# seconds of CPU per enrollment, server side (accounting printed below)
T_TLS=$(calc "2 / $X25519 + 1 / $P256_SIGN")
T_OTP_EC=$(calc "$T_TLS + 1 / $P256_VERIFY + 1 / $P256_SIGN")
T_MTLS_EC=$(calc "$T_OTP_EC + 2 / $P256_VERIFY")
T_OTP_RSA=$(calc "$T_TLS + 1 / $P256_VERIFY + 1 / $RSA_SIGN")

# ---- runs ----
# the enrollment rows: 16 clients (the performance targets are set there) and 64
ENROLL_CLIENTS="16 64"
NEWCONN_CLIENTS=16 # GET /cacerts, a new TCP + TLS connection per request
run_clg() { # OUT MODE ARGS...: the EST-coaps load generator; a failure is logged, not fatal
    local out=$1
    shift
    on_client "$CLG" "$@" --threads "$CLIENT_THREADS" --seconds "$DUR" >"$W/$out" 2>"$W/$out.err" ||
        {
            log "EST-coaps load generator failed: $(tail -3 "$W/$out.err")"
            rm -f "$W/$out"
            return 0
        }
    [ -s "$W/$out.err" ] && sed 's/^/  /' "$W/$out.err" | head -6 >&2
    return 0
}
run_lg() { # OUT MODE ARGS...: one load generator run on the client CPUs
    local out=$1
    shift
    on_client "$LG" "$@" --threads "$CLIENT_THREADS" --seconds "$DUR" >"$W/$out" 2>"$W/$out.err" ||
        die "load generator failed: $(tail -3 "$W/$out.err")"
    [ -s "$W/$out.err" ] && sed 's/^/  /' "$W/$out.err" | head -6 >&2
    return 0
}

deploy ec ec:P-256
deploy rsa rsa:2048
coap_config ec

log "kipuka (P-256 CA): simpleenroll with OTP, simplereenroll with mTLS, cacerts (kept and new connections), each next to nginx's"
COAP_MISSING=""
if kipuka_launch ec kipuka-coap.toml && coap_port ec; then
    log "EST-coaps on UDP port $CPORT"
else
    # the last line the server wrote says why (an unknown key: no transport yet)
    COAP_MISSING=$(tail -1 "$W/ec/serve.err" 2>/dev/null || true)
    [ -n "$COAP_MISSING" ] || COAP_MISSING="no coaps:// line"
    log "EST-coaps: not available in this build${COAP_MISSING:+ ($COAP_MISSING)}"
    [ -z "$KPID" ] || kipuka_stop
    kipuka_start ec
fi
KRSS_START=$(rss_kb "$KPID")
# the mTLS client: a certificate enrolled with an OTP, then renewed over and over;
# an OTP certifies its entity only (docs/otp-identity.md), so every CSR names it
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/client.key" \
    -subj /CN=bench -outform DER -out "$W/client.csr" 2>/dev/null
base64 -w0 "$W/client.csr" >"$W/client.csr.b64"
curl -sf --cacert "$W/ec/ca/ca.pem" -u "bench:$(head -1 "$W/ec/otps")" \
    -H 'Content-Type: application/pkcs10' --data-binary @"$W/client.csr.b64" \
    -o "$W/client.p7" "https://127.0.0.1:$PORT$EST/simpleenroll" || die "cannot enroll the mTLS client"
base64 -d "$W/client.p7" | openssl pkcs7 -inform DER -print_certs -out "$W/client.pem"
mkdir -p "$W/www"
chmod 755 "$W/www"
curl -sf --cacert "$W/ec/ca/ca.pem" -o "$W/www/cacerts" "https://127.0.0.1:$PORT$EST/cacerts" ||
    die "cannot fetch /cacerts"
chmod 644 "$W/www/cacerts"

KARGS=(--port "$PORT" --cafile "$W/ec/ca/ca.pem" --pid "$KPID")
# Each target's figure and its nginx reference are taken back to back, so
# that the machine's speed, which drifts over minutes on a shared host, is
# the same for both: nginx waits idle on the same core meanwhile.
[ -z "$NGINX" ] || nginx_start
NARGS=(--port "$NPORT" --cafile "$W/ec/ca/ca.pem" "${NPIDARGS[@]}" --path "$EST/cacerts")
first=${ENROLL_CLIENTS%% *}
for c in $ENROLL_CLIENTS; do
    run_lg "otp_ec_$c" enroll "${KARGS[@]}" --path "$EST/simpleenroll" --clients "$c" \
        --otp-file "$W/ec/otps" --entity bench --cn bench
    if [ "$c" = "$first" ]; then
        [ -z "$NGINX" ] || run_lg getnew_nginx get "${NARGS[@]}" --clients "$NEWCONN_CLIENTS"
        run_lg getnew_kipuka get "${KARGS[@]}" --path "$EST/cacerts" --clients "$NEWCONN_CLIENTS"
        run_lg cacerts_kipuka get "${KARGS[@]}" --path "$EST/cacerts" --clients 64 --keepalive
        [ -z "$NGINX" ] || run_lg cacerts_nginx get "${NARGS[@]}" --clients 64 --keepalive
    fi
    run_lg "mtls_ec_$c" enroll "${KARGS[@]}" --path "$EST/simplereenroll" --clients "$c" \
        --cert "$W/client.pem" --key "$W/client.key" --cn bench
done
[ -z "$NGINX" ] || nginx_stop
KHWM=$(hwm_kb "$KPID")
if [ -n "$CPORT" ]; then
    log "kipuka (P-256 CA): EST-coaps simpleenroll with a DTLS PSK, cacerts"
    # a PSK certifies its identity: the CSR names it (docs/coap.md)
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/coap.key" \
        -subj /CN=bench -outform DER -out "$W/coap.csr" 2>/dev/null
    CARGS=(--port "$CPORT" --identity bench --psk-file "$W/ec/coap-psk" --pid "$KPID")
    for c in $ENROLL_CLIENTS; do
        run_clg "coap_enroll_$c" enroll "${CARGS[@]}" --path "$COAP_EST/sen" --csr "$W/coap.csr" \
            --clients "$c"
    done
    run_clg coap_cacerts get "${CARGS[@]}" --path "$COAP_EST/crts" --clients 64
fi
kipuka_stop

log "kipuka (RSA-2048 CA): simpleenroll with OTP"
kipuka_start rsa
KARGS=(--port "$PORT" --cafile "$W/rsa/ca/ca.pem" --pid "$KPID")
for c in $ENROLL_CLIENTS; do
    run_lg "otp_rsa_$c" enroll "${KARGS[@]}" --path "$EST/simpleenroll" --clients "$c" \
        --otp-file "$W/rsa/otps" --entity bench --cn bench
done
KHWM_RSA=$(hwm_kb "$KPID")
kipuka_stop

log "kipuka: $IDLE_CONNS idle keep-alive TLS connections (fresh server)"
kipuka_start ec
on_client "$LG" idle --port "$PORT" --cafile "$W/ec/ca/ca.pem" --pid "$KPID" --clients 64 \
    --conns "$IDLE_CONNS" --seconds 120 >"$W/idle_kipuka" 2>"$W/idle_kipuka.err" || true
kipuka_stop

if [ -n "$NGINX" ]; then
    log "nginx $(nginx -v 2>&1 | sed 's|.*/||'): $IDLE_CONNS idle connections (fresh server)"
    nginx_start
    NRSS_START=$(nginx_rss_kb)
    on_client "$LG" idle --port "$NPORT" --cafile "$W/ec/ca/ca.pem" "${NPIDARGS[@]}" \
        --clients 64 --conns "$IDLE_CONNS" --seconds 120 >"$W/idle_nginx" 2>"$W/idle_nginx.err" ||
        true
    nginx_stop
fi

# ---- report ----
f1() { calc "sprintf(\"%.1f\", $1)"; }
fmt_ratio() { [ -n "$2" ] && [ "$(calc "($2 > 0)")" = 1 ] && calc "sprintf(\"%.2fx\", $1 / $2)" || echo "-"; }
met() { [ "$(calc "($1) ? 1 : 0")" = 1 ] && echo "met" || echo "not met"; }

# EST-coaps PSK enrollment, server side: the DTLS 1.2 handshake has no
# signature and no certificate; with an ECDHE-PSK suite (what libcoap's
# OpenSSL back end negotiates by default) it has one X25519 exchange, with a
# plain PSK suite no public-key operation at all. Empty if the group is not X25519.
coap_kv() { # KEY: from the first EST-coaps enrollment run that gave figures
    local f
    for f in coap_enroll_16 coap_enroll_64; do
        [ -s "$W/$f" ] && {
            kv "$W/$f" "$1"
            return
        }
    done
    return 0
}
coap_bound() {
    case $(coap_kv kx) in
    X25519) calc "2 / $X25519 + 1 / $P256_VERIFY + 1 / $P256_SIGN" ;;
    none) calc "1 / $P256_VERIFY + 1 / $P256_SIGN" ;;
    esac
}

rows() { # FILE NAME BOUND, one a line: the scenarios in report order
    local tc=${T_COAP:--}
    printf '%s\n' "otp_ec_16 simpleenroll,_OTP,_P-256_CA $T_OTP_EC" \
        "otp_ec_64 simpleenroll,_OTP,_P-256_CA $T_OTP_EC" \
        "coap_enroll_16 simpleenroll,_EST-coaps_PSK,_new_DTLS_session $tc" \
        "coap_enroll_64 simpleenroll,_EST-coaps_PSK,_new_DTLS_session $tc" \
        "mtls_ec_16 simplereenroll,_mTLS,_P-256_CA $T_MTLS_EC" \
        "mtls_ec_64 simplereenroll,_mTLS,_P-256_CA $T_MTLS_EC" \
        "otp_rsa_16 simpleenroll,_OTP,_RSA-2048_CA $T_OTP_RSA" \
        "otp_rsa_64 simpleenroll,_OTP,_RSA-2048_CA $T_OTP_RSA" \
        "cacerts_kipuka cacerts_keep-alive,_kipuka -" \
        "coap_cacerts cacerts_EST-coaps,_kept_session -" \
        "getnew_kipuka cacerts_new_connection,_kipuka -" \
        "cacerts_nginx cacerts_keep-alive,_nginx -" \
        "getnew_nginx cacerts_new_connection,_nginx -"
}

# The row a row without a crypto bound is compared with, and how the two
# tables name it ("_" for a space); nothing for the references themselves.
peer_of() { # FILE -> PEER-FILE LABEL-REQ/S LABEL-CPU
    case $1 in
    cacerts_kipuka) echo "cacerts_nginx nginx nginx" ;;
    getnew_kipuka) echo "getnew_nginx nginx nginx" ;;
    coap_cacerts) echo "cacerts_kipuka kipuka_HTTPS HTTPS" ;;
    esac
}

report() {
    local name f ref refname bound eps srv peer lrps lcpu
    echo "kipuka $(git describe --always --dirty 2>/dev/null || echo '?'), $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "server on CPUs $SERVER_CPUS ($THREADS thread(s)); load generator on CPUs $CLIENT_CPUS" \
        "($CLIENT_THREADS thread(s)); ${DUR} s per scenario after 1 s warm-up; TLS 1.3, X25519"
    if [ -n "$(coap_kv cipher)" ]; then
        echo "EST-coaps: DTLS 1.2, PSK identity bench, $(coap_kv cipher)" \
            "(key exchange: $(coap_kv kx)), each enrollment on a new DTLS session"
    elif [ -n "$COAP_MISSING" ]; then
        echo "EST-coaps: not available in this build"
    fi
    echo
    printf '| %-45s | %7s | %9s | %7s | %7s | %7s | %6s | %-30s | %6s |\n' scenario clients \
        'req/s' 'p50 ms' 'p90 ms' 'p99 ms' errors reference ratio
    printf '|%s|\n' "-----------------------------------------------|---------|-----------|---------|---------|---------|--------|--------------------------------|--------"
    while read -r f name bound; do
        [ -s "$W/$f" ] || continue
        if [ "$bound" != - ]; then
            eps=$(calc "$SERVER_CORES / $bound")
            ref=$eps
            refname="$(f1 "$eps") crypto bound ($SERVER_CORES core)"
        elif read -r peer lrps lcpu < <(peer_of "$f") && [ -s "$W/$peer" ]; then
            ref=$(kv "$W/$peer" rps)
            refname="$ref ${lrps//_/ }"
        else
            ref="" refname="-"
        fi
        printf '| %-45s | %7s | %9s | %7s | %7s | %7s | %6s | %-30s | %6s |\n' "${name//_/ }" \
            "$(kv "$W/$f" clients)" "$(kv "$W/$f" rps)" "$(kv "$W/$f" p50_ms)" \
            "$(kv "$W/$f" p90_ms)" "$(kv "$W/$f" p99_ms)" "$(kv "$W/$f" errors)" "$refname" \
            "$(fmt_ratio "$(kv "$W/$f" rps)" "$ref")"
    done < <(rows)
    echo
    echo "Server CPU (utime+stime from /proc/PID/stat over the window) per request:"
    echo
    printf '| %-45s | %7s | %8s | %12s | %14s | %6s | %8s | %8s |\n' scenario clients 'srv CPU' \
        'CPU/req us' 'reference us' ratio 'lg CPU' 'other'
    printf '|%s|\n' "-----------------------------------------------|---------|----------|--------------|----------------|--------|----------|---------"
    while read -r f name bound; do
        [ -s "$W/$f" ] || continue
        if [ "$bound" != - ]; then
            ref=$(f1 "$bound * 1e6")
            refname="$ref crypto"
        elif read -r peer lrps lcpu < <(peer_of "$f") && [ -s "$W/$peer" ]; then
            ref=$(kv "$W/$peer" srv_cpu_us_per_req)
            refname="$ref ${lcpu//_/ }"
        else
            ref="" refname="-"
        fi
        srv=$(kv "$W/$f" srv_cpu_us_per_req)
        printf '| %-45s | %7s | %7s%% | %12s | %14s | %6s | %7s%% | %7s%% |\n' "${name//_/ }" \
            "$(kv "$W/$f" clients)" "$(kv "$W/$f" srv_cpu_pct)" "$srv" "$refname" \
            "$(fmt_ratio "$srv" "$ref")" "$(kv "$W/$f" lg_cpu_pct)" "$(kv "$W/$f" other_cpu_pct)"
    done < <(rows)
    echo
    echo "srv CPU: server CPU time / wall time (100% = one core busy); lg CPU: the load"
    echo "generator's; other: the rest of the machine meanwhile (other processes, interrupts)."
    echo
    echo "Crypto bound per enrollment, server side, one core, from openssl speed (CPU time):"
    echo "  X25519 $X25519 op/s, ECDSA P-256 sign $P256_SIGN/s verify $P256_VERIFY/s," \
        "RSA-2048 sign $RSA_SIGN/s verify $RSA_VERIFY/s"
    echo "  TLS 1.3 handshake = 2 X25519 (ephemeral keygen counted as one op + derive)"
    echo "                      + 1 P-256 sign (CertificateVerify)       = $(f1 "$T_TLS * 1e6") us"
    echo "  OTP,  P-256 CA    = handshake + 1 P-256 verify (CSR) + 1 P-256 sign (certificate)" \
        "= $(f1 "$T_OTP_EC * 1e6") us = $(f1 "1 / $T_OTP_EC") enrollments/s/core"
    echo "  mTLS, P-256 CA    = OTP + 2 P-256 verify (client CertificateVerify, client cert)" \
        "= $(f1 "$T_MTLS_EC * 1e6") us = $(f1 "1 / $T_MTLS_EC") enrollments/s/core"
    echo "  OTP, RSA-2048 CA  = handshake + 1 P-256 verify (CSR) + 1 RSA-2048 sign (certificate)" \
        "= $(f1 "$T_OTP_RSA * 1e6") us = $(f1 "1 / $T_OTP_RSA") enrollments/s/core"
    if [ -n "$(coap_kv cipher)" ]; then
        local cipher kx
        cipher=$(coap_kv cipher)
        kx=$(coap_kv kx)
        echo "  EST-coaps, PSK    = DTLS 1.2 PSK handshake ($cipher: no signature, no certificate;"
        case $kx in
        X25519) echo "                      its ECDHE part = 2 X25519)" ;;
        none) echo "                      no public-key operation)" ;;
        *) echo "                      key exchange $kx, not measured here: no bound)" ;;
        esac
        if [ -n "$T_COAP" ]; then
            echo "                      + 1 P-256 verify (CSR) + 1 P-256 sign (certificate)" \
                "= $(f1 "$T_COAP * 1e6") us = $(f1 "1 / $T_COAP") enrollments/s/core"
        fi
    fi
    echo "  Not counted: hashing, AES-GCM/ChaCha20 records, HMAC of the OTP, the store."
    echo
    local kidle nidle kper nper kopen nopen
    kidle=$W/idle_kipuka nidle=$W/idle_nginx
    kper=$(kv "$kidle" bytes_per_conn)
    kopen=$(kv "$kidle" open)
    nper="" nopen=""
    [ -s "$nidle" ] && nper=$(kv "$nidle" bytes_per_conn) && nopen=$(kv "$nidle" open)
    echo "Memory (VmRSS/VmHWM of /proc/PID/status; nginx = master + workers):"
    local nstart="n/a" nidle_s="n/a"
    [ -n "${NRSS_START:-}" ] && nstart="$(f1 "$NRSS_START / 1024") MB"
    [ -n "$nper" ] && nidle_s="$(f1 "$nper / 1024") KB ($nopen open)"
    echo "  RSS idle at start:      kipuka $(f1 "$KRSS_START / 1024") MB; nginx $nstart;" \
        "ratio $(fmt_ratio "$KRSS_START" "${NRSS_START:-}")"
    echo "  peak RSS (VmHWM):       kipuka $(f1 "$KHWM / 1024") MB after the P-256 scenarios," \
        "$(f1 "$KHWM_RSA / 1024") MB after the RSA-2048 ones"
    echo "  RSS per idle TLS conn:  kipuka $(f1 "${kper:-0} / 1024") KB ($kopen of $IDLE_CONNS open," \
        "RSS $(kv "$kidle" rss_before_kb) -> $(kv "$kidle" rss_after_kb) KB);" \
        "nginx $nidle_s; ratio $(fmt_ratio "${kper:-0}" "$nper")"
    echo
    targets
}

# ---- targets: kipuka's figure, its reference, the limit; printed, never asserted ----
fig() { # FILE KEY: the value from a run that had answers, else nothing
    if [ -s "$W/$1" ] && [ "$(calc "($(kv "$W/$1" ok) > 0)")" = 1 ]; then
        kv "$W/$1" "$2"
    fi
}
errs_note() { # FILE...: " (N errors)" when the runs behind a figure had errors
    local f n=0
    for f in "$@"; do
        [ -n "$f" ] && [ -s "$W/$f" ] && n=$((n + $(kv "$W/$f" errors)))
    done
    [ "$n" = 0 ] || echo " ($n errors)"
}
target_row() { # TARGET KIPUKA REFERENCE RATIO LIMIT RESULT
    printf '| %-50s | %-20s | %-64s | %6s | %-9s | %-19s |\n' "$@"
}
# kipuka's CPU per request against a reference: ratio and result (n/a
# without both); the errors of kipuka's run and of REF-FILE are appended
cpu_target() { # TARGET FILE REF-US REF-HOW LIMIT-RATIO REF-FILE
    local k
    k=$(fig "$2" srv_cpu_us_per_req)
    if [ -z "$k" ] || [ -z "$3" ]; then
        target_row "$1" "${k:-n/a}${k:+ us}" "$4" - "<= $(calc "sprintf(\"%.2fx\", $5)")" \
            "n/a$(errs_note "$2" "$6")"
        return
    fi
    target_row "$1" "$k us" "$(f1 "$3") us = $4" "$(fmt_ratio "$k" "$3")" \
        "<= $(calc "sprintf(\"%.2fx\", $5)")" "$(met "$k <= $5 * $3")$(errs_note "$2" "$6")"
}
targets() {
    local nka nnew nref verify sign p99 kper kopen result
    nka=$(fig cacerts_nginx srv_cpu_us_per_req)
    nnew=$(fig getnew_nginx srv_cpu_us_per_req)
    echo "Targets ($SERVER_CORES server core(s), kipuka init's config; reported, not asserted):"
    echo
    target_row target kipuka 'reference (how it is computed)' ratio limit result
    printf '|%s|\n' "----------------------------------------------------|----------------------|------------------------------------------------------------------|--------|-----------|---------------------"
    cpu_target "1. CPU/req, GET /cacerts keep-alive, 64 clients" cacerts_kipuka "$nka" \
        "nginx, same run${nka:+, access log buffered}" 1 cacerts_nginx
    cpu_target "2. CPU/req, GET /cacerts new conn, $NEWCONN_CLIENTS clients" getnew_kipuka "$nnew" \
        "nginx, same run" 1.15 getnew_nginx
    verify=$(calc "1e6 / $P256_VERIFY")
    sign=$(calc "1e6 / $P256_SIGN")
    nref=""
    [ -n "$nnew" ] && nref=$(calc "$nnew + $verify + $sign")
    cpu_target "3. CPU/enrollment, OTP P-256 new conn, 16 clients" otp_ec_16 "$nref" \
        "nginx new conn ${nnew:-n/a} + P-256 verify $(f1 "$verify") + sign $(f1 "$sign")" 1.3 \
        getnew_nginx
    p99=$(fig otp_ec_64 p99_ms)
    if [ -n "$p99" ]; then
        result="$(met "$p99 < 50")$(errs_note otp_ec_64)"
    else
        result=n/a
    fi
    target_row "4. p99 latency, OTP P-256 enrollment, 64 clients" "${p99:-n/a}${p99:+ ms}" \
        "- (absolute)" - "< 50 ms" "$result"
    kper="" kopen=0
    if [ -s "$W/idle_kipuka" ]; then
        kper=$(kv "$W/idle_kipuka" bytes_per_conn)
        kopen=$(kv "$W/idle_kipuka" open)
    fi
    if [ "$kopen" -eq 0 ]; then
        result=n/a
    elif [ "$kopen" -lt "$IDLE_CONNS" ]; then
        result="not met ($kopen held)"
    else
        result=$(met "$kper <= 32768")
        [ "$IDLE_CONNS" -ge 10000 ] || result="$result (at $IDLE_CONNS)"
    fi
    target_row "5. RSS per idle TLS connection, 10,000 held" \
        "$([ "$kopen" -gt 0 ] && echo "$(f1 "$kper / 1024") KB, $kopen held" || echo n/a)" \
        "- (absolute: RSS growth / connections held)" - "<= 32 KB" "$result"
    echo
    echo "  1, 2: nginx serves the same /cacerts bytes with the same certificate and workers;"
    echo "        nginx's access log: $(sed -n 's|^ *access_log @DIR@/\(.*\);$|\1|p' bench/nginx.conf.in)."
    echo "  3:    nginx's CPU per new-connection GET (TCP + TLS 1.3 handshake, one response)"
    echo "        + one P-256 CSR signature check + one P-256 certificate signature (openssl speed)."
    echo "  5:    KB = 1024 bytes; the target is 10,000 connections held (BENCH_IDLE_CONNS)."
}

T_COAP=$(coap_bound)
report >"$W/report"
cat "$W/report"
if [ -n "$RESULTS" ]; then
    {
        [ -s "$RESULTS" ] || printf '# kipuka benchmark results\n\nWritten by `make bench` (method: bench/README.md), newest last.\n'
        echo
        echo "## $(date -u '+%Y-%m-%d %H:%M UTC'): $ncpu x $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), Linux $(uname -r)"
        echo
        echo '```'
        cat "$W/report"
        echo '```'
    } >>"$RESULTS"
    log "appended to $RESULTS"
fi
