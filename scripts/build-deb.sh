#!/usr/bin/env bash
# Builds the two Debian packages of the workspace with dpkg-deb:
#
#   rs-agent       /usr/sbin/rs-agent, rs-agent{,-watch}.service,
#                  /etc/rs-agent/config.toml (conffile)
#   lvs-director   /usr/sbin/ipvsctl and lvs-director, lvs-director{,-apply}.service,
#                  /etc/lvs-director/director.toml (conffile); ipvsctl offered as
#                  ipvsadm, ipvsadm-save, ipvsadm-restore (update-alternatives);
#                  the system user lvs-check for exec checks (postinst)
#
# both with section-8 man pages and bash/zsh/fish completions generated from
# the clap definitions (packaging/gen-docs), copyright, changelog.Debian.gz,
# md5sums and the maintainer scripts of packaging/deb/. Prints the paths of
# the .deb files on its last two lines.
#
#   scripts/build-deb.sh                      release build (cargo build --release)
#   DEB_BIN_DIR=target/debug scripts/build-deb.sh   package binaries already built
#
# Environment: DEB_BIN_DIR (binaries to package; default: build target/release),
# DEB_OUT (default target/debian). Needs dpkg-deb and dpkg-shlibdeps
# (dpkg-dev); no root (dpkg-deb --root-owner-group).
#
# Why dpkg-deb and not cargo-deb: cargo-deb is not installed here and would be
# one more tool to fetch and build; dpkg-deb comes with dpkg, and the parts
# cargo-deb would generate (control, md5sums) are a few lines, while the
# maintainer scripts (systemd, alternatives) are hand-written either way.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PKG=$ROOT/packaging/deb
OUT=${DEB_OUT:-$ROOT/target/debian}
say() { printf 'build-deb: %s\n' "$*" >&2; }
die() { printf 'build-deb: error: %s\n' "$*" >&2; exit 1; }

for c in dpkg-deb dpkg-shlibdeps gzip strip cargo; do
    command -v "$c" >/dev/null || die "$c missing (apt-get install dpkg-dev binutils)"
done

# Version and licence from the workspace's Cargo.toml: one source of truth.
VERSION=$(sed -nE '/^\[package\]/,/^\[/ s/^version = "([^"]+)"/\1/p' "$ROOT/Cargo.toml" | head -n1)
LICENSE=$(sed -nE '/^\[workspace.package\]/,/^\[/ s/^license = "([^"]+)"/\1/p' "$ROOT/Cargo.toml" | head -n1)
[[ -n $VERSION ]] || die "no version in Cargo.toml's [package]"
[[ -f $PKG/license-$LICENSE ]] || die "no licence text packaging/deb/license-$LICENSE for Cargo.toml's license = \"$LICENSE\""
DEB_VERSION=$VERSION-1
CHANGELOG_VERSION=$(sed -nE '1s/^[^ ]+ \(([^)]+)\).*/\1/p' "$PKG/changelog")
[[ $CHANGELOG_VERSION == "$DEB_VERSION" ]] ||
    die "packaging/deb/changelog's first entry is $CHANGELOG_VERSION, Cargo.toml says $DEB_VERSION: add an entry"
MAINTAINER=$(sed -nE 's/^ -- (.+>)  .*/\1/p' "$PKG/changelog" | head -n1)
# The changelog's date makes the man pages' date: two builds of the same
# source give the same pages.
DATE=$(date -u -d "$(sed -nE 's/^ -- .+>  (.+)$/\1/p' "$PKG/changelog" | head -n1)" +%F)
ARCH=$(dpkg --print-architecture)

if [[ -n ${DEB_BIN_DIR:-} ]]; then
    BIN=$(cd "$DEB_BIN_DIR" && pwd)
    say "packaging the binaries in $BIN (no build)"
else
    BIN=$ROOT/target/release
    say "cargo build --release (rs-agent, ipvsctl, lvs-director)"
    cargo build --release --locked --manifest-path "$ROOT/Cargo.toml" -p rs-agent -p ipvsctl -p lvs-director >&2
