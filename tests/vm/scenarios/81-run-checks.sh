#!/usr/bin/env bash
# The check types of `lvs-director run` against the seed cluster, switched
# by reloads (SIGHUP) of one file:
#  a) http on port 8080 /health, expect_status [200], expect_body "ok":
#     rs2 answering 503 is drained ("HTTP 503"), then a body without "ok"
#     ("body does not contain"); back when healthy;
#  b) exec: a script in a root-owned 0755 directory, checking FILE-{address}
#     as the script user, with LVS_ADDRESS set: rs2's file removed ->
#     weight 0 ("exit status 1"); the same script under /tmp (world-writable)
#     is refused by the reload, with its file:line:column, and the running
#     checks stay;
#  c) tcp on port 3306 (the check's own port): rs2's server on 3306 killed ->
#     weight 0 while its port 80 still serves; on_failure = "remove" deletes
#     it instead.
#  d) tcp on 3306 with half_open = true: rs2 rises on SYN-ACKs while its
#     kernel completes no connection (PassiveOpens unchanged); killed ->
#     weight 0 ("connection refused").
# A check changed by a reload does not drop serving servers to 0 meanwhile;
# a bad file at start exits 2 with file:line:column and changes nothing.
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

use_director
CFG=$TEST_TMP/director.toml
COMMON="interval = 0.5
timeout = 0.5
rise = 2
fall = 2"
config() { # EXTRA_SERVICE_LINES (the check table)
    seed_director_config "$CFG" 1 2 "$1"
}
reload() {
    local n
    n=$(grep -c "reloaded in" "$DIRECTOR_LOG" || true)
    kill -HUP "$DIRECTOR_PID"
    wait_until 15 "reload $((n + 1))" bash -c "(( \$(grep -c 'reloaded in' '$DIRECTOR_LOG') > $n ))"
}
# both_serving: rs1 1 and rs2 2 right now (sampled during a reload).
both_serving() { [[ $(weight_of "$RS1_IP") == 1 && $(weight_of "$RS2_IP") == 2 ]]; }
# db_up WHAT: rs2's server on 3306 (db_pid), started by hand so that it can
# be killed; waits until the client reaches it (WHAT: the wait's description).
db_up() {
    ip netns exec rs2 busybox httpd -f -p 3306 -h "$TEST_TMP/www-rs2-3306" &
    db_pid=$!
    BG_PIDS+=("$db_pid")
    wait_until 20 "$1" in_ns client curl -sf --max-time 1 "http://$RS2_IP:3306/"
}

load_ipvs_modules
topo_up
director_vip_up
for rs in rs1 rs2; do rs_prepare_by_hand "$rs"; done
rs_serve rs1 80 3306
rs_serve rs2 80
health_server rs1 8080
health_server rs2 8080

# A bad file at start: exit 2, file:line:column, nothing in the table.
printf '[[service]]\nvip = "%s"\nport = 80\n[service.check]\ntype = "http"\nexpect_status = [700]\n' "$VIP" >"$TEST_TMP/bad.toml"
rc=0
err=$("$DIRECTOR" --netns director run --config "$TEST_TMP/bad.toml" --control "$TEST_TMP/bad.sock" 2>&1) || rc=$?
((rc == 2)) || fail "a bad file at start exited $rc, not 2: $err"
grep -q "$TEST_TMP/bad.toml:6:18: expect_status takes codes" <<<"$err" || fail "no file:line:column: $err"
[[ -z $(ipvsadm_d -Sn) ]] || fail "a bad file changed the table: $(ipvsadm_d -Sn)"
pass "bad file at start: exit 2, $(grep -o "bad.toml:6:18" <<<"$err"), table untouched"

# a) http
config "[service.check]
type = \"http\"
port = 8080
path = \"/health\"
expect_status = [200]
expect_body = \"ok\"
$COMMON"
director_run "$CFG" --sync-interval 5
wait_weight 30 "$RS1_IP" 1 >/dev/null
wait_weight 20 "$RS2_IP" 2 >/dev/null
echo "503 busy" >"$TEST_TMP/health-rs2"
t=$(wait_weight 15 "$RS2_IP" 0)
grep -q "server $RS2_IP:80: up -> down (HTTP 503)" "$DIRECTOR_LOG" || fail "no 'HTTP 503' transition logged"
[[ $(weight_of "$RS1_IP") == 1 ]] || fail "rs1 changed: $(ipvsadm_d -Sn)"
pass "http: rs2 answering 503 drained after ${t}s"
echo "200 ok" >"$TEST_TMP/health-rs2"
wait_weight 15 "$RS2_IP" 2 >/dev/null
echo "200 maintenance" >"$TEST_TMP/health-rs2"
t=$(wait_weight 15 "$RS2_IP" 0)
grep -q "server $RS2_IP:80: up -> down (body does not contain" "$DIRECTOR_LOG" || fail "no body transition logged"
echo "200 ok" >"$TEST_TMP/health-rs2"
wait_weight 15 "$RS2_IP" 2 >/dev/null
pass "http: a body without \"ok\" drained rs2 after ${t}s; back when ok"

