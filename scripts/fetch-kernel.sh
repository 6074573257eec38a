#!/usr/bin/env bash
# Fetches Debian 13's (trixie's) kernel for the VM suite into a cache, as root,
# without touching the machine's own apt configuration:
#
#   bash scripts/fetch-kernel.sh            (scripts/setup.sh calls it)
#   LVS_KERNEL_REFRESH=1 bash scripts/fetch-kernel.sh   look for a newer one
#
# - an apt source list of its own for trixie and trixie-security (the mirror
#   is the one the machine's sources use for bookworm), its own lists and
#   cache directories: apt-get -o Dir::Etc::sourcelist=... update; the
#   machine's /etc/apt is read for its configuration only, never written;
# - resolves linux-image-amd64 to the versioned image package, downloads it
#   (about 108 MB) and unpacks it with dpkg -x into
#   $LVS_TEST_CACHE/kernels/<version>/ (boot/vmlinuz-<version>,
#   usr/lib/modules/<version>, lib -> usr/lib), runs depmod on that tree and
#   deletes the .deb;
# - $LVS_TEST_CACHE/kernels/trixie points at the current tree.
#
# Idempotent: when the tree behind kernels/trixie is complete, a run
# downloads nothing (not even the package lists) and takes no time. Set
# LVS_KERNEL_REFRESH=1 to update the lists and fetch a newer kernel if there
# is one (older trees are then removed). Delete $LVS_TEST_CACHE/kernels to
# start over: everything there can be made again.
#
# The modules are not installed on the machine: tests/vm/run-suite.sh
# bind-mounts the tree's usr/lib/modules over /lib/modules in a private mount
# namespace around the VM, so the host's /lib/modules never changes.
#
# Environment:
#   LVS_TEST_CACHE      cache root (default /var/cache/lvs-test; it must
#                       outlive the checkout: CI clones afresh each run)
#   LVS_TRIXIE_MIRROR   Debian mirror URI (default: the machine's bookworm one)
#   LVS_TRIXIE_SECURITY security mirror URI (default: the machine's
#                       bookworm-security one; "none" to leave it out)
#   LVS_KERNEL_REFRESH=1  see above
# Prints the path of the kernel image on its last line of output.
set -euo pipefail

say() { printf 'fetch-kernel: %s\n' "$*" >&2; }
die() { printf 'fetch-kernel: error: %s\n' "$*" >&2; exit 1; }

[[ $(id -u) -eq 0 ]] || die "must run as root (the cache lives under /var/cache)"
for c in apt-get apt-cache dpkg-deb depmod flock; do
    command -v "$c" >/dev/null || die "$c missing"
done

CACHE=${LVS_TEST_CACHE:-/var/cache/lvs-test}
KDIR=$CACHE/kernels
APTDIR=$CACHE/apt-trixie
CURRENT=$KDIR/trixie
mkdir -p "$KDIR" "$APTDIR"

# CI and a developer may share the machine: readers (this script's fast path,
# run-suite.sh while it boots a cached kernel) hold the lock shared, a change
# to the cache holds it exclusive.
exec 9>>"$KDIR/.lock"
flock -s -w 900 9 || die "$KDIR/.lock held exclusively for over 15 minutes"

# A complete tree: image, modules with ip_vs, depmod's output, and the marker
# written last.
complete() {
    local tree=$1 kver=$2
    [[ -f $tree/.complete && -f $tree/boot/vmlinuz-$kver && -s $tree/usr/lib/modules/$kver/modules.dep ]] &&
        compgen -G "$tree/usr/lib/modules/$kver/kernel/net/netfilter/ipvs/ip_vs.ko*" >/dev/null
}

if [[ ${LVS_KERNEL_REFRESH:-0} != 1 && -L $CURRENT ]]; then
    kver=$(basename "$(readlink "$CURRENT")")
    if complete "$KDIR/$kver" "$kver"; then
        say "trixie kernel $kver: cached in $KDIR/$kver (LVS_KERNEL_REFRESH=1 looks for a newer one)"
        echo "$KDIR/$kver/boot/vmlinuz-$kver"
        exit 0
    fi
fi

# Changing the cache: exclusive (waits for VM runs on the cached kernel).
flock -x -w 900 9 || die "$KDIR/.lock in use for over 15 minutes (a VM run on the cached kernel?)"

# --- the machine's mirrors -------------------------------------------------------
# shellcheck source=scripts/lib/machine-mirror.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/machine-mirror.sh"
MIRROR=${LVS_TRIXIE_MIRROR:-$(machine_uri bookworm)}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SECURITY=${LVS_TRIXIE_SECURITY:-$(machine_uri bookworm-security)}
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
[[ -r $KEYRING ]] || die "$KEYRING missing (package debian-archive-keyring)"

