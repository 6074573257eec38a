#!/usr/bin/env bash
# `lvs-director run` keeps the seed cluster healthy (tcp checks every 0.5 s,
# rise 2, fall 2, timeout 0.5 s):
#  a) fresh start: both real servers come in after `rise` successes, READY
#     only after the first convergence; wrr 6:3;
#  b) rs2's web server killed: its weight is 0 within fall*interval + timeout
#     (+ margin), then every request is answered by rs1; restarted: back at
#     weight 2 after `rise` successes; the transitions are logged with reasons;
#  c) both down: the sorry server answers; one back: the sorry server leaves;
#  d) drain/undrain through the control socket (and the drain outlives a
#     daemon restart); status text and JSON;
#  e) metrics (--metrics): weights, states, transitions and IPVS counters
#     of each server as the table and the log say;
#  f) SIGTERM: exit 0, the table stays.
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

use_director
CFG=$TEST_TMP/director.toml
INTERVAL=0.5 FALL=2 RISE=2 TIMEOUT=0.5
# detection bound: fall*interval + timeout, plus 2.5 s for the emulated VM
# and the 0.2 s polling (each poll runs three programs here).
DETECT_MAX=4.0 RISE_MAX=4.0

seed_director_config "$CFG" 1 2 "sorry_server = \"198.51.100.80\"
[service.check]
type = \"tcp\"
interval = $INTERVAL
timeout = $TIMEOUT
rise = $RISE
fall = $FALL"

load_ipvs_modules
topo_up
director_vip_up
for rs in rs1 rs2; do rs_prepare_by_hand "$rs"; done
rs_serve rs1 80
# rs2's server by hand, so the scenario can kill it by PID.
mkdir -p "$TEST_TMP/www-rs2" && echo rs2 >"$TEST_TMP/www-rs2/index.html"
start_rs2() {
    ip netns exec rs2 busybox httpd -f -p 80 -h "$TEST_TMP/www-rs2" &
    RS2_PID=$!
    BG_PIDS+=("$RS2_PID")
}
start_rs2
wait_until 20 "rs2 serving" in_ns client curl -sf --max-time 1 "http://$RS2_IP/"
sorry_up

# a) fresh start
director_run "$CFG" --sync-interval 5 --metrics 127.0.0.1:9100
wait_until 30 "the control socket" test -S "$CONTROL"
t1=$(wait_weight 20 "$RS1_IP" 1)
t2=$(wait_weight 20 "$RS2_IP" 2)
log "fresh start: rs1 at 1 after ${t1}s, rs2 at 2 after ${t2}s"
wait_weight 10 "$SORRY_IP" none >/dev/null
grep -q "unchecked -> up" "$DIRECTOR_LOG" || fail "no unchecked -> up line in the log"
grep -q "quorum lost, sorry server in" "$DIRECTOR_LOG" || fail "the sorry server did not stand in while nothing was checked"
check_wrr_ratio || fail "wrr is not 6:3 with both servers up"
pass "fresh start: servers in after rise successes (sorry server meanwhile), wrr 6:3"

# b) rs2 dies
kill "$RS2_PID"
t=$(wait_weight 15 "$RS2_IP" 0)
log "rs2 at weight 0 ${t}s after its server died"
awk -v t="$t" -v m="$DETECT_MAX" 'BEGIN { exit !(t <= m) }' || fail "detection took ${t}s (> ${DETECT_MAX}s)"
grep -q "server $RS2_IP:80: up -> down (connection refused)" "$DIRECTOR_LOG" || fail "no 'up -> down (connection refused)' line"
out=$(client_get_many 80 80 80 80 80 80) || fail "requests failed with rs2 down: $out"
[[ $(sort -u <<<"$out") == rs1 ]] || fail "with rs2 down, answers were: ${out//$'\n'/ }"
pass "rs2 down: weight 0 after ${t}s, all 6 requests answered by rs1"

