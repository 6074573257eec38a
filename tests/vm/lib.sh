# shellcheck shell=bash
# Shared helpers for the VM scenarios (tests/vm/scenarios/*.sh). Source it:
#
#   . "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
#
# Contract of a scenario: a bash script that exits 0 on pass and non-zero on
# failure. guest.sh runs each one in its own process with a time bound, inside
# the VM, as root. Scenarios must only create traffic between the namespaces
# made here, and every wait must be bounded (use wait_until, curl --max-time,
# timeout ...).
#
# Topology built by topo_up (one L2 segment, bridge br0 in namespace "lan"):
#
#     client 198.51.100.100 ---+
#     director 198.51.100.1 ---+-- br0 (netns lan)
#     rs1 198.51.100.11 -------+
#     rs2 198.51.100.12 -------+
#
#   VIP 203.0.113.10: the client reaches it on-link over eth0 (so it ARPs for
#   it); the director holds it as an alias of eth0 (eth0:0); real servers hold
#   it on lo, set up by rs-agent or by hand.
#
# Environment:
#   RS_AGENT   path of the rs-agent binary (guest.sh sets it)
#   VM_DEBUG=1 trace commands (set -x)

set -euo pipefail
[[ ${VM_DEBUG:-0} == 1 ]] && set -x

# Scenarios create and delete namespaces with plain names (client, rs1, ...)
# and load IPVS: only inside the throwaway VM, where guest.sh sets this.
if [[ ${VM_SUITE_GUEST:-0} != 1 ]]; then
    echo "$(basename "$0"): runs only inside the VM: use tests/vm/run-suite.sh" >&2
    exit 2
fi

VIP=203.0.113.10
LAN_NET=198.51.100.0/24
DIRECTOR_IP=198.51.100.1
CLIENT_IP=198.51.100.100
RS1_IP=198.51.100.11
RS2_IP=198.51.100.12
LAB_NAMESPACES=(lan client director rs1 rs2)
declare -A LAB_IP=([client]=$CLIENT_IP [director]=$DIRECTOR_IP [rs1]=$RS1_IP [rs2]=$RS2_IP)
# Fixed, locally administered MACs make ARP assertions and logs readable.
declare -A LAB_MAC=([client]=02:00:00:00:00:64 [director]=02:00:00:00:00:01
                    [rs1]=02:00:00:00:00:0b [rs2]=02:00:00:00:00:0c)

RS_AGENT=${RS_AGENT:-rs-agent}
SCENARIO=$(basename "${0%.sh}")
TEST_TMP=$(mktemp -d "/tmp/vm-${SCENARIO}.XXXXXX")
BG_PIDS=()
EXIT_HOOKS=()
CREATED_NS=()

# (printf's %(...)T: no date process; every exec is slow in the emulated VM)
log() { printf '[%(%T)T %s] %s\n' -1 "$SCENARIO" "$*"; }
fail() { log "FAIL: $*"; exit 1; }
pass() { log "ok: $*"; }
in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

# on_exit CMD...: run CMD (eval'd, best effort) at exit, before the namespaces go.
on_exit() { EXIT_HOOKS+=("$*"); }

# wait_until SECONDS DESCRIPTION CMD...: retry CMD every 0.2 s, at most
# SECONDS seconds and 5*SECONDS attempts; fail the scenario on timeout.
# CMD itself must be bounded (timeout, --max-time, -W ...).
wait_until() {
    local secs=$1 what=$2 tries=0
    shift 2
    local deadline=$((SECONDS + secs))
    until "$@" >/dev/null 2>&1; do
        tries=$((tries + 1))
        if ((SECONDS >= deadline || tries >= 5 * secs)); then
            fail "timed out after ${secs}s ($tries tries) waiting for: $what"
        fi
        sleep 0.2
    done
}

# --- cleanup -----------------------------------------------------------------

ns_destroy() {
    local ns=$1 pids
    [[ -e /run/netns/$ns ]] || return 0
    pids=$(ip netns pids "$ns" 2>/dev/null || true)
    if [[ -n $pids ]]; then
        # shellcheck disable=SC2086 # one PID a word: split on purpose
        kill $pids 2>/dev/null || true
        sleep 0.2
        # shellcheck disable=SC2086 # (as above)
        kill -9 $pids 2>/dev/null || true
    fi
    ip netns del "$ns" 2>/dev/null || true
}

lib_cleanup() {
    local rc=$? hook pid ns
    set +e
    trap - EXIT TERM INT
    for hook in "${EXIT_HOOKS[@]}"; do
        eval "$hook" >/dev/null 2>&1
    done
    for pid in "${BG_PIDS[@]}"; do
        kill "$pid" 2>/dev/null
    done
    for ns in "${CREATED_NS[@]}"; do
        ns_destroy "$ns"
    done
    # The daemon's log (lvs-director run), when a scenario failed or asked.
    if [[ -s ${DIRECTOR_LOG:-} ]] && ((rc != 0)) || [[ ${VM_VERBOSE:-0} == 1 && -s ${DIRECTOR_LOG:-} ]]; then
        sed 's/^/    director: /' "$DIRECTOR_LOG"
    fi
    rm -rf "$TEST_TMP"
    exit "$rc"
}
trap lib_cleanup EXIT
trap 'log "terminated"; exit 143' TERM
trap 'exit 130' INT

# --- topology ----------------------------------------------------------------

