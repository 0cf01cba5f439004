#!/bin/bash
# `make bench`, second part: enrollment throughput of kipuka on PostgreSQL,
# one node versus two nodes sharing the database, measured in the same run.
# PostgreSQL runs with fsync and synchronous_commit on (a durable commit per
# enrollment, as in production), in a throwaway cluster (scripts/pg-cluster.sh).
#
# Environment: BENCH_SECONDS (10), BENCH_PG_CLIENTS (32, split over the nodes),
# BENCH_RESULTS (bench/RESULTS.md; "" for none).
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=./build/kipuka
LG=./build/bench-loadgen
DUR=${BENCH_SECONDS:-10}
CLIENTS=${BENCH_PG_CLIENTS:-32}
RESULTS=${BENCH_RESULTS-bench/RESULTS.md}
EST=/.well-known/est

log() { printf 'bench-pg: %s\n' "$*" >&2; }
die() {
    log "$*"
    exit 1
}
kv() { awk -v k="$2" '{for (i = 1; i <= NF; i++) { n = index($i, "="); if (substr($i, 1, n - 1) == k) { print substr($i, n + 1); exit } } }' "$1"; }
calc() { awk "BEGIN { printf \"%s\", $1 }"; }

[ -x "$BIN" ] || die "$BIN is missing: run make build"
command -v pg_ctlcluster >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 ||
    die "PostgreSQL is not installed (make test-deps installs it)"
# shellcheck disable=SC2046
cc -std=c11 -O2 -Wall -Wextra -Werror -o "$LG" bench/loadgen.c \
    $(pkg-config --cflags --libs openssl) -lpthread || die "cannot build the load generator"

W=$(mktemp -d /tmp/kipuka-bench-pg.XXXXXX)
chmod 711 "$W" # the cluster runs as an unprivileged user
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    scripts/pg-cluster.sh stop "$W/pg" >/dev/null 2>&1 || true
    rm -rf "$W"
}
trap cleanup EXIT

URL=$(PG_CLUSTER_FSYNC=on scripts/pg-cluster.sh start "$W/pg") || die "cannot start PostgreSQL"
log "PostgreSQL at $URL (fsync on)"
"$BIN" init --dir "$W/a" --port 0 >/dev/null 2>&1 || die "kipuka init failed"
sed -i -e "s|^url = \"sqlite:kipuka.db\"\$|url = \"$URL\"|" -e 's/^level = "info"$/level = "warn"/' \
    "$W/a/kipuka.toml"
grep -q "^url = \"$URL\"\$" "$W/a/kipuka.toml" || die "unexpected kipuka.toml layout"
cp -a "$W/a" "$W/b" # the same CA, keys and database: a second node
"$BIN" otp create -c "$W/a/kipuka.toml" --entity bench --uses 1000000 --count 64 --ttl 24h \
    >"$W/otps" 2>/dev/null || die "kipuka otp create failed"

PORT_A="" PORT_B=""
start_node() { # NAME: serve, wait for readiness, set PORT_NAME
    local n=$1 i port=""
    "$BIN" serve -c "$W/$n/kipuka.toml" >"$W/$n.out" 2>"$W/$n.err" &
    PIDS+=($!)
    eval "PID_${n^^}=$!"
    for ((i = 0; i < 100; i++)); do
        port=$(sed -n 's|^kipuka: listening on https://[^/]*:\([0-9]*\)/.*|\1|p' "$W/$n.out")
        [ -n "$port" ] && break
        sleep 0.1
    done
    [ -n "$port" ] || die "node $n did not start: $(tail -3 "$W/$n.err")"
    eval "PORT_${n^^}=$port"
}
start_node a
start_node b

run() { # OUT PORT PID CLIENTS
    "$LG" enroll --port "$2" --cafile "$W/a/ca/ca.pem" --pid "$3" --path "$EST/simpleenroll" \
        --clients "$4" --otp-file "$W/otps" --entity bench --seconds "$DUR" >"$W/$1" 2>"$W/$1.err" ||
        die "load generator failed: $(tail -3 "$W/$1.err")"
}

log "one node, $CLIENTS clients, ${DUR}s"
run one "$PORT_A" "$PID_A" "$CLIENTS"
log "two nodes, $((CLIENTS / 2)) clients each, ${DUR}s"
run two_a "$PORT_A" "$PID_A" $((CLIENTS / 2)) &
la=$!
run two_b "$PORT_B" "$PID_B" $((CLIENTS / 2)) &
lb=$!
wait "$la" "$lb"

one=$(kv "$W/one" rps)
two=$(calc "$(kv "$W/two_a" rps) + $(kv "$W/two_b" rps)")
p99_two=$(calc "($(kv "$W/two_a" p99_ms) > $(kv "$W/two_b" p99_ms)) ? $(kv "$W/two_a" p99_ms) : $(kv "$W/two_b" p99_ms)")
errors=$(($(kv "$W/one" errors) + $(kv "$W/two_a" errors) + $(kv "$W/two_b" errors)))
rows=$(psql "$URL" -X -A -t -c "select count(*) from certificates")
{
    echo "kipuka $(git describe --always --dirty 2>/dev/null || echo '?') on PostgreSQL $(psql "$URL" -X -A -t -c 'show server_version'), $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores shared by nodes, load generator and database"
    echo
    echo "| setup | clients | enrollments/s | p99 ms | errors |"
    echo "|---|---|---|---|---|"
    echo "| one node | $CLIENTS | $one | $(kv "$W/one" p99_ms) | $(kv "$W/one" errors) |"
    echo "| two nodes | $((CLIENTS / 2)) + $((CLIENTS / 2)) | $two | $p99_two | $(($(kv "$W/two_a" errors) + $(kv "$W/two_b" errors))) |"
    echo
    echo "two nodes / one node: $(calc "sprintf(\"%.2fx\", $two / $one)"); certificates in the database: $rows; errors: $errors"
} >"$W/report"
cat "$W/report"
if [ -n "$RESULTS" ]; then
    { echo; echo "## PostgreSQL, one node vs two: $(date -u '+%Y-%m-%d %H:%M UTC')"; echo; echo '```'; cat "$W/report"; echo '```'; } >>"$RESULTS"
    log "appended to $RESULTS"
fi
