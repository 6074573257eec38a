#!/usr/bin/env bash
# More than one director, with and without the safeguards, inside the VM:
# runs the multi-director scenarios (tests/vm/scenarios/9x) once per variant
# in one boot and prints a table (also written to $VM_LOG_DIR/multi-bench.md).
# Started by run-suite.sh as the guest script:
#
#   VM_GUEST=$PWD/tests/vm/bench/multi.sh bash tests/vm/run-suite.sh
#
# Variants: active-active (90: a director's NIC goes down, or its BIRD is
# killed; 91: a director withdraws its route gracefully) with mh or rr and
# sloppy_tcp 1 or 0; active-backup (93: the VRRP master's NIC goes down) with
# or without the sync daemon, and with mh + sloppy_tcp=1 and no sync.
# BENCH_ROUNDS (default 1) repeats the whole list. Scenarios run with
# MULTI_ASSERT=0 (they measure, and still fail on a broken set-up).
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROUNDS=${BENCH_ROUNDS:-1}
[[ $ROUNDS =~ ^[0-9]+$ ]] && ((ROUNDS >= 1)) || ROUNDS=1
export VM_SUITE_GUEST=1
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export RS_AGENT=${RS_AGENT:-rs-agent}
if [[ -f $RS_AGENT ]] && mkdir -p /run/vm-bin && cp "$RS_AGENT" /run/vm-bin/rs-agent; then
    RS_AGENT=/run/vm-bin/rs-agent
fi
if [[ -n ${VM_LOG_DIR:-} && -r $VM_LOG_DIR/prewarm.list ]]; then
    mapfile -t hot <"$VM_LOG_DIR/prewarm.list"
    touch -c -- "${hot[@]}" 2>/dev/null
fi
modprobe -a ip_vs ip_vs_rr ip_vs_mh dummy || { echo "multi-bench: no IPVS modules"; exit 1; }

OUT=$(mktemp -d /tmp/multi-bench.XXXXXX)
RESULTS=$OUT/results
: >"$RESULTS"

# scenario-prefix and environment of each run
VARIANTS=(
    "90 MULTI_FAIL=link MULTI_SCHED=mh MULTI_SLOPPY=1"
    "90 MULTI_FAIL=link MULTI_SCHED=rr MULTI_SLOPPY=1"
    "90 MULTI_FAIL=link MULTI_SCHED=mh MULTI_SLOPPY=0"
    "90 MULTI_FAIL=link MULTI_SCHED=rr MULTI_SLOPPY=0"
    "90 MULTI_FAIL=bird MULTI_SCHED=mh MULTI_SLOPPY=1"
    "91 MULTI_SCHED=mh MULTI_SLOPPY=1"
    "91 MULTI_SCHED=rr MULTI_SLOPPY=1"
    "91 MULTI_SCHED=mh MULTI_SLOPPY=0"
    "91 MULTI_SCHED=rr MULTI_SLOPPY=0"
    "93 MULTI_SCHED=rr MULTI_SLOPPY=0 MULTI_SYNC=1"
    "93 MULTI_SCHED=rr MULTI_SLOPPY=0 MULTI_SYNC=0"
    "93 MULTI_SCHED=mh MULTI_SLOPPY=1 MULTI_SYNC=0"
)

failed=0
for ((round = 1; round <= ROUNDS; round++)); do
    for v in "${VARIANTS[@]}"; do
        read -r prefix envs <<<"$v"
        f=$(compgen -G "$HERE/scenarios/$prefix-*.sh" | head -n1)
        log=$OUT/run-$round-${v// /_}.log
        start=$SECONDS
        # shellcheck disable=SC2086
        (cd /tmp && exec env $envs MULTI_ASSERT=0 MULTI_RESULT="$RESULTS" \
            timeout -k 10 300 bash "$f") >"$log" 2>&1 </dev/null
        rc=$?
        for ns in $(ip netns list 2>/dev/null | awk '{print $1}'); do
            pids=$(ip netns pids "$ns" 2>/dev/null)
            # shellcheck disable=SC2086
            [[ -z $pids ]] || kill -9 $pids 2>/dev/null
            ip netns del "$ns" 2>/dev/null
        done
        echo "multi-bench: round $round: $(basename "$f" .sh) $envs: exit $rc ($((SECONDS - start))s)"
        if ((rc != 0)); then
            failed=$((failed + 1))
            sed 's/^/    /' "$log"
        fi
        [[ -n ${VM_LOG_DIR:-} ]] && cp "$log" "$VM_LOG_DIR/" 2>/dev/null
    done
done
[[ -n ${VM_LOG_DIR:-} ]] && cp "$RESULTS" "$VM_LOG_DIR/multi-bench.results" 2>/dev/null

# The table also goes to a file the host reads after the VM stops: console
# output of the guest and the host's own messages can interleave.
exec > >(tee "${VM_LOG_DIR:-$OUT}/multi-bench.md")
awk '
function v(k) { return (k in r) ? r[k] : "-" }
function add(list, x) { return (list == "") ? x : list ", " x }
function span(k,    n, a, i, lo, hi) {   # "min-max" of a list of numbers ("-" ignored)
    n = split(k, a, ", "); lo = ""; hi = ""
    for (i = 1; i <= n; i++) if (a[i] != "-") {
        if (lo == "" || a[i] + 0 < lo + 0) lo = a[i]
        if (hi == "" || a[i] + 0 > hi + 0) hi = a[i]
    }
    if (lo == "") return "-"
    lo = sprintf("%.1f", lo); hi = sprintf("%.1f", hi)
    return (lo == hi) ? lo : lo "–" hi
}
{
    delete r
    for (i = 1; i <= NF; i++) { n = index($i, "="); r[substr($i, 1, n - 1)] = substr($i, n + 1) }
    s = v("scenario")
    if (s ~ /^90/) what = "active-active, director fails (" v("fail") ")"
    else if (s ~ /^91/) what = "active-active, graceful withdrawal"
    else what = "active-backup (VRRP), master fails (link)"
    sync = (v("sync") == "-") ? "-" : (v("sync") == "1" ? "on" : "off")
    sched = v("sched"); if (sched == "mh") sched = "mh (fallback, port)"
    key = what "|" sched "|" v("sloppy") "|" sync
    if (!(key in seen)) { seen[key] = 1; order[++nk] = key }
    broken[key] = add(broken[key], v("broken")); of[key] = v("of")
    onf[key] = add(onf[key], v("on_failed"))
    moved[key] = add(moved[key], (s ~ /^93/) ? v("vip_moved") : v("withdrawn"))
    newok[key] = add(newok[key], v("new_ok")); stall[key] = add(stall[key], v("max_stall"))
}
END {
    for (i = 1; i <= nk; i++) {
        k = order[i]; split(k, f, "|")
        printf "| %s | %s | %s | %s | **%s** of %s | %s | %s | %s | %s |\n", f[1], f[2], f[3], f[4],
            broken[k], of[k], onf[k], span(moved[k]), span(newok[k]), span(stall[k])
    }
}' "$RESULTS" | {
    echo "| scenario | scheduler | sloppy_tcp | sync daemon | connections broken (per run) | on the failed director (per run) | path withdrawn / VIP moved (s) | new connections OK after (s) | longest stall (s) |"
    echo "|---|---|---:|---|---:|---:|---:|---:|---:|"
    cat
}
echo
echo "Guest: kernel $(uname -r), $(nproc) vCPUs under QEMU; $ROUNDS round(s); 50 connections, a line echoed every 0.1 s on each; times from the failure (s)."
((failed == 0))
