#!/usr/bin/env bash
# Profiling aid: ipvsctl restore against ipvsadm -R into fresh namespaces
# (an empty destination trash in the kernel, unlike director.sh's restores
# after a flush). VM_GUEST=$PWD/tests/vm/bench/perf-fresh.sh BENCH_SERVICES=10000 bash tests/vm/run-suite.sh
set -euo pipefail
SERVICES=${BENCH_SERVICES:-10000}
DESTS=${BENCH_DESTS:-5}
NS=ipvs-fresh-$$
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
bench_setup ipvs-fresh "$SERVICES" "$DESTS" "$NS-a" "$NS-c"
C=$IPVSCTL A=$IPVSADM
TIMEFORMAT='   real %3R user %3U sys %3S'
echo "== ipvsctl restore ($SERVICES services, fresh namespace)"
{ time ip netns exec "$NS-c" "$C" restore "$WORK/rules"; } 2>&1
echo "== ipvsadm -R ($SERVICES services, fresh namespace)"
{ time ip netns exec "$NS-a" "$A" -R <"$WORK/rules"; } 2>&1
cmp <(ip netns exec "$NS-c" "$A" -Sn) <(ip netns exec "$NS-a" "$A" -Sn) && echo "same table"
