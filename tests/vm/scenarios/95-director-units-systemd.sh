#!/usr/bin/env bash
# Scenario 95: the director's units under a real systemd, on a kernel with
# IPVS. Inside the VM, the cached Debian 12 tree of tests/nspawn (shared
# read-only by run-suite.sh) boots with systemd-nspawn --boot and a private
# network; the lvs-director package (scripts/build-deb.sh) is installed into
# it with dpkg, whose postinst enables lvs-director.service. Checks: the IPVS
# table of the director file is there after boot, `systemctl reload`
# converges a changed file without restarting the daemon, a reboot of the
# container brings the table back (a new network namespace: an empty table
# until the unit runs), the oneshot lvs-director-apply.service takes over
# (Conflicts=) with the same table, and the hardening denied nothing in the
# journal.
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
# The container helpers of tests/nspawn (the VM shares the repository).
. "$(dirname "${BASH_SOURCE[0]}")/../../nspawn/lib.sh"

CACHE=${LVS_TEST_CACHE:-/var/cache/lvs-test}
TREE=${NSPAWN_TREE:-$CACHE/nspawn/bookworm}
DEB_DIR=${LVS_DEB_DIR:-}
[[ -f $TREE/.complete ]] || fail "no nspawn tree in $TREE (scripts/setup.sh builds it; run-suite.sh shares $CACHE/nspawn)"
DEB=$(compgen -G "$DEB_DIR/lvs-director_*.deb" | head -n1) ||
    fail "no lvs-director package in '$DEB_DIR' (build it first: scripts/build-deb.sh, or test-all.sh's packages step)"
BOOT_TIMEOUT=120

# The overlay's upper dir on /run (tmpfs): the guest's /tmp is itself an
# overlay, which overlayfs refuses as an upper dir.
WORK=$(mktemp -d /run/vm95.XXXXXX)
ROOTFS=$WORK/root
CONSOLE=$TEST_TMP/console.log
CG=/sys/fs/cgroup/lvs-vm95-$$
NSPAWN_PID="" LEADER=""

cleanup95() {
    nspawn_stop 30
    [[ -d $CG ]] && find "$CG" -depth -type d -exec rmdir {} + 2>/dev/null
    mountpoint -q "$ROOTFS" && umount "$ROOTFS"
    rm -rf "$WORK"
    return 0
}
on_exit cleanup95

mkdir -p "$WORK/upper" "$WORK/ovl-work" "$ROOTFS"
mount -t overlay overlay -o "lowerdir=$TREE,upperdir=$WORK/upper,workdir=$WORK/ovl-work" "$ROOTFS"
# nspawn, without systemd on the machine it runs on, splits the cgroup it
# starts in into payload/ and supervisor/: start it in one of ours.
mkdir -p "$CG"

# --- install as an operator would ----------------------------------------------------
dpkg --root="$ROOTFS" --force-unsafe-io -i "$DEB" >"$TEST_TMP/dpkg.log" 2>&1 ||
    { cat "$TEST_TMP/dpkg.log"; fail "dpkg -i $(basename "$DEB")"; }
enabled=$(systemctl --root="$ROOTFS" is-enabled lvs-director.service lvs-director-apply.service 2>/dev/null | tr '\n' ' ' || true)
[[ $enabled == "enabled disabled " ]] || fail "after dpkg -i: lvs-director.service/-apply '$enabled', want 'enabled disabled'"
pass "dpkg -i: lvs-director.service enabled by the postinst (the apply unit not)"

write_director() { # WEIGHT_OF_RS1 [extra service]: the container's director file
    cat >"$ROOTFS/etc/lvs-director/director.toml" <<EOF
[[service]]
vip = "$VIP"
protocol = "tcp"
port = 80
scheduler = "wrr"

[[service.server]]
address = "$RS1_IP"
forward = "dr"
weight = $1

[[service.server]]
address = "$RS2_IP"
forward = "dr"
weight = 2
EOF
    if [[ ${2:-} == 443 ]]; then
        cat >>"$ROOTFS/etc/lvs-director/director.toml" <<EOF

[[service]]
vip = "$VIP"
protocol = "tcp"
port = 443
scheduler = "rr"

[[service.server]]
address = "$RS1_IP"
forward = "dr"
EOF
    fi
}
TABLE1="-A -t $VIP:80 -s wrr
-a -t $VIP:80 -r $RS1_IP:80 -g -w 1
-a -t $VIP:80 -r $RS2_IP:80 -g -w 2"
TABLE2="-A -t $VIP:80 -s wrr
-a -t $VIP:80 -r $RS1_IP:80 -g -w 3
-a -t $VIP:80 -r $RS2_IP:80 -g -w 2
-A -t $VIP:443 -s rr
-a -t $VIP:443 -r $RS1_IP:443 -g -w 1"
write_director 1

# A failure once the container runs shows the units' journal lines.
eval "lib_$(declare -f fail)"
fail() {
    if [[ -n $LEADER ]]; then
        in_ct journalctl -b -q --no-pager -o short-monotonic -u lvs-director.service \
            -u lvs-director-apply.service 2>&1 | tail -n 25 | sed 's/^/    journal: /' || true
    fi
    lib_fail "$@"
}

