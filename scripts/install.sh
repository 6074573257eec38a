#!/usr/bin/env bash
# Builds rs-agent and installs it on this real server, as root:
#   /usr/local/sbin/rs-agent, /etc/rs-agent/config.toml (example, kept if present),
#   /etc/systemd/system/rs-agent{,-watch}.service, /usr/local/share/doc/rs-agent/README.md
#
#   scripts/install.sh            install only
#   scripts/install.sh --start    install, then enable and start rs-agent.service
#                                 (or run `rs-agent start` when systemd is not PID 1);
#                                 for watch mode: systemctl enable --now rs-agent-watch
#   scripts/install.sh --director also install the director side: /usr/local/sbin/ipvsctl
#                                 and lvs-director, lvs-director-apply.service,
#                                 /etc/lvs-director/director.toml (example); with --start,
#                                 enable and start lvs-director-apply.service instead
#
# DESTDIR=/some/root installs into a staging tree (packaging, tests); --start
# is refused then. RS_AGENT_BIN_DIR=DIR installs the binaries already built
# in DIR (e.g. target/debug) instead of running cargo build --release.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DESTDIR=${DESTDIR:-}
start=no
director=no
for arg in "$@"; do
    case $arg in
        --start) start=yes ;;
        --director) director=yes ;;
        -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
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

if [[ -n ${RS_AGENT_BIN_DIR:-} ]]; then
    BIN=$(cd "$RS_AGENT_BIN_DIR" && pwd)
    say "installing the binaries built in $BIN (no build)"
else
    BIN=$ROOT/target/release
    say "building (cargo build --release --locked --workspace --bins)"
    cargo build --release --locked --workspace --bins --manifest-path "$ROOT/Cargo.toml"
fi

install -D -m 0755 "$BIN/rs-agent" "$DESTDIR/usr/local/sbin/rs-agent"
install -D -m 0644 "$ROOT/systemd/rs-agent.service" "$DESTDIR/etc/systemd/system/rs-agent.service"
install -D -m 0644 "$ROOT/systemd/rs-agent-watch.service" "$DESTDIR/etc/systemd/system/rs-agent-watch.service"
install -D -m 0644 "$ROOT/README.md" "$DESTDIR/usr/local/share/doc/rs-agent/README.md"
if [[ -e $DESTDIR/etc/rs-agent/config.toml ]]; then
    say "keeping existing /etc/rs-agent/config.toml"
else
    install -D -m 0644 "$ROOT/config/config.toml" "$DESTDIR/etc/rs-agent/config.toml"
    say "installed the example /etc/rs-agent/config.toml: edit the VIPs"
fi
say "installed rs-agent $("$DESTDIR/usr/local/sbin/rs-agent" --version | cut -d' ' -f2)"

if [[ $director == yes ]]; then
    install -D -m 0755 "$BIN/ipvsctl" "$DESTDIR/usr/local/sbin/ipvsctl"
    install -D -m 0755 "$BIN/lvs-director" "$DESTDIR/usr/local/sbin/lvs-director"
    install -D -m 0644 "$ROOT/systemd/lvs-director-apply.service" "$DESTDIR/etc/systemd/system/lvs-director-apply.service"
    # The health-checking daemon (lvs-director run); conflicts with the apply unit.
    install -D -m 0644 "$ROOT/systemd/lvs-director.service" "$DESTDIR/etc/systemd/system/lvs-director.service"
    install -D -m 0644 "$ROOT/ipvsctl/README.md" "$DESTDIR/usr/local/share/doc/ipvsctl/README.md"
    install -D -m 0644 "$ROOT/director/README.md" "$DESTDIR/usr/local/share/doc/lvs-director/README.md"
    if [[ -e $DESTDIR/etc/lvs-director/director.toml ]]; then
        say "keeping existing /etc/lvs-director/director.toml"
    else
        install -D -m 0644 "$ROOT/config/director.toml" "$DESTDIR/etc/lvs-director/director.toml"
        say "installed the example /etc/lvs-director/director.toml: edit the services"
    fi
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
