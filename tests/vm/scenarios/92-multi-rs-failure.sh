#!/usr/bin/env bash
# Real-server failure in active-active: the set-up of scenario 90 (two
# directors, BGP ECMP, lvs-director run with examples/director.toml: mh with
# mh-fallback, a tcp check every 1 s, fall 2, timeout 0.5 s).
#  a) rs1's echo server dies: both directors drain it (weight 0 in both
#     tables) within fall * interval + timeout + 2 s of margin; then 40 new
#     connections through the VIP all succeed and not one reaches rs1 through
#     either director (rs1's connection counters on both stand still).
#  b) rs2's dies too: no service has quorum, so both directors take the VIP
#     off lvs0 and the router loses its route; both echo servers come back:
#     the VIP returns to lvs0 only after hold_down (MULTI_HOLD_DOWN, 4 s here)
#     of servability, and the router's ECMP route with it.
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
MULTI_SCHED=${MULTI_SCHED:-mh} MULTI_SLOPPY=${MULTI_SLOPPY:-1} MULTI_HOLD_DOWN=${MULTI_HOLD_DOWN:-4}
. "$(dirname "${BASH_SOURCE[0]}")/../lib-multi.sh"
DETECT_BOUND=4.5 # fall 2 * interval 1 s + timeout 0.5 s + 2 s of margin

active_active_up
# The kernel's counters lag the connections (6.12 sums its per-CPU counters
# in the stats estimator, every 2 s): each count below first waits until
# the real servers' counters on both directors add up to what the client did.
dest_total() {
    local d r n=0
    for d in dir1 dir2; do
        for r in rs1 rs2; do
            r=$(rs_conns "$d" "$r")
            [[ $r =~ ^[0-9]+$ ]] && n=$((n + r))
        done
    done
    echo "$n"
}
counted() { (($(dest_total) >= $1)); }
base=$(dest_total)
ok=$(new_conns 20)
wait_until 10 "the directors' counters to count $ok new connections" counted $((base + ok))
for d in dir1 dir2; do
    log "$d: scheduled to rs1 $(rs_conns "$d" rs1), to rs2 $(rs_conns "$d" rs2); weights $(rs_weight "$d" rs1) $(rs_weight "$d" rs2)"
done
((ok == 20)) || fail "only $ok of 20 new connections succeeded before the failure"
# Sequential connections of one client have related source ports, so one
# director may send all of its share to one real server: the check is on
# the sums.
n1=$(($(rs_conns dir1 rs1) + $(rs_conns dir1 rs2))) n2=$(($(rs_conns dir2 rs1) + $(rs_conns dir2 rs2)))
((n1 > 0 && n2 > 0)) || fail "ECMP did not spread new connections over both directors (dir1 $n1, dir2 $n2)"
(($(rs_conns dir1 rs1) + $(rs_conns dir2 rs1) > 0)) || fail "no connection reached rs1 before the failure"
pass "20 of 20 new connections before the failure, through both directors, some to rs1"

# a) one real server fails
t0=$EPOCHREALTIME
rs_echo_stop rs1
both_drained() { [[ $(rs_weight dir1 rs1) == 0 && $(rs_weight dir2 rs1) == 0 ]]; }
wait_until 15 "both directors to drain rs1" both_drained
took=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
log "rs1 at weight 0 on dir1 and dir2 ${took}s after its service died"
awk -v t="$took" -v b="$DETECT_BOUND" 'BEGIN { exit !(t <= b) }' ||
    fail "draining rs1 took ${took}s, more than fall*interval+timeout+margin = ${DETECT_BOUND}s"
pass "both directors drained rs1 within ${DETECT_BOUND}s (${took}s)"
before1=$(rs_conns dir1 rs1) before2=$(rs_conns dir2 rs1)
base=$(dest_total)
ok=$(new_conns 40)
wait_until 10 "the directors' counters to count $ok new connections" counted $((base + ok))
after1=$(rs_conns dir1 rs1) after2=$(rs_conns dir2 rs1)
log "40 new connections after the drain: $ok succeeded; to rs1: dir1 $((after1 - before1)), dir2 $((after2 - before2))"
record "drain_s=$took new_ok=$ok of=40 to_dead_dir1=$((after1 - before1)) to_dead_dir2=$((after2 - before2))"
((after1 == before1 && after2 == before2)) || fail "new connections reached the dead rs1 through a director"
((ok == 40)) || fail "only $ok of 40 new connections succeeded with rs1 drained"
pass "no new connection reached rs1 through either director; 40 of 40 went to rs2"

# b) quorum lost on both directors, then back after the hold-down
rs_echo_stop rs2
for d in dir1 dir2; do
    wait_until 15 "$d to take $VIP off lvs0 (quorum lost)" bash -c "! ip -n $d -o -4 addr show dev lvs0 | grep -qF ' $VIP/32 '"
done
wait_until 10 "the router to lose its route to $VIP" router_has_paths 0
grep -q "announce: VIP $VIP withdrawn from lvs0 (quorum lost)" "$TEST_TMP/director-dir1.log" || fail "no withdrawal line in dir1's log"
[[ $(cat "$TEST_TMP/healthy-dir1") == 1 ]] || fail "dir1's health file does not say 1 without quorum"
pass "quorum lost: the VIP left lvs0 on both directors and the router's table"
t1=$EPOCHREALTIME
rs_echo_start rs1
rs_echo_start rs2
for d in dir1 dir2; do
    wait_until 30 "$d to announce $VIP again" has_vip_on_lvs0 "$d"
done
back=$(awk -v a="$t1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
wait_until 20 "the router's ECMP route to $VIP again" router_has_paths 2
log "VIP back on lvs0 of both directors ${back}s after the real servers came back (hold_down $MULTI_HOLD_DOWN s)"
grep -q "announce: VIP $VIP announced on lvs0 (servable for the hold-down time)" "$TEST_TMP/director-dir1.log" ||
    fail "no re-announcement after the hold-down in dir1's log"
awk -v t="$back" -v h="$MULTI_HOLD_DOWN" 'BEGIN { exit !(t >= h) }' ||
    fail "the VIP came back after ${back}s, before the hold-down of ${MULTI_HOLD_DOWN}s"
[[ $(cat "$TEST_TMP/healthy-dir1") == 0 ]] || fail "dir1's health file does not say 0 with quorum back"
ok=$(new_conns 10)
((ok == 10)) || fail "only $ok of 10 new connections after the VIP came back"
record "reannounced_s=$back hold_down=$MULTI_HOLD_DOWN"
pass "quorum back: the VIP returned after the hold-down (${back}s >= ${MULTI_HOLD_DOWN}s), the router's route too, 10 of 10 new connections"
