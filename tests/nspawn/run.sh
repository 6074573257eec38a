#!/usr/bin/env bash
# The real-server units under a real systemd: boots a Debian 12 container with
# systemd as PID 1 (systemd-nspawn --boot, private network, the host kernel),
# installs rs-agent and its units in it, and checks them as an operator would
# use them, reboot included. As root, after scripts/setup.sh and cargo build:
#
#   bash tests/nspawn/run.sh
#
# Prints one "PASS name" / "FAIL name: why" line per check and ends with
# "N passed, M failed". Exit status 0 only if every check passed; 2 for a
# missing input; 124 if the whole run hit its time limit.
#
# How: the cached tree of scripts/nspawn-tree.sh stays clean; the container
# boots an overlay of it (upper dir in a temp dir), mounted in a private mount
# namespace of this script only. The container's network is its own
# (--private-network: only lo); its VIPs are 203.0.113.10/.11 and 2001:db8::10/::11.
# The machine runs no systemd, so there is no machined and no system bus on
# the host: the container is not registered (--register=no, --keep-unit) and
# is driven with nsenter into its namespaces, where its own systemctl and
# journalctl talk to its systemd. Its cgroups live in a directory of this run,
# removed at the end. A reboot is a real one: systemctl reboot inside, nspawn
# exits with 133, and the next boot of the same tree gets a new network
# namespace and a new /run (tmpfs).
#
# Environment:
#   RS_AGENT_BIN_DIR   dir holding rs-agent, ipvsctl and lvs-director (default
#                      <repo>/target/debug), packaged by scripts/build-deb.sh
#                      into <repo>/target/debian
#   NSPAWN_TREE        tree to boot (default $LVS_TEST_CACHE/nspawn/bookworm)
#   LVS_TEST_CACHE     cache root (default /var/cache/lvs-test)
#   NSPAWN_TIMEOUT     seconds for the whole run (default 900)
#   NSPAWN_BOOT_TIMEOUT  seconds for one boot to finish (default 120)
#   NSPAWN_KEEP=1      keep the work dir (overlay upper dir, console log)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source-path=SCRIPTDIR # (lib.sh beside this file)
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
say() { printf 'nspawn: %s\n' "$*"; }
die() { printf 'nspawn: error: %s\n' "$*" >&2; exit 2; }

[[ $(id -u) -eq 0 ]] || die "must run as root (systemd-nspawn, mounts)"

BIN_DIR=${RS_AGENT_BIN_DIR:-$ROOT/target/debug}
for b in rs-agent ipvsctl lvs-director; do
    [[ -x $BIN_DIR/$b ]] || die "$BIN_DIR/$b missing (build first: cargo build --workspace)"
done
BIN_DIR=$(cd "$BIN_DIR" && pwd)
CACHE=${LVS_TEST_CACHE:-/var/cache/lvs-test}
TREE=${NSPAWN_TREE:-$CACHE/nspawn/bookworm}
[[ -f $TREE/.complete ]] || die "no tree in $TREE (scripts/setup.sh builds it: scripts/nspawn-tree.sh)"
for c in systemd-nspawn nsenter unshare pgrep; do
    command -v "$c" >/dev/null || die "$c missing (scripts/setup.sh)"
done
TOTAL_TIMEOUT=${NSPAWN_TIMEOUT:-900}
BOOT_TIMEOUT=${NSPAWN_BOOT_TIMEOUT:-120}

# Once: a private mount namespace (the overlay is seen by this run only and
# goes with it), and a time limit for everything.
if [[ -z ${LVS_NSPAWN_INNER:-} ]]; then
    export LVS_NSPAWN_INNER=1
    set +e
    timeout -k 60 "$TOTAL_TIMEOUT" unshare -m --propagation private -- bash "${BASH_SOURCE[0]}" "$@"
    rc=$?
    ((rc != 124 && rc != 137)) || say "FAILED: the run exceeded ${TOTAL_TIMEOUT}s"
    exit "$rc"
