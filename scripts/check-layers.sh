#!/bin/sh
# The layering rules of docs/architecture.md, checked on the source text:
# which layer may include which, where SQL, libevent and libcoap may appear,
# and that the EST core holds no HTTP syntax or transport encoding.
# Usage: scripts/check-layers.sh [SOURCE_ROOT]   (exit 1 and one line per breach)
set -eu
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$root/src"
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT

# Every file's code without comments, in one gcc run: its markers
# '# LINE "FILE"' say where each line comes from.
# shellcheck disable=SC2046
gcc -fpreprocessed -dD -E -x c $(find . -name '*.[ch]' | sed 's#^\./##' | sort) >"$tmp"

awk '
# The layers each layer may include. Lower layers never reach up; transports
# never reach each other or the store.
BEGIN {
    may["core"] = "core"
    may["store"] = "core store"
    may["pki"] = "core pki"
    may["ca"] = "core pki ca"
    may["auth"] = "core store pki auth"
    may["est"] = "core store pki ca auth est"
    may["admin"] = "core store pki ca auth est admin"
    may["runtime"] = "core store pki ca auth est admin runtime"
    may["http"] = "core pki auth est admin runtime http"
    may["coap"] = "core pki auth est runtime coap"
    may["cli"] = "core store pki ca auth est admin runtime http coap cli"
    may["main"] = "cli"
    W = "(^|[^A-Za-z0-9_])"
    # HTTP syntax in string literals: only the HTTP transport, the admin API
    # (an HTTP API) and the CLI client speak it.
    http_syntax = "\"[^\"]*(Content-Type|Content-Transfer-Encoding|WWW-Authenticate|Retry-After|Authorization|Max-Age|multipart/|boundary=|Basic realm|text/plain|application/json)"
    fail = 0
}
function breach(what) {
    sub(/^[ \t]+/, "")
    printf "check-layers: %s: %s:%d: %s\n", what, file, line, $0 > "/dev/stderr"
    fail = 1
}
/^# [0-9]+ "/ {
    line = $2 - 1
    file = $3; gsub(/"/, "", file)
    layer = file; sub(/\/.*/, "", layer)
    if (layer == file) layer = "main"
    next
}
{ line++ }
/^[ \t]*#[ \t]*include[ \t]*"[a-z]+\// {
    dep = $0; sub(/^[^"]*"/, "", dep); sub(/\/.*/, "", dep)
    if (index(" " may[layer] " ", " " dep " ") == 0)
        breach(layer "/ may not include " dep "/")
}
layer != "store" && /^[ \t]*#[ \t]*include[ \t]*<(sqlite3|libpq-fe)\.h>/ { breach("SQL library outside store/") }
layer != "store" && ($0 ~ W "(sqlite3_[a-z0-9_]+|PQ[a-z]+)[ \t]*\\(" ||
                     $0 ~ "\"[^\"]*(SELECT |INSERT INTO |UPDATE [a-z_]+ SET|DELETE FROM |CREATE TABLE )") {
    breach("SQL outside store/")
}
layer != "http" && (/^[ \t]*#[ \t]*include[ \t]*<event2\// ||
                    $0 ~ W "(evhttp|evbuffer|bufferevent|event_base|evutil)_[a-z0-9_]*[ \t]*\\(") {
    breach("libevent outside http/")
}
layer != "coap" && (/^[ \t]*#[ \t]*include[ \t]*<coap[0-9]*\// ||
                    $0 ~ W "(coap_[a-z0-9_]*[ \t]*\\(|COAP_[A-Z0-9_]+)") {
    breach("libcoap outside coap/")
}
# auth/basic.c parses the Basic credentials the HTTP transport hands it;
# core/err.h is the one error table, with each transport code and text.
layer != "http" && layer != "admin" && layer != "cli" && file != "auth/basic.c" &&
    file != "core/err.h" && $0 ~ http_syntax {
    breach("HTTP syntax outside http/")
}
# The EST core speaks EST: no transport encodings, status codes or paths.
layer == "est" && /^[ \t]*#[ \t]*include[ \t]*<jansson\.h>/ { breach("JSON (an HTTP error body) in est/") }
layer == "est" && $0 ~ W "(base64[a-z0-9_]*|kp_err_http_status|kp_err_coap_code|basic_parse|json_[a-z_]+)([^A-Za-z0-9_]|$)" {
    breach("transport encoding in est/")
}
layer == "est" && $0 ~ W "(status|http_status|code)[ \t]*=[ \t]*[1-5][0-9][0-9]([^0-9]|$)" {
    breach("transport status code in est/")
}
layer == "est" && $0 ~ "\"[^\"]*(/\\.well-known|https?:|coaps?:)" { breach("transport path in est/") }
END {
    if (!fail) print "check-layers: src/ keeps its layers"
    exit fail
}' "$tmp"
