#!/usr/bin/env bash
# vm-timeout: 900
# Scenario 96: the packaged lvs-director.service's privileges, and a package
# upgrade that does not fail the director over. One boot of scenario 95's
# container (tests/nspawn/lib.sh), given CAP_SYS_MODULE, the VM's
# /lib/modules and its kmod as /usr/sbin/modprobe so that the unit's
# ExecStartPre can load ip_vs. Checks:
#   - ip_vs is unloaded in the VM before the boot; after it ip_vs is loaded
#     (by the unit's `+` ExecStartPre) and the schedulers of the file (by the
#     kernel), while the daemon's effective capabilities are exactly
#     CAP_NET_ADMIN and CAP_NET_RAW, its permitted and bounding sets the
#     unit's CapabilityBoundingSet (no CAP_SYS_MODULE, no CAP_SYS_ADMIN);
#   - the postinst made the system user lvs-check, and an exec check runs as
#     it; a check that overruns its timeout is killed (under another uid:
#     CAP_KILL);
#   - a package upgrade (dpkg -i of the same .deb inside the container) with
#     [announce] and the health file: sampled every 0.2 s throughout (and
#     `ip monitor` of the interface), the VIP stays on the announce interface
#     and the health file at 0; the daemon was restarted (a new MainPID) and
#     handed over (its journal);
#   - TimeoutStopSec covers the longest withdraw_grace (300 s) with room;
#     a plain `systemctl stop` withdraws, waits its 5 s grace, restores the
#     sysctl and deletes the interface the first instance created;
#   - dpkg --purge removes lvs-check.
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/../../nspawn/lib.sh"

CACHE=${LVS_TEST_CACHE:-/var/cache/lvs-test}
TREE=${NSPAWN_TREE:-$CACHE/nspawn/bookworm}
DEB_DIR=${LVS_DEB_DIR:-}
[[ -f $TREE/.complete ]] || fail "no nspawn tree in $TREE (scripts/setup.sh builds it; run-suite.sh shares $CACHE/nspawn)"
DEB=$(compgen -G "$DEB_DIR/lvs-director_*.deb" | head -n1) ||
    fail "no lvs-director package in '$DEB_DIR' (build it first: scripts/build-deb.sh, or test-all.sh's packages step)"
BOOT_TIMEOUT=180
GRACE=5
RS3_IP=198.51.100.13
# The unit's CapabilityBoundingSet, as /proc/PID/status shows it:
# CAP_KILL (5), CAP_SETGID (6), CAP_SETUID (7), CAP_SETPCAP (8),
# CAP_NET_ADMIN (12), CAP_NET_RAW (13): the daemon's bounding and permitted
# sets. Effective: CAP_NET_ADMIN and CAP_NET_RAW only (the daemon lowers
# the rest at start and raises one only for an exec check's switch of user
# or kill).
WANT_CAPS=00000000000031e0
WANT_EFF=0000000000003000

WORK=$(mktemp -d /run/vm96.XXXXXX)
ROOTFS=$WORK/root
CONSOLE=$TEST_TMP/console.log
CG=/sys/fs/cgroup/lvs-vm96-$$
NSPAWN_PID="" LEADER="" SAMPLER="" MONITOR_PID=""

ipvs_modules() { lsmod | awk '$1 ~ /^ip_vs/ {print $1}'; }
cleanup96() {
    [[ -n $SAMPLER ]] && kill "$SAMPLER" 2>/dev/null
    [[ -n $MONITOR_PID ]] && kill "$MONITOR_PID" 2>/dev/null
    nspawn_stop 30
    [[ -d $CG ]] && find "$CG" -depth -type d -exec rmdir {} + 2>/dev/null
    mountpoint -q "$ROOTFS" && umount "$ROOTFS"
    rm -rf "$WORK"
    # The scenarios after this one expect what guest.sh loaded.
    modprobe -a ip_vs ip_vs_wrr ip_vs_rr ip_vs_sh
    return 0
}
on_exit cleanup96

# --- ip_vs out of the kernel, so that the unit must load it ----------------------------
for m in $(ipvs_modules | grep -vx ip_vs) ip_vs; do
    modprobe -r "$m" || fail "cannot unload $m (in use?): the module check would prove nothing"
done
[[ ! -e /sys/module/ip_vs ]] || fail "ip_vs still loaded"
pass "ip_vs and its schedulers unloaded in the VM"

mkdir -p "$WORK/upper" "$WORK/ovl-work" "$ROOTFS" "$CG"
mount -t overlay overlay -o "lowerdir=$TREE,upperdir=$WORK/upper,workdir=$WORK/ovl-work" "$ROOTFS"

