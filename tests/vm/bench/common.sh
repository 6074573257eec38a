# shellcheck shell=bash
# Shared set-up of the director benchmark scripts (sourced, inside the VM).
# Expects IPVSCTL (the host's build); sets PATH.

export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# bench_setup NAME SERVICES DESTS NAMESPACE...: WORK becomes a fresh scratch
# directory /tmp/NAME.XXXXXX; bench_tools; a bench_ns for each NAMESPACE;
# $WORK/rules from bench_rules SERVICES DESTS. At exit the namespaces and
# WORK are removed.
bench_setup() {
    local n
    WORK=$(mktemp -d "/tmp/$1.XXXXXX")
    BENCH_NAMESPACES=("${@:4}")
    trap bench_cleanup EXIT
    bench_tools
    for n in "${BENCH_NAMESPACES[@]}"; do bench_ns "$n"; done
    bench_rules "$2" "$3" >"$WORK/rules"
}

bench_cleanup() {
    local n
    for n in "${BENCH_NAMESPACES[@]}"; do ip netns del "$n" 2>/dev/null || true; done
    rm -rf "$WORK"
}

# bench_tools: IPVSCTL and IPVSADM become tmpfs copies. The host's files
# reach the guest over 9p, so time copies of both, not the 9p originals.
bench_tools() {
    modprobe -a ip_vs ip_vs_wrr dummy
    cp "${IPVSCTL:?IPVSCTL must name the ipvsctl binary}" "$WORK/ipvsctl"
    IPVSCTL=$WORK/ipvsctl
    cp "$(command -v ipvsadm)" "$WORK/ipvsadm"
    # shellcheck disable=SC2034 # used by the scripts that source this file
    IPVSADM=$WORK/ipvsadm
}

# bench_ns NAME: a namespace where 203.0.113.0/24 is routable (the kernel
# refuses destinations it cannot route).
bench_ns() {
    ip netns add "$1"
    ip -n "$1" link set lo up
    ip -n "$1" link add d0 type dummy
    ip -n "$1" addr add 203.0.113.254/24 dev d0
    ip -n "$1" link set d0 up
}

# bench_rules SERVICES DESTS: an ipvsadm -R file: SERVICES services on
# 198.18.0.0/15 port 80, each with DESTS DR real servers in 203.0.113.0/24.
bench_rules() {
    python3 - "$1" "$2" <<'PY'
import ipaddress, sys
services, dests = int(sys.argv[1]), int(sys.argv[2])
base = int(ipaddress.IPv4Address("198.18.0.1"))
for i in range(services):
    vip = f"{ipaddress.IPv4Address(base + i)}:80"
    print(f"-A -t {vip} -s wrr")
    for d in range(dests):
        print(f"-a -t {vip} -r 203.0.113.{d + 1}:80 -g -w {d + 1}")
PY
}