# --- boot, drive ------------------------------------------------------------------
table() { in_ct /usr/sbin/ipvsctl save | sort; }
table_is() { [[ $(table) == "$(sort <<<"$1")" ]]; }
boot() {
    local deadline=$((SECONDS + BOOT_TIMEOUT)) state=""
    if ! nspawn_start "lvs-vm95-$$" "$deadline" "$CG"; then
        tail -n 30 "$CONSOLE"
        fail "no systemd in the container (nspawn exited, or ${BOOT_TIMEOUT}s passed)"
    fi
    # Until systemd's private socket exists, systemctl prints no state; until
    # it has made /run/systemd/system, "offline" (not booted with systemd).
    while state=$(in_ct systemctl is-system-running 2>/dev/null || true); [[ -z $state || $state == offline ]]; do
        ((SECONDS < deadline)) || fail "systemctl cannot reach the container's systemd (state '$state')"
        sleep 0.5
    done
    if [[ $state != running && $state != degraded ]]; then
        state=$(timeout "$((deadline - SECONDS + 1))" nsenter --target "$LEADER" --all -- \
            systemctl is-system-running --wait 2>/dev/null) || true
    fi
    [[ $state == running || $state == degraded ]] || fail "the container's systemd says '$state'"
    [[ $state == running ]] || log "degraded: $(in_ct systemctl --failed --plain --no-legend | awk '{print $1}' | tr '\n' ' ')"
    log "booted: systemd $state (PID $LEADER in the VM)"
}
denials() { # UNIT...: lines of this boot's journal of the units that say denied
    local u args=()
    for u in "$@"; do args+=(-u "$u"); done
    in_ct journalctl -b -q --no-pager -o cat "${args[@]}" |
        grep -iE 'permission denied|read-only file system|operation not permitted|EACCES|EPERM|EROFS|denied|bad system call|SIGSYS|status=(31|159)' |
        head -n 5 || true
}
no_denial() { # UNIT...: nothing denied, and the units did log (the check reads something)
    local u args=() bad
    for u in "$@"; do args+=(-u "$u"); done
    [[ -n $(in_ct journalctl -b -q --no-pager -o cat "${args[@]}") ]] || fail "no journal lines of $*"
    bad=$(denials "$@")
    [[ -z $bad ]] || fail "denied in the journal of $*: $bad"
}
daemon_up_with() { # TABLE: the daemon active, the table exactly TABLE
    [[ $(in_ct systemctl is-active lvs-director.service) == active ]] &&
        table_is "$1"
}

boot
wait_until 30 "lvs-director.service active with the file's table" daemon_up_with "$TABLE1"
[[ $(unit_prop lvs-director.service Type) == notify ]] || fail "lvs-director.service is not Type=notify"
pass "boot: lvs-director.service (enabled by the package) made the file's IPVS table"

pid=$(unit_prop lvs-director.service MainPID)
write_director 3 443
in_ct systemctl reload lvs-director.service || fail "systemctl reload lvs-director"
wait_until 20 "the changed file's table after reload" table_is "$TABLE2"
[[ $(unit_prop lvs-director.service MainPID) == "$pid" ]] || fail "reload restarted the daemon"
[[ $(unit_prop lvs-director.service NRestarts) == 0 ]] || fail "the daemon restarted"
pass "systemctl reload: converged to the changed file (weight 1 -> 3, port 443 added), same MainPID"

no_denial lvs-director.service
pass "hardening: nothing denied in lvs-director.service's journal (boot 1)"

# A marker in the container's network namespace: gone after the reboot if
# the namespace (and with it the IPVS table) is a new one. (Namespace inode
# numbers are reused, so comparing them proves nothing.)
in_ct ip addr add 198.18.0.95/32 dev lo
nspawn_reboot || fail "$NSPAWN_WHY"
boot
[[ $(in_ct ip -o addr show dev lo) != *198.18.0.95/32* ]] || fail "the rebooted container kept its network namespace"
wait_until 30 "the table back after the reboot" daemon_up_with "$TABLE2"
pass "reboot: a new network namespace, and lvs-director.service put the table back"
no_denial lvs-director.service
pass "hardening: nothing denied after the reboot"

# The oneshot unit instead: Conflicts= stops the daemon (which leaves the
# table), apply converges the same file: the same table, the unit succeeded.
in_ct systemctl start lvs-director-apply.service || fail "systemctl start lvs-director-apply"
[[ $(in_ct systemctl is-active lvs-director.service || true) == inactive ]] || fail "the daemon still runs beside the apply unit"
[[ $(unit_prop lvs-director-apply.service Result) == success ]] || fail "lvs-director-apply.service did not succeed"
table_is "$TABLE2" || fail "table after lvs-director-apply: $(table)"
write_director 1
in_ct systemctl reload lvs-director-apply.service || fail "systemctl reload lvs-director-apply"
# Port 80's servers converge to the file (what happens to the dropped port
# 443 is apply's business, --prune or not; scenario 62 covers it).
[[ $(table | grep -F -- "$VIP:80 ") == "$(sort <<<"$TABLE1")" ]] ||
    fail "port 80 after reloading the apply unit: $(table)"
no_denial lvs-director-apply.service
pass "lvs-director-apply.service: takes over from the daemon (Conflicts=), start and reload converge, nothing denied"

# The journal check must be able to fail: with its runtime directory
# read-only the daemon cannot bind its control socket, fails, and says why.
d=/etc/systemd/system/lvs-director.service.d
mkdir -p "$ROOTFS$d"
printf '[Service]\nReadOnlyPaths=/run/lvs-director\nRestart=no\n' >"$ROOTFS$d/90-lvs-test-too-strict.conf"
in_ct systemctl daemon-reload
in_ct systemctl start lvs-director.service 2>/dev/null && fail "the daemon started with /run/lvs-director read-only"
bad=$(denials lvs-director.service)
[[ -n $bad ]] || fail "a denied write went unnoticed by the journal check"
pass "the journal check catches a denial: $(head -n1 <<<"$bad")"

nspawn_stop 30
log "container stopped"
