#!/usr/bin/env bash
# ipvsctl against Debian's ipvsadm on the same kernel: for states built by
# either tool, `ipvsctl save` == `ipvsadm -Sn` and `ipvsctl list [...]` ==
# `ipvsadm -Ln [...]`; restore round trip; all-or-nothing restore with
# rollback; typed errors; per-namespace tables.
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

# ipvsctl from the host's build (IPVSCTL overrides), run from a tmpfs copy
# (the host's files reach the guest over 9p without a page cache).
use_ipvsctl
modprobe -a ip_vs ip_vs_rr ip_vs_wrr ip_vs_wlc ip_vs_lc ip_vs_sh ip_vs_mh ip_vs_pe_sip

ctl() { local ns=$1; shift; "$IPVSCTL" --netns "$ns" "$@"; }
adm() { local ns=$1; shift; in_ns "$ns" ipvsadm "$@"; }
same() { # same WHAT FILE_A FILE_B
    if cmp -s "$2" "$3"; then pass "$1"; else diff -u "$2" "$3" | head -40; fail "$1 differs"; fi
}

# The rules, in ipvsadm's command syntax (one per line).
RULES=$TEST_TMP/rules.txt
cat >"$RULES" <<'R'
-A -t 203.0.113.10:80 -s wrr
-a -t 203.0.113.10:80 -r 198.51.100.11:80 -g -w 1
-a -t 203.0.113.10:80 -r 198.51.100.12:80 -g -w 2 -x 100 -y 10
-A -u 203.0.113.10:53 -s rr -o
-a -u 203.0.113.10:53 -r 198.51.100.13:5353 -m -w 3
-A -t 203.0.113.11:0 -s wlc -p
-a -t 203.0.113.11:0 -r 198.51.100.14 -i
-A -t 203.0.113.12:443 -s sh -b sh-fallback,sh-port -p 60 -M 255.255.255.0
-a -t 203.0.113.12:443 -r 198.51.100.15 -i --tun-type gue --tun-port 6080 --tun-csum
-a -t 203.0.113.12:443 -r 198.51.100.16 -i --tun-type gre --tun-csum
-a -t 203.0.113.12:443 -r 200.0.0.1 -g
-a -t 203.0.113.12:443 -r 10.0.0.1 -g
-a -t 203.0.113.12:443 -r 130.0.0.1 -g
-A -f 11 -s wrr -p 600
-a -f 11 -r 198.51.100.11:0 -g -w 5
-A -f 12 -6 -s rr -p 30 -M 64
-a -f 12 -6 -r [2001:db8::2]:0 -g -w 1
-A -f 4294967295 -s rr
-A -t [2001:db8::10]:80 -s lc -p 100 -M 64
-a -t [2001:db8::10]:80 -r [2001:db8::2]:80 -g -w 1
-a -t [2001:db8::10]:80 -r [2001:db8::3]:8080 -m -w 0
-a -t [2001:db8::10]:80 -r 198.51.100.40 -i
-A --sctp-service 203.0.113.13:9999 -s mh -b mh-fallback
-a --sctp-service 203.0.113.13:9999 -r 198.51.100.17 -g
-A -u 203.0.113.14:5060 -s rr -p 30 --pe sip -o
-a -u 203.0.113.14:5060 -r 198.51.100.18 -g
-A -t 250.1.1.1:80 -s rr
-A -t 1.1.1.1:80 -s rr
-A -t 129.1.1.1:80 -s rr
R

# 1. State built by ipvsadm (one command per line) in "adm".
dummy_ns adm
while read -r -a words; do
    adm adm "${words[@]}" || fail "ipvsadm ${words[*]}"
done <"$RULES"

# 2. The same state built by ipvsctl's single commands in "ctl".
dummy_ns ctl
while read -r -a words; do
    case ${words[0]} in
        -A) sub=add-service ;; -a) sub=add-server ;;
        *) fail "unexpected ${words[0]}" ;;
    esac
    ctl ctl "$sub" "${words[@]:1}" || fail "ipvsctl $sub ${words[*]:1}"
done <"$RULES"

for ns in adm ctl; do
    adm $ns -Sn >"$TEST_TMP/adm-save-$ns"
    ctl $ns save >"$TEST_TMP/ctl-save-$ns"
    same "save ($ns-built state)" "$TEST_TMP/adm-save-$ns" "$TEST_TMP/ctl-save-$ns"
    for opts in "" "--stats" "--rate" "--stats --exact" "--thresholds" "--persistent-conn" "--tun-info" "--nosort" "--timeout"; do
        read -r -a o <<<"$opts"
        adm $ns -Ln "${o[@]}" >"$TEST_TMP/adm-list" || fail "ipvsadm -Ln $opts"
        ctl $ns list "${o[@]}" >"$TEST_TMP/ctl-list" || fail "ipvsctl list $opts"
        same "list $opts ($ns-built state)" "$TEST_TMP/adm-list" "$TEST_TMP/ctl-list"
    done
    adm $ns -Ln -t 203.0.113.12:443 >"$TEST_TMP/adm-one"
    ctl $ns list -t 203.0.113.12:443 >"$TEST_TMP/ctl-one"
    same "list one service ($ns)" "$TEST_TMP/adm-one" "$TEST_TMP/ctl-one"
    adm $ns -Ln -f 12 -6 >"$TEST_TMP/adm-one"
    ctl $ns list -f 12 -6 >"$TEST_TMP/ctl-one"
    same "list one fwmark v6 service ($ns)" "$TEST_TMP/adm-one" "$TEST_TMP/ctl-one"
