#!/usr/bin/env bash
# Boot the lab's Debian kernel as an L2 guest under iovd-vmm run directly, inside the lab
# (QEMU with nested SVM, see tests/lab/README.md). One L2 VM stays up until it is paused,
# resumed and stopped (Ctrl-Alt-Del through the i8042) over the control socket; a second,
# with 2 vCPUs, reaches userspace (its /init prints a marker and writes boot marker 42 to
# the boot-progress port 0x510), shows that Linux found the ACPI MADT and the PCI host
# bridge, and powers off through ACPI S5. TAP on stdout, judged like a lab scenario.
#
# Usage: tests/guest/lab-linux-boot.sh [BUILD_DIR] [L2_CMDLINE_EXTRA]
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SOURCE_ROOT=$(cd "$HERE/../.." && pwd)
LAB_DIR=$SOURCE_ROOT/tests/lab
BUILD_DIR=$(cd "${1:-$SOURCE_ROOT/build}" && pwd)
L2_EXTRA=${2:-}
LAB_TIMEOUT=1200
LAB_NVME=0 LAB_NICS=0 LAB_IOMMU=0 LAB_MEMORY=1024
# shellcheck source=../lab/lib/kernel.sh
. "$LAB_DIR/lib/kernel.sh"
# shellcheck source=../lab/lib/initramfs.sh
. "$LAB_DIR/lib/initramfs.sh"
# shellcheck source=../lab/lib/qemu.sh
. "$LAB_DIR/lib/qemu.sh"
# shellcheck source=../lab/lib/judge.sh
. "$LAB_DIR/lib/judge.sh"

for tool in qemu-system-x86_64 busybox cpio; do
  command -v "$tool" >/dev/null || { echo "1..0 # SKIP $tool missing"; exit 0; }
done
for program in vmm/iovd-vmm tests/guest/vmm-control; do
  [ -x "$BUILD_DIR/$program" ] || { echo "1..0 # SKIP no $BUILD_DIR/$program"; exit 0; }
done

WORK_DIR=$BUILD_DIR/tests/guest/lab-linux-boot
rm -rf "$WORK_DIR" && mkdir -p "$WORK_DIR/l2/bin" "$WORK_DIR/extra/lab"

# The L2 guest's initramfs: static busybox and an /init that proves userspace ran.
cp "$(command -v busybox)" "$WORK_DIR/l2/bin/busybox"
for applet in sh mount echo dd printf reboot poweroff cat sleep grep cut; do
  ln -s busybox "$WORK_DIR/l2/bin/$applet"
done
mkdir -p "$WORK_DIR/l2/"{proc,dev,sys}
cat >"$WORK_DIR/l2/init" <<'L2'
#!/bin/sh
mount -t proc proc /proc
mount -t devtmpfs devtmpfs /dev
echo "iovd-l2-marker: userspace reached after $(cut -d ' ' -f 1 /proc/uptime) s"
printf '*' | dd of=/dev/port bs=1 seek=1296 count=1 2>/dev/null
# iovtest=wait: stay up until the VMM asks for a shutdown (Ctrl-Alt-Del: the kernel
# restarts at once, with reboot=k through the i8042).
grep -q iovtest=wait /proc/cmdline && exec sleep 100000
grep -q iovtest=poweroff /proc/cmdline && poweroff -f
reboot -f
L2
chmod 755 "$WORK_DIR/l2/init"
(cd "$WORK_DIR/l2" && find . | cpio -o -H newc -R 0:0 --quiet | gzip -1) \
  >"$WORK_DIR/extra/lab/l2.cpio.gz"

cat >"$WORK_DIR/scenario.sh" <<SCEN
#!/bin/sh
. /lab/lab.sh
tap_plan 15
tap_check "kvm_amd loads" lab_modprobe kvm_amd
# A guest-initiated reboot through iovd's API is the lab's vm-linux scenario; here iovd-vmm
# runs alone: one VM driven over its control socket, one with 2 vCPUs powering off.

# First VM, driven through the control socket: status, pause/resume, stop. Its console
# goes to the lab console too.
sock=/tmp/vmm.sock
( iovd-vmm --kernel /lab/vmlinuz --initrd /lab/l2.cpio.gz --memory 256 \\
    --control-socket \$sock --cmdline "console=ttyS0 reboot=k panic=-1 iovtest=wait $L2_EXTRA" \\
    2>&1; echo \$? >/tmp/l2b.status ) | tee /tmp/l2b.out &
