#!/usr/bin/env bash
# `ipvsctl restore` that the kernel refuses midway undoes only what it
# changed. A client holds a TCP connection open through the seed's service
# (VIP:80), which the rules file does not name; the file adds a service,
# edits another one and one of its servers, then names an unknown scheduler.
# Afterwards: the table equals the table before (ipvsadm -Sn), the held
# connection's entry is still ESTABLISHED to the same real server and the
# connection is answered by it, and VIP:80's counters carried on (a restore
# that flushed and re-added the table re-created the service: its counters
# restart from zero, and with expire_nodest_conn=1 the kernel drops the
# connections of the destinations it flushed).
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

use_ipvsctl
ctl() { "$IPVSCTL" --netns director "$@"; }

seed_lab_by_hand
# As operators run it (REFERENCE.md 10): connections of a removed
# destination go at their next packet instead of blackholing.
in_ns director sysctl -qw net.ipv4.vs.expire_nodest_conn=1
director_wrr
# A second service, which the failing restore edits (and must edit back).
ipvsadm_d -A -t "$VIP:8080" -s rr
ipvsadm_d -a -t "$VIP:8080" -r "$RS1_IP:8080" -g -w 1
ipvsadm_d -a -t "$VIP:8080" -r "$RS2_IP:8080" -g -w 2 -x 50 -y 5

# The long connection, as in 62: opened now, the request goes once
# $TEST_TMP/go exists (busybox httpd waits 60 s for a request).
hold_connection_entry "$TEST_TMP"
conns() { ipvsadm_d -Ln --stats --exact -t "$VIP:80" | awk '$1 == "TCP" { print $3 }'; }
# The kernel folds its per-CPU counters in every 2 s: wait until the held
# connection is counted, so a service re-created by the restore shows.
counted() { (($(conns) >= 1)); }
wait_until 10 "VIP:80 to count the held connection" counted
conns_before=$(conns)
ipvsadm_d -Sn >"$TEST_TMP/save-before"
ipvsadm_d -Ln --thresholds >"$TEST_TMP/thr-before"
log "long connection $HELD_CLIENT -> $HELD_RS ($HELD_BY); VIP:80 has counted $conns_before connections"

cat >"$TEST_TMP/rules" <<R
-A -t $VIP:443 -s rr
-a -t $VIP:443 -r $RS1_IP:443 -g -w 1
-E -t $VIP:8080 -s wrr -p 30
-e -t $VIP:8080 -r $RS2_IP:8080 -g -w 7
-d -t $VIP:8080 -r $RS1_IP:8080
-A -t $VIP:8443 -s nosuchsched
-A -t $VIP:9000 -s rr
R
set +e
ctl restore "$TEST_TMP/rules" 2>"$TEST_TMP/err"
rc=$?
set -e
log "restore: exit $rc: $(cat "$TEST_TMP/err")"
{ [[ $rc -eq 255 ]] && grep -q '^line 6: Scheduler or persistence engine not found' "$TEST_TMP/err"; } ||
    fail "the failing restore: exit $rc, $(cat "$TEST_TMP/err")"

ipvsadm_d -Sn >"$TEST_TMP/save-after"
diff -u <(sort "$TEST_TMP/save-before") <(sort "$TEST_TMP/save-after") ||
    fail "the table after the failed restore differs from before (diff above)"
ipvsadm_d -Ln --thresholds >"$TEST_TMP/thr-after"
diff -u <(sort "$TEST_TMP/thr-before") <(sort "$TEST_TMP/thr-after") ||
    fail "thresholds differ after the failed restore (diff above)"
pass "the table after the failed restore equals the table before (ipvsadm -Sn, thresholds)"

held_entry_unchanged || fail "the held connection's entry is gone or changed: $(ipvsadm_d -Lnc)"
conns_after=$(conns)
((conns_after >= conns_before)) ||
    fail "VIP:80's counters restarted ($conns_before connections before, $conns_after after): the service was re-created"
pass "VIP:80 untouched: $HELD_CLIENT -> $HELD_RS still ESTABLISHED, counters carried on ($conns_after connections)"

held_connection_answered "$TEST_TMP"
pass "the connection held across the failed restore was answered by $HELD_BY"

# Two runs on one table go one after the other: while another process holds
# the namespace's table lock (the file the restore above locked), a change
# waits, and goes in once the lock is released.
lockf=$(newest /run/lvs-ipvs/ipvs-*.lock)
[[ -n $lockf ]] || fail "no table lock file under /run/lvs-ipvs after the restore"
exec 9>"$lockf"
flock -x 9
# The change must not inherit descriptor 9 (it would hold the lock itself).
ctl add-service -t 198.51.100.99:81 -s rr 9>&- &
waiter=$!
sleep 1.5
kill -0 "$waiter" 2>/dev/null || fail "ipvsctl add-service ran while another process held the table lock"
! ipvsadm_d -Ln -t 198.51.100.99:81 >/dev/null 2>&1 || fail "the service went in while the lock was held"
# The same for ipvsctl in ipvsadm mode (scripts calling `ipvsadm -A`).
ip netns exec director "$IPVSCTL" -A -t 198.51.100.99:82 -s rr 9>&- &
waiter_adm=$!
sleep 1.5
kill -0 "$waiter_adm" 2>/dev/null || fail "ipvsctl -A (ipvsadm mode) ran while another process held the table lock"
! ipvsadm_d -Ln -t 198.51.100.99:82 >/dev/null 2>&1 || fail "the ipvsadm-mode service went in while the lock was held"
exec 9>&-
wait "$waiter" || fail "ipvsctl add-service failed after the lock was released"
wait "$waiter_adm" || fail "ipvsctl -A (ipvsadm mode) failed after the lock was released"
ipvsadm_d -Ln -t 198.51.100.99:81 >/dev/null || fail "the service is missing after the lock was released"
ipvsadm_d -Ln -t 198.51.100.99:82 >/dev/null || fail "the ipvsadm-mode service is missing after the lock was released"
ctl delete-service -t 198.51.100.99:81
ip netns exec director "$IPVSCTL" -D -t 198.51.100.99:82
pass "a change (subcommand or ipvsadm mode) waits for the table lock of its namespace ($(basename "$lockf")) and goes in once it is free"
