#!/usr/bin/env bash
# The benchmarks, side by side in one run, as root: rs-agent against `ip
# -batch` and the seed's script in network namespaces on this machine
# (scripts/bench.py), then ipvsctl against ipvsadm inside the VM with IPVS
# (tests/vm/bench/director.sh), then more than one director with and without
# the safeguards (tests/vm/bench/multi.sh, about 15 min per round; rounds:
# MULTI_ROUNDS, default 1). Prints the tables; BENCHMARKS.md holds a run.
#
#   scripts/bench.sh [--rounds N]      (N: rounds of the real-server part, default 5)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
rounds=5
if [[ ${1:-} == --rounds ]]; then rounds=${2:?}; fi

bash scripts/setup.sh >/dev/null
cargo build --release --locked --workspace --bins

echo "## Real server: rs-agent (this machine, network namespaces)"
echo
python3 scripts/bench.py --rounds "$rounds"
echo
echo "## Director: ipvsctl against ipvsadm (VM)"
echo
logs=$(mktemp -d "$ROOT/target/bench-director.XXXXXX")
RS_AGENT_BIN_DIR=$ROOT/target/release VM_GUEST=$ROOT/tests/vm/bench/director.sh \
    VM_LOG_DIR=$logs VM_TIMEOUT=${VM_TIMEOUT:-2400} bash tests/vm/run-suite.sh >"$logs/console.log" 2>&1 ||
    { cat "$logs/console.log"; exit 1; }
cat "$logs/director-bench.md"
echo
echo "## More than one director (VM)"
echo
logs=$(mktemp -d "$ROOT/target/bench-multi.XXXXXX")
RS_AGENT_BIN_DIR=$ROOT/target/release VM_GUEST=$ROOT/tests/vm/bench/multi.sh BENCH_ROUNDS=${MULTI_ROUNDS:-1} \
    VM_LOG_DIR=$logs VM_TIMEOUT=${VM_TIMEOUT:-2400} bash tests/vm/run-suite.sh >"$logs/console.log" 2>&1 ||
    { cat "$logs/console.log"; exit 1; }
cat "$logs/multi-bench.md"
