#!/usr/bin/env bash
# Fetches the kernel that grid4 nodes boot virtual machines with (vmd's
# --machine-kernel): Debian's cloud kernel, unpacked, not installed (an
# install would rebuild the host's initramfs). The result is a directory in
# the layout of the package: boot/vmlinuz-<version> and
# lib/modules/<version>/ (virtio, virtiofs and fuse are modules there; vmd
# puts the ones a machine needs into its initramfs).
#
#   scripts/machine-kernel.sh [DIR]     (default /var/cache/grid4/kernel)
#
# DIR/<package version>/ holds the kernel and DIR/current links to it.
# Idempotent: an existing unpacked version is kept. Prints DIR/current.
set -euo pipefail

dir=${1:-/var/cache/grid4/kernel}
log() { printf 'machine-kernel: %s\n' "$*" >&2; }

# The metapackage names the kernel of the day (linux-image-<abi>-cloud-amd64).
pkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-/ {print $2; exit}')
if [ -z "$pkg" ]; then
	log "apt-get update (no linux-image-cloud-amd64 in the package lists)"
	DEBIAN_FRONTEND=noninteractive apt-get update -qq
	pkg=$(apt-cache depends linux-image-cloud-amd64 | awk '/Depends: linux-image-/ {print $2; exit}')
fi
[ -n "$pkg" ] || { log "no Debian cloud kernel package found"; exit 1; }

if [ ! -e "$dir/$pkg/.complete" ]; then
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	log "downloading $pkg"
	(cd "$tmp" && apt-get download -qq "$pkg" 2>/dev/null)
	mkdir -p "$dir"
	rm -rf "$dir/$pkg.tmp"
	dpkg-deb -x "$tmp"/*.deb "$dir/$pkg.tmp"
	touch "$dir/$pkg.tmp/.complete"
	rm -rf "$dir/$pkg"
	mv "$dir/$pkg.tmp" "$dir/$pkg"
fi
ln -sfn "$pkg" "$dir/current.tmp"
mv -T "$dir/current.tmp" "$dir/current"
echo "$dir/current"
