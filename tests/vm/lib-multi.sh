# shellcheck shell=bash disable=SC2034 # (variables set here are used by the scenarios)
# Helpers of the multi-director scenarios (9x), sourced after lib.sh:
#
#   . "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
#   . "$(dirname "${BASH_SOURCE[0]}")/../lib-multi.sh"
#
# The topology is lib.sh's topo_multi_up. Each director runs `lvs-director
# run` with an example file (examples/director.toml or director-backup.toml),
# which sets net.ipv4.vs.*, holds the VIP on a dummy lvs0 ([announce]),
# starts the sync daemons ([sync]) and keeps the health file; BIRD 2
# (examples/bird-*.conf) or keepalived (examples/keepalived.conf) runs in
# the director's namespace beside it.
# Every daemon is started as `ip netns exec NS prog &`, so its PID is $! and
# the cleanup kills exactly it.
#
# Variants (the benchmark tests/vm/bench/multi.sh runs the same scenarios
# without the safeguards), from the environment:
#   MULTI_SCHED    scheduler of the director file: mh (with mh-fallback and
#                  mh-port, as in the example) or any other, e.g. rr
#   MULTI_SLOPPY   net.ipv4.vs.sloppy_tcp on every director: 1 or 0
#   MULTI_SYNC     active-backup: connection-sync daemons on: 1 or 0
#   MULTI_HOLD_DOWN  [announce] hold_down of the director file (seconds)
#   MULTI_FAIL     active-active failure: link (the director's NIC goes down)
#                  or bird (its BIRD is killed)
#   MULTI_ASSERT   1 (default): fail unless 0 connections broke; 0: only measure
#   MULTI_RESULT   if set, a file: one line of key=value results is appended
#   MULTI_CONNS    held connections (default 50)

EXAMPLES_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../examples" && pwd)
CONNS_PY=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/conns.py
PYTHON=/usr/bin/python3
SVC_PORT=9000
MULTI_CONNS=${MULTI_CONNS:-50}
MULTI_ASSERT=${MULTI_ASSERT:-1}

declare -A BIRD_PID=()
# The holder's results (holder_finish), "-" when unknown.
R_error=- R_count=- R_broken=- R_reasons=- R_event=- R_max_stall_after=- R_stalled_over_1s=-
R_probes=- R_probes_failed_after_event=- R_new_ok_after=- R_withdrawn=- R_vip_moved=-

multi_modules() {
    modprobe -a ip_vs ip_vs_rr ip_vs_wrr ip_vs_mh dummy
}

# variant: the short name of the current variant, for logs and results.
variant() {
    local v="$MULTI_SCHED sloppy_tcp=$MULTI_SLOPPY"
    [[ -n ${MULTI_SYNC:-} ]] && v+=" sync=$MULTI_SYNC"
    echo "$v"
}

# --- real servers ------------------------------------------------------------

# multi_rs_up: rs1 and rs2 prepared by rs-agent (VIP on lo, ARP sysctls), each
# running the line echo server on SVC_PORT.
declare -A RS_PID=()

multi_rs_up() {
    local rs cfg
    cfg=$(agent_config)
    for rs in rs1 rs2; do
        agent "$rs" start --config "$cfg" >/dev/null || fail "rs-agent start failed in $rs"
        rs_echo_start "$rs"
    done
    for rs in rs1 rs2; do
        wait_until 30 "the echo server of $rs" \
            in_ns router timeout 2 bash -c "exec 3<>/dev/tcp/${MULTI_IP[$rs]}/$SVC_PORT"
    done
    log "rs1, rs2: VIP on lo by rs-agent, echo servers on port $SVC_PORT"
}

# rs_echo_start RS: the line echo server of RS on SVC_PORT (RS_PID[RS]).
rs_echo_start() {
    ip netns exec "$1" "$PYTHON" "$CONNS_PY" serve --port "$SVC_PORT" &
    RS_PID[$1]=$!
    BG_PIDS+=($!)
}

# rs_echo_stop RS: kill RS's echo server (the real server's service fails).
rs_echo_stop() {
    kill "${RS_PID[$1]}"
    wait "${RS_PID[$1]}" 2>/dev/null || true
}

# new_conns N: N new connections from the client to VIP:SVC_PORT, one after
# the other (connect, one echoed line, close; 2 s bound each); prints how
# many succeeded.
new_conns() {
    ip netns exec client "$PYTHON" - "$VIP" "$SVC_PORT" "$1" <<'PY'
import socket, sys
vip, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
ok = 0
for i in range(n):
    try:
        with socket.create_connection((vip, port), timeout=2) as s:
            s.sendall(b"probe %d\n" % i)
            if s.makefile("rb").readline() == b"probe %d\n" % i:
                ok += 1
    except OSError:
        pass
print(ok)
PY
}

