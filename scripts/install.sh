#!/usr/bin/env bash
# Installs rs-agent on this real server, as root, from a checkout.
#
# The package route (default): builds the Debian packages (scripts/build-deb.sh:
# cargo build --release) and installs them with dpkg:
#   scripts/install.sh            the rs-agent package: /usr/sbin/rs-agent, its units
#                                 (rs-agent.service enabled for the next boot, not
#                                 started), /etc/rs-agent/config.toml (the example,
#                                 commented out: conffile), man pages, completions
#   scripts/install.sh --director also the lvs-director package: ipvsctl, lvs-director,
#                                 their units (lvs-director.service enabled), the
#                                 director.toml example, ipvsctl as ipvsadm through
#                                 update-alternatives (never over Debian's ipvsadm)
#   --start                       then start rs-agent.service (with --director:
#                                 lvs-director.service) now; edit the configuration first
#   --root DIR                    install into the tree DIR (dpkg --root: the
#                                 maintainer scripts run chrooted there; tests/nspawn)
# A configuration already in /etc is kept (dpkg --force-confold).
#
# The local route, without packages (as before them):
#   scripts/install.sh --local [--director] [--start]
#     /usr/local/sbin/rs-agent, /etc/rs-agent/config.toml (the example, kept if
#     present), /etc/systemd/system/rs-agent{,-watch}.service,
#     /usr/local/share/doc/rs-agent/README.md; --director: ipvsctl, lvs-director,
#     their units and /etc/lvs-director/director.toml (example); --start: enable
#     and start rs-agent.service (or run `rs-agent start` when systemd is not PID 1),
#     with --director lvs-director-apply.service instead.
#   DESTDIR=/some/root installs into a staging tree (--start is refused then).
#
# RS_AGENT_BIN_DIR=DIR (both routes) installs the binaries already built in DIR
# (e.g. target/debug) instead of running cargo build --release.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DESTDIR=${DESTDIR:-}
start=no
director=no
local_route=no
dpkg_root=""
while (($#)); do
    arg=$1
    shift
    case $arg in
        --root)
            (($#)) || { echo "install: --root needs a directory" >&2; exit 2; }
            dpkg_root=$1
            shift
            ;;
        --start) start=yes ;;
        --director) director=yes ;;
        --local) local_route=yes ;;
        -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
        *) echo "install: unknown argument $arg" >&2; exit 2 ;;
    esac
done
say() { printf 'install: %s\n' "$*"; }

if [[ -z $DESTDIR && $(id -u) -ne 0 ]]; then
    echo "install: run as root (or set DESTDIR for a staging install)" >&2
    exit 3
fi
if [[ -n $DESTDIR && $start == yes ]]; then
    echo "install: --start makes no sense with DESTDIR" >&2
    exit 2
fi
if [[ -n $dpkg_root && ($start == yes || $local_route == yes) ]]; then
    echo "install: --root is for the package route, without --start" >&2
    exit 2
fi
if [[ -n $DESTDIR && $local_route == no ]]; then
    echo "install: DESTDIR is for the local route (--local); for a tree, dpkg --root=DIR -i the packages of scripts/build-deb.sh" >&2
    exit 2
fi