# --- apt with its own sources, lists and cache -----------------------------------
cat >"$APTDIR/trixie.sources" <<EOF
# Written by scripts/fetch-kernel.sh; used only with -o Dir::Etc::sourcelist.
Types: deb
URIs: $MIRROR
Suites: trixie
Components: main
Architectures: amd64
Signed-By: $KEYRING
EOF
if [[ -n $SECURITY && $SECURITY != none ]]; then
    cat >>"$APTDIR/trixie.sources" <<EOF

Types: deb
URIs: $SECURITY
Suites: trixie-security
Components: main
Architectures: amd64
Signed-By: $KEYRING
EOF
fi
mkdir -p "$APTDIR/lists/partial" "$APTDIR/cache/archives/partial"
APT_OPTS=(
    -o "Dir::Etc::sourcelist=$APTDIR/trixie.sources"
    -o "Dir::Etc::sourceparts=/nonexistent"
    -o "Dir::State::Lists=$APTDIR/lists"
    -o "Dir::Cache=$APTDIR/cache"
    -o "Dir::Cache::pkgcache="
    -o "Dir::Cache::srcpkgcache="
    -o "APT::Architectures::=amd64"
    -o "Acquire::Languages=none"
    -o "APT::Get::List-Cleanup=true"
    # The machine's appstream hook would fetch DEP-11 metadata too: not needed.
    -o "Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false"
    -o "Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled=false"
    -o "Acquire::IndexTargets::deb::DEP-11-icons-hidpi::DefaultEnabled=false"
)

t0=$SECONDS
say "apt-get update for trixie (mirror $MIRROR, lists in $APTDIR/lists)"
timeout 600 apt-get "${APT_OPTS[@]}" -q update >&2 || die "apt-get update for trixie failed"

# linux-image-amd64 is a metapackage: its dependency names the image package
# (linux-image-6.12.N+debM-amd64). The newest candidate of the trixie suites.
pkg=$(apt-cache "${APT_OPTS[@]}" depends linux-image-amd64 2>/dev/null |
    sed -nE 's/^[[:space:]]*Depends: (linux-image-[0-9][^[:space:]]*-amd64)$/\1/p' | head -n1)
[[ -n $pkg ]] || die "cannot resolve linux-image-amd64 in trixie (apt-cache depends printed no linux-image-N package)"
ver=$(apt-cache "${APT_OPTS[@]}" show --no-all-versions "$pkg" | sed -n 's/^Version: //p' | head -n1)
kver=${pkg#linux-image-}
say "trixie's linux-image-amd64 is $pkg $ver (kernel $kver)"

if complete "$KDIR/$kver" "$kver"; then
    say "kernel $kver already cached"
else
    work=$(mktemp -d "$KDIR/.work.XXXXXX")
    trap 'rm -rf "$work"' EXIT
    chmod 0755 "$work" # apt downloads as _apt
    t1=$SECONDS
    (cd "$work" && timeout 1200 apt-get "${APT_OPTS[@]}" -q download "$pkg" >&2) ||
        die "apt-get download $pkg failed"
    deb=$(compgen -G "$work/*.deb" | head -n1) || die "no .deb downloaded"
    say "downloaded $(basename "$deb") ($(du -m "$deb" | cut -f1) MB) in $((SECONDS - t1))s"
    mkdir "$work/tree"
    dpkg-deb -x "$deb" "$work/tree"
    rm -f "$deb"
    tree=$work/tree
    [[ -f $tree/boot/vmlinuz-$kver ]] || die "$pkg has no boot/vmlinuz-$kver"
    # Debian 13 ships modules under usr/lib/modules; depmod (kmod 30) and the
    # guest look under lib/modules: make lib what it is on a merged-/usr system.
    if [[ ! -d $tree/usr/lib/modules/$kver && -d $tree/lib/modules/$kver ]]; then
        mkdir -p "$tree/usr/lib"
        mv "$tree/lib/modules" "$tree/usr/lib/modules"
        rmdir "$tree/lib" 2>/dev/null || true
    fi
    [[ -e $tree/lib ]] || ln -s usr/lib "$tree/lib"
    depmod -b "$tree" "$kver"
    touch "$tree/.complete"
    rm -rf "${KDIR:?}/$kver"
    mv "$tree" "$KDIR/$kver"
    say "kernel $kver unpacked to $KDIR/$kver ($(du -sm "$KDIR/$kver" | cut -f1) MB)"
fi
ln -sfn "$kver" "$CURRENT.new"
mv -T "$CURRENT.new" "$CURRENT"
# Trees of older trixie kernels go (a refresh found a newer one).
for d in "$KDIR"/*/; do
    d=${d%/}
    [[ -L $d || $(basename "$d") == "$kver" ]] || rm -rf "$d"
done
say "done in $((SECONDS - t0))s"
echo "$KDIR/$kver/boot/vmlinuz-$kver"
