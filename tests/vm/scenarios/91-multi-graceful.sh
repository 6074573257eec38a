#!/usr/bin/env bash
# Graceful drain in active-active: the set-up of scenario 90 (two directors,
# BGP ECMP, mh + sloppy_tcp=1), 50 held connections over both directors;
# then dir1 withdraws its route (`birdc disable vip`: the VIP leaves BGP while
# dir1 still holds it and would still forward), waits a grace period, and
# only then drops the VIP from lvs0 - what lvs-director's [announce]
# withdraw_grace will do. Asserted: 0 connections broken, and after the
# grace period no packet and no new connection reaches dir1 (its IPVS
# counters stand still while held connections and new probes keep flowing).
# Measured: time until the router drops dir1's path.
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
MULTI_SCHED=${MULTI_SCHED:-mh} MULTI_SLOPPY=${MULTI_SLOPPY:-1}
. "$(dirname "${BASH_SOURCE[0]}")/../lib-multi.sh"
GRACE=2

use_director
multi_modules
topo_multi_up
multi_rs_up
for d in dir1 dir2; do multi_director_up "$d" lvs0; done
for ns in router dir1 dir2; do bird_up "$ns"; done
wait_until 40 "the router's ECMP route to $VIP via dir1 and dir2" router_has_paths 2

monitor_start route router route
holder_start --watch "withdrawn=$TEST_TMP/mon-route.log=^(Deleted $VIP |$VIP via )"
on1=$(dir_conns dir1) on2=$(dir_conns dir2)
log "held connections per director: dir1 $on1, dir2 $on2"
((on1 > 0 && on2 > 0)) || fail "ECMP did not spread the connections over both directors (dir1 $on1, dir2 $on2)"
holder_probe
sleep 1

holder_event
birdc_ dir1 disable vip >/dev/null || fail "birdc disable vip failed in dir1"
log "dir1: announcement withdrawn (birdc disable vip); VIP still on lvs0 for ${GRACE}s"
wait_until 10 "the router to drop dir1's path" router_has_paths 1
sleep "$GRACE"
read -r c1 p1 < <(dir_stats dir1)
sleep 3
read -r c2 p2 < <(dir_stats dir1)
ip -n dir1 addr del "$VIP/32" dev lvs0
log "dir1 after the grace period, over 3 s: new connections $((c2 - c1)), packets $((p2 - p1)); VIP removed from lvs0"
holder_settle
holder_finish
log "router dropped dir1's path ${R_withdrawn}s after the withdrawal"
record "broken=$R_broken of=$R_count on_failed=$on1 withdrawn=$R_withdrawn new_ok=$R_new_ok_after max_stall=$R_max_stall_after late_conns=$((c2 - c1)) late_pkts=$((p2 - p1)) reasons=$R_reasons"
((c2 == c1 && p2 == p1)) ||
    fail "after the grace period dir1 still got $((c2 - c1)) new connections and $((p2 - p1)) packets"
pass "after the grace period no new connection and no packet reached dir1"
[[ $R_withdrawn != - ]] || fail "no withdrawal of dir1's path in the router's route events"
assert_none_broken