done
# The kernel state is the same whichever tool built it (ipvsadm's order can
# differ with kernel order, so compare sorted lines).
same "ipvsadm-built == ipvsctl-built" <(sort "$TEST_TMP/adm-save-adm") <(sort "$TEST_TMP/adm-save-ctl")

# Missing service: exit 1 like ipvsadm.
set +e
ctl adm list -t 203.0.113.99:80 >/dev/null 2>"$TEST_TMP/err"; rc=$?
set -e
{ [[ $rc -eq 1 ]] && grep -q 'No such service' "$TEST_TMP/err"; } || fail "missing service: rc=$rc $(cat "$TEST_TMP/err")"
pass "missing service exits 1"

# JSON output parses and has every service.
ctl adm list --output json >"$TEST_TMP/json"
n=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["services"]))' "$TEST_TMP/json")
[[ $n -eq $(grep -c '^-A' "$TEST_TMP/adm-save-adm") ]] || fail "json has $n services"
pass "json output ($n services)"

# 3. Restore of what ipvsadm -Sn printed reproduces the state (fwmark 4294967295
# prints as -1, which ipvsadm -R itself refuses; ipvsctl accepts it).
dummy_ns rst
ctl rst restore "$TEST_TMP/adm-save-adm" || fail "ipvsctl restore"
adm rst -Sn >"$TEST_TMP/rst-save"
same "restore of ipvsadm -Sn" <(sort "$TEST_TMP/adm-save-adm") <(sort "$TEST_TMP/rst-save")
# From standard input too, into a non-empty table: it adds.
ctl rst flush
ctl rst restore <"$TEST_TMP/adm-save-adm" || fail "restore from stdin"
same "restore from stdin" <(sort "$TEST_TMP/adm-save-adm") <(sort <(adm rst -Sn))

# 4. A syntax error applies nothing and names the line.
printf -- '-A -t 203.0.113.50:80 -s rr\n-A -t 203.0.113.51:0 -s rr\n' >"$TEST_TMP/bad"
set +e
ctl rst restore "$TEST_TMP/bad" 2>"$TEST_TMP/err"; rc=$?
set -e
{ [[ $rc -eq 2 ]] && grep -q '^line 2: Zero port' "$TEST_TMP/err"; } || fail "syntax error: rc=$rc $(cat "$TEST_TMP/err")"
adm rst -Sn >"$TEST_TMP/after"
same "syntax error applied nothing" <(sort "$TEST_TMP/adm-save-adm") <(sort "$TEST_TMP/after")

# 5. A kernel error midway puts the previous state back and names the line.
# Give a destination thresholds first: ipvsadm -S does not save them, the
# rollback must keep them anyway.
ctl rst edit-server -t 203.0.113.10:80 -r 198.51.100.12 -g -w 2 -x 100 -y 10
adm rst -Ln --thresholds >"$TEST_TMP/thr-before"
printf -- '-C\n-A -t 203.0.113.60:80 -s rr\n-a -t 203.0.113.60:80 -r 198.51.100.61\n--set 11 22 33\n-A -t 203.0.113.61:80 -s nosuchsched\n-A -t 203.0.113.62:80 -s rr\n' >"$TEST_TMP/midway"
adm rst -Ln --timeout >"$TEST_TMP/timeouts-before"
set +e
ctl rst restore "$TEST_TMP/midway" 2>"$TEST_TMP/err"; rc=$?
set -e
cat "$TEST_TMP/err"
{ [[ $rc -eq 255 ]] && grep -q '^line 5: Scheduler or persistence engine not found' "$TEST_TMP/err"; } ||
    fail "midway error: rc=$rc $(cat "$TEST_TMP/err")"
adm rst -Sn >"$TEST_TMP/after"
same "rollback restored the services" <(sort "$TEST_TMP/adm-save-adm") <(sort "$TEST_TMP/after")
adm rst -Ln --timeout >"$TEST_TMP/timeouts-after"
same "rollback restored the timeouts" "$TEST_TMP/timeouts-before" "$TEST_TMP/timeouts-after"
# Thresholds survive a rollback (ipvsadm -S does not save them, the rollback does).
adm rst -Ln --thresholds >"$TEST_TMP/thr"
grep -q '198.51.100.12:80 *100 *10 ' "$TEST_TMP/thr" || fail "thresholds lost: $(cat "$TEST_TMP/thr")"
# (Kernel order changes with re-adding, and with it ipvsadm's non-order sort.)
same "thresholds kept across rollback" <(sort "$TEST_TMP/thr-before") <(sort "$TEST_TMP/thr")