load_ipvs_modules() {
    # -a: several modules (without it the rest would be parameters of ip_vs).
    modprobe -a ip_vs ip_vs_wrr ip_vs_rr ip_vs_sh
}

# ns_fresh NS...: each NS made anew (one left by an earlier run destroyed
# first) and removed at exit, with lo up and IPv4 only: no DAD, router
# solicitations or link-local noise in snapshots.
ns_fresh() {
    local ns
    for ns in "$@"; do
        ns_destroy "$ns"
        ip netns add "$ns"
        CREATED_NS+=("$ns")
        ip -n "$ns" link set lo up
        in_ns "$ns" sh -c 'echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6 &&
                           echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6'
    done
}

# topo_up: fresh namespaces lan, client, director, rs1, rs2 on bridge br0.
topo_up() {
    local host
    ns_fresh "${LAB_NAMESPACES[@]}"
    ip -n lan link add br0 type bridge
    ip -n lan link set br0 up
    for host in client director rs1 rs2; do
        ip link add eth0 netns "$host" address "${LAB_MAC[$host]}" type veth peer name "$host" netns lan
        ip -n lan link set "$host" master br0 up
        ip -n "$host" addr add "${LAB_IP[$host]}/24" dev eth0
        ip -n "$host" link set eth0 up
    done
    # The client reaches the VIP on-link, so it ARPs for it (the seed's single L2 network).
    ip -n client route add "$VIP/32" dev eth0
    log "topology up: client, director, rs1, rs2 on br0 ($LAN_NET), VIP $VIP"
}

# director_vip_up: the VIP as an alias of the director's NIC (eth0:0).
director_vip_up() {
    ip -n director addr add "$VIP/32" dev eth0 label eth0:0
}

ipvsadm_d() { in_ns director ipvsadm "$@"; }

# director_wrr: the seed's service: wrr, RS1 -g -w 1, RS2 -g -w 2.
director_wrr() {
    ipvsadm_d -A -t "$VIP:80" -s wrr
    ipvsadm_d -a -t "$VIP:80" -r "$RS1_IP:80" -g -w 1
    ipvsadm_d -a -t "$VIP:80" -r "$RS2_IP:80" -g -w 2
    log "director: $(ipvsadm_d -S -n | tr '\n' ';')"
}

# --- topology with more than one director (scenarios 9x) ---------------------
#
# Built by topo_multi_up; routed, as behind a real upstream router:
#
#   client 198.18.0.100 --- eth0 198.18.0.1  router  eth1 198.51.100.254 ---+
#                                                                           |
#            br0 (netns lan), segment 198.51.100.0/24  ---------------------+
#              |            |            |            |
#            dir1 .1      dir2 .2      rs1 .11      rs2 .12
#
#   The client's only way to the VIP 203.0.113.10 is the router. Directors
#   and real servers share one L2 segment (DR needs it) and route through the
#   router (default via .254); real servers answer the client directly, from
#   the VIP, through the router. How the router reaches the VIP is up to the
#   scenario: BGP ECMP to both directors (BIRD; net.ipv4.fib_multipath_hash_policy=1,
#   L4 hash, set here), or on-link (VRRP moves the VIP between directors).
MULTI_NAMESPACES=(lan client router dir1 dir2 rs1 rs2)
ROUTER_IP=198.51.100.254
ROUTER_FRONT_IP=198.18.0.1
MCLIENT_IP=198.18.0.100
DIR1_IP=198.51.100.1
DIR2_IP=198.51.100.2
declare -A MULTI_IP=([router]=$ROUTER_IP [dir1]=$DIR1_IP [dir2]=$DIR2_IP [rs1]=$RS1_IP [rs2]=$RS2_IP)
declare -A MULTI_MAC=([router]=02:00:00:00:00:fe [dir1]=02:00:00:00:00:01 [dir2]=02:00:00:00:00:02
                      [rs1]=02:00:00:00:00:0b [rs2]=02:00:00:00:00:0c)

# topo_multi_up: fresh namespaces lan, client, router, dir1, dir2, rs1, rs2.
# Few processes (each exec costs 0.1-1 s in the emulated VM): one `ip -b`
# for the namespaces and links, one per namespace for its addresses and routes.
topo_multi_up() {
    local ns host dev extra batch
    for ns in "${MULTI_NAMESPACES[@]}"; do
        ns_destroy "$ns"
    done
    batch="link add eth0 netns client type veth peer name eth0 netns router"$'\n'
    for host in router dir1 dir2 rs1 rs2; do
        dev=eth0
        [[ $host == router ]] && dev=eth1
        batch+="link add $dev netns $host address ${MULTI_MAC[$host]} type veth peer name $host netns lan"$'\n'
    done
    for ns in "${MULTI_NAMESPACES[@]}"; do
        CREATED_NS+=("$ns")
    done
    ip -b - <<EOF || fail "topo_multi_up: namespaces and links"
$(printf 'netns add %s\n' "${MULTI_NAMESPACES[@]}")
$batch
EOF
    ip -n lan -b - <<EOF || fail "topo_multi_up: lan"
link set lo up
link add br0 type bridge
link set br0 up
$(for host in router dir1 dir2 rs1 rs2; do echo "link set $host master br0 up"; done)
EOF
    ip -n client -b - <<EOF || fail "topo_multi_up: client"
link set lo up
addr add $MCLIENT_IP/24 dev eth0
link set eth0 up
route add default via $ROUTER_FRONT_IP
EOF
    ip -n router -b - <<EOF || fail "topo_multi_up: router"
link set lo up
addr add $ROUTER_FRONT_IP/24 dev eth0
link set eth0 up
addr add $ROUTER_IP/24 dev eth1
link set eth1 up
EOF
    for host in dir1 dir2 rs1 rs2; do
        ip -n "$host" -b - <<EOF || fail "topo_multi_up: $host"
link set lo up
addr add ${MULTI_IP[$host]}/24 dev eth0
link set eth0 up
route add default via $ROUTER_IP
EOF
    done
    # IPv4 only (no DAD or router solicitations); the router forwards and
    # hashes multipath routes on the 5-tuple. One process per namespace.
    # The client: net.core.txrehash=0. Policy 1 takes a packet's L4 hash from
    # the skb when it has one, and a veth hands over the sender's: the
    # client's per-socket random hash, which Linux re-rolls at every TCP
    # retransmission timeout (txrehash=1), so a stalled flow would hop to
    # another director by itself. A real router hashes the headers (or its
    # NIC's RSS hash of them), which never change within a flow.
    for ns in "${MULTI_NAMESPACES[@]}"; do
        extra=()
        [[ $ns == router ]] && extra=(net.ipv4.ip_forward=1 net.ipv4.fib_multipath_hash_policy=1)
        [[ $ns == client ]] && extra=(net.core.txrehash=0)
        in_ns "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 "${extra[@]}"
    done
    log "topology up: client $MCLIENT_IP -- router -- dir1, dir2, rs1, rs2 on br0 ($LAN_NET), VIP $VIP"
}