if [[ $local_route == no ]]; then
    mapfile -t debs < <(DEB_BIN_DIR=${RS_AGENT_BIN_DIR:-} bash "$ROOT/scripts/build-deb.sh")
    ((${#debs[@]} == 2)) || { echo "install: scripts/build-deb.sh made no packages" >&2; exit 1; }
    chosen=("${debs[0]}")
    [[ $director == yes ]] && chosen+=("${debs[1]}")
    say "dpkg -i ${chosen[*]##*/}"
    # confold: a configuration the operator already has in /etc stays.
    DEBIAN_FRONTEND=noninteractive dpkg ${dpkg_root:+"--root=$dpkg_root"} --force-confdef --force-confold -i "${chosen[@]}"
    [[ -z $dpkg_root ]] || exit 0
    [[ $start == yes ]] || {
        say "installed; rs-agent.service$([[ $director == yes ]] && echo ' and lvs-director.service') enabled for the next boot, not started:"
        say "edit /etc/rs-agent/config.toml$([[ $director == yes ]] && echo ' and /etc/lvs-director/director.toml'), then systemctl start the unit"
        exit 0
    }
    if [[ ! -d /run/systemd/system ]]; then
        echo "install: --start needs systemd as PID 1 (or run: rs-agent start)" >&2
        exit 1
    fi
    if [[ $director == yes ]]; then
        systemctl start lvs-director.service
        ipvsctl list
    else
        systemctl start rs-agent.service
        rs-agent status
    fi
    exit 0
fi

if [[ -n ${RS_AGENT_BIN_DIR:-} ]]; then
    BIN=$(cd "$RS_AGENT_BIN_DIR" && pwd)
    say "installing the binaries built in $BIN (no build)"
else
    BIN=$ROOT/target/release
    say "building (cargo build --release --locked --workspace --bins)"
    cargo build --release --locked --workspace --bins --manifest-path "$ROOT/Cargo.toml"
fi

# install_example SOURCE PATH WHAT: the checkout's SOURCE as the
# configuration PATH (under DESTDIR), unless one is there already.
install_example() {
    if [[ -e $DESTDIR$2 ]]; then
        say "keeping existing $2"
    else
        install -D -m 0644 "$ROOT/$1" "$DESTDIR$2"
        say "installed the example $2: edit $3"
    fi
}

install -D -m 0755 "$BIN/rs-agent" "$DESTDIR/usr/local/sbin/rs-agent"
install -D -m 0644 "$ROOT/systemd/rs-agent.service" "$DESTDIR/etc/systemd/system/rs-agent.service"
install -D -m 0644 "$ROOT/systemd/rs-agent-watch.service" "$DESTDIR/etc/systemd/system/rs-agent-watch.service"
install -D -m 0644 "$ROOT/README.md" "$DESTDIR/usr/local/share/doc/rs-agent/README.md"
install_example config/config.toml /etc/rs-agent/config.toml "the VIPs"
say "installed rs-agent $("$DESTDIR/usr/local/sbin/rs-agent" --version | cut -d' ' -f2)"

if [[ $director == yes ]]; then
    install -D -m 0755 "$BIN/ipvsctl" "$DESTDIR/usr/local/sbin/ipvsctl"
    install -D -m 0755 "$BIN/lvs-director" "$DESTDIR/usr/local/sbin/lvs-director"
    install -D -m 0644 "$ROOT/systemd/lvs-director-apply.service" "$DESTDIR/etc/systemd/system/lvs-director-apply.service"
    # The health-checking daemon (lvs-director run); conflicts with the apply unit.
    install -D -m 0644 "$ROOT/systemd/lvs-director.service" "$DESTDIR/etc/systemd/system/lvs-director.service"
    install -D -m 0644 "$ROOT/ipvsctl/README.md" "$DESTDIR/usr/local/share/doc/ipvsctl/README.md"
    install -D -m 0644 "$ROOT/director/README.md" "$DESTDIR/usr/local/share/doc/lvs-director/README.md"
    install_example config/director.toml /etc/lvs-director/director.toml "the services"
    say "installed ipvsctl $("$DESTDIR/usr/local/sbin/ipvsctl" --version | cut -d' ' -f2) and lvs-director"
fi

[[ $start == yes ]] || exit 0
if [[ $director == yes ]]; then
    if [[ -d /run/systemd/system ]]; then
        systemctl daemon-reload
        systemctl enable --now lvs-director-apply.service
        /usr/local/sbin/ipvsctl list
    else
        /usr/local/sbin/lvs-director apply /etc/lvs-director/director.toml
    fi
    exit 0
fi
if [[ -d /run/systemd/system ]]; then
    systemctl daemon-reload
    systemctl enable --now rs-agent.service
    systemctl --no-pager status rs-agent.service || true
    /usr/local/sbin/rs-agent status
else
    say "systemd is not running: running rs-agent start directly"
    /usr/local/sbin/rs-agent start -v
fi
