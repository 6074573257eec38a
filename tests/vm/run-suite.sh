#!/usr/bin/env bash
# Real-kernel test bed: boots the newest /boot/vmlinuz-* (a distribution kernel
# with the ip_vs modules), or the kernel VM_KERNEL names (e.g. VM_KERNEL=6.12:
# Debian 13's, cached by scripts/fetch-kernel.sh), under QEMU with virtme-ng, the host's root
# filesystem shared read-only, and runs tests/vm/guest.sh inside as root,
# which runs every tests/vm/scenarios/*.sh. One boot for all scenarios.
#
#   bash tests/vm/run-suite.sh          (as root; after scripts/setup.sh and cargo build)
#
# The VM runs inside a throwaway network namespace on the host (unshare -n),
# so nothing in it can touch the machine's network. Builds nothing.
#
# Environment:
#   RS_AGENT_BIN_DIR     dir holding rs-agent (default <repo>/target/debug)
#   VM_KERNEL            which kernel to boot (default: newest /boot/vmlinuz-* with ip_vs):
#                        a version prefix ("6.1", "6.12": the newest kernel of that
#                        series among /boot/vmlinuz-* and the cache of
#                        scripts/fetch-kernel.sh), or the path of an image;
#                        an image at TREE/boot/vmlinuz-V gets its modules from
#                        TREE/usr/lib/modules/V (or TREE/lib/modules/V)
#   VM_MODULES_DIR       directory holding <version>/ with the kernel's modules
#                        (default: found as above); when it is not /lib/modules it
#                        is bind-mounted over /lib/modules in a private mount
#                        namespace around the VM (the host's /lib/modules
#                        stays untouched)
#   LVS_TEST_CACHE       cache root of scripts/fetch-kernel.sh (default /var/cache/lvs-test)
#   VM_KVM=1             use KVM (default: software emulation, --disable-kvm;
#                        QEMU aborts with KVM on some machines)
#   VM_TIMEOUT           seconds for the whole VM run (default 1800)
#   VM_SCENARIO_TIMEOUT  seconds per scenario inside the VM (default 300)
#   VM_SCENARIOS         run only scenarios whose name starts with one of these
#                        space-separated prefixes (e.g. "10 30")
#   VM_VERBOSE=1         show logs of passing scenarios too
#   VM_LOG_DIR           where the guest copies per-scenario logs
#                        (default <repo>/target/vm-logs/run-DATE-TIME-PID;
#                        runs older than a day are pruned)
#   VENV_VM              virtualenv with virtme-ng (default <repo>/.venv-vm)
#   VM_GUEST             guest script instead of tests/vm/guest.sh (benchmarks)
#   IPVSCTL              ipvsctl binary for the guest (default <bin dir>/ipvsctl)
#   LVS_DIRECTOR         lvs-director binary for the guest (default <bin dir>/lvs-director)
#   IPVSCTL_BASELINE     director benchmark only: an earlier ipvsctl timed alongside
#   LVS_DEB_DIR          where scenario 95 finds the lvs-director package
#                        (default <repo>/target/debian: scripts/build-deb.sh)
# Exit status: the guest's (0 = all scenarios passed), 124 if VM_TIMEOUT hit.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
say() { printf 'vm-suite: %s\n' "$*"; }
die() { printf 'vm-suite: error: %s\n' "$*" >&2; exit 2; }

[[ $(id -u) -eq 0 ]] || die "must run as root (unshare -n, and the guest runs as root)"

# --- inputs ------------------------------------------------------------------
BIN_DIR=${RS_AGENT_BIN_DIR:-$ROOT/target/debug}
[[ -d $BIN_DIR ]] || die "RS_AGENT_BIN_DIR '$BIN_DIR' does not exist (build first: cargo build)"
BIN_DIR=$(cd "$BIN_DIR" && pwd)
RS_AGENT=$BIN_DIR/rs-agent
[[ -x $RS_AGENT ]] || die "$RS_AGENT missing or not executable (build first: cargo build)"

VENV_VM=${VENV_VM:-$ROOT/.venv-vm}
if [[ -x $VENV_VM/bin/vng ]]; then
    VNG=$VENV_VM/bin/vng
elif VNG=$(command -v vng 2>/dev/null); then
    :
else
    die "virtme-ng (vng) not found in $VENV_VM or PATH: run scripts/setup.sh"
fi
# vng runs its helpers (virtme-run, ...) from PATH.
PATH=$(dirname "$VNG"):$PATH
export PATH
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 missing: run scripts/setup.sh"

