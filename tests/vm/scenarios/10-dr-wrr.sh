#!/usr/bin/env bash
# Scenario 1, the seed's LVS-DR cluster, real servers prepared by rs-agent alone.
# Asserts: only the director answers ARP for the VIP; 9 requests are answered
# by rs2:rs1 = 6:3 (wrr 2:1); with -p 60 all land on one real server;
# `rs-agent stop` restores both real servers exactly (after two starts).
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

load_ipvs_modules
topo_up
director_vip_up
director_wrr

cluster_up_with_agent
cfg=$(agent_config)
for rs in rs1 rs2; do
    check_agent_sysctls "$rs" || fail "$rs: ARP sysctls in force after rs-agent start are wrong"
    agent "$rs" status --config "$cfg" || log "(rs-agent status exited $?)"
    agent "$rs" check --config "$cfg" || fail "rs-agent check reports a problem in $rs right after start"
done
pass "rs-agent start (twice) prepared rs1 and rs2"

check_only_director_answers_arp || fail "a host other than the director answers ARP for the VIP"
pass "only the director answers ARP for $VIP"

check_wrr_ratio || fail "wrr ratio is not rs2:rs1 = 6:3"
pass "wrr: rs2 and rs1 answer 6:3"

ipvsadm_d -E -t "$VIP:80" -s wrr -p 60
who=$(check_sticky 80) || fail "with -p 60 the client's requests went to more than one real server"
pass "persistence: every request went to $who"

cluster_down_with_agent_and_compare
pass "rs-agent stop restored rs1 and rs2 exactly"
