#!/usr/bin/env bash
# Profiling aid for the director benchmark, run in the VM like director.sh:
#   VM_GUEST=$PWD/tests/vm/bench/perf-director.sh BENCH_SERVICES=1000 bash tests/vm/run-suite.sh
# user/sys time, syscall counts (strace -c) and a flat perf profile of
# ipvsctl and ipvsadm on one table; restores into fresh namespaces too (no
# recycled destinations in the kernel's trash).
set -uo pipefail
SERVICES=${BENCH_SERVICES:-1000}
DESTS=${BENCH_DESTS:-5}
NS=ipvs-perf-$$
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
bench_setup ipvs-perf "$SERVICES" "$DESTS" "$NS" "$NS-a" "$NS-c"
C=$IPVSCTL A=$IPVSADM
IN=(ip netns exec "$NS")
TIMEFORMAT='   real %3R user %3U sys %3S'
t() { echo "== $*"; { time "$@" >/dev/null 2>"$WORK/err"; } 2>&1; head -c 300 "$WORK/err"; }
sc() { echo "== strace $*"; strace -c -f -o "$WORK/sc" "$@" >/dev/null; head -25 "$WORK/sc"; }
echo "--- empty table"
t "${IN[@]}" "$C" list
t "${IN[@]}" "$A" -Ln
t "${IN[@]}" true
t "$C" --version
echo "--- restore $SERVICES"
"${IN[@]}" "$A" -C; t "${IN[@]}" "$C" restore "$WORK/rules"
"${IN[@]}" "$A" -C; t "${IN[@]}" "$A" -R <"$WORK/rules"
echo "--- restore $SERVICES into fresh namespaces"
t ip netns exec "$NS-c" "$C" restore "$WORK/rules"
t ip netns exec "$NS-a" "$A" -R <"$WORK/rules"
echo "--- save/list"
t "${IN[@]}" "$C" save
t "${IN[@]}" "$A" -Sn
t "${IN[@]}" "$C" list
t "${IN[@]}" "$C" list --nosort
t "${IN[@]}" "$A" -Ln
sc "${IN[@]}" "$C" save
sc "${IN[@]}" "$A" -Sn
"${IN[@]}" "$A" -C; sc "${IN[@]}" "$C" restore "$WORK/rules"
"${IN[@]}" "$A" -C; sc "${IN[@]}" "$A" -R <"$WORK/rules"
if perf --version >/dev/null 2>&1; then
  for what in save list; do
    echo "== perf $what"
    "${IN[@]}" perf record -q -e cpu-clock -F 4000 -o "$WORK/perf.data" -- "$C" "$what" >/dev/null 2>"$WORK/err" || head -c 300 "$WORK/err"
    perf report -i "$WORK/perf.data" --stdio --sort dso,sym 2>/dev/null | grep -v '^#' | grep -v "^$" | head -45 || true
  done
fi
