#!/usr/bin/env bash
# The seed experiment with ipvsctl in place of ipvsadm on the director:
# wrr 2:1 over DR, persistence, the rules saved with `ipvsctl save` and
# restored with `ipvsctl restore` after a flush (what the boot-time unit
# does). Real servers are prepared by hand here (rs-agent has its own
# scenarios).
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

use_ipvsctl
ctl() { "$IPVSCTL" --netns director "$@"; }

seed_lab_by_hand
ctl add-service -t "$VIP:80" -s wrr
ctl add-server -t "$VIP:80" -r "$RS1_IP:80" -g -w 1
ctl add-server -t "$VIP:80" -r "$RS2_IP:80" -g -w 2
log "director: $(ctl save | tr '\n' ';')"

check_wrr_ratio || fail "wrr ratio is not rs2:rs1 = 6:3"
pass "wrr via ipvsctl: rs2 and rs1 answer 6:3"

# Counters after real traffic: same numbers as ipvsadm prints. The kernel
# folds per-cpu counters into what it reports every 2 s: wait until stable.
wait_until 20 "stable counters" bash -c \
    "a=\$(ip netns exec director ipvsadm -Ln --stats); sleep 3; [[ \$a == \$(ip netns exec director ipvsadm -Ln --stats) ]]"
for opts in "--stats" "--stats --exact"; do
    read -r -a o <<<"$opts"
    a=$(in_ns director ipvsadm -Ln "${o[@]}"); c=$(ctl list "${o[@]}")
    [[ $a == "$c" ]] || { diff <(echo "$a") <(echo "$c"); fail "list $opts differs after traffic"; }
done
grep -q ' [1-9]' <<<"$c" || fail "no counters after traffic: $c"
pass "list --stats (nonzero counters) == ipvsadm -Ln --stats"

ctl save >"$TEST_TMP/rules"
[[ $(in_ns director ipvsadm -Sn) == "$(cat "$TEST_TMP/rules")" ]] || fail "ipvsctl save != ipvsadm -Sn"
ctl flush
[[ -z $(ctl save) ]] || fail "flush left services"
ctl restore "$TEST_TMP/rules"
[[ $(ctl save) == "$(cat "$TEST_TMP/rules")" ]] || fail "restore did not reproduce the rules"
check_wrr_ratio || fail "after save/flush/restore: wrr ratio is not 6:3"
pass "save, flush, restore: same rules, same 6:3"

ctl edit-service -t "$VIP:80" -s wrr -p 60
who=$(check_sticky 80) || fail "with -p 60 the client's requests went to more than one real server"
pass "persistence via ipvsctl: every request went to $who"