i=0
while ! grep -q iovd-l2-marker /tmp/l2b.out 2>/dev/null && [ \$i -lt 300 ]; do
  sleep 1; i=\$((i + 1))
done
tap_check "control socket: status running" sh -c "/lab/vmm-control \$sock status | grep -q running"
tap_check "control socket: pause" sh -c "/lab/vmm-control \$sock pause && /lab/vmm-control \$sock status | grep -q paused"
tap_check "control socket: resume" sh -c "/lab/vmm-control \$sock resume && /lab/vmm-control \$sock status | grep -q running"
tap_check "control socket: stop (Ctrl-Alt-Del) is accepted" /lab/vmm-control \$sock stop
i=0
while [ ! -s /tmp/l2b.status ] && [ \$i -lt 120 ]; do sleep 1; i=\$((i + 1)); done
tap_check "the guest reboots on the stop request and iovd-vmm exits 0" test "\$(cat /tmp/l2b.status)" = 0
tap_check "the stop went through the i8042 reset" grep -q "guest reset through the i8042" /tmp/l2b.out

# Second VM: 2 vCPUs, to the marker (boot-progress port, ACPI tables, PCI host bridge),
# then poweroff (ACPI S5). Bounded: SMP under nested TCG is slow.
{ timeout 400 iovd-vmm --kernel /lab/vmlinuz --initrd /lab/l2.cpio.gz --memory 256 --vcpus 2 \\
  --cmdline "console=ttyS0 panic=-1 iovtest=poweroff $L2_EXTRA"; echo \$? >/tmp/l2c.status; } 2>&1 |
  tee /tmp/l2c.out
tap_check "2-vCPU L2 Linux brings up both CPUs" grep -q "Brought up 1 node, 2 CPUs" /tmp/l2c.out
tap_check "2-vCPU L2 Linux reaches userspace" grep -q "iovd-l2-marker" /tmp/l2c.out
tap_check "boot-progress marker 42 recorded" grep -q '"value":42' /tmp/l2c.out
tap_check "L2 Linux finds CPUs and IOAPIC through ACPI (MADT)" grep -q "Using ACPI (MADT)" /tmp/l2c.out
tap_check "L2 Linux enumerates the PCI host bridge (ACPI PNP0A03, CF8/CFC)" grep -q "pci 0000:00:00.0: \\[1b36:0008\\]" /tmp/l2c.out
# MCFG + ECAM: Linux announces the window ("MMCONFIG" before 6.3, "ECAM" after) and does
# not drop it for want of a reservation.
tap_check "L2 Linux uses MMCONFIG/ECAM for bus 0 at 0xe0000000" sh -c "grep -Eq 'PCI: (MMCONFIG|ECAM).*0xe0000000' /tmp/l2c.out && ! grep -Eq 'not using (MMCONFIG|ECAM)' /tmp/l2c.out"
tap_check "CPUID leaf 0xD matches the guest's XSAVE size (no consistency warning)" sh -c "! grep -q 'XSAVE consistency problem' /tmp/l2c.out"
echo "# exits before userspace (marker 42): \$(grep -o '\"value\":42,[^}]*' /tmp/l2c.out | grep -o '\"exits\":[0-9]*')"
echo "# exits by reason: \$(grep -o '\"exits\":{[^}]*}' /tmp/l2c.out | tail -1)"
tap_check "poweroff in the guest (ACPI S5) stops iovd-vmm with status 0" sh -c "test \$(cat /tmp/l2c.status) = 0 && grep -q 'ACPI S5' /tmp/l2c.out"
SCEN

lab_kernel_prepare || { echo "1..0 # SKIP no lab kernel"; exit 0; }
cp "$LAB_KERNEL_IMAGE" "$WORK_DIR/extra/lab/vmlinuz"
cp "$BUILD_DIR/tests/guest/vmm-control" "$WORK_DIR/extra/lab/vmm-control"
lab_run_with_extra "$WORK_DIR" "$BUILD_DIR" "$LAB_TIMEOUT"
