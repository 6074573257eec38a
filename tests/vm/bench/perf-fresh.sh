#!/usr/bin/env bash
# Profiling aid: ipvsctl restore against ipvsadm -R into fresh namespaces
# (an empty destination trash in the kernel, unlike director.sh's restores
# after a flush). VM_GUEST=$PWD/tests/vm/bench/perf-fresh.sh BENCH_SERVICES=10000 bash tests/vm/run-suite.sh
set -euo pipefail
SERVICES=${BENCH_SERVICES:-10000}
DESTS=${BENCH_DESTS:-5}
NS=ipvs-fresh-$$
WORK=$(mktemp -d /tmp/ipvs-fresh.XXXXXX)
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
cleanup() { for n in "$NS-a" "$NS-c"; do ip netns del "$n" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT
modprobe -a ip_vs ip_vs_wrr dummy
cp "${IPVSCTL:?}" "$WORK/ipvsctl"; C=$WORK/ipvsctl
cp "$(command -v ipvsadm)" "$WORK/ipvsadm"; A=$WORK/ipvsadm
for n in "$NS-a" "$NS-c"; do
    ip netns add "$n"
    ip -n "$n" link set lo up
    ip -n "$n" link add d0 type dummy
    ip -n "$n" addr add 203.0.113.254/24 dev d0
    ip -n "$n" link set d0 up
done
python3 - "$SERVICES" "$DESTS" >"$WORK/rules" <<'PY'
import ipaddress, sys
services, dests = int(sys.argv[1]), int(sys.argv[2])
base = int(ipaddress.IPv4Address("198.18.0.1"))
for i in range(services):
    vip = f"{ipaddress.IPv4Address(base + i)}:80"
    print(f"-A -t {vip} -s wrr")
    for d in range(dests):
        print(f"-a -t {vip} -r 203.0.113.{d + 1}:80 -g -w {d + 1}")
PY
TIMEFORMAT='   real %3R user %3U sys %3S'
echo "== ipvsctl restore ($SERVICES services, fresh namespace)"
{ time ip netns exec "$NS-c" "$C" restore "$WORK/rules"; } 2>&1
echo "== ipvsadm -R ($SERVICES services, fresh namespace)"
{ time ip netns exec "$NS-a" "$A" -R <"$WORK/rules"; } 2>&1
cmp <(ip netns exec "$NS-c" "$A" -Sn) <(ip netns exec "$NS-a" "$A" -Sn) && echo "same table"
