#!/usr/bin/env bash
# Scenario 3, the seed's firewall-mark services, director marks set by nftables.
# Real servers are prepared by hand (the classic script); this is about the
# director. Asserts:
#  a) `-A -f 11 -s rr`: ports 80 and 3306 are scheduled as ONE service
#     (round robin alternates across both ports; one service's counters hold
#     every connection, split evenly);
#  b) with -p 60, both ports of the client stick to one real server;
#  c) a port-0 persistent service (-t VIP:0 -p 60) sends every port of the
#     client (80, 3306, 8080) to one real server.
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

load_ipvs_modules
topo_up
director_vip_up
in_ns director nft -f - <<NFT
table ip lvs_vm_fwmark {
    chain prerouting {
        type filter hook prerouting priority mangle; policy accept;
        ip daddr $VIP tcp dport { 80, 3306 } meta mark set 11
    }
}
NFT
ipvsadm_d -A -f 11 -s rr
ipvsadm_d -a -f 11 -r "$RS1_IP" -g
ipvsadm_d -a -f 11 -r "$RS2_IP" -g
log "director: $(ipvsadm_d -S -n | tr '\n' ';')"
for rs in rs1 rs2; do
    rs_prepare_by_hand "$rs"
    rs_serve "$rs" 80 3306 8080
done

# a) one service across both ports
ports=(80 3306 80 3306 80 3306 80 3306)
mapfile -t answers < <(client_get_many "${ports[@]}" || true)
seq="" prev=""
for i in "${!ports[@]}"; do
    out=${answers[i]:-none}
    seq+=" ${ports[i]}:$out"
    [[ $out == rs1 || $out == rs2 ]] || fail "request $i to port ${ports[i]}: answer '$out':$seq"
    [[ $out != "$prev" ]] || fail "rr did not alternate across ports 80 and 3306:$seq"
    prev=$out
done
log "fwmark rr answers (port:server):$seq"
# IPVS folds its per-cpu counters into what it reports every 2 s: wait for them.
fwm_conns() { ipvsadm_d -L -n --stats | awk '$1 == "FWM" && $2 == 11 { print $3 }' | grep -qx 8; }
wait_until 10 "FWM 11 counters to show 8 connections" fwm_conns
stats=$(ipvsadm_d -L -n --stats)
echo "$stats"
nsvc=$(grep -cE '^(TCP|UDP|SCTP|FWM) ' <<<"$stats" || true)
[[ $nsvc == 1 ]] || fail "expected exactly one service, found $nsvc"
mapfile -t dconns < <(awk '$1 == "->" && $2 ~ /^198\.51\.100\./ { print $3 }' <<<"$stats")
[[ ${dconns[*]} == "4 4" ]] || fail "per real server connections are '${dconns[*]}', expected '4 4'"
pass "ports 80 and 3306 are one service: rr alternates across them, FWM 11 holds 8 connections, 4 per real server"

# b) persistence: port affinity
ipvsadm_d -E -f 11 -s rr -p 60
who=$(check_sticky 80 3306) || fail "with -p 60 ports 80 and 3306 of the client went to different real servers"
pass "fwmark persistence: ports 80 and 3306 stick to $who"

# c) port-0 persistent service
ipvsadm_d -C
in_ns director nft delete table ip lvs_vm_fwmark
ipvsadm_d -A -t "$VIP:0" -s rr -p 60
ipvsadm_d -a -t "$VIP:0" -r "$RS1_IP" -g
ipvsadm_d -a -t "$VIP:0" -r "$RS2_IP" -g
log "director: $(ipvsadm_d -S -n | tr '\n' ';')"
who=$(check_sticky 80 3306 8080) || fail "the port-0 persistent service sent ports of one client to different real servers"
pass "port-0 persistence: ports 80, 3306 and 8080 all go to $who"
