#!/usr/bin/env bash
# The seed's director built by `lvs-director apply` alone (no ipvsadm command):
#  a) wrr 1:2 over DR from a TOML file; a second apply plans nothing;
#  b) --dry-run (text and JSON) changes nothing: `ipvsadm -Sn` and
#     `nft list ruleset` are the same before and after;
#  c) bad files change nothing and name file:line:column (exit 2);
#  d) a change the kernel refuses midway (unknown scheduler) rolls back the
#     changes already made (exit 255, table as before);
#  e) persistence switched on by an apply (an edit): every request of the
#     client goes to one real server.
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

use_ipvsctl
use_director
ctl() { "$DIRECTOR" --netns director "$@"; }
CFG=$TEST_TMP/director.toml

# seed_config [EXTRA_SERVICE_LINES]: the seed's wrr service.
seed_config() { seed_director_config "$CFG" 1 2 "${1:-}"; }
snapshot() { ipvsadm_d -Sn; echo "# nft"; in_ns director nft list ruleset; }

seed_lab_by_hand

# a) wrr from the file
seed_config ""
out=$(ctl apply "$CFG") || fail "apply failed: $out"
log "plan: ${out//$'\n'/; }"
grep -qx "add service tcp $VIP:80 (scheduler wrr)" <<<"$out" || fail "plan does not add the service"
rules=$(ipvsadm_d -Sn)
for line in "-A -t $VIP:80 -s wrr" "-a -t $VIP:80 -r $RS1_IP:80 -g -w 1" "-a -t $VIP:80 -r $RS2_IP:80 -g -w 2"; do
    grep -qxF -- "$line" <<<"$rules" || fail "ipvsadm -Sn lacks '$line': $rules"
done
check_wrr_ratio || fail "wrr ratio is not rs2:rs1 = 6:3"
pass "apply built the seed's service: rs2 and rs1 answer 6:3"
out=$(ctl apply "$CFG") || fail "second apply failed: $out"
grep -q "already as configured" <<<"$out" || fail "second apply planned changes: $out"
[[ $(ipvsadm_d -Sn) == "$rules" ]] || fail "second apply changed the table"
pass "a second apply plans and changes nothing"

# b) dry run
snapshot >"$TEST_TMP/before"
seed_config "persistence = 60"
sed -i 's/^weight = 2$/weight = 5/' "$CFG"
out=$(ctl apply --dry-run "$CFG") || fail "dry run failed: $out"
log "dry-run plan: ${out//$'\n'/; }"
grep -q "^edit service tcp $VIP:80 " <<<"$out" || fail "dry run does not show the service edit"
grep -q "^edit destination $RS2_IP:80 of tcp $VIP:80 (dr, weight 2 -> dr, weight 5)" <<<"$out" ||
    fail "dry run does not show the weight edit"
grep -qx "dry run: nothing changed" <<<"$out" || fail "dry run does not say so"
json=$(ctl apply --dry-run --prune --output json "$CFG") || fail "JSON dry run failed"
grep -q '"dry_run": true' <<<"$json" || fail "JSON plan lacks dry_run: $json"
grep -q '"action": "edit"' <<<"$json" || fail "JSON plan lacks the edits: $json"
snapshot >"$TEST_TMP/after"
diff -u "$TEST_TMP/before" "$TEST_TMP/after" || fail "--dry-run changed the director (diff above)"
pass "--dry-run (text and JSON) printed the edits and changed nothing"

# c) bad files
bad() { # EXPECTED_POSITION MESSAGE_PART: $CFG must fail with it
    local err rc=0
    err=$(ctl apply "$CFG" 2>&1 >/dev/null) || rc=$?
    ((rc == 2)) || fail "bad config: exit $rc, not 2 ($err)"
    [[ $err == "$CFG:$1: "*"$2"* ]] || fail "bad config: expected '$CFG:$1: ...$2...', got: $err"
    snapshot >"$TEST_TMP/after"
    diff -u "$TEST_TMP/before" "$TEST_TMP/after" || fail "a bad config changed the director"
    log "rejected: $err"
}
seed_config 'schedular = "rr"'
bad 5:1 "unknown field \`schedular\`"
seed_config 'persistence = 60'
sed -i 's/^weight = 2$/weight = -2/' "$CFG"
bad 14:10 "out of range"
seed_config 'port = 81'
bad 5:1 "duplicate key"
seed_config ''
printf '\n[[service]]\nvip = "%s"\nports = [80, 443]\n' "$VIP" >>"$CFG"
bad 18:10 "tcp port 80 of $VIP is already a service"
pass "bad configs: exit 2, file:line:column, director unchanged"

# d) kernel refusal midway: the scheduler edit is made, the new service is
# refused, and the edit is undone.
seed_config ''
sed -i 's/^scheduler = "wrr"$/scheduler = "rr"/' "$CFG"
printf '\n[[service]]\nvip = "%s"\nport = 443\nscheduler = "nosuchsched"\n' "$VIP" >>"$CFG"
rc=0
err=$(ctl apply "$CFG" 2>&1) || rc=$?
log "refused apply: $err"
((rc == 255)) || fail "a refused apply exited $rc, not 255"
grep -q "previous IPVS table was restored" <<<"$err" || fail "no rollback reported: $err"
snapshot >"$TEST_TMP/after"
diff -u "$TEST_TMP/before" "$TEST_TMP/after" || fail "after the rollback the director differs (diff above)"
pass "kernel refusal midway: exit 255, previous table restored"

# e) persistence by an in-place edit
seed_config "persistence = 60"
out=$(ctl apply "$CFG") || fail "apply failed: $out"
grep -q "^edit service tcp $VIP:80 (scheduler wrr -> scheduler wrr, persistence 60s)" <<<"$out" ||
    fail "persistence was not an edit: $out"
grep -qxF -- "-A -t $VIP:80 -s wrr -p 60" <<<"$(ipvsadm_d -Sn)" || fail "no -p 60 in $(ipvsadm_d -Sn)"
who=$(check_sticky 80) || fail "with persistence 60 the client's requests went to more than one real server"
pass "persistence via apply: every request went to $who"