fi

# The tree must not be rebuilt under the overlay: hold its lock shared.
if [[ -e $(dirname "$TREE")/.lock ]]; then
    exec 8<"$(dirname "$TREE")/.lock"
    flock -s -w 900 8 || die "the tree is being rebuilt for over 15 minutes ($(dirname "$TREE")/.lock)"
fi

# --- work dir, overlay, cleanup --------------------------------------------------
WORK=$(mktemp -d /var/tmp/lvs-nspawn.XXXXXX)
ROOTFS=$WORK/root
CONSOLE=$WORK/console.log
MACHINE=rsa-nspawn-$$
# cgroups of this run: nspawn (without systemd on the host) splits the cgroup
# it starts in into payload/ and supervisor/; start it in one of ours.
CGROUPS=()
HAD_NSPAWN_RUNDIR=0
[[ -e /run/systemd/nspawn ]] && HAD_NSPAWN_RUNDIR=1
NSPAWN_PID=""
LEADER=""

cleanup() {
    local rc=$?
    set +e
    nspawn_stop 60
    local cg
    for cg in "${CGROUPS[@]}"; do
        [[ -d $cg ]] && find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null
    done
    mountpoint -q "$ROOTFS" && umount "$ROOTFS"
    # nspawn's (empty) lock and propagation dirs, if this run made them.
    if ((!HAD_NSPAWN_RUNDIR)); then
        rmdir /run/systemd/nspawn/locks /run/systemd/nspawn/propagate /run/systemd/nspawn 2>/dev/null
    fi
    if [[ ${NSPAWN_KEEP:-0} == 1 ]]; then
        say "kept $WORK"
    else
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 143' TERM INT

mkdir -p "$WORK/upper" "$WORK/ovl-work" "$ROOTFS"
mount -t overlay overlay -o "lowerdir=$TREE,upperdir=$WORK/upper,workdir=$WORK/ovl-work" "$ROOTFS"

for h in /sys/fs/cgroup/systemd /sys/fs/cgroup/unified /sys/fs/cgroup; do
    # cgroup v1 name=systemd, the hybrid unified one, or a pure v2 mount
    if [[ -e $h/cgroup.procs ]] && [[ $h != /sys/fs/cgroup || ${#CGROUPS[@]} -eq 0 ]]; then
        mkdir -p "$h/lvs-nspawn-$$"
        CGROUPS+=("$h/lvs-nspawn-$$")
    fi
done

# --- the software in the container -----------------------------------------------
# rs-agent as an operator installs it: scripts/install.sh's package route
# (scripts/build-deb.sh from the binaries under test, into target/debian),
# with --root: dpkg runs the maintainer scripts chrooted into the tree, so
# the postinst enables rs-agent.service there as on a real machine (no
# systemd runs in the tree yet: nothing starts).
DEBS=$ROOT/target/debian
deb_of() { local f; f=$(echo "$DEBS/$1"_*.deb); [[ -e $f ]] || die "no $1 package in $DEBS"; echo "$f"; }
install_software() {
    RS_AGENT_BIN_DIR=$BIN_DIR bash "$ROOT/scripts/install.sh" --root "$1" >"$WORK/install.log" 2>&1
}

# Debian's ipvsadm and its libraries, for the alternatives checks: downloaded
# once (apt-get download, the machine's bookworm lists) into the cache.
IPVSADM_DEBS=$CACHE/nspawn/debs
fetch_ipvsadm_debs() {
    [[ -f $IPVSADM_DEBS/.complete ]] && return 0
    local tmp
    tmp=$(mktemp -d "$CACHE/nspawn/.debs.XXXXXX")
    (cd "$tmp" && timeout 300 apt-get download ipvsadm libnl-3-200 libnl-genl-3-200 libpopt0 >/dev/null 2>&1) || {
        rm -rf "$tmp"
        return 1
    }
    touch "$tmp/.complete"
    rm -rf "$IPVSADM_DEBS"
    mv "$tmp" "$IPVSADM_DEBS"
}

fetch_ipvsadm_debs || die "apt-get download ipvsadm (and its libraries) failed"
install_software "$ROOTFS" || { tail -n 30 "$WORK/install.log" >&2; die "scripts/install.sh --root (the package route) failed"; }
write_config() { # VIP...: the container's /etc/rs-agent/config.toml
    local v
    for v in "$@"; do
        printf '[[vip]]\naddress = "%s"\n' "$v"
        [[ $v == *:* ]] || printf 'label = "lo:0"\n'
    done >"$ROOTFS/etc/rs-agent/config.toml"
}
write_config 203.0.113.10 2001:db8::10
# The values before the agent, set at boot by systemd-sysctl as an operator's
# sysctl.d would: stop must bring back exactly these.
PRIOR_IGNORE=0 PRIOR_ANNOUNCE=1
cat >"$ROOTFS/etc/sysctl.d/50-lvs-test-priors.conf" <<EOF
net.ipv4.conf.all.arp_ignore = $PRIOR_IGNORE
net.ipv4.conf.all.arp_announce = $PRIOR_ANNOUNCE
EOF
# What the package's postinst enabled (checked once the container is up):
# the oneshot unit, not the watch unit (they conflict).
ENABLED_AT_INSTALL=$(systemctl --root="$ROOTFS" is-enabled rs-agent.service rs-agent-watch.service 2>/dev/null | tr '\n' ' ' || true)

# --- boot, drive -----------------------------------------------------------------
sysctl_of() { in_ct cat "/proc/sys/net/ipv4/conf/all/$1"; }
lo_addrs() { in_ct ip -o addr show dev lo; }
wait_until() { # SECONDS CMD...: poll every 0.5 s
    local deadline=$((SECONDS + $1))
    shift
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || return 1
        sleep 0.5
    done
}

boot() {
    local t0=$SECONDS deadline=$((SECONDS + BOOT_TIMEOUT))
    BOOT_STATE="not booted"
    if ! nspawn_start "$MACHINE" "$deadline" "${CGROUPS[@]}"; then
        say "no systemd in the container (nspawn exited, or ${BOOT_TIMEOUT}s passed); console:"
        tail -n 20 "$CONSOLE" | sed 's/^/    /'
        return 1
    fi
    # systemd runs before its private socket exists: until then systemctl
    # prints no state ("Failed to connect to bus"), and --wait would not wait.
    local state=""
    until state=$(in_ct systemctl is-system-running 2>/dev/null) || [[ -n $state ]]; do
        if ! kill -0 "$NSPAWN_PID" 2>/dev/null || ((SECONDS >= deadline)); then
            BOOT_STATE="no systemctl connection"
            say "systemctl cannot reach the container's systemd (nspawn exited, or ${BOOT_TIMEOUT}s passed)"
            return 1
        fi
        sleep 0.5
    done
    if [[ $state != running && $state != degraded ]]; then
        state=$(timeout "$((deadline - SECONDS + 1))" nsenter --target "$LEADER" --all -- \
            systemctl is-system-running --wait 2>/dev/null) || true
    fi
    BOOT_STATE=$state
    say "booted in $((SECONDS - t0))s: systemd $state (PID $LEADER on the host)"
    [[ $state == running || $state == degraded ]]
}

# --- checks ------------------------------------------------------------------------
passed=0 failed=0 failed_names=()
why=""
check() { # NAME FUNC: PASS/FAIL line; FUNC sets $why on failure
    local name=$1 t0=$SECONDS
    shift
    why=""
    if "$@"; then
        passed=$((passed + 1))
        echo "PASS $name ($((SECONDS - t0))s)"
    else
        failed=$((failed + 1))
        failed_names+=("$name")
        echo "FAIL $name: ${why:-failed} ($((SECONDS - t0))s)"
    fi
}
vips_are() { # VIP...: exactly these on lo (besides 127.0.0.1 and ::1)
    local have want
    have=$(lo_addrs | awk '{print $4}' | grep -vxE '127\.0\.0\.1/8|::1/128' | sort | tr '\n' ' ')
    want=$(for v in "$@"; do [[ $v == *:* ]] && echo "$v/128" || echo "$v/32"; done | sort | tr '\n' ' ')
    [[ $have == "$want" ]] || { why="VIPs on lo: '${have% }', want '${want% }'"; return 1; }
}
sysctls_are() { # IGNORE ANNOUNCE
    local i a
    i=$(sysctl_of arp_ignore) a=$(sysctl_of arp_announce)
    [[ $i == "$1" && $a == "$2" ]] || { why="arp_ignore/arp_announce $i/$a, want $1/$2"; return 1; }
}
unit_is() { # UNIT STATE
    local s
    s=$(in_ct systemctl is-active "$1" || true)
    [[ $s == "$2" ]] || { why="$1 is $s, want $2"; return 1; }
}
agent_check_ok() {
    in_ct /usr/sbin/rs-agent check >/dev/null 2>&1 || { why="rs-agent check: drift"; return 1; }
}
applied() { # VIP...: the agent's state: these VIPs, ARP sysctls 1/2, check in sync
    vips_are "$@" && sysctls_are 1 2 && agent_check_ok
}

c_package_installed() {
    [[ $ENABLED_AT_INSTALL == "enabled disabled " ]] ||
        { why="after dpkg -i: rs-agent.service/rs-agent-watch.service '$ENABLED_AT_INSTALL', want 'enabled disabled'"; return 1; }
    [[ $(in_ct dpkg-query -W -f="\${Status}" rs-agent) == "install ok installed" ]] || { why="rs-agent not installed"; return 1; }
    grep -q '^ /etc/rs-agent/config.toml ' <<<"$(in_ct dpkg-query -W -f="\${Conffiles}" rs-agent)" ||
        { why="/etc/rs-agent/config.toml not a conffile"; return 1; }
    grep -qx 'ExecStart=/usr/sbin/rs-agent start --config /etc/rs-agent/config.toml' "$ROOTFS/lib/systemd/system/rs-agent.service" ||
        { why="the packaged unit does not start /usr/sbin/rs-agent"; return 1; }
    local page
    for page in rs-agent rs-agent-watch rs-agent-start; do
        [[ $(MANPATH=$ROOTFS/usr/share/man man -w "$page" 2>/dev/null) == "$ROOTFS/usr/share/man/man8/$page.8.gz" ]] ||
            { why="man -w $page: not the package's page"; return 1; }
    done
    grep -q '^\.TH rs-agent-watch 8 ' <<<"$(zcat "$ROOTFS/usr/share/man/man8/rs-agent-watch.8.gz")" ||
        { why="rs-agent-watch.8.gz is not a section 8 page"; return 1; }
    local f
    for f in bash-completion/completions/rs-agent zsh/vendor-completions/_rs-agent fish/vendor_completions.d/rs-agent.fish; do
        [[ -s $ROOTFS/usr/share/$f ]] || { why="no /usr/share/$f"; return 1; }
    done
}
# ipvsadm's names through update-alternatives, with and without Debian's
# ipvsadm. Done last, in the running container: the director package enables
# lvs-director.service for the next boot, and no boot follows.
ipvsadm_is_ipvsctl() { # every name links to ipvsctl
    local n
    for n in ipvsadm ipvsadm-save ipvsadm-restore; do
        [[ -L $ROOTFS/usr/sbin/$n && $(in_ct readlink -f "/usr/sbin/$n") == /usr/sbin/ipvsctl ]] ||
            { why="/usr/sbin/$n does not lead to ipvsctl"; return 1; }
    done
    [[ $(in_ct readlink -f /usr/share/man/man8/ipvsadm.8.gz) == /usr/share/man/man8/ipvsctl.8.gz ]] ||
        { why="ipvsadm.8.gz does not lead to ipvsctl.8.gz"; return 1; }
}
DEBIAN_IPVSADM_MD5=""
ipvsadm_is_debians() { # Debian's files, untouched
    local n sum
    for n in ipvsadm ipvsadm-save ipvsadm-restore; do
        [[ -f $ROOTFS/usr/sbin/$n && ! -L $ROOTFS/usr/sbin/$n ]] || { why="/usr/sbin/$n is not Debian's file"; return 1; }
    done
    sum=$(md5sum <"$ROOTFS/usr/sbin/ipvsadm" | cut -d' ' -f1)
    [[ $sum == "$DEBIAN_IPVSADM_MD5" ]] || { why="/usr/sbin/ipvsadm changed (md5 $sum, Debian's $DEBIAN_IPVSADM_MD5)"; return 1; }
    # (Not run: Debian's ipvsadm needs a kernel with IPVS even for -v.)
}
ct_debs() { # NAME...: the container's paths of the copied packages NAME_*.deb
    local n f
    for n in "$@"; do
        for f in "$ROOTFS/root/debs/$n"_*.deb; do echo "${f#"$ROOTFS"}"; done
    done
}
in_ct_dpkg() { # ARGS: dpkg in the container, its output kept for a failure
    in_ct env DEBIAN_FRONTEND=noninteractive dpkg --force-unsafe-io "$@" >>"$WORK/dpkg-alternatives.log" 2>&1 ||
        { why="dpkg $* failed: $(tail -n 3 "$WORK/dpkg-alternatives.log" | tr '\n' ' ')"; return 1; }
}
c_alternatives_without_ipvsadm() {
    mkdir -p "$ROOTFS/root/debs"
    cp "$(deb_of lvs-director)" "$IPVSADM_DEBS"/*.deb "$ROOTFS/root/debs/"
    in_ct_dpkg -i "$(ct_debs lvs-director)" || return 1
    ipvsadm_is_ipvsctl || return 1
    # Invoked by the alternative's name, ipvsctl is ipvsadm.
    [[ $(in_ct ipvsadm -v) == "ipvsadm v1.31 "* ]] || { why="ipvsadm -v (ipvsctl) does not answer as ipvsadm"; return 1; }
    [[ $(in_ct systemctl is-enabled lvs-director.service lvs-director-apply.service | tr '\n' ' ') == "enabled disabled " ]] ||
        { why="lvs-director.service not enabled (alone) by the package"; return 1; }
    unit_is lvs-director.service inactive || return 1
    in_ct_dpkg -r lvs-director || return 1
    local n
    for n in ipvsadm ipvsadm-save ipvsadm-restore; do
        [[ ! -e $ROOTFS/usr/sbin/$n && ! -L $ROOTFS/usr/sbin/$n ]] || { why="/usr/sbin/$n left after dpkg -r"; return 1; }
    done
}
c_alternatives_with_ipvsadm() {
    mapfile -t debs < <(ct_debs libnl-3-200 libnl-genl-3-200 libpopt0 ipvsadm)
    in_ct_dpkg -i "${debs[@]}" || return 1
    DEBIAN_IPVSADM_MD5=$(md5sum <"$ROOTFS/usr/sbin/ipvsadm" | cut -d' ' -f1)
    # Debian's ipvsadm first, then ours: its files stay.
    in_ct_dpkg -i "$(ct_debs lvs-director)" || return 1
    ipvsadm_is_debians || return 1
    in_ct_dpkg -r lvs-director || return 1
    ipvsadm_is_debians || return 1
    # Ours first, then Debian's ipvsadm: its files replace our links, and
    # removing ours later leaves them.
    in_ct_dpkg -r ipvsadm || return 1
    in_ct_dpkg -i "$(ct_debs lvs-director)" || return 1
    ipvsadm_is_ipvsctl || return 1
    in_ct_dpkg -i "$(ct_debs ipvsadm)" || return 1
    ipvsadm_is_debians || return 1
    in_ct_dpkg -r lvs-director || return 1
    ipvsadm_is_debians
}
c_upgrade_keeps_disabled() {
    # An operator's disable survives an upgrade (here a reinstall of the same
    # version, which runs the postinst as an upgrade does: configure with the
    # old version).
    in_ct systemctl disable --quiet rs-agent.service
    cp "$(deb_of rs-agent)" "$ROOTFS/root/debs/"
    in_ct_dpkg -i "$(ct_debs rs-agent)" || return 1
    local e
    e=$(in_ct systemctl is-enabled rs-agent.service || true)
    [[ $e == disabled ]] || { why="rs-agent.service $e after the upgrade, want disabled"; return 1; }
    in_ct systemctl enable --quiet rs-agent.service
}
c_boot() {
    [[ $BOOT_STATE == running || $BOOT_STATE == degraded ]] || { why="systemd says '$BOOT_STATE'"; return 1; }
    # A degraded system is fine as long as no unit of ours failed.
    [[ $BOOT_STATE == running ]] || say "degraded: $(in_ct systemctl --failed --plain --no-legend | awk '{print $1}' | tr '\n' ' ')"
    [[ $(in_ct cat /proc/1/comm) == systemd ]] || { why="PID 1 is not systemd"; return 1; }
}
c_oneshot_boot() {
    unit_is rs-agent.service active || return 1
    [[ $(unit_prop rs-agent.service Result) == success ]] || { why="Result not success"; return 1; }
    applied 203.0.113.10 2001:db8::10 || return 1
    # (here-strings, not pipes into grep -q: with pipefail, grep -q's early
    # exit would fail the pipeline by SIGPIPE)
    grep -q '203\.0\.113\.10/32 .*lo:0' <<<"$(lo_addrs)" || { why="203.0.113.10 without label lo:0"; return 1; }
}
c_oneshot_stop() {
    in_ct systemctl stop rs-agent.service || { why="systemctl stop failed"; return 1; }
    unit_is rs-agent.service inactive || return 1
    vips_are || return 1
    sysctls_are "$PRIOR_IGNORE" "$PRIOR_ANNOUNCE"
}
c_oneshot_reload() {
    in_ct systemctl start rs-agent.service || { why="systemctl start failed"; return 1; }
    applied 203.0.113.10 2001:db8::10 || return 1
    write_config 203.0.113.10 203.0.113.11 2001:db8::11
    in_ct systemctl reload rs-agent.service || { why="systemctl reload failed"; return 1; }
    unit_is rs-agent.service active || return 1
    applied 203.0.113.10 203.0.113.11 2001:db8::11
}
WATCH_PID=""
c_watch_ready() {
    # Type=notify: start returns once the agent sent READY=1.
    timeout 60 nsenter --target "$LEADER" --all -- systemctl start rs-agent-watch.service ||
        { why="systemctl start rs-agent-watch failed or hung"; return 1; }
    unit_is rs-agent-watch.service active || return 1
    [[ $(unit_prop rs-agent-watch.service Type) == notify ]] || { why="not Type=notify"; return 1; }
    WATCH_PID=$(unit_prop rs-agent-watch.service MainPID)
    [[ $WATCH_PID =~ ^[1-9][0-9]*$ ]] || { why="no MainPID"; return 1; }
    applied 203.0.113.10 203.0.113.11 2001:db8::11
}
# systemd's last "VERB UNIT" line of this boot comes before its last "VERB2 UNIT2"
# line: Conflicts= alone starts one unit while the other still stops.
stopped_before_start() { # STOPPED_UNIT STARTED_UNIT
    local j a b
    j=$(in_ct journalctl -b -q --no-pager -o cat _PID=1)
    a=$(grep -n "^Stopped $1 " <<<"$j" | tail -n1 | cut -d: -f1)
    b=$(grep -n "^Starting $2 " <<<"$j" | tail -n1 | cut -d: -f1)
    [[ -n $a && -n $b ]] || { why="no Stopped $1 / Starting $2 in the journal"; return 1; }
    ((a < b)) || { why="$2 started while $1 was still stopping (Conflicts= without ordering)"; return 1; }
}
c_watch_conflicts_oneshot() {
    # Starting the watch unit stopped the oneshot (Conflicts=), before it started.
    unit_is rs-agent.service inactive || return 1
    stopped_before_start rs-agent.service rs-agent-watch.service
}
c_watch_watchdog() {
    local usec
    usec=$(unit_prop rs-agent-watch.service WatchdogUSec)
    [[ $usec != 0 && -n $usec ]] || { why="no WatchdogSec on the unit"; return 1; }
    # WatchdogUSec prints as e.g. "30s"; wait one period and a margin.
    local secs=30
    [[ $usec =~ ^([0-9]+)s$ ]] && secs=${BASH_REMATCH[1]}
    sleep "$((secs + 5))"
    unit_is rs-agent-watch.service active || return 1
    [[ $(unit_prop rs-agent-watch.service MainPID) == "$WATCH_PID" ]] || { why="MainPID changed: restarted"; return 1; }
    [[ $(unit_prop rs-agent-watch.service NRestarts) == 0 ]] || { why="NRestarts not 0"; return 1; }
    ! grep -qi 'watchdog timeout' <<<"$(in_ct journalctl -b -q --no-pager -u rs-agent-watch.service)" ||
        { why="watchdog timeout in the journal"; return 1; }
}
watch_logged_repair() { grep -q "drift repaired" <<<"$(in_ct journalctl -b -q --no-pager -u rs-agent-watch.service)"; }
c_watch_repairs_vip() {
    in_ct ip addr del 203.0.113.10/32 dev lo
    wait_until 10 vips_are 203.0.113.10 203.0.113.11 2001:db8::11 || { why="VIP not back within 10s"; return 1; }
    wait_until 5 watch_logged_repair ||
        { why="no 'drift repaired' in the journal"; return 1; }
}
c_watch_repairs_sysctl() {
    echo 0 | in_ct tee /proc/sys/net/ipv4/conf/all/arp_ignore >/dev/null
    # sysctls are re-read every --interval (5 s)
    wait_until 15 sysctls_are 1 2 || { why="arp_ignore not repaired within 15s"; return 1; }
}
c_watch_reload() {
    write_config 203.0.113.10 203.0.113.11 2001:db8::10 2001:db8::11
    in_ct systemctl reload rs-agent-watch.service || { why="systemctl reload failed"; return 1; }
    wait_until 10 vips_are 203.0.113.10 203.0.113.11 2001:db8::10 2001:db8::11 || return 1
    [[ $(unit_prop rs-agent-watch.service MainPID) == "$WATCH_PID" ]] || { why="reload restarted the agent"; return 1; }
}
c_oneshot_conflicts_watch() {
    in_ct systemctl start rs-agent.service || { why="systemctl start failed"; return 1; }
    unit_is rs-agent-watch.service inactive || return 1
    unit_is rs-agent.service active || return 1
    stopped_before_start rs-agent-watch.service rs-agent.service || return 1
    applied 203.0.113.10 203.0.113.11 2001:db8::10 2001:db8::11
}
c_hardening() {
    local j
    j=$(in_ct journalctl -b -q --no-pager -o cat -u rs-agent.service -u rs-agent-watch.service)
    [[ -n $j ]] || { why="no journal lines of the units"; return 1; }
    local bad
    bad=$(grep -iE 'permission denied|read-only file system|operation not permitted|EACCES|EPERM|EROFS|denied|bad system call|SIGSYS|status=(31|159)' <<<"$j" | head -n 5 || true)
    [[ -z $bad ]] || { why="denied in the journal: $bad"; return 1; }
    in_ct systemctl is-failed --quiet rs-agent.service rs-agent-watch.service && { why="a unit failed"; return 1; }
    return 0
}
dump_journal() { # NAME: this boot's whole journal into the work dir
    in_ct journalctl -b --no-pager -o short-monotonic >"$WORK/journal-$1.log" 2>&1 || true
}
c_hardening_check_bites() {
    # The check above must see a real denial: ProtectKernelTunables=yes makes
    # /proc/sys read-only for the agent, which must then fail and say so.
    local d=/etc/systemd/system/rs-agent.service.d
    in_ct mkdir -p "$d"
    printf '[Service]\nProtectKernelTunables=yes\n' | in_ct tee "$d/90-lvs-test-too-strict.conf" >/dev/null
    in_ct systemctl daemon-reload
    in_ct systemctl stop rs-agent.service
    in_ct systemctl start rs-agent.service 2>/dev/null && { why="the agent started with /proc/sys read-only"; return 1; }
    local saved=$why
    c_hardening && { why="c_hardening saw no denial"; return 1; }
    say "  (the denial it saw: $(head -n1 <<<"${why#denied in the journal: }"))"
    why=$saved
    in_ct rm -f "$d/90-lvs-test-too-strict.conf"
    in_ct systemctl daemon-reload
    in_ct systemctl reset-failed rs-agent.service
}
c_reboot() {
    dump_journal boot1
    nspawn_reboot || { why=$NSPAWN_WHY; return 1; }
    boot || { why="after reboot systemd says '$BOOT_STATE'"; return 1; }
}
c_after_reboot() {
    # A new boot: new /run (no rollback record), new network namespace.
    unit_is rs-agent.service active || return 1
    applied 203.0.113.10 203.0.113.11 2001:db8::10 2001:db8::11
}
c_after_reboot_stop() {
    # The record written at this boot knows this boot's priors.
    c_oneshot_stop
}

say "tree $TREE, overlay in $WORK, rs-agent from $BIN_DIR"
T0=$SECONDS
boot || true
check boot c_boot
[[ -n $LEADER ]] || { echo "0 passed, 1 failed"; exit 1; }
check package-installed-enabled-man-completions c_package_installed
check oneshot-applies-at-boot c_oneshot_boot
check oneshot-stop-restores c_oneshot_stop
check oneshot-reload-converges c_oneshot_reload
check watch-ready-via-sd-notify c_watch_ready
check watch-conflicts-stops-oneshot c_watch_conflicts_oneshot
check watch-survives-watchdog-period c_watch_watchdog
check watch-repairs-deleted-vip c_watch_repairs_vip
check watch-repairs-arp-sysctl c_watch_repairs_sysctl
check watch-reload-converges c_watch_reload
check oneshot-conflicts-stops-watch c_oneshot_conflicts_watch
check hardening-denies-nothing c_hardening
check reboot c_reboot
if [[ -n $LEADER ]]; then
    check after-reboot-vips-and-sysctls-back c_after_reboot
    check after-reboot-stop-restores c_after_reboot_stop
    check after-reboot-hardening-denies-nothing c_hardening
    check hardening-check-catches-a-denial c_hardening_check_bites
    check alternatives-ipvsadm-without-debians c_alternatives_without_ipvsadm
    check alternatives-never-replace-debians-ipvsadm c_alternatives_with_ipvsadm
    check upgrade-keeps-a-disabled-unit-disabled c_upgrade_keeps_disabled
    dump_journal boot2
fi
nspawn_stop 60
say "container stopped; $((SECONDS - T0))s in all"
if ((failed)); then
    echo "failed: ${failed_names[*]}"
    for j in "$WORK"/journal-*.log; do
        [[ -e $j ]] || continue
        echo "    --- the units in $(basename "$j" .log):"
        grep -E 'rs-agent' "$j" | tail -n 40 | sed 's/^/    /'
    done
    say "console log and journals in $WORK (NSPAWN_KEEP=1 keeps them)"
fi
echo "$passed passed, $failed failed"
((failed == 0 && passed > 0))
