#!/usr/bin/env bash
# Scenario 2, the ARP problem: the VIP on the real servers' lo by hand, no
# rs-agent and default ARP sysctls. The real servers answer ARP for the VIP,
# so the ARP assertion of scenario 1 fails here: it can detect the problem.
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

load_ipvs_modules
topo_up
director_vip_up
director_wrr
for rs in rs1 rs2; do
    rs_set_arp_priors "$rs" 0 0
    rs_vip_on_lo "$rs"
    rs_serve "$rs" 80
done

if check_only_director_answers_arp; then
    fail "only the director answered ARP although the real servers hold the VIP with arp_ignore=0"
fi
who=$(arp_responders "$VIP")
grep -qx rs1 <<<"$who" || fail "rs1 did not answer ARP for the VIP (answers: ${who//$'\n'/ })"
grep -qx rs2 <<<"$who" || fail "rs2 did not answer ARP for the VIP (answers: ${who//$'\n'/ })"
pass "the ARP check fails as it should: rs1 and rs2 answer ARP for $VIP"