# --- real servers ------------------------------------------------------------

# rs_set_arp_priors NS ARP_IGNORE ARP_ANNOUNCE: the values a test later expects back.
rs_set_arp_priors() {
    local ns=$1 ign=$2 ann=$3
    in_ns "$ns" sh -c "echo $ign > /proc/sys/net/ipv4/conf/all/arp_ignore &&
                       echo $ann > /proc/sys/net/ipv4/conf/all/arp_announce"
}

# rs_sysctl NS IFACE KEY: print /proc/sys/net/ipv4/conf/IFACE/KEY inside NS.
rs_sysctl() { in_ns "$1" cat "/proc/sys/net/ipv4/conf/$2/$3"; }

# rs_vip_on_lo NS: VIP/32 on lo by hand, nothing else (the ARP problem).
rs_vip_on_lo() { ip -n "$1" addr add "$VIP/32" dev lo; }

# rs_prepare_by_hand NS: the seed's classic real-server script.
rs_prepare_by_hand() {
    local ns=$1
    in_ns "$ns" sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2 \
        net.ipv4.conf.lo.arp_ignore=1 net.ipv4.conf.lo.arp_announce=2
    rs_vip_on_lo "$ns"
}

# rs_serve NS PORT...: busybox httpd in NS on each PORT, page = the NS name.
rs_serve() {
    local ns=$1 port dir
    shift
    dir=$TEST_TMP/www-$ns
    mkdir -p "$dir"
    echo "$ns" >"$dir/index.html"
    for port in "$@"; do
        in_ns "$ns" busybox httpd -f -p "$port" -h "$dir" &
        BG_PIDS+=($!)
    done
    for port in "$@"; do
        # Also proves the L2 path client -> bridge -> NS works.
        wait_until 20 "$ns serving on port $port" \
            in_ns client curl -sf --max-time 1 "http://${LAB_IP[$ns]}:$port/"
    done
}

# rs_state NS: everything rs-agent may touch in NS, for before/after comparisons.
rs_state() {
    local ns=$1
    echo "# addresses"
    in_ns "$ns" ip -o addr show
    echo "# routes"
    in_ns "$ns" ip route show table all
    echo "# rules"
    in_ns "$ns" ip rule show
    echo "# links"
    in_ns "$ns" ip -o link show
    echo "# ipv4 conf"
    in_ns "$ns" grep -r . /proc/sys/net/ipv4/conf/ | sort
}

# rs_has_vip_on_lo NS: 0 if VIP/32 is on lo in NS.
rs_has_vip_on_lo() {
    in_ns "$1" ip -o -4 addr show dev lo | grep -qF " $VIP/32 "
}

# seed_lab_by_hand: the seed's lab, no service on the director yet: the IPVS
# modules, topo_up, the VIP on the director, rs1 and rs2 prepared by hand
# (rs_prepare_by_hand) and serving HTTP on port 80.
seed_lab_by_hand() {
    local rs
    load_ipvs_modules
    topo_up
    director_vip_up
    for rs in rs1 rs2; do rs_prepare_by_hand "$rs"; done
    rs_serve rs1 80
    rs_serve rs2 80
}

# --- rs-agent ----------------------------------------------------------------

# agent_config: write the agent's config for the VIP; prints its path.
agent_config() {
    local f=$TEST_TMP/rs-agent.toml
    printf '[[vip]]\naddress = "%s"\n' "$VIP" >"$f"
    echo "$f"
}

# agent NS SUBCOMMAND [ARGS...]: run $RS_AGENT for NS with its own state dir, bounded.
agent() {
    local ns=$1
    shift
    timeout -k 5 60 "$RS_AGENT" --netns "$ns" --state-dir "$TEST_TMP/rsa-$ns" "$@"
}

# --- ipvsctl ------------------------------------------------------------------

