#!/usr/bin/env bash
# Host side of the vm-linux scenario (its "# lab-prepare:" line): put the lab's own kernel
# and a small L2 initramfs into the lab as /lab/vmlinuz and /lab/l2.cpio.gz. The L2
# initramfs holds static busybox, the virtio modules its console needs (in modules.dep
# order) and tests/lab/l2/init.
#
# Usage: build.sh LAB_ROOT KERNEL_IMAGE KERNEL_ROOT KERNEL_VERSION
# L2_EXTRA_MODULES (more modules, e.g. a NIC driver), L2_PROGRAMS (static programs the lab
# already holds in /opt/iovd/bin, e.g. lab-dma), L2_INIT (another /init) and L2_OUT
# (another name in /lab, for a second image) let a scenario's own prepare script reuse
# this one (l2/build-vfio.sh, l2/build-dma.sh, l2/build-domain.sh).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
lab_root=$1 kernel=$2 kroot=$3 version=$4
# virtio-console needs the PCI transport; modprobe resolves the rest (virtio, virtio_ring,
# virtio_pci_legacy_dev, virtio_pci_modern_dev).
L2_MODULES=(virtio_pci virtio_console)
# shellcheck disable=SC2206 # a space-separated list
[ -z "${L2_EXTRA_MODULES:-}" ] || L2_MODULES+=($L2_EXTRA_MODULES)

work=$(mktemp -d "$lab_root/../l2.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work"/{bin,dev,proc,sys,tmp,lib/modules}
cp "$(command -v busybox)" "$work/bin/busybox"
for applet in $("$work/bin/busybox" --list); do
  [ "$applet" = busybox ] || ln -sf busybox "$work/bin/$applet"
done
: >"$work/lib/modules/order"
for module in "${L2_MODULES[@]}"; do
  for file in $(modprobe -d "$kroot" -S "$version" --show-depends "$module" |
    awk '$1 == "insmod" { print $2 }'); do
    name=$(basename "$file")
    grep -qx "$name" "$work/lib/modules/order" && continue
    cp "$file" "$work/lib/modules/$name"
    echo "$name" >>"$work/lib/modules/order"
  done
done
for program in ${L2_PROGRAMS:-}; do
  install -m 0755 "$lab_root/opt/iovd/bin/$program" "$work/bin/$program"
done
install -m 0755 "${L2_INIT:-$HERE/init}" "$work/init"
mkdir -p "$lab_root/lab"
(cd "$work" && find . | cpio -o -H newc -R 0:0 --quiet | gzip -1) >"$lab_root/lab/${L2_OUT:-l2.cpio.gz}"
cp "$kernel" "$lab_root/lab/vmlinuz"
