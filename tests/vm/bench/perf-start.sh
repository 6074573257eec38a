#!/usr/bin/env bash
# Profiling aid: start-up cost of ipvsctl against ipvsadm and /bin/true in the VM
# (VM_GUEST=$PWD/tests/vm/bench/perf-start.sh bash tests/vm/run-suite.sh).
set -uo pipefail
WORK=$(mktemp -d /tmp/ipvs-start.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
modprobe -a ip_vs
cp "${IPVSCTL:?}" "$WORK/ipvsctl"; C=$WORK/ipvsctl
cp "$(command -v ipvsadm)" "$WORK/ipvsadm"; A=$WORK/ipvsadm
cp /bin/true "$WORK/true"
TIMEFORMAT='   real %3R user %3U sys %3S'
for _ in 1 2 3; do
  for cmd in "$WORK/true" "$A -Ln" "$C --version" "$C list" "$C save"; do
    echo "== $cmd"; { time $cmd >/dev/null; } 2>&1
  done
done
echo "== strace -c $C list"; strace -f -c -o "$WORK/sc" "$C" list >/dev/null; head -30 "$WORK/sc"
strace -f -tt -o "$WORK/st" "$C" list >/dev/null; echo "== strace -tt"; head -80 "$WORK/st"
perf record -q -e cpu-clock -F 10000 -o "$WORK/perf.data" -- "$C" list >/dev/null 2>&1
echo "== perf list (empty)"; perf report -i "$WORK/perf.data" --stdio --sort dso,sym 2>/dev/null | grep -v '^#' | grep -v '^$' | head -40
perf record -q -e cpu-clock -F 10000 -o "$WORK/perf2.data" -- "$WORK/true" >/dev/null 2>&1
echo "== perf true"; perf report -i "$WORK/perf2.data" --stdio --sort dso,sym 2>/dev/null | grep -v '^#' | grep -v '^$' | head -20
