#!/usr/bin/env bash
# Graceful drain in active-active: the set-up of scenario 90 (two directors,
# BGP ECMP, mh + sloppy_tcp=1, lvs-director run with [announce]), 50 held
# connections over both directors; then dir1's lvs-director gets SIGTERM:
# it takes the VIP off lvs0 (BIRD withdraws the route at once) but holds it
# on lo for withdraw_grace (2 s), so packets still in flight are forwarded,
# then exits and restores sloppy_tcp. Asserted: 0 connections broken; after
# the daemon exited no packet and no new connection reaches dir1 (its IPVS
# counters stand still while held connections and new probes keep flowing);
# the VIP is neither on lvs0 nor on lo, lvs0 (which the daemon created) is
# gone, sloppy_tcp is back to 0. Measured: time until the router drops
# dir1's path, how long the daemon took to exit.
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
MULTI_SCHED=${MULTI_SCHED:-mh} MULTI_SLOPPY=${MULTI_SLOPPY:-1}
. "$(dirname "${BASH_SOURCE[0]}")/../lib-multi.sh"

active_active_up

hold_over_both

holder_event
kill -TERM "${DIR_PID[dir1]}"
t0=$EPOCHREALTIME
log "dir1: lvs-director stopping (SIGTERM): VIP off lvs0, held on lo for the grace"
wait_until 10 "the router to drop dir1's path" router_has_paths 1
wait_until 15 "dir1's lvs-director to exit" bash -c "! kill -0 ${DIR_PID[dir1]}"
exited=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
log "dir1: lvs-director exited ${exited}s after SIGTERM"
read -r c1 p1 < <(dir_stats dir1)
sleep 3
read -r c2 p2 < <(dir_stats dir1)
log "dir1 after its daemon exited, over 3 s: new connections $((c2 - c1)), packets $((p2 - p1))"
! ip -n dir1 -o addr show | grep -qF " $VIP/32 " || fail "dir1 still holds $VIP after its daemon exited"
! ip -n dir1 link show lvs0 >/dev/null 2>&1 || fail "lvs0 (created by the daemon) is still there"
[[ $(dir_sysctl dir1 sloppy_tcp) == 0 ]] || fail "dir1: sloppy_tcp not restored to 0"
grep -q "withdrawn from lvs0 (the daemon stops)" "$TEST_TMP/director-dir1.log" || fail "no withdrawal line in dir1's log"
pass "dir1's daemon stopped: VIP withdrawn, lvs0 deleted, sloppy_tcp restored"
holder_settle
holder_finish
log "router dropped dir1's path ${R_withdrawn}s after SIGTERM"
record "broken=$R_broken of=$R_count on_failed=$ON1 withdrawn=$R_withdrawn new_ok=$R_new_ok_after max_stall=$R_max_stall_after exited=$exited late_conns=$((c2 - c1)) late_pkts=$((p2 - p1)) reasons=$R_reasons"
((c2 == c1 && p2 == p1)) ||
    fail "after the grace period dir1 still got $((c2 - c1)) new connections and $((p2 - p1)) packets"
pass "after the grace period no new connection and no packet reached dir1"
[[ $R_withdrawn != - ]] || fail "no withdrawal of dir1's path in the router's route events"
assert_none_broken
