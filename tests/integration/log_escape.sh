# Client bytes in logs and the audit trail (CWE-117): a Basic user id with a
# newline, a quote and a byte that is not UTF-8 forges no log line, keeps a
# JSON log line valid JSON, and its refusal is listed by /admin/audit with the
# bad byte shown as \xNN, never dropped.
kp_init
kp_start
fetch_chain || { echo "Bail out! cannot fetch /cacerts"; exit 1; }
cd "$T" || exit 1
TOKEN=$(cat "$SRV/admin.token")
ADMIN=${BASE%/.well-known/est}/admin

make_csr dev "/CN=dev.example.com" ec:P-256
# The user id: evil<LF>FORGED-<run> info "x"<0xff> (and a wrong password).
# HTTP Basic cannot carry %0a, so the header is built by hand.
forged_basic() {
    printf 'evil\nFORGED-%s info "x"\377:wrong-otp' "$1" | base64 -w0
}
# attack RUN: one enrollment with that user id; prints the status
attack() {
    post_csr dev.csr.b64 "$BASE/simpleenroll" -H "Authorization: Basic $(forged_basic "$1")"
}

# --- text logs ---
expect_eq "text: the forged user id is refused with 401" 401 "$(attack text)"
# the request's lines are written before the answer; give the log a moment to flush
for _ in $(seq 1 200); do grep -q 'FORGED-text' server.log && break; sleep 0.025; done
check "text: the user id reached the log" grep -q 'FORGED-text' server.log
check "text: no log line starts with the forged text" \
    bash -c "! grep -aq '^FORGED' server.log"
check "text: every line holding it is one event that starts with a timestamp" \
    bash -c "! grep -a 'FORGED-text' server.log | grep -qv '^[0-9]\{4\}-[0-9][0-9]-[0-9][0-9]T'"
check "text: the newline, the quote and the byte 0xff are escaped in the message" \
    grep -q 'evil\\u000aFORGED-text info \\"x\\"\\\\xff' server.log
check "text: no raw 0xff byte in the log" bash -c "! LC_ALL=C grep -q $'\xff' server.log"

# --- /admin/audit lists the event ---
expect_eq "GET /admin/audit: 200" 200 \
    "$(req -H "Authorization: Bearer $TOKEN" "$ADMIN/audit?limit=10000")"
expect_eq "the refusal of the non-UTF-8 user id is listed, not dropped" 1 \
    "$(jq '[.events[] | select(.subject != null and (.subject | startswith("evil")))] | length' resp.body)"
check "its subject shows the bad byte as \\xff and keeps the newline and the quote" \
    jq -e --arg w "$(printf 'evil\nFORGED-text info "x"\\xff')" \
    '[.events[] | select(.subject == $w)] | length == 1' resp.body
expect_eq "its outcome is unauthorized" unauthorized \
    "$(jq -r '.events[] | select(.subject != null and (.subject | startswith("evil"))) | .outcome' resp.body)"
check "the stored subject still holds the raw bytes" \
    test "$(db "select count(*) from audit where hex(subject) like '%FF'")" -ge 1

# --- JSON logs ---
check "log.format = json" cfg_set log format '"json"'
kp_restart
expect_eq "json: the forged user id is refused with 401" 401 "$(attack json)"
for _ in $(seq 1 200); do grep -q 'FORGED-json' server.log && break; sleep 0.025; done
grep -a 'FORGED-json' server.log >json.lines
check "json: the user id reached the log" test -s json.lines
# strict: jq would replace a bad byte instead of refusing the line, so iconv
# (glibc) proves the bytes are UTF-8 first
json_lines_valid() {
    iconv -f UTF-8 -t UTF-8 "$1" >/dev/null && jq -e . "$1" >/dev/null
}
check "json: every line holding it is valid JSON (UTF-8 included)" json_lines_valid json.lines
check "json: the decoded message holds the user id, 0xff shown as \\xff" \
    jq -e -s --arg w "$(printf 'who=evil\nFORGED-json info "x"\\xff peer=')" \
    '[.[] | select(.msg | contains($w))] | length == 1' json.lines
check "json: no log line starts with the forged text" \
    bash -c "! grep -aq '^FORGED' server.log"
check "json: every line of the log is a JSON object" \
    bash -c "! grep -av '^{' server.log | grep -q ."
check "json: every line of the log is valid JSON (UTF-8 included)" json_lines_valid server.log
