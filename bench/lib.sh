# Shell functions shared by bench/run.sh and bench/profile.sh (sourced, not
# run): CPU placement, the load generator's build, the scratch directory and
# its cleanup, and a throwaway kipuka deployment made the same way for both,
# so that a profile is taken on the server `make bench` measures.
# The caller has `cd`ed to the repository root and set -euo pipefail.
# shellcheck shell=bash
# shellcheck disable=SC2034 # the variables are for the scripts that source it

BIN=${BENCH_BIN:-./build/kipuka} # another build (an earlier commit) to compare
LG=./build/bench-loadgen
DUR=${BENCH_SECONDS:-10}
IDLE_CONNS=${BENCH_IDLE_CONNS:-10000}
EST=/.well-known/est
WAIT_TRIES=100 # x 0.1 s for a server to come up or go away

log() { printf 'bench: %s\n' "$*" >&2; }
die() {
    log "$*"
    exit 1
}

# ---- CPUs: server and load generator on separate cores ----
ncpu=$(nproc)
count_cpus() { # "0-1,3" -> 3
    local n=0 part a b parts
    IFS=, read -ra parts <<<"$1"
    for part in "${parts[@]}"; do
        a=${part%-*} b=${part#*-}
        n=$((n + b - a + 1))
    done
    echo "$n"
}
if [ "$ncpu" -ge 2 ]; then
    half=$((ncpu / 2))
    SERVER_CPUS=${BENCH_SERVER_CPUS:-0-$((half - 1))}
    CLIENT_CPUS=${BENCH_CLIENT_CPUS:-$half-$((ncpu - 1))}
else
    SERVER_CPUS=${BENCH_SERVER_CPUS:-0}
    CLIENT_CPUS=${BENCH_CLIENT_CPUS:-0}
fi
THREADS=${BENCH_THREADS:-$(count_cpus "$SERVER_CPUS")}
CLIENT_THREADS=${BENCH_CLIENT_THREADS:-$(count_cpus "$CLIENT_CPUS")}
SERVER_CORES=$(count_cpus "$SERVER_CPUS")
on_server() { taskset -c "$SERVER_CPUS" "$@"; }
on_client() { taskset -c "$CLIENT_CPUS" "$@"; }

# ---- file descriptors: 10,000 idle connections on each side ----
# max_connections follows from them, so a profile runs with the same config.
hard=$(ulimit -Hn)
[ "$hard" = unlimited ] && hard=65536
[ "$hard" -gt 65536 ] && hard=65536
ulimit -n "$hard"
NOFILE=$(ulimit -n)
if [ "$IDLE_CONNS" -gt $((NOFILE - 500)) ]; then
    log "RLIMIT_NOFILE is $NOFILE: holding $((NOFILE - 500)) idle connections, not $IDLE_CONNS"
    IDLE_CONNS=$((NOFILE - 500))
fi
MAX_CONNS=$((IDLE_CONNS + 1000))

# ---- tools ----
loadgen_build() {
    [ -x "$BIN" ] || die "$BIN is missing: run make build"
    # shellcheck disable=SC2046
    cc -std=c11 -O2 -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 \
        -Werror -o "$LG" bench/loadgen.c $(pkg-config --cflags --libs openssl) -lpthread ||
        die "cannot build the load generator"
}

# ---- scratch and cleanup: only what the script started ----
W=$(mktemp -d /tmp/kipuka-bench.XXXXXX)
chmod 711 "$W" # nginx workers (nobody) read $W/www
PIDS=()
stop_pid() { # TERM, wait up to WAIT_TRIES/10 s, then KILL
    local pid=$1 i
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < WAIT_TRIES * 2; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
forget_pid() {
    local p keep=()
    for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
    PIDS=("${keep[@]}")
}
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
    rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

kv() { # FILE KEY: a value from the load generator's key=value line
    awk -v k="$2" '{for (i = 1; i <= NF; i++) { n = index($i, "="); if (substr($i, 1, n - 1) == k) { print substr($i, n + 1); exit } } }' "$1"
}
calc() { awk "BEGIN { printf \"%s\", $1 }"; }
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
hwm_kb() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"; }

# ---- kipuka deployments ----
deploy() { # NAME CA-KEY: init, bench config, 64 multi-use OTPs
    local dir=$W/$1 cfg=$W/$1/kipuka.toml
    "$BIN" init --dir "$dir" --port 0 --ca-key "$2" >/dev/null 2>&1 || die "kipuka init failed"
    # inserted, not replaced: the generated file has no such keys and
    # duplicates are refused
    sed -i -e "/^\[server\]\$/,/^\[/s/^port = 0\$/port = 0\nthreads = $THREADS\nmax_connections = $MAX_CONNS\nidle_timeout = 600/" "$cfg"
    grep -q "^threads = $THREADS\$" "$cfg" && grep -q '^level = "info"$' "$cfg" ||
        die "unexpected kipuka.toml layout in $cfg"
    "$BIN" otp create -c "$cfg" --entity bench --uses 1000000 --count 64 --ttl 24h \
        >"$dir/otps" 2>/dev/null || die "kipuka otp create failed"
}

KPID="" PORT=""
kipuka_launch() { # NAME [CONFIG]: serve pinned to the server CPUs; 1 if it exits first
    local dir=$W/$1 cfg=${2:-kipuka.toml} i
    : >"$dir/serve.out"
    # taskset execs, so $! is the server itself (a function would add a subshell)
    taskset -c "$SERVER_CPUS" "$BIN" serve -c "$dir/$cfg" >"$dir/serve.out" \
        2>>"$dir/serve.err" &
    KPID=$!
    PIDS+=("$KPID")
    for ((i = 0; i < WAIT_TRIES; i++)); do
        grep -q '^kipuka: listening on https:' "$dir/serve.out" && break
        if ! kill -0 "$KPID" 2>/dev/null; then
            wait "$KPID" 2>/dev/null || true
            forget_pid "$KPID"
            KPID=""
            return 1
        fi
        sleep 0.1
    done
    PORT=$(sed -n 's|^kipuka: listening on https://[^/]*:\([0-9]*\)/.*|\1|p' "$dir/serve.out")
    [ -n "$PORT" ] || die "kipuka serve did not come up"
}
kipuka_start() { # NAME: as kipuka_launch, or die
    kipuka_launch "$1" || die "kipuka serve exited: $(tail -3 "$W/$1/serve.err")"
}
kipuka_stop() {
    stop_pid "$KPID"
    forget_pid "$KPID"
}
