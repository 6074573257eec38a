#!/usr/bin/env bash
# The benchmarks, side by side in one run, as root: rs-agent against `ip
# -batch` and the seed's script in network namespaces on this machine
# (scripts/bench.py), then ipvsctl against ipvsadm inside the VM with IPVS
# (tests/vm/bench/director.sh), then the health-checking director against
# keepalived in the VM (tests/vm/bench/health.sh), then more than one
# director with and without the safeguards (tests/vm/bench/multi.sh, about
# 15 min per round; rounds: MULTI_ROUNDS, default 1). Prints the tables;
# BENCHMARKS.md holds a run.
#
#   scripts/bench.sh [--rounds N] [--only rs|director|health|multi]
#                                      (N: rounds of the real-server part, default 5)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
rounds=5
only=all
while (($#)); do
    case $1 in
        --rounds) rounds=${2:?}; shift 2 ;;
        --only) only=${2:?}; shift 2 ;;
        *) echo "bench: unknown argument $1" >&2; exit 2 ;;
    esac
done
part() { [[ $only == all || $only == "$1" ]]; }

bash scripts/setup.sh >/dev/null
cargo build --release --locked --workspace --bins

# vm_bench GUEST_SCRIPT RESULT_FILE: one VM boot running a benchmark guest.
vm_bench() {
    local logs
    logs=$(mktemp -d "$ROOT/target/bench-vm.XXXXXX")
    RS_AGENT_BIN_DIR=$ROOT/target/release VM_GUEST=$ROOT/tests/vm/bench/$1 \
        VM_LOG_DIR=$logs VM_TIMEOUT=${VM_TIMEOUT:-2400} bash tests/vm/run-suite.sh >"$logs/console.log" 2>&1 ||
        { cat "$logs/console.log"; exit 1; }
    cat "$logs/$2"
}

if part rs; then
    echo "## Real server: rs-agent (this machine, network namespaces)"
    echo
    python3 scripts/bench.py --rounds "$rounds"
    echo
fi
if part director; then
    echo "## Director: ipvsctl against ipvsadm (VM)"
    echo
    vm_bench director.sh director-bench.md
    echo
fi
if part health; then
    echo "## Health-checking director: lvs-director against keepalived (VM)"
    echo
    # The guest reads the TSC, as hardware does (tests/vm/bench/health.sh:
    # BENCH_CLOCKSOURCE); BENCH_CLOCKSOURCE= keeps the emulated HPET.
    VM_APPEND=${VM_APPEND-tsc=reliable} BENCH_CLOCKSOURCE=${BENCH_CLOCKSOURCE-tsc} \
        vm_bench health.sh health-bench.md
fi
if part multi; then
    echo
    echo "## More than one director (VM)"
    echo
    BENCH_ROUNDS=${MULTI_ROUNDS:-1} vm_bench multi.sh multi-bench.md
fi
