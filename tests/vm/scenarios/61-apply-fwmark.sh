#!/usr/bin/env bash
# The seed's firewall-mark scenarios built by `lvs-director apply` alone: the
# marks live in ipvsctl's nftables table (inet ipvsctl), written by apply.
#  a) a port group [80, 3306] with mark 11, rr: both ports are ONE service
#     (rr alternates across them); a second apply changes nothing;
#  b) persistence 60 on the group: both ports of the client stick to one
#     real server;
#  c) a port-0 persistent service: every port of the client on one real
#     server; without --prune the old group service is left (and reported),
#     the marking table goes with the last group; --prune deletes it;
#  d) --remove deletes the file's services and nothing else;
#  e) nft failing after the IPVS changes (a stand-in nft that refuses the
#     batch): exit 255, the IPVS edits are undone, the marking table is as
#     before;
#  f) a group without `mark` gets a derived mark, the same in IPVS and nft.
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

use_ipvsctl
use_director
ctl() { "$DIRECTOR" --netns director "$@"; }
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
out=$(ctl apply "$CFG") || fail "second apply failed: $out"
{ grep -qx "nftables table inet ipvsctl already as configured" <<<"$out" &&
    grep -qx "IPVS table already as configured" <<<"$out"; } || fail "a second apply plans changes: $out"
pass "a second apply leaves IPVS and the marking table alone"

# e) nft fails after the IPVS changes were made: all is put back
snapshot() { ipvsadm_d -Sn; echo "# nft"; in_ns director nft list ruleset; }
snapshot >"$TEST_TMP/before"
mkdir -p "$TEST_TMP/fakebin"
cat >"$TEST_TMP/fakebin/nft" <<'SH'
#!/bin/sh
# Refuse the JSON batch of an apply; anything else goes to the real nft.
[ "$1 $2" = "-j -f" ] && { cat >/dev/null; echo "Error: refused by the test" >&2; exit 1; }
exec /usr/sbin/nft "$@"
SH
chmod +x "$TEST_TMP/fakebin/nft"
config $'ports = [80, 3306, 8080]\nmark = 11\npersistence = 30'
sed -i 's/^scheduler = "rr"$/scheduler = "wrr"/' "$CFG"
rc=0
err=$(PATH=$TEST_TMP/fakebin:$PATH ctl apply "$CFG" 2>&1) || rc=$?
log "apply with a failing nft: $err"
((rc == 255)) || fail "apply with a failing nft exited $rc, not 255"
grep -q "refused by the test" <<<"$err" || fail "the nft error is not reported: $err"
grep -q "previous IPVS table was restored" <<<"$err" || fail "no rollback reported: $err"
snapshot >"$TEST_TMP/after"
diff -u "$TEST_TMP/before" "$TEST_TMP/after" || fail "after the failed nft step the director differs (diff above)"
pass "nft failing after the IPVS edits: exit 255, IPVS edits undone, marking table unchanged"

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
{ grep -qxF -- "-A -t $VIP:443 -s rr" <<<"$rules" && grep -qxF -- "-A -t $VIP:0 -s rr -p 60" <<<"$rules"; } ||
    fail "--remove touched services not in the file: $rules"
grep -q -- "-f 11" <<<"$rules" && fail "--remove left fwmark 11: $rules"
! in_ns director nft list table inet ipvsctl >/dev/null 2>&1 || fail "--remove left table inet ipvsctl"
pass "--remove deleted the file's service and the marking table, kept the others"

# f) a derived mark
ctl apply --prune /dev/null >/dev/null || fail "apply --prune of an empty file failed"
[[ -z $(ipvsadm_d -Sn) ]] || fail "apply --prune of an empty file left services: $(ipvsadm_d -Sn)"
config $'ports = [80, 3306]'
ctl apply "$CFG" >/dev/null || fail "apply failed"
mark=$(ipvsadm_d -Sn | awk '$1 == "-A" && $2 == "-f" { print $3 }')
((mark >= 0x10000 && mark < 0x100000)) || fail "derived mark '$mark' out of range: $(ipvsadm_d -Sn)"
grep -q "meta mark set $(printf '0x%08x' "$mark")" <<<"$(in_ns director nft list table inet ipvsctl)" ||
    fail "nft does not set the derived mark $mark"
who=$(client_get_many 80 3306) || fail "no answer through the derived-mark group"
pass "derived mark $mark: fwmark service and nft rule agree; answers: ${who//$'\n'/ }"
