# Request size limits: a header block over server.max_header_bytes or with
# more than server.max_header_count fields answers 431, a request-target over
# server.max_url_bytes 414, a body over server.max_body_bytes 413 (announced
# by Content-Length or sent chunked). Each time the client reads the whole
# status line and body (Connection: close) and the connection ends without a
# reset; the server keeps serving. Under the limits, the same requests pass.
kp_init
kp_start
fetch_chain || { echo "Bail out! cannot fetch /cacerts"; exit 1; }
cd "$T" || exit 1

# big N: N bytes of 'a'
big() { head -c "$1" /dev/zero | tr '\0' a; }
# refused DESC STATUS BODY [curl args...]: curl exits 0 (no reset, whole
# answer read), the status and body are as given, and Connection: close
refused() {
    local desc=$1 want=$2 body=$3 code rc; shift 3
    code=$(req "$@"); rc=$?
    expect_eq "$desc: $want, curl exit 0" "$want 0" "$code $rc"
    expect_eq "$desc: body says why" "$body" "$(cat "$T/resp.body")"
    expect_eq "$desc: Connection: close" close "$(header Connection)"
}
cacerts=$BASE/cacerts

# --- header block: server.max_header_bytes (default 16384) ---
refused "one 20000-byte header" 431 "header block larger than server.max_header_bytes" \
    -H "X-Big: $(big 20000)" "$cacerts"
expect_eq "a 15000-byte header is under the limit: 200" 200 \
    "$(req -H "X-Big: $(big 15000)" "$cacerts")"
# 1 MB of header sent raw, without waiting for the answer: the server reads
# and drops the rest, so the answer arrives whole and the close is clean
{
    printf 'GET /.well-known/est/cacerts HTTP/1.1\r\nHost: localhost\r\nX-Big: '
    big 1000000
    printf '\r\n\r\n'
} >huge.req
timeout 30 openssl s_client -quiet -connect "127.0.0.1:$PORT" <huge.req >huge.out 2>huge.err
rc=$?
expect_eq "1 MB header block sent raw: status line 431" "HTTP/1.1 431 Request Header Fields Too Large" \
    "$(head -1 huge.out | tr -d '\r')"
expect_eq "1 MB header block: the body follows, then the server closes (s_client exit 0)" \
    "header block larger than server.max_header_bytes|0" "$(tail -1 huge.out)|$rc"
check "1 MB header block: no reset seen by the client" \
    sh -c "! grep -qi 'reset\|errno' huge.err"

# a second request on a kept-alive connection is measured too
curl -s --cacert ca-chain.pem -o /dev/null -w '%{http_code} %{num_connects}\n' "$cacerts" --next \
    -s --cacert ca-chain.pem -o /dev/null -w '%{http_code} %{num_connects}\n' \
    -H "X-Big: $(big 20000)" "$cacerts" >ka.out 2>&1
expect_eq "keep-alive: 200, then 431 for an oversized second request on the same connection" \
    "200 1|431 0" "$(paste -sd'|' ka.out)"

# --- number of header fields: server.max_header_count (default 64) ---
# curl adds Host, User-Agent and Accept
many() { for i in $(seq 1 "$1"); do printf -- '-H\nX-H%s: v\n' "$i"; done; }
mapfile -t h61 < <(many 61)
mapfile -t h62 < <(many 62)
expect_eq "64 header fields: 200" 200 "$(req "${h61[@]}" "$cacerts")"
refused "65 header fields" 431 "more header fields than server.max_header_count" \
    "${h62[@]}" "$cacerts"

