# Sourced by bench/log-cost.sh and bench/enroll-cost.sh: a throwaway
# deployment in a scratch dir ($W, removed on exit) and kipuka serve under
# valgrind --tool=callgrind.
# shellcheck shell=bash

# cg_deploy BIN: valgrind present, $W made, `kipuka init` there with
# threads = 1; sets CFG, or exits saying why
cg_deploy() {
    command -v valgrind >/dev/null || { echo "$(basename "$0"): needs valgrind" >&2; exit 1; }
    W=$(mktemp -d /tmp/kipuka-cg.XXXXXX)
    trap 'rm -rf "$W"' EXIT
    "$1" init --dir "$W/srv" --port 0 >/dev/null 2>&1 ||
        { echo "$(basename "$0"): kipuka init failed" >&2; exit 1; }
    CFG=$W/srv/kipuka.toml
    sed -i "/^\[server\]\$/,/^\[/s/^port = 0\$/port = 0\nthreads = 1/" "$CFG"
}

# cg_serve BIN CFG OUT: start serve, wait for its HTTPS port; sets CG_PID and
# CG_PORT, or exits saying why
cg_serve() {
    : >"$W/out"
    valgrind --tool=callgrind --callgrind-out-file="$3" "$1" serve -c "$2" >"$W/out" 2>"$W/err" &
    CG_PID=$!
    for _ in $(seq 1 2400); do
        grep -q "listening on" "$W/out" && break
        sleep 0.05
    done
    CG_PORT=$(sed -n 's|.*listening on https://[^:]*:\([0-9]*\)/.*|\1|p' "$W/out" | head -1)
    [ -n "$CG_PORT" ] || { echo "$(basename "$0"): serve did not start" >&2; cat "$W/err" >&2; exit 1; }
}

# cg_stop: SIGTERM, and wait for callgrind to write its output
cg_stop() {
    kill -TERM "$CG_PID"
    wait "$CG_PID"
}
