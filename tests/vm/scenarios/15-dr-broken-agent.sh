#!/usr/bin/env bash
# Scenario 1 detects a broken agent: the same cluster, but rs-agent is wrapped
# by a script that, after every successful `start`, writes 0 back to every
# arp_ignore of the namespace (an agent that skips arp_ignore). Scenario 1's
# own ARP check (check_only_director_answers_arp) must now FAIL, with the real
# servers among the answers; and `rs-agent check` must report the problem.
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

REAL_RS_AGENT=$RS_AGENT
export REAL_RS_AGENT
RS_AGENT=$TEST_TMP/broken-rs-agent
cat >"$RS_AGENT" <<'WRAPPER'
#!/usr/bin/env bash
# rs-agent that "forgets" arp_ignore (test double for scenario 15).
ns=""
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
    [[ ${args[i]} == --netns ]] && ns=${args[i + 1]}
done
"$REAL_RS_AGENT" "$@" || exit
if [[ " $* " == *" start "* && -n $ns ]]; then
    ip netns exec "$ns" sh -c 'for f in /proc/sys/net/ipv4/conf/*/arp_ignore; do echo 0 > "$f"; done'
fi
WRAPPER
chmod +x "$RS_AGENT"

load_ipvs_modules
topo_up
director_vip_up
director_wrr
cluster_up_with_agent

arp_check_catches_real_servers "the ARP check passed although the agent left arp_ignore at 0"
pass "scenario 1's ARP check fails against the broken agent: rs1 and rs2 answer ARP"

cfg=$(agent_config)
for rs in rs1 rs2; do
    if agent "$rs" check --config "$cfg"; then
        fail "rs-agent check exits 0 in $rs although arp_ignore is 0"
    fi
done
pass "rs-agent check reports the reverted arp_ignore on rs1 and rs2"
