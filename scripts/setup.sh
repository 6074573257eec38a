#!/usr/bin/env bash
# Idempotent installer for everything the test suite needs, on a Debian machine, as root.
#
#   bash scripts/setup.sh
#
# - apt packages (apt-get update runs only when something is missing)
# - the virtme-ng virtualenv in .venv-vm (only when vng is missing)
# - rustup components rustfmt and clippy (only when missing)
#
# A second run installs nothing and takes about a second.
# Environment: VENV_VM (default: <repo>/.venv-vm).
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
    bird2              # BGP (ECMP) in the multi-director VM scenarios; never started on the host
    keepalived         # VRRP in the active-backup VM scenario; never started on the host
)

# Daemons the suite runs only inside the VM, in namespaces of its own. Their
# Debian packages enable and start a service on install (bird.service starts
# BIRD with /etc/bird/bird.conf; keepalived.service only once
# /etc/keepalived/keepalived.conf exists): on the machine running the tests
# that would be a routing daemon on the host's own network.
VM_ONLY_DAEMONS=(bird2:bird keepalived:keepalived)   # package:service

# --- apt -------------------------------------------------------------------
missing=()
for p in "${APT_PACKAGES[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    if [[ $status != "install ok installed" ]]; then
        missing+=("$p")
    fi
done
if ((${#missing[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
        say "missing apt packages: ${missing[*]}; run this script as root" >&2
        exit 1
    fi
    say "installing apt packages: ${missing[*]}"
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
    apt-get install -y "${missing[@]}"
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
    say "apt packages: all ${#APT_PACKAGES[@]} present"
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
