#!/usr/bin/env bash
# A weight change applied by `lvs-director apply` while a client holds a TCP
# connection open through the VIP: the destination is edited in place (the
# plan has no delete or add), the kernel keeps the connection entry, and the
# held connection still gets its answer from the same real server. The new
# weights (0 for that server) take effect for new connections.
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

use_ipvsctl
use_director
ctl() { "$DIRECTOR" --netns director "$@"; }
CFG=$TEST_TMP/director.toml

# config W1 W2: the seed's wrr service with these weights.
config() { seed_director_config "$CFG" "$1" "$2"; }

seed_lab_by_hand
config 1 2
ctl apply "$CFG" >/dev/null || fail "apply failed"

# The long connection: opened now, the request is sent only once $TEST_TMP/go
# exists (busybox httpd waits 60 s for a request).
hold_connection_entry "$TEST_TMP"
holder=$HELD_BY w1=0 w2=5
[[ $holder == rs2 ]] && w1=5 w2=0
log "long connection $HELD_CLIENT -> $HELD_RS ($holder); new weights rs1=$w1 rs2=$w2"

config "$w1" "$w2"
out=$(ctl apply "$CFG") || fail "apply failed: $out"
log "plan: ${out//$'\n'/; }"
grep -q "^edit destination ${LAB_IP[$holder]}:80 of tcp $VIP:80 (dr, weight [12] -> dr, weight 0)" <<<"$out" ||
    fail "the weight change is not an in-place edit: $out"
grep -qE "^(add|delete) " <<<"$out" && fail "the plan deletes or adds: $out"
held_entry_unchanged || fail "the connection entry changed: $(ipvsadm_d -Lnc)"
pass "weights edited in place; the connection entry $HELD_CLIENT -> $HELD_RS is still ESTABLISHED"

# New connections follow the new weights: none to the holder (weight 0).
out=$(client_get_many 80 80 80) || true
[[ $(sort -u <<<"$out") != "$holder" && $(grep -c . <<<"$out") == 3 && $(grep -c "^$holder\$" <<<"$out" || true) == 0 ]] ||
    fail "new connections after the edit: ${out//$'\n'/ } (none should reach $holder)"

# The held connection still works, served by the same real server.
held_connection_answered "$TEST_TMP"
pass "the connection opened before the edit was answered by $holder (weight now 0); new ones go elsewhere"
