#!/usr/bin/env bash
# The whole seed cluster from ONE file: the director is built by
# `lvs-director apply director.toml`, and the real servers by `rs-agent start`
# with `vips_from_director = director.toml` (no VIP repeated anywhere).
# Asserts: only the director answers ARP for the VIP; wrr rs2:rs1 = 6:3;
# `rs-agent stop` restores both real servers exactly.
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

use_ipvsctl
use_director

CLUSTER=$TEST_TMP/director.toml
seed_director_config "$CLUSTER"
AGENT_CFG=$TEST_TMP/rs-agent-cluster.toml
printf 'vips_from_director = "%s"\n' "$CLUSTER" >"$AGENT_CFG"

load_ipvs_modules
topo_up
director_vip_up
"$DIRECTOR" --netns director apply "$CLUSTER" || fail "lvs-director apply failed"
log "director: $(ipvsadm_d -Sn | tr '\n' ';')"

for rs in rs1 rs2; do
    rs_set_arp_priors "$rs" "${PRIOR_ARP_IGNORE[$rs]}" "${PRIOR_ARP_ANNOUNCE[$rs]}"
    rs_serve "$rs" 80
    rs_state "$rs" >"$TEST_TMP/before-$rs"
    agent "$rs" start --config "$AGENT_CFG" || fail "rs-agent start failed in $rs"
    rs_has_vip_on_lo "$rs" || fail "the VIP of the director file is not on lo in $rs"
    check_agent_sysctls "$rs" || fail "$rs: ARP sysctls in force are wrong"
    agent "$rs" check --config "$AGENT_CFG" || fail "rs-agent check reports drift in $rs"
done
pass "rs-agent took the VIP from the director's file on rs1 and rs2"

check_only_director_answers_arp || fail "a host other than the director answers ARP for the VIP"
pass "only the director answers ARP for $VIP"
check_wrr_ratio || fail "wrr ratio is not rs2:rs1 = 6:3"
pass "wrr: rs2 and rs1 answer 6:3"

cluster_down_with_agent_and_compare
pass "rs-agent stop restored rs1 and rs2 exactly"
