#!/usr/bin/env bash
# Director benchmark, run inside the VM by scripts/bench-director.sh: ipvsctl
# against Debian's ipvsadm on the same kernel, in a network namespace of its
# own. Interleaved rounds, medians, ratios; checks that both tools produced the
# same table before timing save and list.
#
# Environment: IPVSCTL (binary), BENCH_SERVICES (10000), BENCH_DESTS (5 per
# service), BENCH_ROUNDS (3), IPVSCTL_BASELINE (optional: an earlier ipvsctl
# build, timed in the same rounds, for a before/after table).
set -euo pipefail

SERVICES=${BENCH_SERVICES:-10000}
DESTS=${BENCH_DESTS:-5}
ROUNDS=${BENCH_ROUNDS:-3}
NS=ipvs-bench-$$

. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
bench_setup ipvs-bench "$SERVICES" "$DESTS" "$NS"
TOOLS="ipvsadm ipvsctl"
if [[ -n ${IPVSCTL_BASELINE:-} ]]; then
    cp "$IPVSCTL_BASELINE" "$WORK/ipvsctl-baseline"
    TOOLS="$TOOLS baseline"
fi
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

# tool_of NAME: the binary of a tool.
tool_of() {
    case $1 in
        ipvsadm) echo "$IPVSADM" ;; ipvsctl) echo "$IPVSCTL" ;; baseline) echo "$WORK/ipvsctl-baseline" ;;
    esac
}
for ((round = 1; round <= ROUNDS; round++)); do
    # Rotate which tool goes first.
    read -ra order <<<"$TOOLS"
    shift_by=$(( (round - 1) % ${#order[@]} ))
    order=("${order[@]:shift_by}" "${order[@]:0:shift_by}")
    for tool in "${order[@]}"; do
        in_ns "$IPVSADM" -C
        if [[ $tool == ipvsadm ]]; then
            time_cmd restore-ipvsadm in_ns "$IPVSADM" -R <"$WORK/rules"
        else
            time_cmd "restore-$tool" in_ns "$(tool_of "$tool")" restore "$WORK/rules"
        fi
        in_ns "$IPVSADM" -Sn >"$WORK/state"
        cmp -s "$WORK/state" "$WORK/reference" || { echo "state after $tool restore differs from ipvsadm -R's"; exit 1; }
    done
    for pair in "save:-Sn:save" "list:-Ln:list"; do
        IFS=: read -r what adm_opt ctl_cmd <<<"$pair"
        for tool in "${order[@]}"; do
            if [[ $tool == ipvsadm ]]; then
                time_cmd "$what-ipvsadm" in_ns "$IPVSADM" "$adm_opt"
            else
                time_cmd "$what-$tool" in_ns "$(tool_of "$tool")" "$ctl_cmd"
            fi
        done
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
if [[ $TOOLS == *baseline* ]]; then
    echo
    echo "| comparison | baseline ipvsctl | this ipvsctl | ipvsadm | baseline ratio | this ratio |"
    echo "|---|---:|---:|---:|---:|---:|"
    for key in restore save list; do
        b=$(median "$key-baseline")
        c=$(median "$key-ipvsctl")
        a=$(median "$key-ipvsadm")
        echo "| $key | $(ms "$b") | $(ms "$c") | $(ms "$a") | $(awk -v x="$b" -v a="$a" 'BEGIN {printf "%.2f", x / a}') | $(awk -v x="$c" -v a="$a" 'BEGIN {printf "%.2f", x / a}') |"
    done
fi
echo
echo "Guest: kernel $(uname -r), $(nproc) CPUs under QEMU; $ROUNDS interleaved rounds, medians; both tools run from tmpfs via ip netns exec."
