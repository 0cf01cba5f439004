# The access log (docs/logging.md): every field of a request line in text and
# JSON, no line lost or torn over 2,000 keep-alive requests and a SIGTERM,
# and a stderr pipe that nobody reads never holds up the answers: lines are
# dropped and counted, and the count is logged once the reader catches up.
kp_init
kp_start
fetch_chain || { echo "Bail out! cannot fetch /cacerts"; exit 1; }
cd "$T" || exit 1

TS='[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z'
# the text line of a GET /cacerts, every field in its place
CACERTS_RE="^$TS info  request req=[0-9]+ transport=\"https\" peer=\"127\.0\.0\.1:[0-9]+\" method=\"GET\" path=\"/\.well-known/est/cacerts\" op=\"cacerts\" label=\"default\" status=200 bytes=[0-9]+ ms=[0-9]+(\.[0-9])?\$"

# burst N FILE [SECONDS]: N GET /cacerts on one keep-alive connection (curl
# reuses it), within SECONDS (300); FILE gets "status connects" per request
burst() {
    local i
    for ((i = 0; i < $1; i++)); do
        printf 'url = "%s/cacerts"\noutput = "/dev/null"\n' "$BASE"
    done >burst.cfg
    timeout "${3:-300}" curl -s --cacert ca-chain.pem -w '%{http_code} %{num_connects}\n' \
        -K burst.cfg >"$2"
}
# wait_log PATTERN: until server.log holds an extended regex match (5 s at most)
wait_log() {
    for _ in $(seq 1 200); do grep -Eq "$1" server.log && return 0; sleep 0.025; done
    return 1
}

# --- text: every field ---
make_csr dev "/CN=dev.example.com" ec:P-256
otp=$(new_otp dev)
expect_eq "an OTP enrollment answers 200" 200 "$(enroll_otp dev "dev:$otp")"
expect_eq "GET /cacerts answers 200" 200 "$(req "$BASE/cacerts")"
check "text: the /cacerts line has every field, in order" wait_log "$CACERTS_RE"
check "text: the enrollment line names its subject" wait_log \
    "^$TS info  request req=[0-9]+ transport=\"https\" peer=\"127\.0\.0\.1:[0-9]+\" method=\"POST\" path=\"/\.well-known/est/simpleenroll\" op=\"simpleenroll\" label=\"default\" status=200 bytes=[0-9]+ ms=[0-9.]+ subject=\"[^\"]+\"\$"

# --- text: 2,000 keep-alive requests, then SIGTERM ---
kp_restart
burst 2000 text.burst
expect_eq "text: 2000 requests answered 200" 2000 "$(grep -c '^200 ' text.burst)"
expect_eq "text: over one connection (keep-alive)" 1 "$(awk '{ n += $2 } END { print n }' text.burst)"
kp_stop
expect_eq "text: exactly 2000 access lines after SIGTERM" 2000 "$(grep -c ' request req=' server.log)"
expect_eq "text: each of them whole (every field, nothing interleaved)" 2000 \
    "$(grep -Ec "$CACERTS_RE" server.log)"
check "text: every line of the log starts with a timestamp" \
    bash -c "! grep -Ev '^$TS (debug|info |warn |error) ' server.log | grep -q ."
check "text: the stop is the last line" bash -c "tail -1 server.log | grep -q 'info  stopped$'"

# --- JSON: every field, then 2,000 requests ---
check "log.format = json" cfg_set log format '"json"'
kp_start
otp=$(new_otp dev)
expect_eq "json: an OTP enrollment answers 200" 200 "$(enroll_otp dev "dev:$otp")"
burst 2000 json.burst
expect_eq "json: 2000 requests answered 200" 2000 "$(grep -c '^200 ' json.burst)"
kp_stop
check "json: every line of the log is valid JSON" jq -e . server.log
expect_eq "json: exactly 2001 access lines after SIGTERM" 2001 \
    "$(jq -s 'map(select(.msg == "request")) | length' server.log)"
