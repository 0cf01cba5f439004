#!/bin/sh
# scripts/check-layers.sh passes on the tree, and fails on copies of it that
# break one rule each (the rules of docs/architecture.md).
set -u
root=${KP_SOURCE_ROOT:?}
check="$root/scripts/check-layers.sh"
n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); failed=1; echo "not ok $n - $1"; }

if out=$("$check" "$root" 2>&1); then ok "the tree keeps its layers"; else
    not_ok "the tree keeps its layers"
    echo "$out" | sed 's/^/# /'
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# break FILE LINE WANT DESCRIPTION: append LINE to a copy of src/FILE; the
# check must fail, naming the file and WANT.
breaks() {
    rm -rf "$tmp/src" && cp -r "$root/src" "$tmp/src"
    printf '%s\n' "$2" >>"$tmp/src/$1"
    out=$("$check" "$tmp" 2>&1)
    rc=$?
    if [ "$rc" -ne 0 ] && echo "$out" | grep -q "$1" && echo "$out" | grep -q "$3"; then
        ok "$4"
    else
        not_ok "$4"
        echo "$out" | sed 's/^/# /'
    fi
}

breaks est/server.c 'static void f(void) { sqlite3_exec(0, "SELECT 1", 0, 0, 0); }' \
    "SQL outside store/" "a sqlite3 call in est/ is refused"
breaks est/server.c 'static const char *q = "SELECT serial FROM certs";' \
    "SQL outside store/" "an SQL statement in est/ is refused"
breaks admin/admin.c '#include <libpq-fe.h>' "SQL library outside store/" "libpq in admin/ is refused"
breaks ca/ca.c '#include <event2/event.h>' "libevent outside http/" "libevent in ca/ is refused"
breaks est/server.c 'static void g(void) { evbuffer_new(); }' "libevent outside http/" \
    "a libevent call in est/ is refused"
breaks http/server.c '#include <coap3/coap.h>' "libcoap outside coap/" "libcoap in http/ is refused"
breaks est/server.c 'static const char *h = "WWW-Authenticate";' "HTTP syntax outside http/" \
    "an HTTP header name in est/ is refused"
breaks pki/csr.c 'static const char *m = "multipart/mixed";' "HTTP syntax outside http/" \
    "MIME multipart in pki/ is refused"
breaks est/server.c '#include "core/base64.h"' "transport encoding in est/" \
    "base64 in est/ is refused"
breaks est/server.c 'static void s(int *status) { *status = 401; }' \
    "transport status code in est/" "an HTTP status in est/ is refused"
breaks est/server.c '#include "http/server.h"' "est/ may not include http/" \
    "est/ including http/ is refused"
breaks store/store.c '#include "est/est.h"' "store/ may not include est/" \
    "store/ reaching up to est/ is refused"
breaks http/server.c '#include "store/store.h"' "http/ may not include store/" \
    "a transport reaching the store is refused"
# accepts FILE LINE DESCRIPTION: the check passes with LINE appended.
accepts() {
    rm -rf "$tmp/src" && cp -r "$root/src" "$tmp/src"
    printf '%s\n' "$2" >>"$tmp/src/$1"
    if out=$("$check" "$tmp" 2>&1); then ok "$3"; else
        not_ok "$3"
        echo "$out" | sed 's/^/# /'
    fi
}

accepts ca/ca.c '/* sqlite3_exec("SELECT 1") or "WWW-Authenticate" in a comment is no breach */' \
    "a comment naming SQL or a header is not a breach"
accepts est/server.c 'static const char *ok_name = "the certificate status is valid";' \
    "a string that merely says status is not a breach"
echo "1..$n"
exit "$failed"