# rs_conns NS RS: connections IPVS in director NS has scheduled to RS (its counter).
rs_conns() {
    in_ns "$1" ipvsadm -Ln --stats --exact -t "$VIP:$SVC_PORT" |
        awk -v r="${MULTI_IP[$2]}:$SVC_PORT" '$2 == r { print $3; found = 1 } END { if (!found) print "none" }'
}

# rs_weight NS RS: RS's weight in director NS ("none": not in the table).
rs_weight() {
    local w
    w=$(in_ns "$1" ipvsadm -Sn | awk -v s="$VIP:$SVC_PORT" -v r="${MULTI_IP[$2]}:$SVC_PORT" '$3 == s && $5 == r { print $NF }')
    echo "${w:-none}"
}

# --- directors -----------------------------------------------------------------

declare -A DIR_PID=()

# director_file FILE NS EXAMPLE: examples/EXAMPLE for the variant: its
# scheduler (other than mh: without mh's flags), its sloppy_tcp, NS's own
# health file $TEST_TMP/healthy-NS (both directors share the VM's /run; a
# file without health_file gets that path by default, beside the control
# socket $TEST_TMP/control-NS.sock), MULTI_HOLD_DOWN as [announce]
# hold_down when set.
director_file() {
    local f=$1 ns=$2 example=$3
    sed -e "s|^health_file = .*|health_file = \"$TEST_TMP/healthy-$ns\"|" \
        -e "s/^sloppy_tcp = .*/sloppy_tcp = $MULTI_SLOPPY/" \
        "$EXAMPLES_DIR/$example" >"$f"
    if [[ -n ${MULTI_HOLD_DOWN:-} ]]; then
        sed -i "s/^hold_down = .*/hold_down = $MULTI_HOLD_DOWN/" "$f"
    fi
    if [[ $MULTI_SCHED != mh ]]; then
        sed -i -e "s/^scheduler = \"mh\"$/scheduler = \"$MULTI_SCHED\"/" -e '/^scheduler_flags = /d' "$f"
    fi
    if [[ ${MULTI_SYNC:-1} == 0 ]]; then
        # No [sync] table: the three lines after its header go with it.
        sed -i '/^\[sync\]$/,/^syncid = /d' "$f"
    fi
    grep -qx "scheduler = \"$MULTI_SCHED\"" "$f" || fail "director file: scheduler $MULTI_SCHED not set (examples/$example changed?)"
    grep -qx "sloppy_tcp = $MULTI_SLOPPY" "$f" || fail "director file: sloppy_tcp not set (examples/$example changed?)"
}

# multi_director_up NS [EXAMPLE]: `lvs-director run` in NS with
# examples/EXAMPLE (default director.toml: active-active, [announce] on
# lvs0; director-backup.toml: [sync]) for the variant. The daemon sets the
# sysctls, starts the sync daemons, keeps the health file, and holds the VIP
# on lvs0 once the checks pass. Waits until its table is in the kernel.
multi_director_up() {
    local ns=$1 example=${2:-director.toml} cfg=$TEST_TMP/director-$1.toml
    director_file "$cfg" "$ns" "$example"
    "$DIRECTOR" --netns "$ns" run --config "$cfg" --control "$TEST_TMP/control-$ns.sock" \
        >>"$TEST_TMP/director-$ns.log" 2>&1 &
    DIR_PID[$ns]=$!
    BG_PIDS+=($!)
    # TERM: the daemon withdraws, waits its grace and restores; wait for it
    # (bounded) before the namespaces go.
    on_exit "kill $!; for _ in \$(seq 40); do kill -0 $! || break; sleep 0.2; done"
    on_exit "cp $TEST_TMP/director-$ns.log ${VM_LOG_DIR:-/nonexistent}/$SCENARIO-director-$ns.log"
    wait_until 20 "lvs-director's table in $ns" bash -c "ip netns exec $ns ipvsadm -Sn | grep -q '^-a'"
    log "$ns: lvs-director run (examples/$example): $(in_ns "$ns" ipvsadm -Sn | tr '\n' ';')"
}

# dir_log NS: the daemon's log of NS.
dir_log() { cat "$TEST_TMP/director-$1.log"; }

# has_vip_on_lvs0 NS: 0 if lvs-director holds the VIP on lvs0 in NS.
has_vip_on_lvs0() { ip -n "$1" -o -4 addr show dev lvs0 2>/dev/null | grep -qF " $VIP/32 "; }

# dir_sysctl NS NAME: net.ipv4.vs.NAME in NS.
dir_sysctl() { in_ns "$1" cat "/proc/sys/net/ipv4/vs/$2"; }

# dir_conns NS: ESTABLISHED IPVS connections to VIP:SVC_PORT in NS.
dir_conns() {
    in_ns "$1" ipvsadm -Lnc | awk -v v="$VIP:$SVC_PORT" '$3 == "ESTABLISHED" && $5 == v { n++ } END { print n + 0 }'
}