fi
for b in rs-agent ipvsctl lvs-director; do
    [[ -x $BIN/$b ]] || die "$BIN/$b missing"
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/build-deb.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
say "man pages and completions (packaging/gen-docs)"
cargo run --quiet --locked --manifest-path "$ROOT/Cargo.toml" -p gen-docs -- "$WORK/docs" --date "$DATE" >&2

# stage PACKAGE: the package's tree in $WORK/PACKAGE
stage_common() { # PACKAGE DESCRIPTION-FILE...
    local p=$1 d=$WORK/$1
    install -d -m 0755 "$d/DEBIAN" "$d/usr/share/doc/$p"
    {
        sed -e "s/@PACKAGE@/$p/" -e "s/@LICENSE@/$LICENSE/" -e "s/@YEAR@/${DATE%%-*}/" "$PKG/copyright.in"
        echo
        echo "License: $LICENSE"
        sed -e 's/^$/./' -e 's/^/ /' "$PKG/license-$LICENSE"
    } >"$d/usr/share/doc/$p/copyright"
    sed "1s/^[^ ]*/$p/" "$PKG/changelog" | gzip -9n >"$d/usr/share/doc/$p/changelog.Debian.gz"
    chmod 0644 "$d/usr/share/doc/$p/"*
    local s
    for s in postinst prerm postrm; do
        install -m 0755 "$PKG/$p/$s" "$d/DEBIAN/$s"
    done
}
install_bin() { # PACKAGE NAME: stripped, into /usr/sbin
    install -D -m 0755 "$BIN/$2" "$WORK/$1/usr/sbin/$2"
    strip --strip-unneeded --remove-section=.comment --remove-section=.note "$WORK/$1/usr/sbin/$2"
}
# Units as the project ships them, with the package's paths (systemd/ keeps
# /usr/local, where scripts/install.sh --local puts the binaries).
install_unit() { # PACKAGE UNIT
    install -d -m 0755 "$WORK/$1/lib/systemd/system"
    sed -e 's#/usr/local/sbin/#/usr/sbin/#g' -e 's#file:/usr/local/share/doc/#file:/usr/share/doc/#g' \
        "$ROOT/systemd/$2" >"$WORK/$1/lib/systemd/system/$2"
    chmod 0644 "$WORK/$1/lib/systemd/system/$2"
}
# The example configuration, every setting commented out: the units are
# enabled at install, and an example VIP or service must not reach a machine
# at its next boot before the operator wrote the real ones (README.md,
# "Installing").
install_conffile() { # PACKAGE SOURCE DEST
    local d=$WORK/$1
    install -d -m 0755 "$d$(dirname "$3")"
    {
        echo "# Installed by the $1 package: the example below, every setting commented"
        echo "# out, so the enabled unit changes nothing of the example's at boot."
        echo "# Uncomment and edit, then: systemctl start (or reload) the unit."
        echo "#"
        sed -E 's/^([^#])/# \1/' "$2"
    } >"$d$3"
    chmod 0644 "$d$3"
    echo "$3" >>"$d/DEBIAN/conffiles"
    install -D -m 0644 "$2" "$d/usr/share/doc/$1/examples/$(basename "$2")"
}
install_docs() { # PACKAGE COMMAND: man pages (gzipped) and completions of COMMAND
    local d=$WORK/$1 f
    install -d -m 0755 "$d/usr/share/man/man8"
    local page
    for f in "$WORK/docs/man/man8/$2".8 "$WORK/docs/man/man8/$2"-*.8; do
        page=$(basename "$f")
        gzip -9n <"$f" >"$d/usr/share/man/man8/$page.gz"
    done
    for f in "bash-completion/completions/$2" "zsh/vendor-completions/_$2" "fish/vendor_completions.d/$2.fish"; do
        install -D -m 0644 "$WORK/docs/$f" "$d/usr/share/$f"
    done
    chmod 0644 "$d/usr/share/man/man8/"*
}
finish() { # PACKAGE SECTION SUMMARY LONG-DESCRIPTION BINARY...
    local p=$1 section=$2 summary=$3 long=$4 d=$WORK/$1
    shift 4
    # dpkg-shlibdeps wants a debian/control to read; the one it reads here
    # exists only for it.
    mkdir -p "$WORK/shlibs-$p/debian"
    printf 'Source: %s\n\nPackage: %s\nArchitecture: any\n' "$p" "$p" >"$WORK/shlibs-$p/debian/control"
    local bins=() b
    for b in "$@"; do bins+=("$d/usr/sbin/$b"); done
    local depends
    depends=$(cd "$WORK/shlibs-$p" && dpkg-shlibdeps -O "${bins[@]}" 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
    [[ -n $depends ]] || die "dpkg-shlibdeps found no dependencies for $p"
    # What the maintainer scripts run beyond the essential set.
    [[ -n ${EXTRA_DEPENDS[$p]:-} ]] && depends+=", ${EXTRA_DEPENDS[$p]}"
    local size
    size=$(du -sk --exclude=DEBIAN "$d" | cut -f1)
    {
        echo "Package: $p"
        echo "Version: $DEB_VERSION"
        echo "Architecture: $ARCH"
        echo "Maintainer: $MAINTAINER"
        echo "Installed-Size: $size"
        echo "Depends: $depends"
        echo "Section: $section"
        echo "Priority: optional"
        echo "Description: $summary"
        printf '%s\n' "$long" | fold -s -w 72 | sed -e 's/ *$//' -e 's/^/ /'
    } >"$d/DEBIAN/control"
    (cd "$d" && find . -path ./DEBIAN -prune -o -path ./etc -prune -o -type f -printf '%P\0' |
        LC_ALL=C sort -z | xargs -0 md5sum) >"$d/DEBIAN/md5sums"
    chmod 0644 "$d/DEBIAN/control" "$d/DEBIAN/md5sums" "$d/DEBIAN/conffiles"
    mkdir -p "$OUT"
    local deb=$OUT/${p}_${DEB_VERSION}_$ARCH.deb
    dpkg-deb --root-owner-group -Zxz --build "$d" "$deb" >/dev/null
    say "built $deb ($(du -k "$deb" | cut -f1) KiB, Depends: $depends)"
    DEBS+=("$deb")
}

DEBS=()
# lvs-director's postinst creates the system user lvs-check with useradd
# and groupadd (passwd: Priority required, not Essential).
declare -A EXTRA_DEPENDS=([lvs-director]=passwd)
stage_common rs-agent
install_bin rs-agent rs-agent
install_unit rs-agent rs-agent.service
install_unit rs-agent rs-agent-watch.service
install_conffile rs-agent "$ROOT/config/config.toml" /etc/rs-agent/config.toml
install_docs rs-agent rs-agent
install -m 0644 "$ROOT/README.md" "$WORK/rs-agent/usr/share/doc/rs-agent/README.md"
finish rs-agent net "LVS direct-routing and tunnel-mode real-server agent" \
    "rs-agent prepares a Linux Virtual Server real server: the virtual IPs on lo, the ARP sysctls (arp_ignore, arp_announce), the receive side of IPIP, GUE and GRE tunnels, and drains; idempotent, with exact rollback, status, a monitoring probe and a watch mode that repairs drift. rs-agent.service applies the configuration at boot; rs-agent-watch.service keeps it." \
    rs-agent

stage_common lvs-director
install_bin lvs-director ipvsctl
install_bin lvs-director lvs-director
install_unit lvs-director lvs-director.service
install_unit lvs-director lvs-director-apply.service
install_conffile lvs-director "$ROOT/config/director.toml" /etc/lvs-director/director.toml
install_docs lvs-director ipvsctl
install_docs lvs-director lvs-director
install -m 0644 "$ROOT/director/README.md" "$WORK/lvs-director/usr/share/doc/lvs-director/README.md"
install -m 0644 "$ROOT/ipvsctl/README.md" "$WORK/lvs-director/usr/share/doc/lvs-director/README.ipvsctl.md"
finish lvs-director net "LVS director: IPVS services from a TOML file, health-checked" \
    "lvs-director converges the kernel's IPVS table and its firewall-mark port groups to a TOML file (apply), and keeps the real servers health-checked (run: tcp, http, https, exec and agent checks, quorum, sorry servers, reloads that keep connections). ipvsctl is an ipvsadm-compatible command line over the same netlink library; it is offered as ipvsadm, ipvsadm-save and ipvsadm-restore through update-alternatives, never replacing Debian's ipvsadm." \
    ipvsctl lvs-director

printf '%s\n' "${DEBS[@]}"
