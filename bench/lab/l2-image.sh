# shellcheck shell=bash
# The benchmarks' L2 guest initramfs, shared by bench/lab/run (the guest runs inside the
# lab) and bench/host/run (the guest runs on the host's KVM). Sourced; the caller sets
# SOURCE_ROOT, BUILD_DIR, LAB_KERNEL_ROOT (the kernel's unpacked tree, for its modules),
# RUNS and SECONDS_EACH, and defines skip.

# The same kernel command line for every VMM; bench= picks what the L2 init does.
# shellcheck disable=SC2034 # used by the scripts that source this one
L2_CMDLINE="console=ttyS0 panic=-1 quiet"
L2_MODULES="virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci
  virtio_blk failover net_failover virtio_net"
#
# bench_l2_initramfs ROOT OUT: static busybox, the virtio modules, the benchmark programs
# and an /init (l2-init) that does what bench= on its command line says, built in ROOT and
# archived to OUT. Uncompressed, like the lab's.
bench_l2_initramfs() {
  local root=$1 out=$2 m f applet
  mkdir -p "$root/bin" "$root/lib/modules" "$root/"{proc,dev,sys,tmp}
  cp "$(command -v busybox)" "$root/bin/busybox"
  for applet in $(busybox --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
  done
  for m in $L2_MODULES; do
    f=$(find "$LAB_KERNEL_ROOT/lib/modules" -name "$m.ko" | head -n 1)
    [ -n "$f" ] || skip "module $m not in the lab kernel"
    cp "$f" "$root/lib/modules/"
  done
  cp "$BUILD_DIR/bench/lab/lab-netbench" "$root/bin/netbench"
  gcc -O2 -static -pthread -o "$root/bin/blkbench" "$SOURCE_ROOT/bench/virtio/blkbench.c" || return 1
  sed -e "s/@MODULES@/$(echo $L2_MODULES)/" -e "s/@RUNS@/$RUNS/" \
    -e "s/@SECONDS@/$SECONDS_EACH/" "$SOURCE_ROOT/bench/lab/l2-init" >"$root/init"
  chmod 755 "$root/init"
  (cd "$root" && find . | cpio -o -H newc -R 0:0 --quiet) >"$out"
}