# dir_stats NS: "CONNS INPKTS" of the service VIP:SVC_PORT in NS (counters).
dir_stats() {
    in_ns "$1" ipvsadm -Ln --stats --exact -t "$VIP:$SVC_PORT" |
        awk -v v="$VIP:$SVC_PORT" '$1 == "TCP" && $2 == v { print $3, $4 }'
}

# --- BIRD ----------------------------------------------------------------------

# bird_up NS: BIRD in NS with the example configuration (router or director;
# a director's address replaces the example's DIRECTOR), logging to a file.
bird_up() {
    local ns=$1 conf=$TEST_TMP/bird-$1.conf
    {
        echo 'log stderr all;'
        if [[ $ns == router ]]; then
            cat "$EXAMPLES_DIR/bird-router.conf"
        else
            sed "s/^define DIRECTOR = .*;/define DIRECTOR = ${MULTI_IP[$ns]};/" "$EXAMPLES_DIR/bird-director.conf"
        fi
    } >"$conf"
    ip netns exec "$ns" bird -f -c "$conf" -s "$TEST_TMP/bird-$ns.ctl" -P "$TEST_TMP/bird-$ns.pid" \
        2>"$TEST_TMP/bird-$ns.log" &
    BIRD_PID[$ns]=$!
    BG_PIDS+=($!)
    on_exit "cp $TEST_TMP/bird-$ns.log ${VM_LOG_DIR:-/nonexistent}/$SCENARIO-bird-$ns.log"
}

birdc_() {
    local ns=$1
    shift
    timeout -k 2 10 birdc -s "$TEST_TMP/bird-$ns.ctl" "$@"
}

# router_vip_paths: how many next hops the router has for the VIP (0: no route).
router_vip_paths() {
    local out
    out=$(ip -n router route show "$VIP/32" 2>/dev/null)
    if [[ -z $out ]]; then
        echo 0
    elif [[ $out == *nexthop* ]]; then
        grep -c nexthop <<<"$out"
    else
        echo 1
    fi
}
router_has_paths() { [[ $(router_vip_paths) == "$1" ]]; }

# --- keepalived ----------------------------------------------------------------

# keepalived_up NS: keepalived (VRRP only) in NS with the example
# configuration: dir1 as in the example (MASTER, 150), dir2 BACKUP 100; the
# track file is $TEST_TMP/healthy-NS, lvs-director's health file for NS.
keepalived_up() {
    local ns=$1 conf=$TEST_TMP/keepalived-$1.conf
    sed -e "s|\"/run/lvs-director/healthy\"|\"$TEST_TMP/healthy-$ns\"|" \
        -e "s/router_id lvs-director-1/router_id lvs-$ns/" \
        "$EXAMPLES_DIR/keepalived.conf" >"$conf"
    if [[ $ns == dir2 ]]; then
        sed -i -e 's/^\( *\)state MASTER .*/\1state BACKUP/' -e 's/^\( *\)priority 150 .*/\1priority 100/' "$conf"
    fi
    grep -q "$TEST_TMP/healthy-$ns" "$conf" || fail "keepalived.conf: track file not replaced"
    ip netns exec "$ns" keepalived --vrrp --dont-fork --log-console --log-detail -f "$conf" \
        -p "$TEST_TMP/keepalived-$ns.pid" -r "$TEST_TMP/keepalived-vrrp-$ns.pid" \
        >"$TEST_TMP/keepalived-$ns.log" 2>&1 &
    # TERM: keepalived removes its VIP and stops its VRRP process; wait for
    # it (bounded) before the namespaces go.
    on_exit "kill $!; for _ in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15; do kill -0 $! || break; sleep 0.2; done"
    on_exit "cp $TEST_TMP/keepalived-$ns.log ${VM_LOG_DIR:-/nonexistent}/$SCENARIO-keepalived-$ns.log"
}

# has_vip_on_eth0 NS: 0 if the VRRP VIP is on eth0 in NS.
has_vip_on_eth0() { ip -n "$1" -o -4 addr show dev eth0 | grep -qF " $VIP/32 "; }

# --- monitors and the connection holder ------------------------------------------

# monitor_start NAME NS OBJECT: `ip -ts monitor OBJECT` of NS into
# $TEST_TMP/mon-NAME.log (timestamped events, for the holder's --watch).
monitor_start() {
    ip -ts -n "$2" monitor "$3" >"$TEST_TMP/mon-$1.log" 2>&1 &
    BG_PIDS+=($!)
}

HOLD_CTL=$TEST_TMP/hold

