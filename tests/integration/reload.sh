# SIGHUP builds a new config generation over long-lived services: no limit
# on reloads and no leak, the auth-failure counts and open refusal counts
# survive a reload, requests running during one complete, and a config that
# does not load leaves the previous one serving.
kp_init
check "otp_subject = \"any\" in [label.default]" cfg_set label.default otp_subject '"any"'
sed -i 's/^\[server\]$/[server]\nauth_fail_limit = 100\nauth_fail_limit_addr = 4\nauth_fail_window = 300/' \
    "$CFG"
kp_start
fetch_chain || { echo "Bail out! cannot fetch /cacerts"; exit 1; }

# hup_many N: N SIGHUPs, each after the previous one was answered in the log
# (signals sent while one is pending would be merged into it). The log is
# followed on a descriptor and the waits are reads on an empty FIFO, so the
# loop forks nothing but kill and takes no CPU from the server.
hup_many() {
    local n=$1 i line part='' done_one waited
    mkfifo "$T/never" && exec 4<>"$T/never" 3<"$T/server.log" || return 1
    while read -r -u 3 line; do :; done # skip what is already there
    for ((i = 1; i <= n; i++)); do
        kill -HUP "$SERVER_PID" || return 1
        done_one=0
        for ((waited = 0; waited < 10000 && !done_one; )); do
            if IFS= read -r -u 3 line; then
                line=$part$line part=''
                case $line in *"reloaded $CFG" | *'reload failed'* | *'reload refused'*) done_one=1 ;; esac
            else
                part=$part$line # a line still being written
                read -r -t 0.002 -u 4 _
                waited=$((waited + 1))
            fi
        done
        [ "$done_one" = 1 ] || { echo "reload $i: no answer in the log"; return 1; }
    done
    exec 3<&- 4<&-
    rm -f "$T/never"
}

# --- (2) auth failures and refusal counts survive a reload ---
make_csr bad "/CN=guess.example.com" ec:P-256
refused_rows() { audit_count "outcome = 'unauthorized'"; }
rows0=$(refused_rows)
for i in 1 2 3; do
    expect_eq "wrong OTP $i of 3 before the reload answers 401" 401 \
        "$(enroll_otp bad "guess-$i:wrong")"
done
check "reload" kp_reload
expect_eq "the reload wrote no refusal summary (counts still open): one row for 3" \
    $((rows0 + 1)) "$(refused_rows)"
expect_eq "wrong OTP 4 (auth_fail_limit_addr) after the reload answers 401" 401 \
    "$(enroll_otp bad "guess-4:wrong")"
expect_eq "the next attempt from the address answers 429" 429 \
    "$(enroll_otp bad "guess-5:wrong")"
# a restart ends the address block for the rest
kp_restart

# --- (1) 1,100 reloads, then a changed config still takes effect ---
expect_eq "GET /csrattrs answers 200" 200 "$(req "$BASE/csrattrs")"
cp "$T/resp.body" "$T/csrattrs.before"
t0=$(date +%s)
check "1100 SIGHUPs are each answered" hup_many 1100
echo "# 1100 reloads in $(($(date +%s) - t0)) s"
expect_eq "every one of them reloaded" 1100 "$(grep -c "reloaded $CFG\$" "$T/server.log")"
expect_eq "still answers /cacerts after 1100 reloads" 200 "$(req "$BASE/cacerts")"
check "key_types = \"ec:P-384\" in [label.default]" cfg_set label.default key_types '"ec:P-384"'
check "reload 1101 with the changed label" kp_reload
expect_eq "GET /csrattrs answers 200" 200 "$(req "$BASE/csrattrs")"
check "/csrattrs now names the new key types" sh -c "! cmp -s '$T/csrattrs.before' '$T/resp.body'"

# --- (3) enrollments running while the server reloads all complete ---
check "key_types back to EC P-256" cfg_set label.default key_types '"ec:P-256"'
check "reload" kp_reload
for i in $(seq 1 16); do
    make_csr "c$i" "/CN=concurrent-$i.example.com" ec:P-256 || echo "Bail out! make_csr"
    echo "$(new_otp "concurrent-$i")" >"$T/c$i.otp"
done
pids=
for i in $(seq 1 16); do
    (for r in 1 2 3 4; do
        code=$(enroll_otp "c$i" "concurrent-$i:$(cat "$T/c$i.otp")")
        [ "$code" = 000 ] || break # refused at connect: the only retry
    done; echo "$code" >"$T/c$i.code") &
    pids="$pids $!"
done
check "50 SIGHUPs while the enrollments run" hup_many 50
# shellcheck disable=SC2086
wait $pids
codes=$(for i in $(seq 1 16); do cat "$T/c$i.code"; done | sort | uniq -c | tr -s ' ')
expect_eq "all 16 enrollments during reloads answer 200" " 16 200" "$codes"
expect_eq "16 certificates issued" 16 "$(db "select count(*) from certificates where requester like 'concurrent-%'")"

# --- (4) a config that does not load keeps the previous one serving ---
cp "$CFG" "$T/good.toml"
check "ca_cert of [label.default] points to a missing file" \
    cfg_set label.default ca_cert '"ca/missing.pem"'
kill -HUP "$SERVER_PID"
check "the broken config is refused (reload failed in the log)" sh -c "
    for _ in \$(seq 1 400); do
        [ \$(grep -c 'reload failed' '$T/server.log') -ge 1 ] && exit 0; sleep 0.025; done; exit 1"
expect_eq "still serving /cacerts" 200 "$(req "$BASE/cacerts")"
make_csr after "/CN=after-broken.example.com" ec:P-256
expect_eq "an enrollment after the failed reload answers 200" 200 \
    "$(enroll_otp after "after-broken:$(new_otp after-broken)")"
echo 'this is [ not a config' >>"$CFG"
check "a config that does not parse is refused too" sh -c "
    kill -HUP $SERVER_PID
    for _ in \$(seq 1 400); do
        [ \$(grep -c 'reload failed' '$T/server.log') -ge 2 ] && exit 0; sleep 0.025; done; exit 1"
expect_eq "still serving /csrattrs" 200 "$(req "$BASE/csrattrs")"
cp "$T/good.toml" "$CFG"
check "the repaired config reloads" kp_reload