dpkg --root="$ROOTFS" --force-unsafe-io -i "$DEB" >"$TEST_TMP/dpkg.log" 2>&1 ||
    { cat "$TEST_TMP/dpkg.log"; fail "dpkg -i $(basename "$DEB")"; }
pw=$(chroot "$ROOTFS" getent passwd lvs-check) || fail "no user lvs-check after dpkg -i"
IFS=: read -r _ _ uid gid _ home shell <<<"$pw"
((uid < 1000)) || fail "lvs-check has uid $uid: not a system user"
[[ $home == /nonexistent && ! -e $ROOTFS$home && $shell == /usr/sbin/nologin ]] ||
    fail "lvs-check: home '$home' (exists: $([[ -e $ROOTFS$home ]] && echo yes || echo no)), shell '$shell'"
[[ $(chroot "$ROOTFS" getent group lvs-check | cut -d: -f3) == "$gid" ]] || fail "lvs-check's group is not its own"
pass "dpkg -i: system user lvs-check (uid $uid, no home, nologin)"

cat >"$ROOTFS/etc/lvs-director/director.toml" <<EOF
[announce]
interface = "lvs0"
withdraw_grace = $GRACE

[sysctl]
sloppy_tcp = 1

[[service]]
vip = "$VIP"
protocol = "tcp"
port = 80
scheduler = "wrr"

# Holds the quorum whatever the exec checks do (slow under emulation): the
# VIP and the health file follow the upgrade alone.
[[service.server]]
address = "$RS1_IP"
forward = "dr"

# Healthy only when its check runs as lvs-check.
[[service.server]]
address = "$RS2_IP"
forward = "dr"
[service.server.check]
type = "exec"
interval = 2.0
timeout = 2.0
rise = 1
fall = 5
command = ["/bin/sh", "-c", "test \"\$(id -un)\" = lvs-check"]

# Never healthy: killed at its timeout, every 2 s.
[[service.server]]
address = "$RS3_IP"
forward = "dr"
[service.server.check]
type = "exec"
interval = 2.0
timeout = 0.5
fall = 1
command = ["/bin/sleep", "30"]

[[service]]
vip = "$VIP"
protocol = "tcp"
port = 443
scheduler = "rr"

[[service.server]]
address = "$RS1_IP"
forward = "dr"
EOF

eval "lib_$(declare -f fail)"
fail() {
    if [[ -n $LEADER ]]; then
        in_ct journalctl -b -q --no-pager -o short-monotonic -u lvs-director.service 2>&1 |
            tail -n 30 | sed 's/^/    journal: /' || true
    fi
    lib_fail "$@"
}

# --- boot with what ExecStartPre needs to load a module --------------------------------
KMOD=$(readlink -f "$(command -v modprobe)")
NSPAWN_ARGS=(--capability=CAP_SYS_MODULE --bind-ro=/lib/modules --bind-ro="$KMOD:/usr/sbin/modprobe")
deadline=$((SECONDS + BOOT_TIMEOUT))
nspawn_start "lvs-vm96-$$" "$deadline" "$CG" || { tail -n 30 "$CONSOLE"; fail "no systemd in the container"; }
while state=$(in_ct systemctl is-system-running 2>/dev/null || true); [[ -z $state || $state == offline ]]; do
    ((SECONDS < deadline)) || fail "systemctl cannot reach the container's systemd (state '$state')"
    sleep 0.5
done
log "booted: systemd $state (PID $LEADER in the VM)"

# Matched in bash, not with grep -q: with pipefail, ip killed by SIGPIPE
# after grep's early exit would read as a missing VIP.
vip_on() {
    local out
    out=$(in_ct ip -o addr show dev "$1" 2>/dev/null) || return 1
    [[ $out == *" inet $VIP/32 "* ]]
}
health() { in_ct cat /run/lvs-director/healthy 2>/dev/null; }
serving() {
    [[ $(in_ct systemctl is-active lvs-director.service) == active ]] && vip_on lvs0 && [[ $(health) == 0 ]]
}
wait_until 60 "the daemon active, $VIP on lvs0, the health file 0" serving
pass "boot: the daemon announces $VIP on lvs0 (created), the health file says 0"

# --- privileges -----------------------------------------------------------------------------
[[ -e /sys/module/ip_vs ]] || fail "ip_vs not loaded after the unit started"
for m in ip_vs_wrr ip_vs_rr; do
    [[ -e /sys/module/$m ]] || fail "$m not loaded (the kernel loads a scheduler on the first service using it)"
