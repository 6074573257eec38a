#!/usr/bin/env bash
# Idempotent installer for everything the test suite needs, on a Debian machine, as root.
#
#   bash scripts/setup.sh
#
# - apt packages (apt-get update runs only when something is missing)
# - the virtme-ng virtualenv in .venv-vm (only when vng is missing)
# - rustup components rustfmt and clippy (only when missing)
# - Debian 13's kernel (6.12) for the VM suite's second boot, in
#   $LVS_TEST_CACHE/kernels (scripts/fetch-kernel.sh: own apt source list and
#   lists for trixie, never the machine's; only when not cached yet)
# - the Debian 12 tree that tests/nspawn boots with systemd-nspawn, in
#   $LVS_TEST_CACHE/nspawn/bookworm (scripts/nspawn-tree.sh; debootstrap, once)
#
# A second run installs and downloads nothing and takes about a second.
# Environment: VENV_VM (default: <repo>/.venv-vm), LVS_TEST_CACHE (default
# /var/cache/lvs-test), LVS_KERNEL_REFRESH=1 (look for a newer 6.12).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV_VM=${VENV_VM:-$ROOT/.venv-vm}

say() { printf 'setup: %s\n' "$*"; }

APT_PACKAGES=(
    qemu-system-x86    # the VM for the real-kernel suite
    linux-image-amd64  # a kernel with the ip_vs modules
    busybox-static     # virtme-ng's guest init helpers
    ipvsadm            # director configuration in VM scenarios
    arping             # ARP assertions
    nftables           # fwmark scenario
    iptables
    iproute2
    curl
    python3-venv       # for the virtme-ng virtualenv
    util-linux         # unshare, timeout helpers
    systemd            # systemd-analyze (unit checks)
    time               # GNU time: peak memory in scripts/bench.py
    procps             # pgrep (tests/nspawn/run.sh)
    shellcheck         # the shellcheck step of scripts/test-all.sh
    lintian            # the packages step of scripts/test-all.sh (lintian --fail-on error)
    dpkg-dev           # dpkg-shlibdeps (scripts/build-deb.sh)
    bird2              # BGP (ECMP) in the multi-director VM scenarios; never started on the host
    keepalived         # VRRP in the active-backup VM scenario; never started on the host
)
# Without their Recommends: systemd-container's libnss-mymachines would edit
# the machine's /etc/nsswitch.conf.
APT_PACKAGES_NO_RECOMMENDS=(
    systemd-container  # systemd-nspawn: the real-server units under systemd (tests/nspawn)
    debootstrap        # the Debian 12 tree it boots (scripts/nspawn-tree.sh)
)

# Daemons the suite runs only inside the VM, in namespaces of its own. Their
# Debian packages enable and start a service on install (bird.service starts
# BIRD with /etc/bird/bird.conf; keepalived.service only once
# /etc/keepalived/keepalived.conf exists): on the machine running the tests
# that would be a routing daemon on the host's own network.
VM_ONLY_DAEMONS=(bird2:bird keepalived:keepalived)   # package:service

