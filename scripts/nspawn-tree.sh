#!/usr/bin/env bash
# Builds, once, the minimal Debian 12 tree that tests/nspawn/run.sh boots with
# systemd-nspawn (scripts/setup.sh calls it), as root:
#
#   bash scripts/nspawn-tree.sh      prints the tree's path on its last line
#
# debootstrap --variant=minbase bookworm with systemd as init, from the mirror
# the machine's own apt sources use, into $LVS_TEST_CACHE/nspawn/bookworm
# (about 250 MB). The tree stays clean: run.sh boots an overlay of it.
# Idempotent: a complete tree (marker .complete, same package list) is kept
# and nothing is downloaded; delete the directory, or change the package
# list, to build it again (LVS_NSPAWN_REBUILD=1 does the same).
#
# Environment: LVS_TEST_CACHE (default /var/cache/lvs-test),
# LVS_DEBIAN_MIRROR (default: the machine's bookworm mirror).
set -euo pipefail

say() { printf 'nspawn-tree: %s\n' "$*" >&2; }
die() { printf 'nspawn-tree: error: %s\n' "$*" >&2; exit 1; }

[[ $(id -u) -eq 0 ]] || die "must run as root (debootstrap)"
command -v debootstrap >/dev/null || die "debootstrap missing (scripts/setup.sh installs it)"

CACHE=${LVS_TEST_CACHE:-/var/cache/lvs-test}
DIR=$CACHE/nspawn
TREE=$DIR/bookworm
SUITE=bookworm
# systemd as PID 1 and what the test drives: ip (iproute2); dbus for logind
# and systemctl's bus. Everything else of the test comes from the overlay.
INCLUDE=systemd,systemd-sysv,dbus,iproute2
STAMP="$SUITE minbase $INCLUDE"

mkdir -p "$DIR"
# Readers (this fast path, tests/nspawn/run.sh while its overlay uses the
# tree) hold the lock shared; a (re)build holds it exclusive.
exec 9>>"$DIR/.lock"
flock -s -w 900 9 || die "$DIR/.lock held exclusively for over 15 minutes"

if [[ ${LVS_NSPAWN_REBUILD:-0} != 1 && -f $TREE/.complete && $(cat "$TREE/.complete") == "$STAMP" ]]; then
    say "tree cached in $TREE ($STAMP)"
    echo "$TREE"
    exit 0
fi

flock -x -w 900 9 || die "$DIR/.lock in use for over 15 minutes (a run of tests/nspawn?)"

# shellcheck source=scripts/lib/machine-mirror.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/machine-mirror.sh"
MIRROR=${LVS_DEBIAN_MIRROR:-$(machine_uri "$SUITE")}
MIRROR=${MIRROR:-http://deb.debian.org/debian}

work=$(mktemp -d "$DIR/.work.XXXXXX")
trap 'rm -rf "$work"' EXIT
t0=$SECONDS
say "debootstrap --variant=minbase --include=$INCLUDE $SUITE from $MIRROR"
timeout 1200 debootstrap --variant=minbase --include="$INCLUDE" "$SUITE" "$work/tree" "$MIRROR" \
    >"$work/debootstrap.log" 2>&1 || {
    tail -n 30 "$work/debootstrap.log" >&2
    die "debootstrap failed"
}
tree=$work/tree
# What every boot of it needs, independent of the test:
echo rsa-nspawn >"$tree/etc/hostname"
# No apt timers, no login prompt on the console: a quiet, fast boot.
for u in apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer e2scrub_all.timer \
    console-getty.service getty.target systemd-timesyncd.service; do
    ln -sfn /dev/null "$tree/etc/systemd/system/$u"
done
# Smaller: the package cache debootstrap leaves behind.
rm -f "$tree"/var/cache/apt/archives/*.deb
echo "$STAMP" >"$tree/.complete"
rm -rf "$TREE"
mv "$tree" "$TREE"
say "built $TREE in $((SECONDS - t0))s ($(du -sm "$TREE" | cut -f1) MB)"
echo "$TREE"