done
pid=$(unit_prop lvs-director.service MainPID)
status=$(in_ct cat "/proc/$pid/status")
for f in CapEff CapPrm CapBnd; do
    want=$WANT_CAPS
    [[ $f == CapEff ]] && want=$WANT_EFF
    got=$(awk -v f="$f:" '$1 == f {print $2}' <<<"$status")
    [[ $got == "$want" ]] || fail "$f of the daemon (PID $pid) is $got, want $want"
done
[[ $(awk '$1 == "CapAmb:" {print $2}' <<<"$status") == 0000000000000000 ]] || fail "ambient capabilities"
[[ $(awk '$1 == "NoNewPrivs:" {print $2}' <<<"$status") == 1 ]] || fail "NoNewPrivs is not set"
pass "ip_vs loaded by ExecStartPre, wrr and rr by the kernel; the daemon's CapEff = $WANT_EFF (NET_ADMIN NET_RAW), CapPrm = CapBnd = $WANT_CAPS (+ SETUID SETGID SETPCAP KILL); no SYS_MODULE"

# exec checks: RS2's passes only as lvs-check (weight 1 in the table, 0
# while failed); RS3's sleep 30 is killed at 0.5 s. Were the kill refused,
# a new sleep would pile up every 2 s.
rs_weight() { in_ct /usr/sbin/ipvsctl save | grep -F -- "-a -t $VIP:80 -r $1:80 " | grep -o -- '-w [0-9]*'; }
rs2_in() { [[ $(rs_weight "$RS2_IP") == "-w 1" ]]; }
wait_until 60 "RS2 in (its exec check passes as lvs-check)" rs2_in
[[ $(rs_weight "$RS3_IP") == "-w 0" ]] || fail "RS3 (sleep 30, timeout 0.5 s) has weight '$(rs_weight "$RS3_IP")'"
sleep 5
# (The container has no procps; the VM sees its processes, same uids.)
n=$(pgrep -c -u "$uid" -x sleep || true)
((n <= 1)) || fail "$n sleep processes of lvs-check: the timed-out checks were not killed"
status=$(in_ct /usr/sbin/lvs-director status 2>&1) || fail "lvs-director status: $status"
grep -qF 'timeout' <<<"$status" || fail "RS3's check failure is not a timeout: $status"
pass "exec checks run as lvs-check, one that overran its timeout was killed ($n sleep left)"

# --- the upgrade ---------------------------------------------------------------------------
in_ct test -f /run/lvs-director/control.sysctl.json || fail "no sysctl record while sloppy_tcp is set"
[[ $(in_ct cat /proc/sys/net/ipv4/vs/sloppy_tcp) == 1 ]] || fail "sloppy_tcp is not 1"
cp "$DEB" "$ROOTFS/var/tmp/lvs-director.deb"
SAMPLES=$WORK/samples MONITOR=$WORK/monitor
# Inside the container (one nsenter, not two per sample: under emulation
# those take a second): every 0.2 s the VIP on lvs0 and the health file;
# and every address change of lvs0 as it happens.
# shellcheck disable=SC2016 # expanded by the container's bash
in_ct bash -c 'while [[ ! -e /run/stop-sampling ]]; do
        v=no; [[ $(ip -o addr show dev lvs0 2>&1) == *" inet $0/32 "* ]] && v=yes
        printf "%s vip=%s health=%s\n" "$EPOCHREALTIME" "$v" "$(</run/lvs-director/healthy)"
        sleep 0.2
    done' "$VIP" >"$SAMPLES" 2>&1 &
SAMPLER=$!
# exec: $! is nsenter, which becomes ip (a function in the background
# would leave ip running when killed).
(exec nsenter --target "$LEADER" --all -- ip -ts monitor address dev lvs0) >"$MONITOR" 2>&1 &
MONITOR_PID=$!
sleep 2
in_ct dpkg -i /var/tmp/lvs-director.deb >"$TEST_TMP/upgrade.log" 2>&1 ||
    { cat "$TEST_TMP/upgrade.log"; fail "dpkg -i (upgrade) inside the container"; }
