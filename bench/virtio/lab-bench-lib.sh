# Shared by the lab virtio benchmarks (lab-blk-bench.sh, lab-net-bench.sh): the lab
# settings, the checks that skip (exit 77) when the lab cannot run, the L2 guest's busybox
# root with its virtio modules, and one lab boot. Sourced after the caller set HERE
# (its own folder) and BENCH (its name, for messages and its work folder); $1 is the
# build folder.
# shellcheck shell=bash

SOURCE_ROOT=$(cd "$HERE/../.." && pwd)
LAB_DIR=$SOURCE_ROOT/tests/lab
BUILD_DIR=$(cd "${1:-$SOURCE_ROOT/build}" && pwd)
LAB_TIMEOUT=1500
LAB_NVME=0 LAB_NICS=0 LAB_IOMMU=0 LAB_MEMORY=1024
# shellcheck source=../../tests/lab/lib/kernel.sh
. "$LAB_DIR/lib/kernel.sh"
# shellcheck source=../../tests/lab/lib/initramfs.sh
. "$LAB_DIR/lib/initramfs.sh"
# shellcheck source=../../tests/lab/lib/qemu.sh
. "$LAB_DIR/lib/qemu.sh"
WORK_DIR=$BUILD_DIR/bench/virtio/$BENCH

# bench_require TOOL...: skip unless the tools, iovd-vmm and the lab kernel are there; then
# start from an empty work folder.
bench_require() {
  local tool
  for tool in qemu-system-x86_64 busybox cpio "$@"; do
    command -v "$tool" >/dev/null || { echo "$BENCH: $tool missing" >&2; exit 77; }
  done
  [ -x "$BUILD_DIR/vmm/iovd-vmm" ] || { echo "$BENCH: no $BUILD_DIR/vmm/iovd-vmm" >&2; exit 77; }
  lab_kernel_prepare || { echo "$BENCH: no lab kernel" >&2; exit 77; }
  rm -rf "$WORK_DIR" && mkdir -p "$WORK_DIR/l2/bin" "$WORK_DIR/l2/lib/modules" "$WORK_DIR/extra/lab"
}

# bench_l2_root MODULE...: the L2 guest's root in $WORK_DIR/l2: busybox and its applets, the
# mount points and the lab kernel's modules (insmod order); its /init is the caller's.
bench_l2_root() {
  local applet m
  cp "$(command -v busybox)" "$WORK_DIR/l2/bin/busybox"
  for applet in $(busybox --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$WORK_DIR/l2/bin/$applet"
  done
  mkdir -p "$WORK_DIR/l2/"{proc,dev,sys}
  for m in "$@"; do
    cp "$(find "$LAB_KERNEL_ROOT/lib/modules" -name "$m.ko" | head -n 1)" "$WORK_DIR/l2/lib/modules/"
  done
}

# bench_lab_run: pack the L2 root and kernel into the lab's /lab, build the lab initramfs
# around $WORK_DIR/scenario.sh and boot it once; the console is $WORK_DIR/console.log.
bench_lab_run() {
  chmod 755 "$WORK_DIR/l2/init"
  (cd "$WORK_DIR/l2" && find . | cpio -o -H newc -R 0:0 --quiet | gzip -1) \
    >"$WORK_DIR/extra/lab/l2.cpio.gz"
  cp "$LAB_KERNEL_IMAGE" "$WORK_DIR/extra/lab/vmlinuz"
  lab_initramfs_build "$WORK_DIR/base.gz" "$BUILD_DIR" "$WORK_DIR/scenario.sh" || exit 1
  (cd "$WORK_DIR/extra" && find . | cpio -o -H newc -R 0:0 --quiet | gzip -1) >"$WORK_DIR/extra.gz"
  cat "$WORK_DIR/base.gz" "$WORK_DIR/extra.gz" >"$WORK_DIR/initrd.gz"
  lab_qemu_command "$WORK_DIR" "$WORK_DIR/initrd.gz" run
  timeout -k 5 "$LAB_TIMEOUT" "${LAB_QEMU_CMD[@]}" </dev/null >"$WORK_DIR/qemu.out" 2>&1
}