# --- request-target: server.max_url_bytes (default 2048) ---
path=/.well-known/est/cacerts
q=$(big $((2048 - ${#path} - 1)))
expect_eq "a 2048-byte request-target: 200" 200 "$(req "https://localhost:$PORT$path?$q")"
refused "a 2049-byte request-target" 414 "request-target longer than server.max_url_bytes" \
    "https://localhost:$PORT$path?${q}a"
refused "a 100000-byte request-target" 414 "request-target longer than server.max_url_bytes" \
    "https://localhost:$PORT$path?$(big 100000)"

# --- body: server.max_body_bytes (default 65536) ---
enroll=$BASE/simpleenroll
head -c 65537 /dev/zero | tr '\0' A >over.b64
head -c 10000000 /dev/zero | tr '\0' A >huge.b64
refused "Content-Length max_body_bytes + 1" 413 "body larger than server.max_body_bytes" \
    -X POST -H "Content-Type: application/pkcs10" --data-binary @over.b64 "$enroll"
refused "Content-Length 10 MB" 413 "body larger than server.max_body_bytes" \
    -X POST -H "Content-Type: application/pkcs10" --data-binary @huge.b64 "$enroll"
refused "chunked max_body_bytes + 1" 413 "body larger than server.max_body_bytes" \
    -X POST -H "Content-Type: application/pkcs10" -H "Transfer-Encoding: chunked" \
    --data-binary @over.b64 "$enroll"
refused "chunked 10 MB" 413 "body larger than server.max_body_bytes" \
    -X POST -H "Content-Type: application/pkcs10" -H "Transfer-Encoding: chunked" \
    --data-binary @huge.b64 "$enroll"
# announced but never sent: the answer comes at once, not after read_timeout
printf 'POST %s HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/pkcs10\r\nContent-Length: 10000000000\r\n\r\n' \
    /.well-known/est/simpleenroll >announce.req
start=$(date +%s%N)
timeout 30 openssl s_client -quiet -connect "127.0.0.1:$PORT" <announce.req >announce.out 2>/dev/null
ms=$((($(date +%s%N) - start) / 1000000))
expect_eq "Content-Length: 10000000000 without a body: 413 at once" "HTTP/1.1 413 Content Too Large" \
    "$(head -1 announce.out | tr -d '\r')"
check "... within 3 s, not after read_timeout ($ms ms)" test "$ms" -lt 3000
make_csr chunky "/CN=chunky.example.com" ec:P-256
otp=$(new_otp chunky)
expect_eq "a chunked enrollment under the limit: 200 (control)" 200 \
    "$(post_csr chunky.csr.b64 "$enroll" -u "chunky:$otp" -H "Transfer-Encoding: chunked")"

# --- configured limits are the ones applied ---
sed -i '/^\[server\]$/a max_header_bytes = 2048\nmax_url_bytes = 300\nmax_header_count = 10\nmax_body_bytes = 4096' "$CFG"
kp_restart
cacerts=$BASE/cacerts
enroll=$BASE/simpleenroll
expect_eq "max_header_bytes = 2048: a 1900-byte header passes" 200 \
    "$(req -H "X-Big: $(big 1900)" "$cacerts")"
refused "max_header_bytes = 2048: a 2100-byte header" 431 \
    "header block larger than server.max_header_bytes" -H "X-Big: $(big 2100)" "$cacerts"
mapfile -t h7 < <(many 7)
mapfile -t h8 < <(many 8)
expect_eq "max_header_count = 10: 10 fields pass" 200 "$(req "${h7[@]}" "$cacerts")"
refused "max_header_count = 10: 11 fields" 431 "more header fields than server.max_header_count" \
    "${h8[@]}" "$cacerts"
refused "max_url_bytes = 300: a 301-byte target" 414 \
    "request-target longer than server.max_url_bytes" \
    "https://localhost:$PORT$path?$(big $((300 - ${#path})))"
head -c 4097 /dev/zero | tr '\0' A >over4k.b64
refused "max_body_bytes = 4096: 4097 bytes" 413 "body larger than server.max_body_bytes" \
    -X POST -H "Content-Type: application/pkcs10" --data-binary @over4k.b64 "$enroll"

expect_eq "the server still answers after all that" 200 "$(req "$cacerts")"
# (the log starts again with the restart: four refusals since)
expect_eq "each refusal is logged with its status and reason" 4 \
    "$(grep -c 'status=4[13][134] .*than server\.max_' "$T/server.log")"
