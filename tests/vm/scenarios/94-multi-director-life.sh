#!/usr/bin/env bash
# lvs-director's director-wide keys over a daemon's life, on dir1 of the
# active-active set-up (examples/director.toml; no BIRD: what is on lvs0 is
# what BIRD would announce).
#  a) start: sloppy_tcp's original recorded, then set; lvs0 created, the VIP
#     on it once the checks pass; the health file says 0;
#  b) `lvs-director withdraw`: the VIP leaves lvs0 (held on lo for the grace,
#     then gone), the health file says 1; `announce`: back at once, 0;
#  c) a reload with a bad interface name is refused (file:line:column in the
#     log), the daemon and the VIP stay; a reload to interface lvs1 moves the
#     VIP there and deletes lvs0 (the daemon created it);
#  d) kill -9: sloppy_tcp stays 1 and the record stays; a new daemon keeps
#     the recorded original, adopts the VIP on lvs1 (no withdrawal), and its
#     clean stop restores sloppy_tcp to 0, removes the record and the VIP;
#     before that, a VIP removed by hand comes back at the next full sync.
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
MULTI_SCHED=mh MULTI_SLOPPY=1
. "$(dirname "${BASH_SOURCE[0]}")/../lib-multi.sh"

use_director
multi_modules
topo_multi_up
multi_rs_up
CTL=$TEST_TMP/control-dir1.sock
REC=$TEST_TMP/control-dir1.sysctl.json
HEALTH=$TEST_TMP/healthy-dir1
LOG=$TEST_TMP/director-dir1.log
CFG=$TEST_TMP/director-dir1.toml
dctl1() { timeout -k 2 20 "$DIRECTOR" "$@" --control "$CTL"; }
vip_on() { ip -n dir1 -o addr show dev "$1" 2>/dev/null | grep -qF " $VIP/32 "; }
[[ $(dir_sysctl dir1 sloppy_tcp) == 0 ]] || fail "sloppy_tcp is not 0 before the daemon"

# a) start
multi_director_up dir1
wait_until 20 "lvs-director to announce $VIP on lvs0" vip_on lvs0
[[ $(dir_sysctl dir1 sloppy_tcp) == 1 ]] || fail "sloppy_tcp not set"
grep -q '"sloppy_tcp": "0"' "$REC" || fail "the original sloppy_tcp is not recorded: $(cat "$REC")"
wait_until 10 "the health file to say 0" grep -qx 0 "$HEALTH"
pass "start: sloppy_tcp 0 recorded then set to 1, $VIP on lvs0, health file 0"

# b) withdraw / announce by hand
out=$(dctl1 withdraw) || fail "lvs-director withdraw: $out"
! vip_on lvs0 || fail "the VIP is still on lvs0 after withdraw"
vip_on lo || fail "the VIP is not held on lo during the grace"
wait_until 10 "the VIP to leave lo after the grace" bash -c "! ip -n dir1 -o addr show dev lo | grep -qF ' $VIP/32 '"
grep -qx 1 "$HEALTH" || fail "the health file does not say 1 after withdraw"
dctl1 status | grep -q "^withdrawn by hand" || fail "status does not say withdrawn"
out=$(dctl1 announce) || fail "lvs-director announce: $out"
wait_until 5 "the VIP back on lvs0" vip_on lvs0
wait_until 5 "the health file to say 0 again" grep -qx 0 "$HEALTH"
pass "withdraw: VIP off lvs0, on lo for the grace only, health 1; announce: back, health 0"

# c) reloads
cp "$CFG" "$CFG.good"
sed -i 's/^interface = "lvs0"/interface = "lvs\/1"/' "$CFG"
kill -HUP "${DIR_PID[dir1]}"
wait_until 10 "the refused reload in the log" grep -q "reload refused" "$LOG"
grep -q "reload refused.*director-dir1.toml:[0-9]*:13: interface \"lvs/1\" is not a valid interface name" "$LOG" ||
    fail "the refusal does not point at the value: $(grep 'reload refused' "$LOG")"
kill -0 "${DIR_PID[dir1]}" || fail "the daemon died on a bad reload"
vip_on lvs0 || fail "a refused reload moved the VIP"
sed 's/^interface = "lvs0"/interface = "lvs1"/' "$CFG.good" >"$CFG"
kill -HUP "${DIR_PID[dir1]}"
wait_until 10 "the VIP to move to lvs1" vip_on lvs1
wait_until 10 "lvs0 (created by the daemon) to be deleted" bash -c "! ip -n dir1 link show lvs0"
pass "reload: a bad interface refused with file:line:column (nothing changed); lvs1 takes the VIP, lvs0 deleted"

# d) a crash, then a new daemon
kill -9 "${DIR_PID[dir1]}"
wait "${DIR_PID[dir1]}" 2>/dev/null || true
[[ $(dir_sysctl dir1 sloppy_tcp) == 1 && -e $REC ]] || fail "after kill -9 the sysctl or its record changed"
"$DIRECTOR" --netns dir1 run --config "$CFG" --control "$CTL" --sync-interval 2 >>"$LOG" 2>&1 &
pid=$!
BG_PIDS+=("$pid")
on_exit "kill $pid; for _ in \$(seq 40); do kill -0 $pid || break; sleep 0.2; done"
wait_until 20 "the new daemon's note about the record" grep -q "did not stop cleanly; its recorded originals are kept" "$LOG"
wait_until 20 "the new daemon to adopt the VIP on lvs1" grep -q "VIP $VIP already on lvs1: adopted" "$LOG"
wait_until 20 "the new daemon's control socket" dctl1 status
! grep -q "withdrawn from lvs1" "$LOG" || fail "the new daemon withdrew a servable VIP it found"
vip_on lvs1 || fail "the VIP left lvs1 across the restart"
ip -n dir1 addr del "$VIP/32" dev lvs1
wait_until 10 "the full sync to put the VIP back on lvs1" vip_on lvs1
grep -q "VIP $VIP was missing from lvs1: added again" "$LOG" || fail "no log line for the VIP put back"
kill -TERM "$pid"
wait_until 15 "the new daemon to exit" bash -c "! kill -0 $pid"
[[ $(dir_sysctl dir1 sloppy_tcp) == 0 ]] || fail "the clean stop did not restore the original sloppy_tcp 0"
[[ ! -e $REC ]] || fail "the record is still there after a clean stop"
! ip -n dir1 -o addr show | grep -qF " $VIP/32 " || fail "the VIP is still on dir1 after the stop"
grep -qx 1 "$HEALTH" || fail "the health file does not say 1 after the stop"
pass "crash and restart: the original (0) kept, not the 1 found; VIP adopted; clean stop restored 0, record and VIP gone"
