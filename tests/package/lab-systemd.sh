#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# test-package.sh's third part: the Debian root with the packages installed (ROOT, made
# by in-root.sh) booted in the lab's QEMU (tests/lab/lib: its kernel, QEMU, freeze
# detection and judge) with systemd as PID 1: the root is the initramfs, /init is
# systemd. Added to it: the lab kernel's kvm_amd and its dependencies (loaded at boot by
# systemd-modules-load, before iovd.service: its DevicePolicy resolves /dev/kvm when it
# starts), nvme and vfio-pci for the lab's SR-IOV NVMe controller, the idle guest payload, a heartbeat on ttyS2 and lab-scenario.service running
# lab/scenario.sh (TAP on ttyS1). Prints the judge's TAP; exit status 0 when all passed.
# Usage: lab-systemd.sh SOURCE_ROOT WORK_DIR ROOT BUILD_DIR
set -uo pipefail
src=$1 work=$2 root=$3 build=$4
LAB_DIR=$src/tests/lab
LAB_NVME=1 LAB_NICS=0 LAB_IGB=0 LAB_MEMORY=1536 LAB_CPUS=1
# shellcheck source=tests/lab/lib/kernel.sh
. "$LAB_DIR/lib/kernel.sh"
# shellcheck source=tests/lab/lib/initramfs.sh
. "$LAB_DIR/lib/initramfs.sh"
# shellcheck source=tests/lab/lib/qemu.sh
. "$LAB_DIR/lib/qemu.sh"
# shellcheck source=tests/lab/lib/judge.sh
. "$LAB_DIR/lib/judge.sh"
here=$src/tests/package/lab
timeout=${IOVD_SYSTEMD_LAB_TIMEOUT:-900}

# The root as the lab boots it: what a first boot would not find in a chroot's leftovers
# (in-root.sh's iovd state, users' runs) removed, documentation dropped to keep the
# initramfs small, the lab's own units enabled.
lab_root_prepare() {
  LAB_MODULES=(kvm_amd nvme vfio-pci vfio_iommu_type1)
  lab_initramfs_modules "$root" || return 1
  printf '%s\n' "${LAB_MODULES[@]}" >"$root/etc/modules-load.d/lab.conf"
  mkdir -p "$root/opt/iovd/guest" "$root/lab"
  cp "$build/tests/guest/idle.bzImage" "$root/opt/iovd/guest/" || return 1
  install -m 0755 "$here/scenario.sh" "$root/lab/scenario.sh"
  install -m 0644 "$here"/lab-*.service "$root/etc/systemd/system/"
  mkdir -p "$root/etc/systemd/system/sysinit.target.wants" \
    "$root/etc/systemd/system/multi-user.target.wants"
  ln -sf ../lab-heartbeat.service "$root/etc/systemd/system/sysinit.target.wants/"
  ln -sf ../lab-scenario.service "$root/etc/systemd/system/multi-user.target.wants/"
  ln -sf multi-user.target "$root/etc/systemd/system/default.target"
  ln -sf /lib/systemd/systemd "$root/init"
  echo lab >"$root/etc/hostname"
  rm -rf "$root"/var/lib/iovd/* "$root"/tmp/* "$root"/usr/share/{doc,man,locale,info} \
    "$root"/var/cache/apt/* "$root"/var/lib/apt/lists/*
}

lab=$work/lab
mkdir -p "$lab"
rm -f "$lab"/{console.log,tap.log,initrd.cpio}
if ! lab_kernel_prepare >&2 || ! lab_emulator_prepare >&2 || ! lab_root_prepare >&2; then
  lab_judge_harness_failure "could not build the systemd lab (kernel, QEMU or root); see stderr"
  exit 1
fi
(cd "$root" && find . -print0 | cpio --null -o -H newc -R 0:0 --quiet) >"$lab/initrd.cpio"
echo "# systemd lab: $(du -m "$lab/initrd.cpio" | cut -f 1) MiB root as initramfs, QEMU" \
  "$LAB_QEMU_VERSION; console log $lab/console.log"
lab_qemu_command "$lab" "$lab/initrd.cpio" run
start=$(date +%s)
status=0
lab_qemu_run "$lab" "$timeout" || status=$?
lab_judge "$lab" "$status" "$timeout" "$(($(date +%s) - start))"