# holder_start [--watch NAME=FILE=REGEX ...]: MULTI_CONNS connections from
# the client to VIP:SVC_PORT, each echoing a line every 0.1 s; waits until
# every one had its first echo.
holder_start() {
    mkdir -p "$HOLD_CTL"
    ip netns exec client "$PYTHON" "$CONNS_PY" hold --addr "$VIP" --port "$SVC_PORT" --ctl "$HOLD_CTL" \
        --count "$MULTI_CONNS" --interval 0.1 --break-after 15 --max-time 200 "$@" \
        >"$TEST_TMP/hold.log" 2>&1 &
    HOLD_PID=$!
    BG_PIDS+=($!)
    wait_until 60 "$MULTI_CONNS connections through the VIP" test -e "$HOLD_CTL/ready"
    log "holder: $MULTI_CONNS connections open, echoing every 0.1 s"
}

holder_probe() { : >"$HOLD_CTL/probe"; }
# holder_settle: wait until every held connection has echoed a line sent
# after the event, or broke (a stalled flow resumes at its next TCP
# retransmission: 0.2, 0.6, 1.4, 3.0, 6.2 s after the loss), then 1 s more.
holder_settle() {
    wait_until 30 "every held connection to answer or break after the failure" test -e "$HOLD_CTL/settled"
    sleep 1
}
# holder_event: the failure happens now (bash's clock: no process started).
holder_event() { echo "$EPOCHREALTIME" >"$HOLD_CTL/event"; }

# holder_finish: stop, wait for result.json and load it as R_<key> variables
# (null -> "-").
holder_finish() {
    : >"$HOLD_CTL/stop"
    wait_until 40 "the holder's result" test -e "$HOLD_CTL/result.json"
    wait "$HOLD_PID" 2>/dev/null || true
    eval "$("$PYTHON" - "$HOLD_CTL/result.json" <<'PY'
import json, shlex, sys
r = json.load(open(sys.argv[1]))
for k, v in r.items():
    if isinstance(v, dict):
        v = ",".join(f"{a}:{b}" for a, b in sorted(v.items())) or "-"
    print(f"R_{k}={shlex.quote('-' if v is None else str(v))}")
PY
)"
    log "holder: error=${R_error} broken=$R_broken/$R_count (${R_reasons}) max_stall_after=${R_max_stall_after}s stalled>1s=$R_stalled_over_1s probes=$R_probes failed_after_event=${R_probes_failed_after_event:--} new_ok_after=${R_new_ok_after:--}s"
    [[ $R_error == - ]] || fail "holder: $R_error"
}

# record KEY=VALUE...: one result line for the benchmark (MULTI_RESULT).
record() {
    [[ -n ${MULTI_RESULT:-} ]] || return 0
    echo "scenario=$SCENARIO sched=$MULTI_SCHED sloppy=$MULTI_SLOPPY sync=${MULTI_SYNC:--} fail=${MULTI_FAIL:--} $*" >>"$MULTI_RESULT"
}

# assert_none_broken: with MULTI_ASSERT=1, fail unless 0 connections broke.
assert_none_broken() {
    if ((R_broken == 0)); then
        pass "0 of $R_count established connections broke ($(variant))"
    elif ((MULTI_ASSERT)); then
        fail "$R_broken of $R_count established connections broke ($R_reasons) with $(variant)"
    else
        log "measured: $R_broken of $R_count connections broke ($R_reasons) with $(variant)"
    fi
}

# active_active_up: the active-active set-up of scenarios 90, 91 and 92: the
# topology, both real servers, lvs-director on both directors with the VIP
# announced on lvs0, BIRD on the router and both directors, and the router's
# ECMP route through both.
active_active_up() {
    local d ns
    use_director
    multi_modules
    topo_multi_up
    multi_rs_up
    for d in dir1 dir2; do multi_director_up "$d"; done
    for d in dir1 dir2; do
        wait_until 20 "lvs-director to announce $VIP on lvs0 in $d" has_vip_on_lvs0 "$d"
    done
    for ns in router dir1 dir2; do bird_up "$ns"; done
    wait_until 40 "the router's ECMP route to $VIP via dir1 and dir2" router_has_paths 2
}

# hold_over_both: MULTI_CONNS connections held through the VIP of
# active_active_up (the holder watches the router's route events for the
# withdrawal of a path, R_withdrawn), spread by ECMP over both directors:
# ON1 and ON2 (the ESTABLISHED entries in dir1 and dir2) must both be
# non-zero. Then a first probe, and 1 s before the failure.
hold_over_both() {
    monitor_start route router route
    holder_start --watch "withdrawn=$TEST_TMP/mon-route.log=^(Deleted $VIP |$VIP via )"
    ON1=$(dir_conns dir1) ON2=$(dir_conns dir2)
    log "held connections per director: dir1 $ON1, dir2 $ON2"
    ((ON1 > 0 && ON2 > 0)) || fail "ECMP did not spread the connections over both directors (dir1 $ON1, dir2 $ON2)"
    holder_probe
    sleep 1
}
