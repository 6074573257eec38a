#!/usr/bin/env bash
# The seed's firewall-mark scenarios built by `ipvsctl apply` alone: the
# marks live in ipvsctl's nftables table (inet ipvsctl), written by apply.
#  a) a port group [80, 3306] with mark 11, rr: both ports are ONE service
#     (rr alternates across them);
#  b) persistence 60 on the group: both ports of the client stick to one
#     real server;
#  c) a port-0 persistent service: every port of the client on one real
#     server; without --prune the old group service is left (and reported),
#     the marking table goes with the last group; --prune deletes it;
#  d) --remove deletes the file's services and nothing else.
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
SRC=${IPVSCTL:-$ROOT/target/debug/ipvsctl}
[[ -x $SRC ]] || fail "no $SRC (cargo build -p lvs-ipvs)"
IPVSCTL=$TEST_TMP/ipvsctl
cp "$SRC" "$IPVSCTL"
ctl() { "$IPVSCTL" --netns director "$@"; }
CFG=$TEST_TMP/director.toml

# config SERVICE_LINES: one service with rs1 and rs2 (DR).
config() {
    cat >"$CFG" <<TOML
[[service]]
vip = "$VIP"
scheduler = "rr"
$1

[[service.server]]
address = "$RS1_IP"

[[service.server]]
address = "$RS2_IP"
TOML
}

load_ipvs_modules
topo_up
director_vip_up
for rs in rs1 rs2; do
    rs_prepare_by_hand "$rs"
    rs_serve "$rs" 80 3306 8080
done

# a) one service across both ports
config $'ports = [80, 3306]\nmark = 11'
out=$(ctl apply "$CFG") || fail "apply failed: $out"
log "plan: ${out//$'\n'/; }"
grep -qxF -- "-A -f 11 -s rr" <<<"$(ipvsadm_d -Sn)" || fail "no fwmark service 11: $(ipvsadm_d -Sn)"
table=$(in_ns director nft list table inet ipvsctl) || fail "no nftables table inet ipvsctl"
echo "$table"
grep -q "ip daddr $VIP tcp dport { 80, 3306 } meta mark set 0x0000000b" <<<"$table" ||
    fail "the marking rule is not as expected"
grep -q "type filter hook prerouting priority mangle" <<<"$table" || fail "chain is not at mangle priority"
ports=(80 3306 80 3306 80 3306)
mapfile -t answers < <(client_get_many "${ports[@]}" || true)
seq="" prev=""
for i in "${!ports[@]}"; do
    a=${answers[i]:-none}
    seq+=" ${ports[i]}:$a"
    [[ $a == rs1 || $a == rs2 ]] || fail "request $i to port ${ports[i]}: answer '$a':$seq"
    [[ $a != "$prev" ]] || fail "rr did not alternate across ports 80 and 3306:$seq"
    prev=$a
done
pass "port group 80+3306 is one service (mark 11 in table inet ipvsctl); rr alternates:$seq"

# b) persistence on the group: an edit, and port affinity
config $'ports = [80, 3306]\nmark = 11\npersistence = 60'
out=$(ctl apply "$CFG") || fail "apply failed: $out"
grep -q "^edit service fwmark 11 " <<<"$out" || fail "persistence was not an edit: $out"
grep -q "^add service" <<<"$out" && fail "the group service was re-created: $out"
who=$(check_sticky 80 3306) || fail "with persistence, ports 80 and 3306 of the client went to different real servers"
pass "group persistence: ports 80 and 3306 stick to $who"

# c) port 0 with persistence; the group service stays without --prune
config $'port = 0\npersistence = 60'
out=$(ctl apply "$CFG") || fail "apply failed: $out"
log "plan: ${out//$'\n'/; }"
grep -qx "not in the file, left alone (--prune deletes it): service fwmark 11" <<<"$out" ||
    fail "the group service is not reported as left alone: $out"
grep -qx "delete nftables table inet ipvsctl" <<<"$out" || fail "the marking table is not deleted: $out"
grep -qxF -- "-A -f 11 -s rr -p 60" <<<"$(ipvsadm_d -Sn)" || fail "without --prune the group service went"
! in_ns director nft list table inet ipvsctl >/dev/null 2>&1 || fail "table inet ipvsctl is still there"
out=$(ctl apply --prune "$CFG") || fail "apply --prune failed: $out"
grep -qx "delete service fwmark 11" <<<"$out" || fail "--prune does not delete fwmark 11: $out"
rules=$(ipvsadm_d -Sn)
grep -q -- "-f 11" <<<"$rules" && fail "--prune left fwmark 11: $rules"
grep -qxF -- "-A -t $VIP:0 -s rr -p 60" <<<"$rules" || fail "no port-0 service: $rules"
who=$(check_sticky 80 3306 8080) || fail "the port-0 persistent service sent ports of one client to different real servers"
pass "port-0 persistence: ports 80, 3306 and 8080 go to $who; --prune deleted the old group"

# d) --remove deletes only the file's services
ipvsadm_d -A -t "$VIP:443" -s rr
config $'ports = [80, 3306]\nmark = 11'
ctl apply "$CFG" >/dev/null || fail "apply failed"
in_ns director nft list table inet ipvsctl >/dev/null || fail "no marking table"
out=$(ctl apply --remove "$CFG") || fail "apply --remove failed: $out"
log "remove plan: ${out//$'\n'/; }"
rules=$(ipvsadm_d -Sn)
grep -qxF -- "-A -t $VIP:443 -s rr" <<<"$rules" && grep -qxF -- "-A -t $VIP:0 -s rr -p 60" <<<"$rules" ||
    fail "--remove touched services not in the file: $rules"
grep -q -- "-f 11" <<<"$rules" && fail "--remove left fwmark 11: $rules"
! in_ns director nft list table inet ipvsctl >/dev/null 2>&1 || fail "--remove left table inet ipvsctl"
pass "--remove deleted the file's service and the marking table, kept the others"
