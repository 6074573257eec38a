#!/usr/bin/env bash
# Reloads and restarts of `lvs-director run` leave a healthy cluster alone:
#  a) a reload changing one weight while a client holds a TCP connection
#     through the VIP: the weight is edited in place, the connection entry
#     stays, the held connection is answered by the same real server;
#  b) a broken file on reload: error with file:line:column, nothing in the
#     table changes, the daemon keeps running (and answers status);
#  c) kill -9 of the daemon and a restart with every server healthy: the
#     table (sampled all along) never changes, not even at the first
#     convergence or the first check results (servers are adopted);
#  d) a reload removing rs2 drains it (weight 0) and deletes it once it
#     has no active connection.
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

use_director
CFG=$TEST_TMP/director.toml
CHECK='[service.check]
type = "tcp"
interval = 0.5
timeout = 0.5
rise = 2
fall = 2'
config() { seed_director_config "$CFG" "$1" "$2" "$CHECK"; }
reload() {
    local n
    n=$(grep -c "reloaded in\|reload refused" "$DIRECTOR_LOG" || true)
    kill -HUP "$DIRECTOR_PID"
    wait_until 15 "reload $((n + 1))" bash -c "(( \$(grep -c 'reloaded in\|reload refused' '$DIRECTOR_LOG') > $n ))"
}

seed_lab_by_hand
config 1 2
director_run "$CFG" --sync-interval 2
wait_weight 30 "$RS1_IP" 1 >/dev/null
wait_weight 20 "$RS2_IP" 2 >/dev/null

# a) the held connection (as in 62-apply-live-edit)
hold_connection_entry "$TEST_TMP"
holder=$HELD_BY w1=3 w2=2
[[ $holder == rs2 ]] && w1=1 w2=3
log "long connection $HELD_CLIENT -> $HELD_RS ($holder); reload to rs1=$w1 rs2=$w2"
config "$w1" "$w2"
reload
grep -q "reloaded in .*services 0 added, 1 changed, 0 unchanged, 0 retiring, 0 deleted; checks 2 kept, 0 new" "$DIRECTOR_LOG" ||
    fail "the reload summary is not as expected: $(grep 'reloaded in' "$DIRECTOR_LOG")"
[[ $(weight_of "$RS1_IP") == "$w1" && $(weight_of "$RS2_IP") == "$w2" ]] || fail "weights not edited: $(ipvsadm_d -Sn)"
held_entry_unchanged || fail "the connection entry changed: $(ipvsadm_d -Lnc)"
held_connection_answered "$TEST_TMP"
pass "reload of one weight: edited in place, the held connection to $holder survived"

# b) a broken file
good=$(ipvsadm_d -Sn)
cp "$CFG" "$TEST_TMP/good.toml"
sed -i 's/^weight = 3$/weight = "three"/' "$CFG"
reload
grep -q "reload refused, the running configuration stays: $CFG:[0-9]*:[0-9]*: " "$DIRECTOR_LOG" ||
    fail "no file:line:column error: $(grep -i refused "$DIRECTOR_LOG")"
kill -0 "$DIRECTOR_PID" || fail "the daemon died on a broken file"
sleep 1
[[ $(ipvsadm_d -Sn) == "$good" ]] || fail "a broken file changed the table"
dctl status >/dev/null || fail "status does not answer after a broken reload"
pass "broken file on reload: $(grep -o "$CFG:[0-9]*:[0-9]*" "$DIRECTOR_LOG" | tail -1), nothing changed, daemon up"
cp "$TEST_TMP/good.toml" "$CFG"

# c) kill -9 and restart: sample the table all along.
: >"$TEST_TMP/samples.raw"
# One shell inside the director's namespace: one exec (ipvsadm) per sample,
# samples separated by "--" lines.
# shellcheck disable=SC2016 # $1 and $_ are the inner bash's
ip netns exec director bash -c '
    for _ in $(seq 300); do
        [[ -e $1/stop-sampling ]] && break
        { ipvsadm -Sn; echo --; } >>"$1/samples.raw"
        sleep 0.05
    done
' _ "$TEST_TMP" &
sampler=$!
BG_PIDS+=("$sampler")
sleep 1
kill -9 "$DIRECTOR_PID"
wait "$DIRECTOR_PID" 2>/dev/null || true
sleep 1
director_run "$CFG" --sync-interval 2
wait_until 30 "the restarted daemon's control socket" dctl status
sleep 4 # first results of every check, and a full sync
: >"$TEST_TMP/stop-sampling"
wait "$sampler" || true
# One line per sample (its rules joined), then count the distinct ones.
awk '/^--$/ { print s; s = ""; next } { s = s $0 ";" }' "$TEST_TMP/samples.raw" >"$TEST_TMP/samples"
n=$(wc -l <"$TEST_TMP/samples")
distinct=$(sort -u "$TEST_TMP/samples" | wc -l)
log "$n samples of the table around kill -9 and restart, $distinct distinct"
((n >= 10)) || fail "too few samples ($n)"
((distinct == 1)) || fail "the table changed during the restart"
[[ $(ipvsadm_d -Sn) == "$good" ]] || fail "the table differs after the restart"
grep -q "first convergence" <(sed -n '/running:/,$p' "$DIRECTOR_LOG" | tail -n +2) && fail "the restart planned changes"
pass "kill -9 and restart: the table never changed ($n samples)"

# d) rs2 leaves the file: drained, then deleted (no connection left).
seed_director_config "$CFG" 1 2 "$CHECK"
sed -i "/address = \"$RS2_IP\"/,\$d; \$d" "$CFG"
sed -i '${/^\[\[service.server\]\]$/d}' "$CFG"
log "file without rs2: $(tr '\n' ' ' <"$CFG")"
reload
grep -q "1 changed" <(grep "reloaded in" "$DIRECTOR_LOG" | tail -1) || fail "reload did not change the service"
wait_weight 10 "$RS2_IP" none >/dev/null
pass "a reload removing rs2 retired it (weight 0, deleted without active connections)"
