#!/usr/bin/env bash
# Active-active: two directors announce the VIP to the router over BGP (BIRD
# 2, examples/bird-*.conf); the router spreads flows over both by ECMP (L4
# hash). Both directors run `lvs-director run` with the same file
# (examples/director.toml: mh, mh-fallback, mh-port; [sysctl] sloppy_tcp=1;
# [announce] on lvs0): the daemon sets the sysctl and puts the VIP on lvs0
# once its checks pass, and BIRD exports lvs0's addresses.
# 50 long-lived TCP connections through the VIP, a line echoed every 0.1 s on
# each, spread over both directors; then dir1 fails (its NIC goes down, or
# with MULTI_FAIL=bird its BIRD is killed). Measured: connections broken
# (asserted 0), time until the router withdraws dir1's path, time until new
# connections succeed again, the longest stall of a held connection.
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
MULTI_SCHED=${MULTI_SCHED:-mh} MULTI_SLOPPY=${MULTI_SLOPPY:-1} MULTI_FAIL=${MULTI_FAIL:-link}
. "$(dirname "${BASH_SOURCE[0]}")/../lib-multi.sh"

active_active_up
for d in dir1 dir2; do
    [[ $(dir_sysctl "$d" sloppy_tcp) == "$MULTI_SLOPPY" ]] || fail "$d: sloppy_tcp is $(dir_sysctl "$d" sloppy_tcp), the file says $MULTI_SLOPPY"
done
pass "lvs-director: VIP on lvs0 and sloppy_tcp=$MULTI_SLOPPY on dir1 and dir2"
log "router: $(ip -n router route show "$VIP/32" | tr -s ' \n\t' ' ')"

hold_over_both

case $MULTI_FAIL in
link)
    holder_event
    ip -n dir1 link set eth0 down
    ;;
bird)
    holder_event
    kill -9 "${BIRD_PID[dir1]}"
    ;;
*) fail "MULTI_FAIL=$MULTI_FAIL: link or bird" ;;
esac
log "dir1 failed ($MULTI_FAIL)"
wait_until 20 "the router to withdraw dir1's path" router_has_paths 1
holder_settle
holder_finish
log "router withdrew dir1's path after ${R_withdrawn}s; new connections all succeed again ${R_new_ok_after}s after the failure"
record "broken=$R_broken of=$R_count on_failed=$ON1 withdrawn=$R_withdrawn new_ok=$R_new_ok_after max_stall=$R_max_stall_after reasons=$R_reasons"
[[ $R_withdrawn != - ]] || fail "no withdrawal of dir1's path in the router's route events"
assert_none_broken
