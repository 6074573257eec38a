#!/usr/bin/env bash
# Drain end to end: lvs-director with `type = "agent"` checks (every 0.5 s,
# timeout 0.5 s, rise 1, fall 1) reading each real server's own verdict from
# `rs-agent watch --agent-listen` (started with --no-repair, so a VIP deleted
# by hand stays deleted):
#  a) both agents answer up: both servers come in;
#  b) `rs-agent drain` on rs2: rs2's weight is 0 within interval + timeout
#     (+ margin for the emulated VM); new requests all go to rs1; a
#     connection held to rs2 survives the drain and is answered by rs2;
#     `rs-agent undrain`: rs2 back at its weight;
#  c) rs2's VIP deleted by hand: its agent answers down and the director
#     drains rs2 (a plain TCP check to rs2's own address would still pass);
#     VIP back: rs2 back.
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

use_director
CFG=$TEST_TMP/director.toml
DRAIN_MAX=3.5
seed_director_config "$CFG" 1 2 "[service.check]
type = \"agent\"
port = 7000
interval = 0.5
timeout = 0.5
rise = 1
fall = 1"

load_ipvs_modules
topo_up
director_vip_up
cfg=$(agent_config)
for rs in rs1 rs2; do
    rs_serve "$rs" 80
    agent "$rs" start --config "$cfg" || fail "rs-agent start failed in $rs"
    # Directly, not through a shell function, so $! is rs-agent itself.
    "$RS_AGENT" --netns "$rs" --state-dir "$TEST_TMP/rsa-$rs" watch --config "$cfg" \
        --agent-listen "${LAB_IP[$rs]}:7000" --no-repair >"$TEST_TMP/watch-$rs.log" 2>&1 &
    BG_PIDS+=($!)
done
# agent_says RS: the endpoint's one line, as the director sees it.
agent_says() {
    # shellcheck disable=SC2016 # $1 is the inner bash's
    in_ns director timeout 5 bash -c 'exec 3<>"/dev/tcp/$1/7000" && head -n 1 <&3' _ "${LAB_IP[$1]}"
}
for rs in rs1 rs2; do
    wait_until 30 "$rs's agent endpoint" bash -c "[[ \$(ip netns exec director timeout 5 bash -c 'exec 3<>/dev/tcp/${LAB_IP[$rs]}/7000 && head -n 1 <&3') == up ]]"
done

# a) both up
director_run "$CFG" --sync-interval 5
wait_until 30 "the control socket" test -S "$CONTROL"
wait_weight 20 "$RS1_IP" 1 >/dev/null
wait_weight 20 "$RS2_IP" 2 >/dev/null
pass "agent checks: both real servers answer up and are in (rs1 1, rs2 2)"

# A long connection through the VIP that landed on rs2 (a few tries: wrr
# sends two of three new connections there).
holder_pid=
for try in 1 2 3 4 5 6; do
    dir=$TEST_TMP/hold-$try
    hold_connection "$dir"
    pid=$HOLDER_PID
    sleep 0.3
    port=$(in_ns client ss -Htn state established dst "$VIP:80" | awk '{print $3}' | sed 's/.*://' | sort -n | tail -1)
    rs=$(ipvsadm_d -Lnc | awk -v c="$CLIENT_IP:$port" '$4 == c { print $6 }')
    if [[ $rs == "$RS2_IP:80" ]]; then
        holder_pid=$pid holder_dir=$dir holder_port=$port
        break
    fi
    : >"$dir/go"
    wait "$pid" || true
done
[[ -n $holder_pid ]] || fail "no connection landed on rs2 in 6 tries: $(ipvsadm_d -Lnc)"
log "held connection $CLIENT_IP:$holder_port -> $RS2_IP:80"

# b) drain rs2 on the real server itself
agent rs2 drain --reason "maintenance" || fail "rs-agent drain failed"
[[ $(agent_says rs2) == drain ]] || fail "rs2's agent answers '$(agent_says rs2)' after drain"
t=$(wait_weight 10 "$RS2_IP" 0)
log "rs2 at weight 0 ${t}s after rs-agent drain"
awk -v t="$t" -v m="$DRAIN_MAX" 'BEGIN { exit !(t <= m) }' || fail "the drain took ${t}s (> ${DRAIN_MAX}s)"
out=$(client_get_many 80 80 80 80 80 80) || fail "requests failed with rs2 drained: $out"
[[ $(sort -u <<<"$out") == rs1 ]] || fail "with rs2 drained, answers were: ${out//$'\n'/ }"
ipvsadm_d -Lnc | awk -v c="$CLIENT_IP:$holder_port" '$4 == c && $3 == "ESTABLISHED"' | grep -q . ||
    fail "the held connection's entry is gone after the drain: $(ipvsadm_d -Lnc)"
: >"$holder_dir/go"
wait "$holder_pid" || true
grep -qx rs2 "$holder_dir/long.out" 2>/dev/null || fail "the held connection was not answered by rs2: $(cat "$holder_dir/long.out" 2>/dev/null)"
pass "rs-agent drain on rs2: weight 0 after ${t}s, new requests all to rs1, the held connection answered by rs2"

agent rs2 undrain || fail "rs-agent undrain failed"
t=$(wait_weight 10 "$RS2_IP" 2)
pass "rs-agent undrain: rs2 back at weight 2 after ${t}s"

# c) rs2 loses its VIP: it would drop DR traffic; its agent says down
ip -n rs2 addr del "$VIP/32" dev lo
[[ $(agent_says rs2) == down* ]] || fail "rs2's agent answers '$(agent_says rs2)' without its VIP"
in_ns director timeout 5 bash -c "exec 3<>/dev/tcp/$RS2_IP/80" || fail "rs2's web server itself is unreachable (the point is that it is not)"
t=$(wait_weight 10 "$RS2_IP" 0)
grep -q "server $RS2_IP:80: up -> down (agent: down" "$DIRECTOR_LOG" || fail "no 'up -> down (agent: down' line in the director's log"
pass "rs2 without its VIP: the agent answers down, rs2 at weight 0 after ${t}s"
rs_vip_on_lo rs2
t=$(wait_weight 10 "$RS2_IP" 2)
pass "VIP back on rs2: back at weight 2 after ${t}s"