# 6. Typed errors of single commands, with ipvsadm's words and exit code.
check_err() { # WANT_TEXT CMD...
    local want=$1; shift
    set +e
    "$@" >/dev/null 2>"$TEST_TMP/err"; local rc=$?
    set -e
    { [[ $rc -eq 255 ]] && grep -q "$want" "$TEST_TMP/err"; } || fail "$*: rc=$rc $(cat "$TEST_TMP/err")"
    pass "$want: $*"
}
check_err 'Service already exists' ctl rst add-service -t 203.0.113.10:80 -s rr
check_err 'No such service' ctl rst delete-service -t 203.0.113.99:80
check_err 'Service not defined' ctl rst add-server -t 203.0.113.99:80 -r 198.51.100.11
check_err 'No such destination' ctl rst delete-server -t 203.0.113.10:80 -r 198.51.100.99
check_err 'Scheduler or persistence engine not found' ctl rst add-service -t 203.0.113.70:80 -s nosuch
check_err 'Scheduler or persistence engine not found' ctl rst add-service -t 203.0.113.71:80 -p 5 --pe nosuch
set +e
ctl rst add-service -t 203.0.113.72:0 -s rr 2>"$TEST_TMP/err"; rc=$?
set -e
{ [[ $rc -eq 2 ]] && grep -q 'Zero port specified for non-persistent service' "$TEST_TMP/err"; } || fail "port 0: rc=$rc"
set +e
ctl rst add-service -t 203.0.113.72:80 -s rr -o 2>"$TEST_TMP/err"; rc=$?
set -e
{ [[ $rc -eq 2 ]] && grep -q 'One-Packet Scheduling is only for UDP' "$TEST_TMP/err"; } || fail "ops on tcp: rc=$rc"
pass "command-line errors exit 2"

# 7. Edit, delete, zero, timeouts through ipvsctl, compared with ipvsadm.
ctl rst edit-service -t 203.0.113.10:80 -s rr -p 20
ctl rst edit-server -t 203.0.113.10:80 -r 198.51.100.11 -g -w 7
ctl rst delete-server -t 203.0.113.10:80 -r 198.51.100.12
ctl rst zero
ctl rst zero -t 203.0.113.10:80
ctl rst set-timeouts 901 121 301
adm rst -Ln -t 203.0.113.10:80 >"$TEST_TMP/one"
{ grep -q 'TCP  203.0.113.10:80 rr persistent 20' "$TEST_TMP/one" && grep -q '198.51.100.11:80 *Route *7 ' "$TEST_TMP/one" &&
    ! grep -q 198.51.100.12 "$TEST_TMP/one"; } || fail "edit/delete: $(cat "$TEST_TMP/one")"
[[ $(adm rst -Ln --timeout) == 'Timeout (tcp tcpfin udp): 901 121 301' ]] || fail "timeouts"
ctl rst delete-service -t 203.0.113.10:80
! adm rst -Ln -t 203.0.113.10:80 >/dev/null 2>&1 || fail "service not deleted"
pass "edit/delete/zero/set-timeouts"

# 8. Sync daemons: started by either tool (in fresh namespaces), listed the
# same way.
for ns in sda sdc; do
    ns_destroy $ns; ip netns add $ns; on_exit "ns_destroy $ns"
    in_ns $ns ip link set lo up
    in_ns $ns ip link add d0 type dummy
    in_ns $ns ip link set d0 up
    in_ns $ns ip addr add 198.51.100.1/24 dev d0
done
adm sda --start-daemon master --mcast-interface d0 --syncid 5 || fail "ipvsadm --start-daemon master"
adm sda --start-daemon backup --mcast-interface d0 --syncid 7 || fail "ipvsadm --start-daemon backup"
ctl sdc start-daemon master --mcast-interface d0 --syncid 5 || fail "ipvsctl start-daemon master"
ctl sdc start-daemon backup --mcast-interface d0 --syncid 7 || fail "ipvsctl start-daemon backup"
for ns in sda sdc; do
    adm $ns -Ln --daemon >"$TEST_TMP/adm-d-$ns"
    ctl $ns list --daemon >"$TEST_TMP/ctl-d-$ns"
    same "list --daemon ($ns)" "$TEST_TMP/adm-d-$ns" "$TEST_TMP/ctl-d-$ns"
done
same "daemons started by either tool" "$TEST_TMP/adm-d-sda" "$TEST_TMP/adm-d-sdc"
grep -q 'master sync daemon (mcast=d0, syncid=5' "$TEST_TMP/adm-d-sdc" || fail "daemon: $(cat "$TEST_TMP/adm-d-sdc")"
ctl sdc stop-daemon master
ctl sdc stop-daemon backup
[[ -z $(adm sdc -Ln --daemon) ]] || fail "daemons not stopped"
pass "sync daemons"

# 9. Namespaces stay separate; the host's (VM init namespace) table untouched.
ctl ctl flush
[[ -z $(ctl ctl save) ]] || fail "ctl not empty"
[[ -n $(ctl adm save) ]] || fail "flush of ctl touched adm"
pass "per-namespace tables"
