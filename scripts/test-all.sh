#!/usr/bin/env bash
# The whole test suite, as root on a Debian machine: installs what is missing
# (scripts/setup.sh), then runs format and lint checks, the unit tests, the
# root tests against the real kernel, the systemd unit checks, the VM suite
# (a kernel with IPVS under QEMU) once on each supported kernel series
# (Debian 12's 6.1, Debian 13's 6.12), and the real-server units under a real
# systemd (a systemd-nspawn container). The cargo tests run inside a throwaway
# network and mount namespace, so no test can reach the machine's network.
#
# Tests that need root (rs-agent's tests/root.rs and tests/watch.rs, the
# director's half-open checks in tests/syn_root.rs) or an
# IPVS kernel (lvs-ipvs's tests/kernel.rs) are #[ignore = "needs ..."]: the
# unit-tests step reports them as ignored, the root-tests step runs the root
# ones with --ignored here, and the VM suite runs the kernel ones.
#
#   scripts/test-all.sh
#
# Exit status 0 only when every step passed. Set SKIP_VM=1 to leave out the
# VM suites while iterating (the summary then says so and the run fails).
# VM_KERNELS (default "6.1 6.12") lists the kernels, one VM boot each;
# VM_TIMEOUT (default 1800 here) bounds each boot.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 2
LOG_DIR=$ROOT/target/test-all
mkdir -p "$LOG_DIR"
# Logs of an earlier run must not count in this run's summary.
rm -f "$LOG_DIR"/*.log
export CARGO_TERM_COLOR=never

steps=()
failed_steps=()

# step NAME COMMAND...: runs a step, its output shown and logged.
step() {
    local name=$1
    shift
    printf '\n==> %s\n' "$name"
    local start=$SECONDS
    "$@" 2>&1 | tee "$LOG_DIR/$name.log"
    local rc=${PIPESTATUS[0]}
    if ((rc == 0)); then
        steps+=("PASS $name ($((SECONDS - start))s)")
    else
        steps+=("FAIL $name ($((SECONDS - start))s, exit $rc)")
        failed_steps+=("$name")
    fi
    return "$rc"
}

verify_units() {
    local dir rc=0
    dir=$(mktemp -d)
    for unit in systemd/*.service; do
        # verify checks that ExecStart exists: point it at the built binary.
        sed -e "s#/usr/local/sbin/rs-agent#$ROOT/target/debug/rs-agent#g" -e "s#/usr/local/sbin/ipvsctl#$ROOT/target/debug/ipvsctl#g" -e "s#/usr/local/sbin/lvs-director#$ROOT/target/debug/lvs-director#g" "$unit" >"$dir/$(basename "$unit")"
    done
    systemd-analyze verify "$dir"/*.service || rc=$?
    rm -rf "$dir"
    ((rc == 0)) && echo "systemd units: ok"
    return "$rc"
}

build_packages() {
    DEB_BIN_DIR=target/debug bash scripts/build-deb.sh >"$LOG_DIR/build-deb.out" || return
    # lintian warns against running as root; as root here, it only reads.
    mapfile -t debs <"$LOG_DIR/build-deb.out"
    lintian --fail-on error --suppress-tags initial-upload-closes-no-bugs "${debs[@]}" || return
    echo "packages: ${debs[*]}: no lintian error"
}

step setup bash scripts/setup.sh || { echo "setup failed: nothing else can run" >&2; exit 1; }
step fmt cargo fmt --all -- --check
# The shell scripts of the test beds (VM suite, its scenarios and benchmarks,
# nspawn) and the installer. -x follows what they source (tests/vm/.shellcheckrc:
# relative to the sourcing file).
check_shell() {
    shellcheck -x scripts/*.sh scripts/lib/*.sh tests/vm/*.sh tests/vm/scenarios/*.sh tests/vm/bench/*.sh \
        tests/nspawn/*.sh .ci/run || return
    # The packages' maintainer scripts run under dpkg's /bin/sh.
    shellcheck -s sh packaging/deb/*/postinst packaging/deb/*/postrm packaging/deb/*/prerm
}
step shellcheck check_shell
step clippy cargo clippy --workspace --all-targets --all-features --locked -- -D warnings
if step build cargo build --workspace --all-targets --locked; then
    # Loopback up in the throwaway namespace: the health-check and metrics
    # tests talk to servers they run on 127.0.0.1.
    step unit-tests unshare --net --mount --propagation private -- \
        sh -c 'ip link set lo up && exec cargo test --workspace --offline --locked' 
    step root-tests unshare --net --mount --propagation private -- \
        sh -c 'cargo test -p rs-agent --test root --test watch --offline --locked -- --ignored &&
            exec cargo test -p lvs-director --test syn_root --test exec_root --offline --locked -- --ignored'
    step systemd-units verify_units
    # The Debian packages, from the debug binaries just built (a release
    # build would double the run's compile time; what lintian checks is the
    # same), and lintian on them. tests/nspawn and VM scenario 95 install them.
    step packages build_packages
    # One VM boot per kernel series: VM_KERNEL=6.1 is the machine's Debian 12
    # kernel, 6.12 Debian 13's from the cache (scripts/fetch-kernel.sh).
    for k in ${VM_KERNELS:-6.1 6.12}; do
        if [[ ${SKIP_VM:-0} == 1 ]]; then
            steps+=("FAIL vm-suite-$k (skipped by SKIP_VM=1)")
            failed_steps+=("vm-suite-$k")
        else
            step "vm-suite-$k" env VM_KERNEL="$k" VM_TIMEOUT="${VM_TIMEOUT:-1800}" bash tests/vm/run-suite.sh
        fi
    done
    step nspawn bash tests/nspawn/run.sh
fi

# Test counts: cargo's "test result" lines and the closing "N passed, M
# failed" lines of the VM suites and the nspawn checks. A test ignored by
# unit-tests counts once, where it runs (root-tests or the VM); the ignored
# count of unit-tests is shown so none goes unnoticed.
passed=0
failed=0
while read -r p f; do
    passed=$((passed + p))
    failed=$((failed + f))
done < <(cat "$LOG_DIR"/unit-tests.log "$LOG_DIR"/root-tests.log "$LOG_DIR"/vm-suite-*.log "$LOG_DIR"/nspawn.log 2>/dev/null |
    sed -nE 's/^test result: [a-zA-Z]+\. ([0-9]+) passed; ([0-9]+) failed.*/\1 \2/p; s/^([0-9]+) passed, ([0-9]+) failed$/\1 \2/p')
ignored=$(sed -nE 's/^test result: .* ([0-9]+) ignored;.*/\1/p' "$LOG_DIR"/unit-tests.log 2>/dev/null |
    awk '{ n += $1 } END { print n + 0 }')

printf '\n==> summary\n'
printf '  %s\n' "${steps[@]}"
if ((${#failed_steps[@]})); then
    echo "failed steps: ${failed_steps[*]}"
    # A failed step without failed tests (fmt, clippy, build) still counts.
    ((failed > 0)) || failed=${#failed_steps[@]}
fi
echo "tests: $passed passed, $failed failed ($ignored ignored by unit-tests: run by root-tests and the VM suite)"
((${#failed_steps[@]} == 0))
