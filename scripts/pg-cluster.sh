#!/bin/sh
# A throwaway PostgreSQL cluster for tests and benchmarks: initdb in DIR as an
# unprivileged user, trust authentication on 127.0.0.1 only, the unix socket
# inside DIR, a free loopback port. Nothing outside DIR is touched.
#
#   pg-cluster.sh start DIR   create DIR, start; prints the URL of database "kipuka"
#   pg-cluster.sh stop DIR    stop the server (fast) and delete DIR
#   pg-cluster.sh halt DIR    stop the server, keep DIR (for restart tests)
#   pg-cluster.sh resume DIR  start it again on the same port
#   pg-cluster.sh url DIR     print the URL again
#
# As root, the server runs as the "postgres" user of the Debian package (or a
# "kipuka-test" system user created for it): PostgreSQL refuses to run as root.
# PG_CLUSTER_FSYNC=on keeps fsync and synchronous commit (off by default: a
# throwaway cluster needs no durability).
set -eu

PG_BIN=${PG_BIN:-}
if [ -z "$PG_BIN" ]; then
    for d in /usr/lib/postgresql/*/bin; do [ -x "$d/initdb" ] && PG_BIN=$d; done
fi
[ -n "$PG_BIN" ] && [ -x "$PG_BIN/pg_ctl" ] || {
    echo "pg-cluster: no initdb/pg_ctl found (install the postgresql package)" >&2
    exit 1
}

cmd=${1:-}
dir=${2:-}
usage="usage: $0 start|stop|halt|resume|url DIR"
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "$usage" >&2; exit 2; }

run_as=""
if [ "$(id -u)" = 0 ]; then
    if id postgres >/dev/null 2>&1; then
        run_as=postgres
    else
        id kipuka-test >/dev/null 2>&1 ||
            useradd --system --no-create-home --shell /usr/sbin/nologin kipuka-test
        run_as=kipuka-test
    fi
fi

# as_pg CMD...: run CMD as the cluster's owner (from /, which it may enter).
as_pg() {
    if [ -n "$run_as" ]; then (cd / && runuser -u "$run_as" -- "$@"); else "$@"; fi
}

pgctl() { as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" "$@"; }

# A port no local TCP socket uses now (from the kernel's table: a fresh
# machine may have no ss or netstat); start retries if it is taken meanwhile.
free_port() {
    while :; do
        p=$(($(od -An -N2 -tu2 /dev/urandom) % 30000 + 20000))
        hex=$(printf '%04X' "$p")
        awk -v h=":$hex" 'substr($2, length($2) - 4) == h { f = 1 } END { exit !f }' \
            /proc/net/tcp || { echo "$p"; return; }
    done
}

url() { echo "postgresql://kipuka@127.0.0.1:$(cat "$dir/port")/kipuka"; }

start() {
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    [ -z "$run_as" ] || chown "$run_as" "$dir"
    chmod 700 "$dir"
    as_pg "$PG_BIN/initdb" -D "$dir/data" -U kipuka --auth=trust -E UTF8 --locale=C.UTF-8 \
        --no-sync >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
    # Only our own socket directory and loopback TCP: trust is fine there.
    printf 'local all all trust\nhost all all 127.0.0.1/32 trust\n' >"$dir/data/pg_hba.conf"
    # Settings live in the cluster's own file, so "resume" needs no options.
    fsync=${PG_CLUSTER_FSYNC:-off}
    printf "%s\n" "listen_addresses = '127.0.0.1'" "unix_socket_directories = '$dir'" \
        "max_connections = 300" "fsync = $fsync" "synchronous_commit = $fsync" \
        >>"$dir/data/postgresql.conf"
    for _ in 1 2 3 4 5; do
        port=$(free_port)
        echo "$port" >"$dir/port"
        echo "port = $port" >>"$dir/data/postgresql.conf" # the last one wins
        if pgctl -w -t 30 start >/dev/null; then
            as_pg "$PG_BIN/createdb" -h "$dir" -p "$port" -U kipuka kipuka
            url
            return 0
        fi
        tail -5 "$dir/server.log" >&2
    done
    echo "pg-cluster: could not start PostgreSQL in $dir" >&2
    exit 1
}

case $cmd in
start) start ;;
stop)
    if [ -d "$dir/data" ]; then pgctl -m fast -w stop >/dev/null 2>&1 || true; fi
    rm -rf "$dir"
    ;;
halt) pgctl -m fast -w stop >/dev/null ;;
resume) pgctl -w -t 30 start >/dev/null ;;
url) url ;;
*) echo "$usage" >&2; exit 2 ;;
esac
