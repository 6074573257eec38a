#!/usr/bin/env bash
# Runs inside the VM (started by run-suite.sh), as root: every
# tests/vm/scenarios/*.sh in sorted order, each in its own process bounded by
# `timeout`, prints PASS/FAIL per scenario and ends with "N passed, M failed".
# Exit status: 0 only if at least one scenario ran and none failed.
#
# Environment:
#   RS_AGENT             rs-agent binary (required by the rs-agent scenarios)
#   VM_SCENARIOS         space-separated filters; a scenario runs if its file
#                        name starts with one of them (e.g. "10 30"); default all
#   VM_SCENARIO_TIMEOUT  seconds per scenario (default 300; a "# vm-timeout: N" line
#                        in a scenario raises its own)
#   VM_LOG_DIR           if set and writable, per-scenario logs are copied there
#   VM_VERBOSE=1         print the log of passing scenarios too
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SCENARIO_TIMEOUT=${VM_SCENARIO_TIMEOUT:-300}
FILTERS=${VM_SCENARIOS:-}
export RS_AGENT=${RS_AGENT:-rs-agent}
export VM_SUITE_GUEST=1 # lib.sh refuses to run without it (i.e. outside the VM)
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH

if ! modprobe -a ip_vs ip_vs_wrr ip_vs_rr ip_vs_sh; then
    echo "guest: cannot load the ip_vs modules in kernel $(uname -r)"
    echo "0 passed, 1 failed"
    exit 1
fi

# The host's files reach the guest over 9p without a page cache, so every exec
# of a large binary (a debug rs-agent is ~80 MB) reads all of it again: run a
# copy from tmpfs instead.
if [[ -f $RS_AGENT ]]; then
    mkdir -p /run/vm-bin
    if cp "$RS_AGENT" /run/vm-bin/rs-agent; then
        echo "guest: rs-agent copied from $RS_AGENT"
        RS_AGENT=/run/vm-bin/rs-agent
    fi
fi

# run-suite.sh lists the hot programs and libraries; copy them up into the
# guest's tmpfs overlay (guest-only: the host's files are read-only to it).
if [[ -n ${VM_LOG_DIR:-} && -r $VM_LOG_DIR/prewarm.list ]]; then
    mapfile -t hot <"$VM_LOG_DIR/prewarm.list"
    touch -c -- "${hot[@]}" 2>/dev/null
fi

echo "guest: kernel $(uname -r), $(nproc) cpus, rs-agent $RS_AGENT, ${SCENARIO_TIMEOUT}s per scenario (set up in ${SECONDS}s)"

logs=$(mktemp -d /tmp/vm-logs.XXXXXX)
passed=0 failed=0 failed_names=()
for f in "$HERE"/scenarios/*.sh; do
    [[ -e $f ]] || continue
    name=$(basename "$f" .sh)
    if [[ -n $FILTERS ]]; then
        hit=0
        for flt in $FILTERS; do
            [[ $name == "$flt"* ]] && hit=1
        done
        ((hit)) || continue
    fi
    log=$logs/$name.log
    start=$SECONDS
    # A scenario that needs longer says so in a "# vm-timeout: SECONDS" line.
    limit=$SCENARIO_TIMEOUT
    own=$(sed -n 's/^# vm-timeout: *\([0-9][0-9]*\) *$/\1/p' "$f" | head -1)
    [[ -n $own ]] && ((own > limit)) && limit=$own
    # Own process; timeout runs it in a process group of its own and signals
    # the whole group (background servers too); -k: SIGKILL if TERM is ignored.
    (cd /tmp && exec timeout -k 10 "$limit" bash "$f") >"$log" 2>&1 </dev/null
    rc=$?
    took=$((SECONDS - start))
    # Whatever a scenario left behind (it should clean up itself) must not
    # leak into the next one.
    for ns in $(ip netns list 2>/dev/null | awk '{print $1}'); do
        pids=$(ip netns pids "$ns" 2>/dev/null)
        # shellcheck disable=SC2086
        [[ -z $pids ]] || kill -9 $pids 2>/dev/null
        ip netns del "$ns" 2>/dev/null
    done
    if ((rc == 0)); then
        passed=$((passed + 1))
        echo "PASS $name (${took}s)"
        if [[ ${VM_VERBOSE:-0} == 1 ]]; then sed 's/^/    /' "$log"; fi
    else
        failed=$((failed + 1))
        failed_names+=("$name")
        if ((rc == 124 || rc == 137)); then
            echo "FAIL $name (timed out after ${limit}s)"
        else
            echo "FAIL $name (exit $rc, ${took}s)"
        fi
        sed 's/^/    /' "$log"
    fi
done

if [[ -n ${VM_LOG_DIR:-} ]] && mkdir -p "$VM_LOG_DIR" 2>/dev/null; then
    cp "$logs"/*.log "$VM_LOG_DIR"/ 2>/dev/null
fi
if ((failed)); then
    echo "failed: ${failed_names[*]}"
fi
echo "$passed passed, $failed failed"
((failed == 0 && passed > 0))