sleep 1
in_ct touch /run/stop-sampling
wait "$SAMPLER" || fail "the sampler failed: $(tail -n 3 "$SAMPLES")"
SAMPLER=""
kill "$MONITOR_PID" 2>/dev/null || true
wait "$MONITOR_PID" 2>/dev/null || true
MONITOR_PID=""
total=$(wc -l <"$SAMPLES")
bad=$(grep -vc ' vip=yes health=0$' "$SAMPLES" || true)
((total >= 10)) || fail "only $total samples during the upgrade: $(cat "$SAMPLES")"
((bad == 0)) || fail "$bad of $total samples lost the VIP or the health file's 0: $(grep -v ' vip=yes health=0$' "$SAMPLES" | head -n 5)"
span=$(awk 'NR == 1 {a = $1} {b = $1} END {printf "%.1f", b - a}' "$SAMPLES")
changes=$(grep -c . "$MONITOR" || true)
((changes == 0)) || fail "lvs0's addresses changed during the upgrade: $(head -n 5 "$MONITOR")"
new=$(unit_prop lvs-director.service MainPID)
[[ $new != "$pid" && $new != 0 ]] || fail "the upgrade did not restart the daemon (MainPID $pid -> $new)"
[[ $(in_ct systemctl is-active lvs-director.service) == active ]] || fail "the daemon is not active after the upgrade"
total=$(wc -l <"$SAMPLES")
bad=$(grep -vc ' vip=yes health=0$' "$SAMPLES" || true)
((total >= 5)) || fail "only $total samples during the upgrade: $(cat "$SAMPLES")"
((bad == 0)) || fail "$bad of $total samples lost the VIP or the health file's 0: $(grep -v ' vip=yes health=0$' "$SAMPLES" | head -n 5)"
journal=$(in_ct journalctl -b -q --no-pager -o cat -u lvs-director.service)
grep -qF 'stopping for a restart' <<<"$journal" || fail "the old daemon's journal has no hand-over"
grep -qF 'taking over from the instance before the restart' <<<"$journal" || fail "the new daemon took nothing over"
! grep -qF 'withdrawn from lvs0' <<<"$journal" || fail "a VIP was withdrawn: $(grep -F 'withdrawn from' <<<"$journal")"
[[ $(in_ct cat /proc/sys/net/ipv4/vs/sloppy_tcp) == 1 ]] || fail "sloppy_tcp changed across the upgrade"
! in_ct test -e /run/lvs-director/control.restart || fail "the restart marker was left behind"
[[ $(chroot "$ROOTFS" getent passwd lvs-check | wc -l) == 1 ]] || fail "lvs-check not exactly once after the second dpkg -i"
pass "upgrade (dpkg -i of the same package): restarted (MainPID $pid -> $new), VIP on lvs0 and health file 0 in all $total samples over ${span}s (0.2 s apart plus the probe's time), no address change of lvs0 (ip monitor)"

# --- a plain stop: withdraw, grace, restore ---------------------------------------------------
spec=$(unit_prop lvs-director.service TimeoutStopUSec)
us=$(in_ct systemd-analyze timespan "$spec" | awk '$1 == "μs:" {print $2}')
[[ $us =~ ^[0-9]+$ ]] || fail "TimeoutStopUSec '$spec' not understood"
((us >= 330 * 1000000)) || fail "TimeoutStopSec is $spec: shorter than withdraw_grace's 300 s maximum plus 30 s"
t0=$SECONDS
in_ct systemctl stop lvs-director.service || fail "systemctl stop"
took=$((SECONDS - t0))
((took >= GRACE && took < GRACE + 30)) || fail "the stop took ${took}s, want the ${GRACE}s grace and little more"
[[ $(unit_prop lvs-director.service Result) == success ]] || fail "the stop's result: $(unit_prop lvs-director.service Result)"
journal=$(in_ct journalctl -b -q --no-pager -o cat -u lvs-director.service)
grep -qF "stopping: $GRACE.0s of grace" <<<"$journal" || fail "no grace in the journal"
[[ $(health) == 1 ]] || fail "health file after the stop: '$(health)', want 1"
! in_ct ip link show lvs0 >/dev/null 2>&1 || fail "lvs0 (created by the first instance) still there after the stop"
! vip_on lo || fail "$VIP still held on lo after the grace"
[[ $(in_ct cat /proc/sys/net/ipv4/vs/sloppy_tcp) == 0 ]] || fail "sloppy_tcp not restored to 0"
! in_ct test -e /run/lvs-director/control.sysctl.json || fail "the sysctl record is left after a full stop"
pass "systemctl stop (TimeoutStopSec $spec): ${took}s with the ${GRACE}s grace, health file 1, lvs0 deleted, sloppy_tcp restored"

# --- purge ------------------------------------------------------------------------------------
in_ct dpkg --purge lvs-director >"$TEST_TMP/purge.log" 2>&1 || { cat "$TEST_TMP/purge.log"; fail "dpkg --purge"; }
! in_ct getent passwd lvs-check >/dev/null || fail "lvs-check left after the purge"
! in_ct getent group lvs-check >/dev/null || fail "group lvs-check left after the purge"
pass "dpkg --purge: lvs-check and its group removed"

nspawn_stop 30
log "container stopped"
