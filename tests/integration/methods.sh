# HEAD on every GET resource (RFC 9110 9.3.2: the GET's status and headers,
# Content-Length of the GET body, no body on the wire), 405 with Allow on the
# other methods, and one error style: EST and the CRLs answer text/plain (JSON
# when Accept asks for it), the admin API answers JSON.
kp_init --label iot-fleet
kp_start
fetch_chain || { echo "Bail out! cannot fetch /cacerts"; exit 1; }
cd "$T" || exit 1
TOKEN=$(cat "$SRV/admin.token")
ROOT=${BASE%/.well-known/est}
AUTH="Authorization: Bearer $TOKEN"

# hdr FILE NAME: a header's value in a curl -D dump (last one, CR stripped)
hdr() { tr -d '\r' <"$1" | sed -n "s/^$2: *//Ip" | tail -1; }

# raw_head PATH [HEADER]: HEAD then GET of PATH pipelined on one TLS
# connection, exactly as the bytes come back (openssl s_client); prints the
# line that follows the HEAD answer's header block, which must be the GET's
# status line when the HEAD answer carried no body.
raw_head() {
    local extra=
    [ -n "${2:-}" ] && extra="$2\r\n"
    printf "HEAD %s HTTP/1.1\r\nHost: localhost\r\n${extra}\r\nGET %s HTTP/1.1\r\nHost: localhost\r\n${extra}Connection: close\r\n\r\n" \
        "$1" "$1" |
        openssl s_client -quiet -ign_eof -connect "127.0.0.1:$PORT" -servername localhost \
            -CAfile ca-chain.pem 2>/dev/null >raw.out
    tr -d '\r' <raw.out | awk 'done { print; exit } /^$/ { done = 1 }'
}

# head_like_get NAME URL [curl args]: HEAD answers GET's status, Content-Type
# and Content-Length (the GET body's size) and sends no body.
head_like_get() {
    local name=$1 url=$2 gcode hcode glen
    shift 2
    gcode=$(curl -s -o get.body -D get.h -w '%{http_code}' --cacert ca-chain.pem "$@" "$url")
    hcode=$(curl -s -I -o /dev/null -D head.h -w '%{http_code}' --cacert ca-chain.pem "$@" "$url")
    glen=$(stat -c %s get.body)
    expect_eq "HEAD $name: the status of GET ($gcode)" "$gcode" "$hcode"
    expect_eq "HEAD $name: the Content-Type of GET" "$(hdr get.h Content-Type)" \
        "$(hdr head.h Content-Type)"
    expect_eq "HEAD $name: Content-Length is the GET body's size" "$glen" \
        "$(hdr head.h Content-Length)"
    expect_eq "HEAD $name: the Content-Transfer-Encoding of GET" \
        "$(hdr get.h Content-Transfer-Encoding)" "$(hdr head.h Content-Transfer-Encoding)"
}

# --- HEAD on every GET resource ---
head_like_get /cacerts "$BASE/cacerts"
expect_eq "HEAD /cacerts: 200" 200 "$(curl -s -I -o /dev/null -w '%{http_code}' \
    --cacert ca-chain.pem "$BASE/cacerts")"
head_like_get /iot-fleet/cacerts "$BASE/iot-fleet/cacerts"
head_like_get /csrattrs "$BASE/csrattrs"
head_like_get /iot-fleet/csrattrs "$BASE/iot-fleet/csrattrs"
head_like_get /crl/default.crl "$ROOT/crl/default.crl"
head_like_get /crl/iot-fleet.crl "$ROOT/crl/iot-fleet.crl"
for p in /health /health/db /health/ca /cas /cas/iot-fleet /certs /otp /audit /requests; do
    head_like_get "/admin$p" "$ROOT/admin$p" -H "$AUTH"
done
head_like_get /metrics "$ROOT/metrics" -H "$AUTH"
# errors too: HEAD answers what GET would, without the body
head_like_get "unknown label" "$BASE/nope/cacerts"
head_like_get "unknown CRL" "$ROOT/crl/nope.crl"
head_like_get "/admin without credentials" "$ROOT/admin/health"

# --- what goes on the wire: no body after a HEAD answer ---
for p in /.well-known/est/cacerts /.well-known/est/csrattrs /crl/default.crl \
    /.well-known/est/simpleenroll; do
    expect_eq "HEAD $p on the wire: the next bytes are the GET's status line" \
        "HTTP/1.1" "$(raw_head "$p" | cut -c1-8)"
done
for p in /admin/health /metrics; do
    expect_eq "HEAD $p on the wire: the next bytes are the GET's status line" \
        "HTTP/1.1" "$(raw_head "$p" "$AUTH" | cut -c1-8)"
done
raw_head /.well-known/est/cacerts >/dev/null
expect_eq "HEAD then GET on one connection: two answers, both 200" "200 200" \
    "$(tr -d '\r' <raw.out | sed -n 's|^HTTP/1.1 \([0-9]*\) .*|\1|p' | paste -sd' ')"