# e) metrics while rs2 is down
scrape() { in_ns director curl -sS --max-time 5 http://127.0.0.1:9100/metrics; }
metric() { # NAME SERVER [STATE]: the value of one series
    local labels="service=\"TCP $VIP:80\",server=\"$2:80\"${3:+,state=\"$3\"}"
    awk -v k="$1{$labels} " 'index($0, k) == 1 { print $NF }' <<<"$METRICS"
}
METRICS=$(scrape) || fail "no metrics"
log "metrics: $(grep -c '^lvs_director_' <<<"$METRICS") series"
[[ $(metric lvs_director_server_weight "$RS2_IP") == 0 ]] || fail "rs2 weight metric: $(grep "$RS2_IP" <<<"$METRICS")"
[[ $(metric lvs_director_server_weight "$RS1_IP") == 1 ]] || fail "rs1 weight metric: $(grep "$RS1_IP" <<<"$METRICS")"
[[ $(metric lvs_director_server_configured_weight "$RS2_IP") == 2 ]] || fail "rs2 configured weight metric"
[[ $(metric lvs_director_server_state "$RS2_IP" down) == 1 ]] || fail "rs2 state metric: $(grep "state" <<<"$METRICS" | grep "$RS2_IP")"
[[ $(metric lvs_director_server_state "$RS1_IP" up) == 1 ]] || fail "rs1 state metric"
[[ $(metric lvs_director_server_transitions_total "$RS2_IP") == 2 ]] || fail "rs2 transitions (unchecked->up->down): $(grep transitions <<<"$METRICS")"
# IPVS sums its per-CPU counters every 2 s: wait for the 9 connections.
rs1_conns() { METRICS=$(scrape) && conns=$(metric lvs_director_server_connections_total "$RS1_IP") && ((${conns:-0} >= 9)); }
tries=0
until rs1_conns; do
    ((++tries < 10)) || fail "rs1 connections counter ${conns:-none} < 9: $(grep connections_total <<<"$METRICS")"
    sleep 1
done
pass "metrics: rs2 weight 0 (configured 2) state down after 2 transitions; rs1 up with $conns connections"
start_rs2
t=$(wait_weight 15 "$RS2_IP" 2)
log "rs2 back at weight 2 ${t}s after its restart"
awk -v t="$t" -v m="$RISE_MAX" 'BEGIN { exit !(t <= m) }' || fail "recovery took ${t}s (> ${RISE_MAX}s)"
grep -q "server $RS2_IP:80: down -> up (2 consecutive successes)" "$DIRECTOR_LOG" || fail "no 'down -> up' line"
pass "rs2 back: weight 2 after ${t}s"

# c) both down, then one back
kill "$RS2_PID"
in_ns rs1 ip link set eth0 down
wait_weight 15 "$SORRY_IP" 1 >/dev/null
[[ $(weight_of "$RS1_IP") == 0 && $(weight_of "$RS2_IP") == 0 ]] || fail "servers not at 0: $(ipvsadm_d -Sn)"
out=$(client_get_many 80 80 80) || fail "requests failed with both down: $out"
[[ $(sort -u <<<"$out") == sorry ]] || fail "with both down, answers were: ${out//$'\n'/ }"
grep -q "up -> down (timeout after 0.5s)" "$DIRECTOR_LOG" || fail "no timeout reason logged for rs1"
pass "both down: the sorry server answers"
in_ns rs1 ip link set eth0 up
wait_weight 15 "$RS1_IP" 1 >/dev/null
wait_weight 10 "$SORRY_IP" none >/dev/null
out=$(client_get_many 80 80 80) || fail "requests failed: $out"
[[ $(sort -u <<<"$out") == rs1 ]] || fail "with rs1 back, answers were: ${out//$'\n'/ }"
grep -q "quorum back, sorry server out" "$DIRECTOR_LOG" || fail "no quorum back line"
pass "rs1 back: the sorry server left"
start_rs2
wait_weight 15 "$RS2_IP" 2 >/dev/null

# d) drain / undrain by hand
dctl drain "tcp:$VIP:80" "$RS1_IP" || fail "drain failed"
[[ $(weight_of "$RS1_IP") == 0 ]] || fail "rs1 not at 0 after drain: $(ipvsadm_d -Sn)"
st=$(dctl status) || fail "status failed"
log "status: ${st//$'\n'/ | }"
grep -q "$RS1_IP:80 .* up .*weight 0/1.*\[drained by hand\]" <<<"$st" || fail "status does not show the drain: $st"
json=$(dctl status --output json) || fail "status json failed"
grep -q '"admin_drained": true' <<<"$json" || fail "JSON status lacks the drain"
[[ $(stat -c %a "$CONTROL") == 600 ]] || fail "control socket mode $(stat -c %a "$CONTROL")"
dctl drain "tcp:$VIP:80" 198.51.100.99 && fail "draining an unknown server succeeded"
# The drain outlives a restart of the daemon.
kill "$DIRECTOR_PID"
wait "$DIRECTOR_PID" || fail "the daemon exited $? on SIGTERM"
director_run "$CFG" --sync-interval 5
wait_until 30 "the control socket" test -S "$CONTROL"
sleep 2
[[ $(weight_of "$RS1_IP") == 0 ]] || fail "the drain did not outlive the restart: $(ipvsadm_d -Sn)"
dctl undrain "*" "$RS1_IP:80" || fail "undrain failed"
[[ $(weight_of "$RS1_IP") == 1 ]] || fail "rs1 not back at 1 after undrain: $(ipvsadm_d -Sn)"
pass "drain/undrain through the control socket (0600), kept across a restart"

# e) SIGTERM leaves the table
before=$(ipvsadm_d -Sn)
kill "$DIRECTOR_PID"
rc=0
wait "$DIRECTOR_PID" || rc=$?
((rc == 0)) || fail "exit $rc on SIGTERM"
[[ $(ipvsadm_d -Sn) == "$before" ]] || fail "the table changed at exit"
check_wrr_ratio || fail "wrr is not 6:3 without the daemon"
pass "SIGTERM: exit 0, the table stays and serves"
