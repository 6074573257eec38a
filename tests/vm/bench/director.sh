#!/usr/bin/env bash
# Director benchmark, run inside the VM by scripts/bench-director.sh: ipvsctl
# against Debian's ipvsadm on the same kernel, in a network namespace of its
# own. Interleaved rounds, medians, ratios; checks that both tools produced the
# same table before timing save and list.
#
# Environment: IPVSCTL (binary), BENCH_SERVICES (10000), BENCH_DESTS (5 per
# service), BENCH_ROUNDS (3).
set -euo pipefail

SERVICES=${BENCH_SERVICES:-10000}
DESTS=${BENCH_DESTS:-5}
ROUNDS=${BENCH_ROUNDS:-3}
NS=ipvs-bench-$$
WORK=$(mktemp -d /tmp/ipvs-bench.XXXXXX)
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

cleanup() { ip netns del "$NS" 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
bench_tools
bench_ns "$NS"
bench_rules "$SERVICES" "$DESTS" >"$WORK/rules"
lines=$(wc -l <"$WORK/rules")

now() { date +%s%N; }
in_ns() { ip netns exec "$NS" "$@"; }
# time_cmd NAME CMD...: appends the seconds taken to $WORK/t.NAME
time_cmd() {
    local name=$1 start end
    shift
    start=$(now)
    "$@" >/dev/null
    end=$(now)
    echo "$(( (end - start) / 1000 ))" >>"$WORK/t.$name"
}
median() { sort -n "$WORK/t.$1" | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }

in_ns "$IPVSADM" -C
in_ns "$IPVSADM" -R <"$WORK/rules"
in_ns "$IPVSADM" -Sn >"$WORK/reference"
[[ $(wc -l <"$WORK/reference") -eq $lines ]] || { echo "ipvsadm -R loaded $(wc -l <"$WORK/reference") of $lines rules"; exit 1; }

for ((round = 1; round <= ROUNDS; round++)); do
    # Alternate which tool goes first.
    for tool in $( ((round % 2)) && echo "ipvsadm ipvsctl" || echo "ipvsctl ipvsadm"); do
        in_ns "$IPVSADM" -C
        if [[ $tool == ipvsadm ]]; then
            time_cmd restore-ipvsadm in_ns "$IPVSADM" -R <"$WORK/rules"
        else
            time_cmd restore-ipvsctl in_ns "$IPVSCTL" restore "$WORK/rules"
        fi
        in_ns "$IPVSADM" -Sn >"$WORK/state"
        cmp -s "$WORK/state" "$WORK/reference" || { echo "state after $tool restore differs from ipvsadm -R's"; exit 1; }
    done
    for pair in "save:-Sn:save" "list:-Ln:list"; do
        IFS=: read -r what adm_opt ctl_cmd <<<"$pair"
        time_cmd "$what-ipvsadm" in_ns "$IPVSADM" "$adm_opt"
        time_cmd "$what-ipvsctl" in_ns "$IPVSCTL" "$ctl_cmd"
    done
done
in_ns "$IPVSCTL" save | cmp -s - "$WORK/reference" || { echo "ipvsctl save differs from ipvsadm -Sn"; exit 1; }
in_ns "$IPVSCTL" list | cmp -s - <(in_ns "$IPVSADM" -Ln) || { echo "ipvsctl list differs from ipvsadm -Ln"; exit 1; }

# The table also goes to a file the host reads after the VM stops: console
# output of the guest and the host's own messages can interleave.
exec > >(tee "${VM_LOG_DIR:-$WORK}/director-bench.md")

ms() { awk -v us="$1" 'BEGIN {printf (us >= 1e6) ? "%.2f s" : "%.1f ms", (us >= 1e6) ? us / 1e6 : us / 1e3}'; }
echo "| comparison | ipvsctl | ipvsadm | ratio | target |"
echo "|---|---:|---:|---:|---|"
for row in "restore:restore ($SERVICES services, $((SERVICES * DESTS)) destinations):<= 0.2" \
           "save:save (-Sn):<= 0.5" "list:list (-Ln):<= 0.5"; do
    IFS=: read -r key label target <<<"$row"
    c=$(median "$key-ipvsctl")
    a=$(median "$key-ipvsadm")
    ratio=$(awk -v c="$c" -v a="$a" 'BEGIN {printf "%.2f", c / a}')
    echo "| $label | $(ms "$c") | $(ms "$a") | $ratio | $target |"
done
echo
echo "Guest: kernel $(uname -r), $(nproc) CPUs under QEMU; $ROUNDS interleaved rounds, medians; both tools run from tmpfs via ip netns exec."
