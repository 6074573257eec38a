#!/usr/bin/env bash
# lvs-ipvs Handle against the real kernel: runs the crate's kernel tests
# (ipvs/tests/kernel.rs, built on the host by `cargo test -p lvs-ipvs --no-run`;
# ignored on the host, run here with --ignored). They create and delete their
# own namespaces.
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
DEPS=${LVS_IPVS_DEPS_DIR:-$ROOT/target/debug/deps}
# The newest test executable of ipvs/tests/kernel.rs, run from a tmpfs copy.
SRC=$(newest_test_binary "$DEPS" kernel)
[[ -n $SRC && -x $SRC ]] || fail "no kernel test binary in $DEPS (cargo test -p lvs-ipvs --no-run)"
KTEST=$TEST_TMP/kernel-tests
cp "$SRC" "$KTEST"
modprobe -a ip_vs ip_vs_rr ip_vs_wrr ip_vs_sh ip_vs_mh ip_vs_lc ip_vs_pe_sip
log "running $KTEST"
# The tests take seconds. Past 120 s, show the kernel stacks of the test's
# threads and the blocked tasks (sysrq w) before failing: that is how a
# stop of a sync daemon right after its start was found waiting for an ack
# the kernel never sends (see ipvs/src/socket.rs).
RUST_BACKTRACE=1 "$KTEST" --ignored --test-threads=1 >"$TEST_TMP/kernel-tests.log" 2>&1 &
kpid=$!
BG_PIDS+=("$kpid")
for _ in $(seq 1 600); do
    kill -0 "$kpid" 2>/dev/null || break
    sleep 0.2
done
if kill -0 "$kpid" 2>/dev/null; then
    cat "$TEST_TMP/kernel-tests.log"
    for t in /proc/"$kpid"/task/*; do
        echo "--- thread ${t##*/} ($(cat "$t/comm" 2>/dev/null)):"
        cat "$t/stack" 2>/dev/null
    done
    echo w >/proc/sysrq-trigger 2>/dev/null && dmesg | tail -80
    fail "kernel tests still running after 120 s"
fi
krc=0
wait "$kpid" || krc=$?
cat "$TEST_TMP/kernel-tests.log"
((krc == 0)) || fail "kernel tests failed (exit $krc)"
ran=$(sed -nE 's/^test result: ok\. ([0-9]+) passed.*/\1/p' "$TEST_TMP/kernel-tests.log")
((${ran:-0} >= 5)) || fail "only ${ran:-0} kernel tests ran (expected at least 5)"
pass "Handle kernel tests ($ran)"