# b) exec, by reload; the servers keep serving across the check change.
# The check runs as the script user (not root; director/tests/exec_root.rs
# checks who it is): its script and every directory above it are root's
# 0755, and the files it looks for are in a directory it can search.
LIBEXEC=/usr/local/libexec/lvs-test
MARKS=/run/lvs-test-81
install -d -m 0755 "$LIBEXEC" "$MARKS"
on_exit "rm -rf $LIBEXEC $MARKS"
# shellcheck disable=SC2016 # expanded by the check's shell
printf '#!/bin/sh\n[ "$LVS_ADDRESS" = "$1" ] || { echo "LVS_ADDRESS=$LVS_ADDRESS" >&2; exit 8; }\nexec /usr/bin/test -e "%s/up-$1"\n' "$MARKS" >"$LIBEXEC/up-check"
chmod 0755 "$LIBEXEC/up-check"
touch "$MARKS/up-$RS1_IP" "$MARKS/up-$RS2_IP"
# A shell started by the daemon (a fork of it, then two programs) takes
# most of a second in the VM: the exec check gets 2 s.
EXEC_TIMING="interval = 2.0
timeout = 2.0
rise = 2
fall = 2"
# The same script where anyone could have put it: the reload is refused.
cp "$LIBEXEC/up-check" "$TEST_TMP/up-check"
config "[service.check]
type = \"exec\"
command = [\"$TEST_TMP/up-check\", \"{address}\"]
$EXEC_TIMING"
n=$(grep -c "reload refused" "$DIRECTOR_LOG" || true)
kill -HUP "$DIRECTOR_PID"
wait_until 15 "the refused reload" bash -c "(( \$(grep -c 'reload refused' '$DIRECTOR_LOG') > $n ))"
grep -q "reload refused, the running configuration stays: $CFG:[0-9]*:[0-9]*: refusing the exec check $TEST_TMP/up-check: /tmp: writable by others (mode 1777)" "$DIRECTOR_LOG" ||
    fail "no refusal of the unsafe script with its position: $(grep 'reload refused' "$DIRECTOR_LOG" | tail -1)"
both_serving || fail "the refused reload changed the table: $(ipvsadm_d -Sn)"
pass "exec: a script under /tmp refused by the reload ($(grep -o "$(basename "$CFG"):[0-9]*:[0-9]*: refusing" "$DIRECTOR_LOG" | tail -1))"
config "[service.check]
type = \"exec\"
command = [\"$LIBEXEC/up-check\", \"{address}\"]
$EXEC_TIMING"
reload
both_serving || fail "the check change dropped a server: $(ipvsadm_d -Sn)"
sleep 2
both_serving || fail "exec check: servers not both serving: $(ipvsadm_d -Sn)"
rm "$MARKS/up-$RS2_IP"
t=$(wait_weight 15 "$RS2_IP" 0)
grep -q "server $RS2_IP:80: up -> down (exit status 1)" "$DIRECTOR_LOG" || fail "no 'exit status 1' transition logged"
touch "$MARKS/up-$RS2_IP"
wait_weight 15 "$RS2_IP" 2 >/dev/null
pass "exec: rs2 drained after ${t}s when its command failed; back when it succeeds"

# c) tcp on 3306: rs2's 3306 server by hand, to kill it.
mkdir -p "$TEST_TMP/www-rs2-3306" && echo rs2 >"$TEST_TMP/www-rs2-3306/index.html"
db_up "rs2 serving 3306"
config "[service.check]
type = \"tcp\"
port = 3306
$COMMON"
reload
both_serving || fail "the check change dropped a server: $(ipvsadm_d -Sn)"
kill "$db_pid"
t=$(wait_weight 15 "$RS2_IP" 0)
grep -q "server $RS2_IP:80: up -> down (connection refused)" "$DIRECTOR_LOG" || fail "no 'connection refused' transition logged"
in_ns client curl -sf --max-time 2 "http://$RS2_IP:80/" >/dev/null || fail "rs2's port 80 should still serve"
pass "tcp 3306: rs2 drained after ${t}s though its port 80 serves"
config "on_failure = \"remove\"
[service.check]
type = \"tcp\"
port = 3306
$COMMON"
reload
wait_weight 10 "$RS2_IP" none >/dev/null
[[ $(weight_of "$RS1_IP") == 1 ]] || fail "rs1 changed: $(ipvsadm_d -Sn)"
pass "on_failure = \"remove\": the failed rs2 is deleted from the service"

# d) half-open tcp on 3306: rs2's server back, checked with SYNs only.
db_up "rs2 serving 3306 again"
config "[service.check]
type = \"tcp\"
port = 3306
half_open = true
$COMMON"
reload
t=$(wait_weight 15 "$RS2_IP" 2)
# passive_opens NS: connections NS's kernel completed for its listeners.
passive_opens() {
    # shellcheck disable=SC2016 # awk's own fields
    in_ns "$1" awk '$1 == "Tcp:" { if (!col) { for (i = 2; i <= NF; i++) if ($i == "PassiveOpens") col = i } else print $col }' /proc/net/snmp
}
before=$(passive_opens rs2)
sleep 3
after=$(passive_opens rs2)
((after == before)) || fail "half-open checks completed $((after - before)) connections on rs2"
grep -q "no raw socket" "$DIRECTOR_LOG" && fail "half-open checks fell back to connect: $(grep 'no raw socket' "$DIRECTOR_LOG")"
pass "half-open tcp 3306: rs2 back after ${t}s, no connection completed on rs2 in 3s of checks"
refused=$(grep -c "server $RS2_IP:80: up -> down (connection refused)" "$DIRECTOR_LOG" || true)
kill "$db_pid"
t=$(wait_weight 15 "$RS2_IP" 0)
(($(grep -c "server $RS2_IP:80: up -> down (connection refused)" "$DIRECTOR_LOG") == refused + 1)) ||
    fail "no new 'connection refused' transition logged"
pass "half-open tcp 3306: rs2 drained after ${t}s when its server stopped"