# dummy_ns NS: a fresh namespace NS (removed at exit) where IPVS accepts
# destinations: a dummy d0 with 198.51.100.1/24 and 2001:db8::1/64, default
# routes (IPv4 and IPv6) through it.
dummy_ns() {
    local ns=$1
    ns_destroy "$ns"
    ip netns add "$ns"
    on_exit "ns_destroy $ns"
    in_ns "$ns" ip link set lo up
    in_ns "$ns" ip link add d0 type dummy
    in_ns "$ns" ip link set d0 up
    in_ns "$ns" ip addr add 198.51.100.1/24 dev d0
    in_ns "$ns" ip addr add 2001:db8::1/64 dev d0 nodad
    in_ns "$ns" ip route add default dev d0
    in_ns "$ns" ip -6 route add default dev d0
}

# use_ipvsctl: IPVSCTL becomes a tmpfs copy of the host's build (the IPVSCTL
# variable, if set, names the build): over 9p every exec re-reads the binary.
use_ipvsctl() {
    local root src
    root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
    src=${IPVSCTL:-$root/target/debug/ipvsctl}
    [[ -x $src ]] || fail "no $src (cargo build -p ipvsctl)"
    cp "$src" "$TEST_TMP/ipvsctl"
    IPVSCTL=$TEST_TMP/ipvsctl
}

# use_director: DIRECTOR becomes a tmpfs copy of the host's lvs-director
# build (the LVS_DIRECTOR variable, if set, names the build).
use_director() {
    local root src
    root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
    src=${LVS_DIRECTOR:-$root/target/debug/lvs-director}
    [[ -x $src ]] || fail "no $src (cargo build -p lvs-director)"
    cp "$src" "$TEST_TMP/lvs-director"
    DIRECTOR=$TEST_TMP/lvs-director
}

# seed_director_config FILE [W1 W2 [EXTRA_SERVICE_LINES]]: the seed's service
# for `lvs-director apply`: wrr on VIP:80, rs1 weight W1 (default 1, forwarding
# left at its default, DR) and rs2 weight W2 (default 2, `forward = "dr"`).
seed_director_config() {
    cat >"$1" <<TOML
[[service]]
vip = "$VIP"
port = 80
scheduler = "wrr"
${4:-}

[[service.server]]
address = "$RS1_IP"
weight = ${2:-1}

[[service.server]]
address = "$RS2_IP"
forward = "dr"
weight = ${3:-2}
TOML
}

# --- client side -------------------------------------------------------------

# client_get [PORT]: one HTTP request to the VIP from the client; prints the page.
client_get() {
    in_ns client curl -sS --max-time 5 "http://$VIP:${1:-80}/"
}