expect_eq "json: 2000 /cacerts lines with every field and its type" 2000 "$(jq -s '
    map(select(.msg == "request" and .op == "cacerts"
        and (.ts | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}\\.[0-9]{3}Z$"))
        and .level == "info" and (.req | type == "number") and .transport == "https"
        and (.peer | startswith("127.0.0.1:")) and .method == "GET"
        and .path == "/.well-known/est/cacerts" and .label == "default"
        and .status == 200 and (.bytes | type == "number") and .bytes > 0
        and (.ms | type == "number") and (has("subject") | not)
        and (keys | length) == 13)) | length' server.log)"
check "json: the enrollment line names its subject" jq -se '
    map(select(.msg == "request" and .op == "simpleenroll" and .status == 200
        and .method == "POST" and (.subject | type == "string") and (.subject | length) > 0
        and (keys | length) == 14)) | length == 1' server.log
expect_eq "json: the request ids are 2001 distinct ids" 2001 \
    "$(jq -s 'map(select(.msg == "request") | .req) | unique | length' server.log)"

# --- a stderr pipe that nobody reads ---
check "log.format = text" cfg_set log format '"text"'
mkfifo logpipe || { echo "Bail out! mkfifo"; exit 1; }
# Held open read-write here: the server's open does not wait for a reader,
# and nothing reads until the drain below.
exec 5<>logpipe
: >server.out
"$KIPUKA" serve -c "$CFG" >server.out 2>logpipe &
SERVER_PID=$!
for _ in $(seq 1 400); do
    grep -q "listening on" server.out 2>/dev/null && break
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.025
done
PORT=$(sed -n 's|.*listening on https://[^:]*:\([0-9]*\)/.*|\1|p' server.out | head -1)
[ -n "$PORT" ] || { echo "Bail out! kipuka serve (stderr a stalled pipe) did not start"; exit 1; }
BASE=https://localhost:$PORT/.well-known/est
# The pipe holds 64 KB, the queue 1 MB: 8,000 lines of about 170 bytes
# are more than both.
N=8000
t0=$(date +%s)
burst $N stalled.burst 60
echo "# $N requests with a stalled stderr in $(($(date +%s) - t0)) s"
expect_eq "stalled stderr: $N requests answered 200" $N "$(grep -c '^200 ' stalled.burst)"
expect_eq "stalled stderr: one more answers 200 within 2 s" 200 \
    "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 --cacert ca-chain.pem "$BASE/cacerts")"
check "stalled stderr: the server still runs" kill -0 "$SERVER_PID"
# drain: a reader at last; the count of dropped lines follows the backlog
cat logpipe >drained.log &
CAT_PID=$!
for _ in $(seq 1 400); do grep -q 'log lines dropped' drained.log && break; sleep 0.025; done
check "stalled stderr: the dropped lines are counted in the log once it drains" \
    grep -Eq "^$TS warn  [0-9]+ log lines dropped: stderr did not keep up\$" drained.log
kp_stop
exec 5>&-
for _ in $(seq 1 200); do kill -0 "$CAT_PID" 2>/dev/null || break; sleep 0.025; done
kill "$CAT_PID" 2>/dev/null
wait "$CAT_PID" 2>/dev/null
logged=$(grep -c ' request req=' drained.log)
dropped=$(sed -n 's/.* warn  \([0-9]*\) log lines dropped.*/\1/p' drained.log | awk '{ n += $1 } END { print n + 0 }')
echo "# $logged access lines written, $dropped dropped"
check "stalled stderr: some lines were dropped" test "$dropped" -gt 0
expect_eq "stalled stderr: written + dropped = every request" $((N + 1)) $((logged + dropped))
check "stalled stderr: every line written is whole" \
    bash -c "! grep -Ev '^$TS (debug|info |warn |error) ' drained.log | grep -q ."
check "stalled stderr: the stop is still logged" grep -q 'info  stopped$' drained.log