# The modules of an image: TREE/boot/vmlinuz-V -> TREE/usr/lib/modules (or
# TREE/lib/modules) if it holds V/; for /boot that is /lib/modules.
modules_dir_of() {
    local img=$1 kver tree d
    kver=$(basename "$img")
    kver=${kver#vmlinuz-}
    tree=$(cd "$(dirname "$img")/.." && pwd)
    tree=${tree%/} # "/" -> "", so /boot's modules are /usr/lib/modules
    for d in "$tree/usr/lib/modules" "$tree/lib/modules"; do
        [[ -d $d/$kver ]] && { echo "$d"; return 0; }
    done
    return 1
}
has_ipvs() { # IMAGE: its modules include ip_vs
    local d kver
    d=$(modules_dir_of "$1") || return 1
    kver=$(basename "$1")
    kver=${kver#vmlinuz-}
    compgen -G "$d/$kver/kernel/net/netfilter/ipvs/ip_vs.ko*" >/dev/null
}
CACHE=${LVS_TEST_CACHE:-/var/cache/lvs-test}
# Kernel images: the machine's own, then the fetched ones (the "trixie" link
# would only repeat one of them).
candidates() {
    compgen -G '/boot/vmlinuz-*' || true
    compgen -G "$CACHE/kernels/[0-9]*/boot/vmlinuz-*" || true
}
KERNEL=""
if [[ ${VM_KERNEL:-} == */* ]]; then
    KERNEL=$VM_KERNEL
    [[ -r $KERNEL ]] || die "VM_KERNEL '$KERNEL' not readable"
elif [[ -n ${VM_KERNEL:-} ]]; then
    # A version prefix: 6.1 matches 6.1.0-56-amd64, not 6.12.118+deb13-amd64.
    [[ $VM_KERNEL =~ ^[0-9]+(\.[0-9]+)*$ ]] || die "VM_KERNEL '$VM_KERNEL' is neither a path nor a version like 6.12"
    while read -r v k; do
        if [[ $v == "$VM_KERNEL" || $v == "$VM_KERNEL"[.+-]* ]] && has_ipvs "$k"; then
            KERNEL=$k
            break
        fi
    done < <(candidates | while read -r k; do b=${k##*/}; echo "${b#vmlinuz-} $k"; done | sort -rV)
    [[ -n $KERNEL ]] || die "no kernel $VM_KERNEL.* with ip_vs modules in /boot or $CACHE/kernels (scripts/setup.sh fetches Debian 13's 6.12)"
else
    # newest first, by version
    while read -r k; do
        if has_ipvs "$k"; then KERNEL=$k; break; fi
    done < <(compgen -G '/boot/vmlinuz-*' | sort -rV)
    [[ -n $KERNEL ]] || die "no /boot/vmlinuz-* with ip_vs modules in /lib/modules: apt-get install linux-image-amd64 (scripts/setup.sh)"
fi
KVER=$(basename "$KERNEL")
KVER=${KVER#vmlinuz-}
if [[ -n ${VM_MODULES_DIR:-} ]]; then
    MODDIR=$(cd "$VM_MODULES_DIR" && pwd) || die "VM_MODULES_DIR '$VM_MODULES_DIR' does not exist"
else
    MODDIR=$(modules_dir_of "$KERNEL") || MODDIR=/lib/modules
fi
[[ -d $MODDIR/$KVER ]] || say "warning: no modules for $KVER in $MODDIR: the guest cannot load ip_vs"
# A kernel that is not installed on the machine (Debian 13's, from the cache)
# is made to look installed for the VM's processes only: in a private mount
# namespace, its modules directory is bind-mounted over /lib/modules and its
# boot directory over /boot, and vng boots /boot/vmlinuz-V. virtme-ng shares
# the host's root with the guest and then uses /lib/modules/V as for an
# installed kernel (it hides /var/cache in the guest, so a path into the cache
# would not do). The host's /lib/modules and /boot stay untouched.
VNG_KERNEL=$KERNEL
NS_SETUP=(--)
if [[ $(readlink -f "$MODDIR") != "$(readlink -f /lib/modules)" ]]; then
    # A kernel from the cache of scripts/fetch-kernel.sh must not be replaced
    # while the VM runs: hold the cache's lock shared (the VM inherits it).
    if [[ $KERNEL == "$CACHE/kernels/"* && -e $CACHE/kernels/.lock ]]; then
        exec 8<"$CACHE/kernels/.lock"
        flock -s -w 900 8 || die "the kernel cache is being changed for over 15 minutes ($CACHE/kernels/.lock)"
    fi
    BOOTDIR=$(cd "$(dirname "$KERNEL")" && pwd)
    VNG_KERNEL=/boot/$(basename "$KERNEL")
    # shellcheck disable=SC2016 # expanded by the inner bash
    NS_SETUP=(-m --propagation private -- bash -c 'set -e
        mount --bind -o ro "$1" /lib/modules
        [[ $2 == /boot ]] || mount --bind -o ro "$2" /boot
        shift 2
        exec "$@"' ns-setup "$MODDIR" "$BOOTDIR")
fi

KVM_ARGS=(--disable-kvm)
if [[ ${VM_KVM:-0} == 1 ]]; then
    KVM_ARGS=()
fi
VM_TIMEOUT=${VM_TIMEOUT:-1800}
# One log dir per run (runs may overlap); runs older than a day are pruned.
if [[ -n ${VM_LOG_DIR:-} ]]; then
    LOG_DIR=$VM_LOG_DIR
else
    mkdir -p "$ROOT/target/vm-logs"
    find "$ROOT/target/vm-logs" -mindepth 1 -maxdepth 1 -name 'run-*' -mmin +1440 -exec rm -rf {} + 2>/dev/null || true
    LOG_DIR=$ROOT/target/vm-logs/run-$(date +%Y%m%d-%H%M%S)-$$
fi
mkdir -p "$LOG_DIR"
LOG_DIR=$(cd "$LOG_DIR" && pwd)

say "kernel $KERNEL (modules: $MODDIR), rs-agent $RS_AGENT, $([[ ${#KVM_ARGS[@]} -eq 0 ]] && echo KVM || echo 'software emulation (VM_KVM=1 for KVM)'), timeout ${VM_TIMEOUT}s"
say "logs: $LOG_DIR"

# Warm-up list for the guest: the programs the scenarios run most, with their
# shared libraries. The guest's /usr is an overlay over the host's files (9p,
# no page cache); touching a file copies it up into the guest's tmpfs, which
# makes later execs cheaper. Computed here because ldd is slow in the VM.
HOT_BINS=(bash sh ip arping curl ipvsadm nft busybox timeout sleep grep sort
          sed awk cat cp sysctl diff mktemp rm mkdir kill setsid nsenter)
for b in "${HOT_BINS[@]}"; do
    p=$(command -v "$b") || continue
    readlink -f "$p"
    ldd "$p" 2>/dev/null | grep -o '/[^ ]*' | xargs -r readlink -f || true
done | sort -u >"$LOG_DIR/prewarm.list"

# --- run ---------------------------------------------------------------------
# vng does not pass the host environment to the guest command: hand it over
# explicitly with env. Paths are absolute; the guest sees the host's files.
GUEST_ENV=(
    "RS_AGENT=$RS_AGENT"
    "VM_SCENARIO_TIMEOUT=${VM_SCENARIO_TIMEOUT:-300}"
    "VM_SCENARIOS=${VM_SCENARIOS:-}"
    "VM_VERBOSE=${VM_VERBOSE:-0}"
    "VM_DEBUG=${VM_DEBUG:-0}"
    "VM_LOG_DIR=$LOG_DIR"
    "IPVSCTL=${IPVSCTL:-$BIN_DIR/ipvsctl}"
    "LVS_DIRECTOR=${LVS_DIRECTOR:-$BIN_DIR/lvs-director}"
    "BENCH_SERVICES=${BENCH_SERVICES:-}"
    "BENCH_DESTS=${BENCH_DESTS:-}"
    "BENCH_ROUNDS=${BENCH_ROUNDS:-}"
    "IPVSCTL_BASELINE=${IPVSCTL_BASELINE:-}"
    "BENCH_INTERVAL=${BENCH_INTERVAL:-}"
    "BENCH_WINDOW=${BENCH_WINDOW:-}"
    "BENCH_DAEMONS=${BENCH_DAEMONS:-}"
    "BENCH_CLOCKSOURCE=${BENCH_CLOCKSOURCE:-}"
    "BENCH_HEAPTRACK=${BENCH_HEAPTRACK:-}"
    "LVS_TEST_CACHE=$CACHE"
    "LVS_DEB_DIR=${LVS_DEB_DIR:-$ROOT/target/debian}"
)
# The nspawn tree (scripts/nspawn-tree.sh) for scenario 95, read-only at the
# same path: the guest's /var/cache is a tmpfs of virtme-ng's, which hides
# the host's.
SHARES=()
if [[ -d $CACHE/nspawn ]]; then
    SHARES=(--rodir "$CACHE/nspawn=$CACHE/nspawn")
fi
# VM_APPEND: more kernel options (the director benchmark's clock source).
APPEND_ARGS=()
if [[ -n ${VM_APPEND:-} ]]; then
    APPEND_ARGS=(--append "$VM_APPEND")
fi
# Another guest script (the director benchmark) can run in the same VM.
GUEST=${VM_GUEST:-$ROOT/tests/vm/guest.sh}
start=$SECONDS
set +e
# stdin from /dev/null: vng crashes without a standard input, and must not
# read the caller's. unshare -n: a throwaway network namespace for the VM.
# NS_SETUP: "--", or for a kernel not installed here a private mount
# namespace with the bind mounts above.
timeout -k 20 "$VM_TIMEOUT" unshare -n "${NS_SETUP[@]}" \
    "$VNG" -r "$VNG_KERNEL" "${KVM_ARGS[@]}" "${APPEND_ARGS[@]}" --user root --rwdir "$LOG_DIR" "${SHARES[@]}" \
    -- env "${GUEST_ENV[@]}" bash "$GUEST" </dev/null
rc=$?
set -e
took=$((SECONDS - start))
if ((rc == 124 || rc == 137)); then
    say "FAILED: the VM run exceeded ${VM_TIMEOUT}s (${took}s)"
elif ((rc == 0)); then
    say "passed in ${took}s"
else
    say "FAILED (exit $rc) in ${took}s"
fi
exit "$rc"
