# shellcheck shell=bash
# A container booted with systemd-nspawn --boot on a machine without systemd,
# shared by tests/nspawn/run.sh and the VM's scenario 95
# (tests/vm/scenarios/95-director-units-systemd.sh; the VM sees the
# repository at the same path, read-only). Source it:
#
#   . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
# The caller sets ROOTFS (the tree to boot, an overlay of its own), CONSOLE
# (the console log, appended to) and NSPAWN_PID="" LEADER="" before the
# first boot; optionally NSPAWN_ARGS, an array of further systemd-nspawn
# options (VM scenario 96: --capability=, --bind-ro=). Functions only
# return a status: messages are the caller's.

# nspawn_start MACHINE DEADLINE CGROUP...: systemd-nspawn --boot of ROOTFS
# as MACHINE in the background, with a private network, not registered (no
# machined on the host: driven with nsenter, see in_ct). It starts in each
# CGROUP: nspawn, without systemd on the machine it runs on, splits the
# cgroup it starts in into payload/ and supervisor/. Sets NSPAWN_PID, and
# LEADER (the container's systemd, PID 1 inside) once it runs; returns 1 if
# nspawn exited first or bash's SECONDS reached DEADLINE.
nspawn_start() {
    local machine=$1 deadline=$2
    shift 2
    printf '\n--- boot at %s\n' "$(date +%T)" >>"$CONSOLE"
    (
        for cg in "$@"; do echo "$BASHPID" >"$cg/cgroup.procs"; done
        exec systemd-nspawn --quiet --directory="$ROOTFS" --machine="$machine" \
            --private-network --register=no --keep-unit ${NSPAWN_ARGS[@]+"${NSPAWN_ARGS[@]}"} --boot
    ) >>"$CONSOLE" 2>&1 </dev/null &
    NSPAWN_PID=$!
    LEADER=""
    until LEADER=$(pgrep -P "$NSPAWN_PID" -x systemd); do
        if ! kill -0 "$NSPAWN_PID" 2>/dev/null || ((SECONDS >= deadline)); then
            LEADER=""
            return 1
        fi
        sleep 0.5
    done
}

# in_ct CMD...: CMD inside the container (all its namespaces).
in_ct() { nsenter --target "$LEADER" --all -- "$@"; }

# unit_prop UNIT PROPERTY: the container's systemctl show -P PROPERTY UNIT.
unit_prop() { in_ct systemctl show -P "$2" "$1"; }

# nspawn_reboot: `systemctl reboot` inside, then wait (at most 60 s) for
# systemd-nspawn to exit, with 133: the container asked for a reboot, which
# nspawn leaves to its caller (boot again). Clears NSPAWN_PID once nspawn
# exited. Returns 1 otherwise, with the reason in NSPAWN_WHY.
# shellcheck disable=SC2034 # NSPAWN_WHY is the caller's to read
nspawn_reboot() {
    local i rc=0
    in_ct systemctl reboot || true
    for ((i = 0; i < 120; i++)); do
        kill -0 "$NSPAWN_PID" 2>/dev/null || break
        sleep 0.5
    done
    if kill -0 "$NSPAWN_PID" 2>/dev/null; then
        NSPAWN_WHY="container still up 60s after systemctl reboot"
        return 1
    fi
    wait "$NSPAWN_PID" || rc=$?
    NSPAWN_PID=""
    if ((rc != 133)); then
        NSPAWN_WHY="systemd-nspawn exited $rc after systemctl reboot, want 133 (reboot)"
        return 1
    fi
}

# nspawn_stop GRACE: stop the container, if one runs: SIGTERM (nspawn asks
# the container's systemd for a clean poweroff), SIGKILL if nspawn still
# runs GRACE seconds later; reaps it and clears NSPAWN_PID and LEADER.
nspawn_stop() {
    local i
    [[ -n $NSPAWN_PID ]] || return 0
    if kill -0 "$NSPAWN_PID" 2>/dev/null; then
        kill -TERM "$NSPAWN_PID" 2>/dev/null || true
        for ((i = 0; i < 2 * $1; i++)); do
            kill -0 "$NSPAWN_PID" 2>/dev/null || break
            sleep 0.5
        done
        kill -KILL "$NSPAWN_PID" 2>/dev/null || true
    fi
    wait "$NSPAWN_PID" 2>/dev/null || true
    NSPAWN_PID="" LEADER=""
}