# --- apt -------------------------------------------------------------------
not_installed() { # PACKAGE...: prints those not installed
    local p status
    for p in "$@"; do
        status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
        [[ $status == "install ok installed" ]] || echo "$p"
    done
}
mapfile -t missing < <(not_installed "${APT_PACKAGES[@]}")
mapfile -t missing_nr < <(not_installed "${APT_PACKAGES_NO_RECOMMENDS[@]}")
if ((${#missing[@]} + ${#missing_nr[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
        say "missing apt packages: ${missing[*]} ${missing_nr[*]}; run this script as root" >&2
        exit 1
    fi
    say "installing apt packages: ${missing[*]} ${missing_nr[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # invoke-rc.d and deb-systemd-invoke ask /usr/sbin/policy-rc.d before
    # starting a service; exit 101 = "not allowed". If the machine has none
    # (Docker-style images ship one that forbids everything), a temporary one
    # forbids only the VM-only daemons for the duration of the install.
    policy=/usr/sbin/policy-rc.d temp_policy=0
    if [[ ! -e $policy ]]; then
        temp_policy=1
        # shellcheck disable=SC2016 # $1 is for the policy script
        printf '#!/bin/sh\n# temporary, scripts/setup.sh (lvs test suite)\ncase "$1" in bird|bird.service|keepalived|keepalived.service) exit 101;; esac\nexit 0\n' >"$policy"
        chmod 755 "$policy"
        trap 'rm -f "$policy"' EXIT
    fi
    apt-get update
    if ((${#missing[@]})); then apt-get install -y "${missing[@]}"; fi
    if ((${#missing_nr[@]})); then apt-get install -y --no-install-recommends "${missing_nr[@]}"; fi
    if ((temp_policy)); then rm -f "$policy"; trap - EXIT; fi
    # Whatever the policy said: a VM-only daemon installed by this run must
    # not run, nor start at the next boot, on this machine.
    for pd in "${VM_ONLY_DAEMONS[@]}"; do
        pkg=${pd%%:*} svc=${pd#*:}
        [[ " ${missing[*]} " == *" $pkg "* ]] || continue
        update-rc.d "$svc" disable >/dev/null 2>&1 || true
        deb-systemd-helper disable "$svc.service" >/dev/null 2>&1 || true
        if [[ -d /run/systemd/system ]]; then
            systemctl stop "$svc.service" >/dev/null 2>&1 || true
        fi
        say "$pkg: service $svc disabled on this machine (the VM suite runs it in its own namespaces)"
    done
else
    say "apt packages: all $((${#APT_PACKAGES[@]} + ${#APT_PACKAGES_NO_RECOMMENDS[@]})) present"
fi

# No VM-only daemon may run in this machine's own network namespace. One
# started by the install above (policy allowed it, or a systemd machine) is
# stopped by its PID; one that was already there before is reported, not
# touched (someone runs it on purpose).
host_netns=$(readlink /proc/1/ns/net 2>/dev/null || true)
for pd in "${VM_ONLY_DAEMONS[@]}"; do
    pkg=${pd%%:*} svc=${pd#*:}
    for exe in /proc/[0-9]*/exe; do
        pid=${exe#/proc/}
        pid=${pid%/exe}
        [[ $(readlink "$exe" 2>/dev/null) == "/usr/sbin/$svc" ]] || continue
        [[ $(readlink "/proc/$pid/ns/net" 2>/dev/null) == "$host_netns" ]] || continue
        if [[ " ${missing[*]} " == *" $pkg "* ]]; then
            say "$svc (PID $pid) was started by the $pkg install: stopping it"
            kill "$pid" 2>/dev/null || true
            for _ in 1 2 3 4 5 6 7 8 9 10; do
                [[ -e /proc/$pid ]] || break
                sleep 0.2
            done
            kill -9 "$pid" 2>/dev/null || true
        else
            say "warning: $svc (PID $pid) runs in this machine's network namespace; the test suite did not start it, left alone" >&2
        fi
    done
done

# --- virtme-ng virtualenv --------------------------------------------------
# The distribution python (not a pyenv shim) is the one python3-venv serves.
PY=/usr/bin/python3
[[ -x $PY ]] || PY=python3
if [[ -x $VENV_VM/bin/vng ]] && "$VENV_VM/bin/vng" --version >/dev/null 2>&1; then
    say "virtme-ng: present in $VENV_VM ($("$VENV_VM/bin/vng" --version 2>&1 | head -n1))"
else
    say "creating virtualenv $VENV_VM with virtme-ng"
    rm -rf "$VENV_VM"
    "$PY" -m venv "$VENV_VM"
    "$VENV_VM/bin/pip" install --disable-pip-version-check -q virtme-ng
    say "virtme-ng: installed ($("$VENV_VM/bin/vng" --version 2>&1 | head -n1))"
fi

# --- cached test systems: Debian 13's kernel, the nspawn tree -------------------
# Both in $LVS_TEST_CACHE (default /var/cache/lvs-test), built once.
if [[ $(id -u) -eq 0 ]]; then
    bash "$ROOT/scripts/fetch-kernel.sh" >/dev/null
    bash "$ROOT/scripts/nspawn-tree.sh" >/dev/null
else
    say "not root: skipping Debian 13's kernel and the nspawn tree"
fi

# --- rust components -------------------------------------------------------
if command -v rustup >/dev/null 2>&1; then
    installed=$(rustup component list --installed 2>/dev/null || true)
    comps=()
    for c in rustfmt clippy; do
        grep -q "^$c" <<<"$installed" || comps+=("$c")
    done
    if ((${#comps[@]})); then
        say "rustup component add ${comps[*]}"
        rustup component add "${comps[@]}"
    else
        say "rust components: rustfmt and clippy present"
    fi
else
    say "rustup not found: skipping rustfmt/clippy (cargo must come from elsewhere)"
fi

say "done"
