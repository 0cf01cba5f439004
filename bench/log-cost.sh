#!/bin/bash
# The access log's cost in instructions, independent of the machine's load:
# kipuka serve (threads = 1) under valgrind --tool=callgrind answers N
# keep-alive GET /cacerts (one curl, one connection) at log level info and
# at warn; a run with no request is subtracted, so startup and stop cancel.
# Usage: bench/log-cost.sh [KIPUKA-BINARY] [N]   (bench/README.md, Access log)
set -u
BIN=${1:-build/kipuka}
N=${2:-2000}
# shellcheck source=bench/callgrind.sh
. "$(dirname "$0")/callgrind.sh"
cg_deploy "$BIN"

# run LEVEL COUNT: prints the server's total instructions (Ir)
run() {
    local port i
    sed -i "s/^level = \"[a-z]*\"\$/level = \"$1\"/" "$CFG"
    cg_serve "$BIN" "$CFG" "$W/cg.out"
    port=$CG_PORT
    if [ "$2" -gt 0 ]; then
        for ((i = 0; i < $2; i++)); do
            printf 'url = "https://localhost:%s/.well-known/est/cacerts"\noutput = "/dev/null"\n' "$port"
        done >"$W/curl.cfg"
        curl -s --cacert "$W/srv/ca/ca.pem" -K "$W/curl.cfg" -w '%{http_code}\n' | sort | uniq -c |
            grep -q " $2 200\$" || echo "log-cost: not every request answered 200" >&2
    fi
    cg_stop
    sed -n 's/^summary: //p; s/^totals: //p' "$W/cg.out" | head -1
}

for level in info warn; do
    base=$(run "$level" 0)
    full=$(run "$level" "$N")
    echo "$level: $(((full - base) / N)) instructions per request ($N requests)"
done
