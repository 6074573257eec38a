#!/usr/bin/env bash
# Active-backup: two directors with keepalived (VRRP only,
# examples/keepalived.conf: dir1 MASTER 150, dir2 BACKUP 100, track_file)
# move the VIP; the router reaches the VIP on-link (ARP, gratuitous ARP on
# failover). Both nodes run `lvs-director run` with the same file
# (examples/director-backup.toml): the IPVS table, the connection-sync
# daemons ([sync] role "both": master and backup on both nodes), and the
# health file keepalived's track_file follows.
# By default the scheduler is rr and sloppy_tcp=0, so only the sync daemon
# can carry the connections over (MULTI_SCHED, MULTI_SLOPPY, MULTI_SYNC change
# that for the benchmark).
#  a) quorum: dir1's checks are rejected (iptables), so lvs-director drains
#     both real servers and writes 1 to its health file: keepalived hands
#     the VIP to dir2; the checks pass again: 0, dir1 takes the VIP back
#     (preemption);
#  b) 50 connections through dir1, synced to dir2; dir1's NIC goes down:
#     0 connections broken (asserted), the VIP on dir2; measured: time until
#     dir2 holds the VIP, until new connections succeed, longest stall.
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
MULTI_SCHED=${MULTI_SCHED:-rr} MULTI_SLOPPY=${MULTI_SLOPPY:-0} MULTI_SYNC=${MULTI_SYNC:-1}
. "$(dirname "${BASH_SOURCE[0]}")/../lib-multi.sh"
SYNCID=51

use_director
multi_modules
topo_multi_up
ip -n router route add "$VIP/32" dev eth1
multi_rs_up
for d in dir1 dir2; do multi_director_up "$d" director-backup.toml; done
for d in dir1 dir2; do
    wait_until 20 "lvs-director's quorum in $d (health file 0)" grep -qx 0 "$TEST_TMP/healthy-$d"
done
if ((MULTI_SYNC)); then
    for d in dir1 dir2; do
        daemons=$(in_ns "$d" ipvsadm -L --daemon)
        for role in master backup; do
            grep -q "^$role sync daemon (mcast=eth0, syncid=$SYNCID," <<<"$daemons" ||
                fail "$d: lvs-director did not start the $role sync daemon: $daemons"
        done
    done
    log "sync daemons started by lvs-director ([sync] role both, syncid $SYNCID on eth0): $(in_ns dir1 ipvsadm -L --daemon | tr '\n' ';')"
fi
for d in dir1 dir2; do keepalived_up "$d"; done
wait_until 30 "dir1 to hold the VIP (VRRP master)" has_vip_on_eth0 dir1
! has_vip_on_eth0 dir2 || fail "both directors hold the VIP"
pass "VRRP: dir1 is master and holds $VIP on eth0"

# a) quorum lost / regained: dir1 stops reaching its real servers
ip netns exec dir1 iptables -I OUTPUT -s "$DIR1_IP" -p tcp --dport "$SVC_PORT" -j REJECT --reject-with tcp-reset ||
    fail "iptables in dir1"
on_exit "ip netns exec dir1 iptables -D OUTPUT -s $DIR1_IP -p tcp --dport $SVC_PORT -j REJECT --reject-with tcp-reset"
wait_until 20 "dir1's health file to say 1 (quorum lost)" grep -qx 1 "$TEST_TMP/healthy-dir1"
wait_until 20 "dir2 to take the VIP after dir1 lost quorum" has_vip_on_eth0 dir2
! has_vip_on_eth0 dir1 || fail "dir1 kept the VIP without quorum"
ip netns exec dir1 iptables -D OUTPUT -s "$DIR1_IP" -p tcp --dport "$SVC_PORT" -j REJECT --reject-with tcp-reset
wait_until 20 "dir1's health file to say 0 (quorum back)" grep -qx 0 "$TEST_TMP/healthy-dir1"
wait_until 20 "dir1 to take the VIP back with quorum" has_vip_on_eth0 dir1
wait_until 10 "dir2 to release the VIP" bash -c "! ip -n dir2 -o -4 addr show dev eth0 | grep -qF ' $VIP/32 '"
pass "health file: dir1 without quorum (1) hands the VIP to dir2 (FAULT), with quorum (0) takes it back"

# b) the master fails with 50 established connections
monitor_start addr dir2 address
holder_start --watch "vip_moved=$TEST_TMP/mon-addr.log=^[0-9]+: eth0 +inet ${VIP//./\\.}/32"
on1=$(dir_conns dir1)
log "held connections on dir1 (master): $on1"
((on1 >= MULTI_CONNS)) || fail "only $on1 of $MULTI_CONNS connections are on the master"
if ((MULTI_SYNC)); then
    synced() { (($(dir_conns dir2) >= MULTI_CONNS)); }
    wait_until 20 "the $MULTI_CONNS connections synced to dir2" synced
    log "dir2 (backup) holds $(dir_conns dir2) synced ESTABLISHED entries"
fi
holder_probe
sleep 1
holder_event
ip -n dir1 link set eth0 down
log "dir1 (master) failed: eth0 down"
wait_until 20 "dir2 to take the VIP" has_vip_on_eth0 dir2
pass "the VIP moved to dir2"
holder_settle
holder_finish
log "dir2 held the VIP ${R_vip_moved}s after the failure; new connections all succeed again ${R_new_ok_after}s after it"
record "broken=$R_broken of=$R_count on_failed=$on1 vip_moved=$R_vip_moved new_ok=$R_new_ok_after max_stall=$R_max_stall_after reasons=$R_reasons"
[[ $R_vip_moved != - ]] || fail "no VIP on dir2 in its address events after the failure"
assert_none_broken
