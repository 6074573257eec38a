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

arp_check_catches_real_servers "only the director answered ARP although the real servers hold the VIP with arp_ignore=0"
pass "the ARP check fails as it should: rs1 and rs2 answer ARP for $VIP"