# client_get_many PORT...: one curl process making one request per PORT, in
# order, each on a new TCP connection (Connection: close), so IPVS schedules
# each; prints one answer per line. Cheaper than one curl per request (every
# exec costs ~1 s in the emulated VM). Each request is bounded by --max-time.
client_get_many() {
    local urls=() p
    for p in "$@"; do urls+=("http://$VIP:$p/"); done
    in_ns client timeout -k 2 $((5 * $# + 10)) \
        curl -sS --fail --max-time 5 -H 'Connection: close' "${urls[@]}"
}

mac_name() {
    local mac=$1 h
    for h in "${!LAB_MAC[@]}"; do
        [[ ${LAB_MAC[$h]} == "$mac" ]] && { echo "$h"; return; }
    done
    echo "$mac"
}

# arp_responders IP: names (director, rs1, ...) of every host answering the
# client's ARP requests for IP, one per line, sorted, unique. Bounded: 3
# requests, at most 6 s.
arp_responders() {
    local ip=$1 macs mac
    macs=$(in_ns client timeout -k 2 8 arping -r -c 3 -w 6 -i eth0 "$ip" 2>/dev/null || true)
    for mac in $macs; do
        mac_name "${mac,,}"
    done | sort -u
}

# check_only_director_answers_arp: 0 iff the director, and only the director,
# answers ARP for the VIP. Prints who answered.
check_only_director_answers_arp() {
    local who
    who=$(arp_responders "$VIP")
    log "ARP replies for $VIP from: ${who//$'\n'/ }"
    [[ $who == director ]]
}

# arp_check_catches_real_servers WHY: check_only_director_answers_arp must
# fail (the scenario fails with WHY if it passes), and rs1 and rs2 must be
# among the hosts answering ARP for the VIP.
arp_check_catches_real_servers() {
    local who
    if check_only_director_answers_arp; then
        fail "$1"
    fi
    who=$(arp_responders "$VIP")
    grep -qx rs1 <<<"$who" || fail "rs1 did not answer ARP for the VIP (answers: ${who//$'\n'/ })"
    grep -qx rs2 <<<"$who" || fail "rs2 did not answer ARP for the VIP (answers: ${who//$'\n'/ })"
}

# check_wrr_ratio: 9 requests, answered by rs2 and rs1 in the ratio 6:3.
check_wrr_ratio() {
    local out n1 n2 n
    out=$(client_get_many 80 80 80 80 80 80 80 80 80) || true
    n=$(grep -c . <<<"$out" || true)
    n1=$(grep -cx rs1 <<<"$out" || true)
    n2=$(grep -cx rs2 <<<"$out" || true)
    log "wrr answers: ${out//$'\n'/ } (rs2=$n2 rs1=$n1 of $n)"
    ((n == 9 && n2 == 6 && n1 == 3))
}

# check_sticky [PORT...]: 9 requests (cycling over PORTs, default 80) all
# answered by one real server. Prints that server.
check_sticky() {
    local ports=("$@") sent=() i out answers=() uniq
    ((${#ports[@]})) || ports=(80)
    for i in 0 1 2 3 4 5 6 7 8; do sent+=("${ports[i % ${#ports[@]}]}"); done
    out=$(client_get_many "${sent[@]}") || true
    mapfile -t answers <<<"$out"
    log "answers (port:server): $(for i in "${!sent[@]}"; do printf '%s:%s ' "${sent[i]}" "${answers[i]:-none}"; done)" >&2
    uniq=$(printf '%s\n' "${answers[@]}" | sort -u)
    if ((${#answers[@]} != 9)) || [[ $uniq != rs1 && $uniq != rs2 ]]; then
        return 1
    fi
    echo "$uniq"
}

# --- scenario 1 building blocks (shared with the broken-agent scenario) ------

# Prior ARP sysctls of each real server (conf/all), set before rs-agent start
# and expected back after rs-agent stop. rs1's arp_announce=1 is deliberately
# neither the kernel default nor what the agent writes.
declare -A PRIOR_ARP_IGNORE=([rs1]=0 [rs2]=0)
declare -A PRIOR_ARP_ANNOUNCE=([rs1]=1 [rs2]=0)

# cluster_up_with_agent: on rs1 and rs2: set the priors, serve HTTP on port
# 80, snapshot the state, then `rs-agent start` twice (it must be idempotent)
# and require the VIP on lo. Snapshots go to $TEST_TMP/before-NS.
cluster_up_with_agent() {
    local rs cfg
    cfg=$(agent_config)
    for rs in rs1 rs2; do
        rs_set_arp_priors "$rs" "${PRIOR_ARP_IGNORE[$rs]}" "${PRIOR_ARP_ANNOUNCE[$rs]}"
        rs_serve "$rs" 80
        rs_state "$rs" >"$TEST_TMP/before-$rs"
        agent "$rs" start --config "$cfg" || fail "rs-agent start failed in $rs"
        agent "$rs" start --config "$cfg" || fail "a second rs-agent start failed in $rs (not idempotent)"
        rs_has_vip_on_lo "$rs" || fail "after rs-agent start, $VIP is not on lo in $rs"
        log "$rs after start: VIP on lo; conf/all arp_ignore=$(rs_sysctl "$rs" all arp_ignore) arp_announce=$(rs_sysctl "$rs" all arp_announce)"
    done
}

# check_agent_sysctls NS: the ARP settings in force on eth0 (max of all and
# eth0) are arp_ignore >= 1 and arp_announce = 2.
check_agent_sysctls() {
    local ns=$1 ign ann a b
    a=$(rs_sysctl "$ns" all arp_ignore) b=$(rs_sysctl "$ns" eth0 arp_ignore)
    ign=$((a > b ? a : b))
    a=$(rs_sysctl "$ns" all arp_announce) b=$(rs_sysctl "$ns" eth0 arp_announce)
    ann=$((a > b ? a : b))
    log "$ns: arp_ignore in force on eth0 = $ign, arp_announce = $ann"
    ((ign >= 1 && ann == 2))
}

# cluster_down_with_agent_and_compare: `rs-agent stop` on rs1 and rs2, then
# each must be exactly as before start: same snapshot, priors back in
# conf/all, VIP gone from lo.
cluster_down_with_agent_and_compare() {
    local rs cfg
    cfg=$(agent_config)
    for rs in rs1 rs2; do
        agent "$rs" stop --config "$cfg" || fail "rs-agent stop failed in $rs"
        ! rs_has_vip_on_lo "$rs" || fail "after rs-agent stop, $VIP is still on lo in $rs"
        [[ $(rs_sysctl "$rs" all arp_ignore) == "${PRIOR_ARP_IGNORE[$rs]}" ]] ||
            fail "$rs: conf/all/arp_ignore is $(rs_sysctl "$rs" all arp_ignore) after stop, was ${PRIOR_ARP_IGNORE[$rs]}"
        [[ $(rs_sysctl "$rs" all arp_announce) == "${PRIOR_ARP_ANNOUNCE[$rs]}" ]] ||
            fail "$rs: conf/all/arp_announce is $(rs_sysctl "$rs" all arp_announce) after stop, was ${PRIOR_ARP_ANNOUNCE[$rs]}"
        rs_state "$rs" >"$TEST_TMP/after-$rs"
        if ! diff -u "$TEST_TMP/before-$rs" "$TEST_TMP/after-$rs"; then
            fail "$rs differs after rs-agent stop from its state before start (diff above)"
        fi
    done
}

# --- routed topology (tunnel mode, scenarios 4x) ------------------------------
#
# topo_routed_up: the director and the real servers in different subnets,
# a router between them (the point of tunnel mode: no shared L2 segment).
#
#     client 198.51.100.100/24 ---- router ---- director 198.18.1.1/24 (VIP on lo)
#                                     |
#                                  br-rs 198.18.0.254/24 (in netns router)
#                                   /    \
#                 rs1 198.18.0.11/24      rs2 198.18.0.12/24
#
# Every host's default route goes to the router; the router sends the VIP to
# the director. Real servers answer the client directly (from the VIP, via
# the router), so the router's rp_filter is off: the VIP comes back from a
# subnet it is not routed to (what direct server return needs of a router).
# Sets LAB_IP for client, director, rs1 and rs2 (rs_serve and the other
# helpers then use these addresses) and ROUTED_NAMESPACES.
ROUTED_NAMESPACES=(router client director rs1 rs2)
declare -A ROUTED_IP=([client]=198.51.100.100 [director]=198.18.1.1
                      [rs1]=198.18.0.11 [rs2]=198.18.0.12)
declare -A ROUTED_GW=([client]=198.51.100.254 [director]=198.18.1.254
                      [rs1]=198.18.0.254 [rs2]=198.18.0.254)

topo_routed_up() {
    local host
    ns_fresh "${ROUTED_NAMESPACES[@]}"
    # shellcheck disable=SC2016 # $f is the inner shell's
    in_ns router sh -c 'echo 1 > /proc/sys/net/ipv4/ip_forward &&
                        for f in /proc/sys/net/ipv4/conf/*/rp_filter; do echo 0 > "$f"; done &&
                        echo 0 > /proc/sys/net/ipv4/conf/default/rp_filter'
    # client and director: a veth each into the router
    ip link add eth0 netns client type veth peer name r-client netns router
    ip -n router addr add "${ROUTED_GW[client]}/24" dev r-client
    ip link add eth0 netns director type veth peer name r-dir netns router
    ip -n router addr add "${ROUTED_GW[director]}/24" dev r-dir
    # the real servers' segment: a bridge in the router
    ip -n router link add br-rs type bridge
    ip -n router addr add "${ROUTED_GW[rs1]}/24" dev br-rs
    ip -n router link set br-rs up
    for host in rs1 rs2; do
        ip link add eth0 netns "$host" type veth peer name "r-$host" netns router
        ip -n router link set "r-$host" master br-rs up
    done
    ip -n router link set r-client up
    ip -n router link set r-dir up
    for host in client director rs1 rs2; do
        ip -n "$host" addr add "${ROUTED_IP[$host]}/24" dev eth0
        ip -n "$host" link set eth0 up
        ip -n "$host" route add default via "${ROUTED_GW[$host]}"
        LAB_IP[$host]=${ROUTED_IP[$host]}
    done
    ip -n router route add "$VIP/32" via "${ROUTED_IP[director]}"
    ip -n director addr add "$VIP/32" dev lo
    log "routed topology up: client ${ROUTED_IP[client]}, director ${ROUTED_IP[director]} (VIP $VIP), rs1 ${ROUTED_IP[rs1]}, rs2 ${ROUTED_IP[rs2]}, router between"
}

# director_tunnel_rr [IPVSADM_TUNNEL_ARGS...]: VIP:80 rr over rs1 and rs2 in
# tunnel mode (-i), with e.g. --tun-type gue --tun-port 6080.
director_tunnel_rr() {
    local rs
    ipvsadm_d -A -t "$VIP:80" -s rr
    for rs in rs1 rs2; do
        ipvsadm_d -a -t "$VIP:80" -r "${ROUTED_IP[$rs]}:80" -i "$@"
    done
    log "director: $(ipvsadm_d -S -n | tr '\n' ';')"
}

# tunnel_agent_config TOML_TUNNEL_LINES: the real servers' rs-agent file for
# the VIP in tunnel mode; prints its path.
tunnel_agent_config() {
    local f=$TEST_TMP/rs-agent-tunnel.toml
    printf '[tunnel]\n%s\n[[vip]]\naddress = "%s"\n' "$1" "$VIP" >"$f"
    echo "$f"
}

# check_both_answer N: N requests to the VIP from the client (rr): every
# one answered, by rs1 and rs2 alike.
check_both_answer() {
    local n=$1 ports=() out n1 n2 i
    for ((i = 0; i < n; i++)); do ports+=(80); done
    out=$(client_get_many "${ports[@]}") || true
    n1=$(grep -cx rs1 <<<"$out" || true)
    n2=$(grep -cx rs2 <<<"$out" || true)
    log "answers: ${out//$'\n'/ } (rs1=$n1 rs2=$n2 of $n)"
    ((n1 + n2 == n && n1 > 0 && n2 > 0))
}

# tunnel_rs_state NS: rs_state, but for the qdisc of the tunnel devices:
# bringing a device up attaches its default qdisc (noqueue), which the kernel
# leaves in place when it goes down again (no state, nothing for a down device).
tunnel_rs_state() {
    rs_state "$1" | sed -E '/^[0-9]+: (tunl0|gre0)@/ s/qdisc noqueue/qdisc noop/'
}

# check_rp_filter NS: rp_filter in force (max of all and the device) is 0 on
# tunl0 and 2 on eth0 (was strict: made loose).
check_rp_filter() {
    local ns=$1 all tun eth
    all=$(rs_sysctl "$ns" all rp_filter) tun=$(rs_sysctl "$ns" tunl0 rp_filter) eth=$(rs_sysctl "$ns" eth0 rp_filter)
    log "$ns: rp_filter all=$all tunl0=$tun eth0=$eth"
    ((all == 0 && tun == 0 && eth == 2))
}

# tunnel_scenario KIND TOML_TUNNEL_LINES [IPVSADM_TUNNEL_ARGS...]: the whole
# tunnel-mode check of scenarios 40 and 41: routed topology, director in
# tunnel mode, real servers prepared only by rs-agent [tunnel]; requests
# fail before, are answered by both real servers after, rs-agent check
# passes; stop brings both real servers back exactly.
tunnel_scenario() {
    local kind=$1 lines=$2 rs cfg
    shift 2
    load_ipvs_modules
    # Loaded before the snapshots: the modules (and their fallback devices,
    # down) stay after stop, as documented.
    modprobe -a ipip fou ip_gre
    topo_routed_up
    director_tunnel_rr "$@"
    cfg=$(tunnel_agent_config "$lines")
    for rs in rs1 rs2; do
        # Strict, as some distributions ship it: the agent must change it.
        in_ns "$rs" sh -c 'echo 1 > /proc/sys/net/ipv4/conf/all/rp_filter &&
                           echo 1 > /proc/sys/net/ipv4/conf/eth0/rp_filter'
        rs_serve "$rs" 80
        tunnel_rs_state "$rs" >"$TEST_TMP/before-$rs"
    done
    if in_ns client curl -s --max-time 2 "http://$VIP/" >/dev/null; then
        fail "the VIP answered before rs-agent prepared the real servers"
    fi
    pass "$kind: no answer before rs-agent start (nothing receives the tunnel)"
    for rs in rs1 rs2; do
        agent "$rs" start --config "$cfg" || fail "rs-agent start failed in $rs"
        agent "$rs" start --config "$cfg" | grep -qx 'start: no changes needed' ||
            fail "a second rs-agent start changed something in $rs"
        agent "$rs" check --config "$cfg" || fail "rs-agent check reports drift in $rs"
        check_rp_filter "$rs" || fail "$rs: rp_filter in force is not 0 on tunl0 and 2 on eth0"
    done
    pass "$kind: rs-agent start (twice) and check on rs1 and rs2"
    check_both_answer 6 || fail "$kind: the client's requests were not answered by both real servers"
    pass "$kind: requests through the tunnel answered by rs1 and rs2"
    for rs in rs1 rs2; do
        agent "$rs" stop || fail "rs-agent stop failed in $rs"
        tunnel_rs_state "$rs" >"$TEST_TMP/after-$rs"
        diff -u "$TEST_TMP/before-$rs" "$TEST_TMP/after-$rs" ||
            fail "$rs differs after rs-agent stop from its state before start (diff above)"
    done
    pass "$kind: rs-agent stop restored rs1 and rs2 exactly"
}

# newest PATH...: the most recently modified PATH that exists (what
# `ls -t PATH... | head -1` prints; ties: the first in the list); nothing
# when none exists.
newest() {
    local f n=""
    for f in "$@"; do
        if [[ -e $f ]] && [[ -z $n || $f -nt $n ]]; then n=$f; fi
    done
    [[ -z $n ]] || echo "$n"
}

# newest_test_binary DIR NAME: the newest test executable DIR/NAME-HASH
# cargo built (not its NAME-HASH.d); nothing when there is none.
newest_test_binary() {
    local f bins=()
    for f in "$1/$2"-*; do
        [[ $f == *.d ]] || bins+=("$f")
    done
    newest "${bins[@]}"
}

# run_tunnel_root_tests COUNT FILTER...: rs-agent's tunnel-mode root tests
# (tests/tunnel.rs, built on the host by `cargo test -p rs-agent --no-run`;
# ignored there, the host kernel has no ipip, fou or ip_gre) whose names
# contain one of FILTER, with --ignored, one at a time (some change
# machine-wide settings of this throwaway VM); exactly COUNT must run.
run_tunnel_root_tests() {
    local count=$1 root deps src ran
    shift
    root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
    deps=${RS_AGENT_DEPS_DIR:-$root/target/debug/deps}
    src=$(newest_test_binary "$deps" tunnel)
    [[ -n $src && -x $src ]] || fail "no tunnel test binary in $deps (cargo test -p rs-agent --no-run)"
    cp "$src" "$TEST_TMP/tunnel-tests"
    log "running $src: $*"
    # The fixtures run the tmpfs copy of rs-agent guest.sh made.
    RS_AGENT_TEST_BIN=$RS_AGENT RUST_BACKTRACE=1 "$TEST_TMP/tunnel-tests" --ignored --test-threads=1 "$@" |
        tee "$TEST_TMP/tunnel-tests.log" || fail "tunnel root tests failed"
    ran=$(sed -nE 's/^test result: ok\. ([0-9]+) passed.*/\1/p' "$TEST_TMP/tunnel-tests.log")
    ((${ran:-0} == count)) || fail "${ran:-0} tunnel root tests ran (expected $count)"
    pass "tunnel root tests ($ran): $*"
}

# hold_connection DIR: a client connection to VIP:80 held open (busybox
# httpd waits 60 s for a request); the request goes once DIR/go exists, the
# answer lands in DIR/long.out. Sets HOLDER_PID; returns once it is open.
hold_connection() {
    local dir=$1
    mkdir -p "$dir"
    # shellcheck disable=SC2016 # $1, $2 and $_ are the inner bash's
    in_ns client bash -c '
        exec 3<>"/dev/tcp/$1/80" || exit 1
        : >"$2/open"
        for _ in $(seq 200); do [[ -e $2/go ]] && break; sleep 0.2; done
        printf "GET / HTTP/1.0\r\n\r\n" >&3
        timeout 10 cat <&3 >"$2/long.out"
    ' _ "$VIP" "$dir" &
    HOLDER_PID=$!
    BG_PIDS+=("$HOLDER_PID")
    wait_until 20 "the long connection to open" test -e "$dir/open"
}

# held_connection: "CLIENT:PORT RS:PORT" of the client's ESTABLISHED
# connections to VIP:80 in the director's table.
held_connection() {
    ipvsadm_d -Lnc | awk -v v="$VIP:80" -v c="$CLIENT_IP" '$3 == "ESTABLISHED" && $5 == v && index($4, c ":") == 1 { print $4, $6 }'
}

# hold_connection_entry DIR: hold_connection DIR, then wait for its entry in
# the director's table. Sets HELD_CLIENT and HELD_RS (CLIENT:PORT and
# RS:PORT of the ESTABLISHED entry) and HELD_BY (rs1 or rs2, the real
# server it went to).
hold_connection_entry() {
    hold_connection "$1"
    wait_until 10 "the connection entry" bash -c "ip netns exec director ipvsadm -Lnc | grep -q ESTABLISHED"
    HELD_CLIENT="" HELD_RS=""
    read -r HELD_CLIENT HELD_RS < <(held_connection) || true
    [[ -n $HELD_RS ]] || fail "no ESTABLISHED entry: $(ipvsadm_d -Lnc)"
    HELD_BY=rs1
    if [[ $HELD_RS == "$RS2_IP:80" ]]; then HELD_BY=rs2; fi
}

# held_entry_unchanged: 0 if the entry of hold_connection_entry is still
# ESTABLISHED in the director's table, between the same ends.
held_entry_unchanged() {
    local client="" rs=""
    read -r client rs < <(held_connection) || true
    [[ $client == "$HELD_CLIENT" && $rs == "$HELD_RS" ]]
}

# held_connection_answered DIR: the held connection sends its request now
# (DIR/go); fails the scenario unless HELD_BY answered it.
held_connection_answered() {
    : >"$1/go"
    wait "$HOLDER_PID" || true
    grep -q "^$HELD_BY\$" "$1/long.out" 2>/dev/null ||
        fail "the held connection got no answer from $HELD_BY: $(cat "$1/long.out" 2>/dev/null)"
}

# --- lvs-director run (the health-checking daemon) ------------------------------

SORRY_IP=198.51.100.80

# sorry_up: one more host on br0, namespace `sorry` ($SORRY_IP, VIP on lo
# by hand like a real server), serving a page "sorry" on port 80.
sorry_up() {
    ns_destroy sorry
    ip netns add sorry
    CREATED_NS+=(sorry)
    ip -n sorry link set lo up
    ip link add eth0 netns sorry address 02:00:00:00:00:50 type veth peer name sorry netns lan
    ip -n lan link set sorry master br0 up
    ip -n sorry addr add "$SORRY_IP/24" dev eth0
    ip -n sorry link set eth0 up
    LAB_IP[sorry]=$SORRY_IP
    rs_prepare_by_hand sorry
    rs_serve sorry 80
}

# health_server NS PORT: a Python HTTP server in NS whose every answer is
# read from $TEST_TMP/health-NS ("CODE BODY"; "200 ok" when missing).
health_server() {
    local ns=$1 port=$2
    cat >"$TEST_TMP/health.py" <<'PY'
import http.server, sys
port, state = int(sys.argv[1]), sys.argv[2]
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        try:
            code, body = open(state).read().split(None, 1)
        except Exception:
            code, body = "200", "ok"
        data = body.encode()
        self.send_response(int(code))
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def log_message(self, *args):
        pass
http.server.HTTPServer(("0.0.0.0", port), H).serve_forever()
PY
    ip netns exec "$ns" /usr/bin/python3 "$TEST_TMP/health.py" "$port" "$TEST_TMP/health-$ns" &
    BG_PIDS+=($!)
    wait_until 30 "health server of $ns on $port" \
        in_ns client curl -sf --max-time 1 "http://${LAB_IP[$ns]}:$port/"
}

# director_run CFG [ARGS...]: `lvs-director run` for the director namespace
# in the background (DIRECTOR_PID; log in $DIRECTOR_LOG; control socket
# $CONTROL), started directly so $! is the daemon.
DIRECTOR_LOG=$TEST_TMP/director.log
CONTROL=$TEST_TMP/control.sock
director_run() {
    local cfg=$1
    shift
    "$DIRECTOR" --netns director run --config "$cfg" --control "$CONTROL" "$@" >>"$DIRECTOR_LOG" 2>&1 &
    DIRECTOR_PID=$!
    BG_PIDS+=("$DIRECTOR_PID")
}

# dctl ARGS...: lvs-director's control commands against $CONTROL, bounded.
dctl() { timeout -k 2 20 "$DIRECTOR" "$@" --control "$CONTROL"; }

# weight_of RS_IP [PORT]: the weight of RS_IP:PORT (default 80) in the
# director's table for VIP:PORT, or "none".
weight_of() {
    local port=${2:-80} w
    w=$(ipvsadm_d -Sn | awk -v s="$VIP:$port" -v r="$1:$port" '$3 == s && $5 == r { print $NF }')
    echo "${w:-none}"
}

# wait_weight SECS RS_IP WEIGHT [PORT]: until RS_IP has WEIGHT ("none":
# absent); prints the seconds it took (tenths).
wait_weight() {
    local secs=$1 ip=$2 want=$3 port=${4:-80} start=$EPOCHREALTIME
    wait_until "$secs" "$ip:$port at weight $want" \
        bash -c "[[ \$(ip netns exec director ipvsadm -Sn | awk -v s='$VIP:$port' -v r='$ip:$port' '\$3 == s && \$5 == r { print \$NF }') == '${want/none/}' ]]"
    awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f\n", b - a }'
}