# --- 405 with Allow, on every resource, in its own error style ---
# not_allowed NAME URL METHOD ALLOW STYLE [curl args]: METHOD answers 405 with
# Allow: ALLOW and a body in STYLE (text: text/plain; json: application/json)
not_allowed() {
    local name=$1 url=$2 m=$3 allow=$4 style=$5 code ct
    shift 5
    rm -f m.h m.body
    if [ "$m" = HEAD ]; then
        code=$(curl -s -I -o /dev/null -D m.h -w '%{http_code}' --cacert ca-chain.pem "$@" "$url")
    else
        code=$(curl -s -X "$m" -o m.body -D m.h -w '%{http_code}' --cacert ca-chain.pem "$@" "$url")
    fi
    expect_eq "$m $name: 405" 405 "$code"
    expect_eq "$m $name: Allow: $allow" "$allow" "$(hdr m.h Allow)"
    ct=$(hdr m.h Content-Type)
    case $style in
    text) expect_eq "$m $name: the error is text/plain" "text/plain; charset=utf-8" "$ct" ;;
    json) expect_eq "$m $name: the error is JSON" "application/json" "$ct" ;;
    esac
    if [ "$m" != HEAD ] && [ "$style" = json ]; then
        check "$m $name: the JSON says method_not_allowed" \
            grep -q '"error":"method_not_allowed"' m.body
    fi
}
for m in PUT POST DELETE; do
    not_allowed /cacerts "$BASE/cacerts" "$m" "GET, HEAD" text
    not_allowed /crl/default.crl "$ROOT/crl/default.crl" "$m" "GET, HEAD" text
done
not_allowed /iot-fleet/csrattrs "$BASE/iot-fleet/csrattrs" PATCH "GET, HEAD" text
for m in GET HEAD PUT; do
    not_allowed /simpleenroll "$BASE/simpleenroll" "$m" POST text
done
not_allowed /simplereenroll "$BASE/simplereenroll" HEAD POST text
# Accept: application/json: EST and the CRLs answer their errors in JSON
not_allowed "/cacerts (Accept: application/json)" "$BASE/cacerts" PUT "GET, HEAD" json \
    -H "Accept: application/json"
not_allowed "/crl/default.crl (Accept: application/json)" "$ROOT/crl/default.crl" PUT \
    "GET, HEAD" json -H "Accept: application/json"
# the admin API keeps JSON, and names the methods too
not_allowed /admin/health "$ROOT/admin/health" POST "GET, HEAD" json -H "$AUTH"
not_allowed /admin/audit "$ROOT/admin/audit" DELETE "GET, HEAD" json -H "$AUTH"
not_allowed /admin/otp/generate "$ROOT/admin/otp/generate" GET POST json -H "$AUTH"
not_allowed /admin/otp/generate "$ROOT/admin/otp/generate" HEAD POST json -H "$AUTH"
not_allowed /admin/otp/1 "$ROOT/admin/otp/1" GET DELETE json -H "$AUTH"
not_allowed /metrics "$ROOT/metrics" POST "GET, HEAD" json -H "$AUTH"

# --- one error style for the public resources: a missing CRL is like a missing label ---
code=$(curl -s -o crl404.body -D crl404.h -w '%{http_code}' --cacert ca-chain.pem \
    "$ROOT/crl/nope.crl")
expect_eq "GET /crl/nope.crl: 404" 404 "$code"
expect_eq "GET /crl/nope.crl: text/plain, as EST's 404" "text/plain; charset=utf-8" \
    "$(hdr crl404.h Content-Type)"
code=$(curl -s -o crl404j.body -D crl404j.h -w '%{http_code}' --cacert ca-chain.pem \
    -H "Accept: application/json" "$ROOT/crl/nope.crl")
expect_eq "GET /crl/nope.crl with Accept: application/json: 404 in JSON" \
    "404 application/json" "$code $(hdr crl404j.h Content-Type)"
check "its JSON has error and message" grep -q '"error":"unknown_label","message":' crl404j.body
code=$(curl -s -o /dev/null -D est404.h -w '%{http_code}' --cacert ca-chain.pem "$BASE/nope/cacerts")
expect_eq "GET /nope/cacerts: 404 text/plain (the same style)" "404 text/plain; charset=utf-8" \
    "$code $(hdr est404.h Content-Type)"
code=$(curl -s -o /dev/null -D adm404.h -w '%{http_code}' --cacert ca-chain.pem -H "$AUTH" \
    "$ROOT/admin/nope")
expect_eq "GET /admin/nope: 404 JSON (the admin API's style)" "404 application/json" \
    "$code $(hdr adm404.h Content-Type)"

# --- the HEAD requests are logged with their method ---
check "the access log has the HEAD of /cacerts with its 200" \
    grep -q 'method="HEAD" path="/.well-known/est/cacerts" op="cacerts" label="default" status=200 bytes=0' \
    "$T/server.log"
