#!/usr/bin/env bash
# virtio end to end with real drivers: inside the lab (QEMU with nested SVM, see
# tests/lab/README.md), a VM defined through iovd's API (POST /v1/vms with all four virtio
# devices in its devices list) boots the lab's Debian kernel as an L2 guest in its own
# iovd-vmm, and the L2 guest's /init uses the devices with Linux's own drivers:
#   virtio-blk      reads a pattern the lab wrote into the image, writes one the lab then
#                   finds in the image (conv=fsync: a FLUSH too); two request queues
#                   (VIRTIO_BLK_F_MQ; Linux uses no more queues than CPUs, hence 2
#                   vCPUs) and DISCARD, both taken by Linux's driver
#   virtio-net      pings the lab's end of the TAP over IPv6 link-local
#   virtio-console  writes on hvc0 (the VM's console stream), reads a line the lab sends
#                   through the device's input FIFO
#   virtio-rng      is the current hw_random source and gives bytes
# TAP on stdout, judged outside like a lab scenario.
#
# Usage: tests/guest/virtio-lab.sh [BUILD_DIR]
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SOURCE_ROOT=$(cd "$HERE/../.." && pwd)
LAB_DIR=$SOURCE_ROOT/tests/lab
BUILD_DIR=$(cd "${1:-$SOURCE_ROOT/build}" && pwd)
LAB_TIMEOUT=720
LAB_NVME=0 LAB_NICS=0 LAB_IOMMU=0 LAB_MEMORY=1024
# shellcheck source=../lab/lib/kernel.sh
. "$LAB_DIR/lib/kernel.sh"
# shellcheck source=../lab/lib/initramfs.sh
. "$LAB_DIR/lib/initramfs.sh"
# shellcheck source=../lab/lib/qemu.sh
. "$LAB_DIR/lib/qemu.sh"
# shellcheck source=../lab/lib/judge.sh
. "$LAB_DIR/lib/judge.sh"
LAB_MODULES+=(tun)

for tool in qemu-system-x86_64 busybox cpio; do
  command -v "$tool" >/dev/null || { echo "1..0 # SKIP $tool missing"; exit 0; }
done
[ -x "$BUILD_DIR/vmm/iovd-vmm" ] || { echo "1..0 # SKIP no $BUILD_DIR/vmm/iovd-vmm"; exit 0; }
lab_kernel_prepare || { echo "1..0 # SKIP no lab kernel"; exit 0; }

WORK_DIR=$BUILD_DIR/tests/guest/virtio-lab
rm -rf "$WORK_DIR" && mkdir -p "$WORK_DIR/l2/bin" "$WORK_DIR/l2/lib/modules" "$WORK_DIR/extra/lab"

# ---- the L2 guest's initramfs: static busybox, the virtio modules, /init ----------------
cp "$(command -v busybox)" "$WORK_DIR/l2/bin/busybox"
for applet in $(busybox --list); do
  [ "$applet" = busybox ] || ln -sf busybox "$WORK_DIR/l2/bin/$applet"
done
mkdir -p "$WORK_DIR/l2/"{proc,dev,sys,tmp}
# In dependency order (modules.dep of the lab kernel).
L2_MODULES="virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci
  virtio_blk failover net_failover virtio_net virtio_console virtio-rng"
for m in $L2_MODULES; do
  f=$(find "$LAB_KERNEL_ROOT/lib/modules" -name "$m.ko" | head -n 1)
  [ -n "$f" ] || { echo "1..0 # SKIP module $m not in the lab kernel"; exit 0; }
  cp "$f" "$WORK_DIR/l2/lib/modules/"
done
cat >"$WORK_DIR/l2/init" <<L2
#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in $(echo $L2_MODULES); do insmod /lib/modules/\$m.ko; done
sleep 2
echo "l2: drivers: \$(for d in /sys/bus/virtio/devices/*; do basename \$(readlink \$d/driver); done | sort | tr '\n' ' ')"
if [ -b /dev/vda ]; then
  echo "l2: blk-read: \$(dd if=/dev/vda bs=31 count=1 2>/dev/null)"
  printf 'written-by-l2' | dd of=/dev/vda bs=512 seek=8 conv=fsync 2>/dev/null
  echo "l2: blk-write: \$?"
  echo "l2: blk-queues: \$(ls /sys/block/vda/mq | wc -l)"
  echo "l2: blk-discard-max: \$(cat /sys/block/vda/queue/discard_max_bytes)"
  blkdiscard -o 65536 -l 65536 /dev/vda
  echo "l2: blk-discard: \$?"
fi
echo "l2: rng: \$(cat /sys/class/misc/hw_random/rng_current) \$(dd if=/dev/hwrng bs=16 count=1 2>/dev/null | od -An -tx1 | tr -d ' \n')"
if [ -c /dev/hvc0 ]; then
  echo "hvc0-says-hello" >/dev/hvc0
  # No echo: the tty would echo the lab's line to hvc0 while the serial port prints the
  # "hvc0-got" line a byte at a time, and the console stream interleaves the two.
  exec 3</dev/hvc0
  # On the open descriptor: hvc resets a console's termios when its last
  # descriptor closes (TTY_DRIVER_RESET_TERMIOS), so stty -F before the open is lost.
  stty -echo <&3 2>/dev/null
  echo "l2: hvc0-ready"
  echo "l2: hvc0-got: \$(timeout 120 head -n 1 <&3)"
fi
ip link set dev eth0 up
sleep 4
ping6 -c 3 -I eth0 fe80::ff:fe00:1 >/tmp/ping.out 2>&1
echo "l2: ping6: \$?"
cat /tmp/ping.out
reboot -f
L2
chmod 755 "$WORK_DIR/l2/init"
(cd "$WORK_DIR/l2" && find . | cpio -o -H newc -R 0:0 --quiet | gzip -1) \
  >"$WORK_DIR/extra/lab/l2.cpio.gz"
cp "$LAB_KERNEL_IMAGE" "$WORK_DIR/extra/lab/vmlinuz"

# ---- the scenario inside the lab ----------------------------------------------------------
cat >"$WORK_DIR/scenario.sh" <<'SCEN'
#!/bin/sh
. /lab/lab.sh
tap_plan 16
tap_check "kvm_amd and tun load" lab_modprobe kvm_amd tun
# VM files come only from iovd's image directories (iovd_start passes $LAB_IMAGES).
mkdir -p "$LAB_IMAGES"
dd if=/dev/zero of=$LAB_IMAGES/disk.img bs=1024 count=1024 2>/dev/null
printf 'iovd-virtio-blk-pattern-0123456' | dd of=$LAB_IMAGES/disk.img conv=notrunc 2>/dev/null
mkfifo $LAB_IMAGES/hvc.in
cat >/tmp/vm.json <<EOF
{"name": "l2", "vcpus": 2, "memory_mib": 256, "kernel": "/lab/vmlinuz",
 "initrd": "/lab/l2.cpio.gz", "cmdline": "console=ttyS0 reboot=k panic=-1",
 "devices": [{"type": "virtio-blk", "path": "$LAB_IMAGES/disk.img", "serial": "lab-disk",
              "num_queues": 2},
             {"type": "virtio-net", "tap": "vtap0", "mac": "52:54:00:00:00:02"},
             {"type": "virtio-console", "input": "$LAB_IMAGES/hvc.in"},
             {"type": "virtio-rng"}]}
EOF
lab_require_programs iovd iovd-vmm || exit 1
iovd_start_checked || exit 1
api_expect "POST /v1/vms l2 with virtio-blk, virtio-net, virtio-console, virtio-rng" 201 \
  POST /v1/vms "$(cat /tmp/vm.json)"
api_expect "POST /v1/vms/l2/start" "200 202 204" POST /v1/vms/l2/start
lab_vm_console_follow l2
# What the VM's serial port and hvc0 printed, as GET /v1/vms/l2/console returns it.
console_fetch() {
  api GET /v1/vms/l2/console
  printf '%s\n' "$API_BODY" >/tmp/l2.out
}
console_ready_or_vm_ended() {
  console_fetch
  grep -q "l2: hvc0-ready" /tmp/l2.out && return 0
  ! vm_state_is l2 running
}
# The lab's end of the TAP gets a fixed MAC, so the guest knows its link-local address.
lab_wait 60 test -e /sys/class/net/vtap0 &&
  ip link set dev vtap0 address 02:00:00:00:00:01 && ip link set dev vtap0 up
# Answer on the console once the guest listens (or give up when the VM has ended). The
# waits add up to less than the lab's timeout: a guest that never gets there is reported
# from inside the lab (lab_vm_report) rather than cut off by the runner.
lab_wait 420 console_ready_or_vm_ended || lab_vm_report l2
grep -q "l2: hvc0-ready" /tmp/l2.out && lab_send $LAB_IMAGES/hvc.in lab-says-hi
tap_check "the L2 guest reboots and l2 is stopped" lab_wait 240 vm_state_is l2 stopped ||
  lab_vm_report l2
api GET /v1/vms/l2
echo "lab: l2 state $(api_jq .state), reason: $(api_jq .reason)"
blk_written=$(api_jq '.stats.virtio[]? | select(.type == "virtio-blk") | .bytes_written')
console_fetch
tap_check "Linux binds virtio_blk, virtio_console, virtio_net, virtio_rng" \
  grep -q "l2: drivers: virtio_blk virtio_console virtio_net virtio_rng" /tmp/l2.out
tap_check "virtio-blk: the guest reads the lab's pattern" \
  grep -q "l2: blk-read: iovd-virtio-blk-pattern-0123456" /tmp/l2.out
tap_check "virtio-blk: the guest's write and FLUSH succeed" grep -q "l2: blk-write: 0" /tmp/l2.out
tap_is "virtio-blk: the guest's data is in the image at sector 8" \
  "$(dd if=$LAB_IMAGES/disk.img bs=512 skip=8 count=1 2>/dev/null | head -c 13)" "written-by-l2"
tap_check "virtio-blk: Linux sets up both request queues (num_queues 2)" \
  grep -q "l2: blk-queues: 2" /tmp/l2.out
tap_check "virtio-blk: Linux takes DISCARD and a discard of 64 KiB succeeds" \
  sh -c "grep -q 'l2: blk-discard: 0' /tmp/l2.out && ! grep -q 'l2: blk-discard-max: 0' /tmp/l2.out"
# The console stream interleaves the serial port (a byte per write) and hvc0 (a line per
# write): hvc0's line, written right after this one, may land inside it.
tap_check "virtio-rng is the hw_random source and gives 16 bytes" \
  sh -c "sed 's/hvc0-says-hello//' /tmp/l2.out | grep -Eq 'l2: rng: virtio_rng.0 [0-9a-f]{32}'"
# Only /init's write to /dev/hvc0 carries this text; the console stream interleaves the
# serial port and hvc0 byte by byte, so it need not start a line.
tap_check "virtio-console: hvc0 output reaches the console stream" \
  grep -q "hvc0-says-hello" /tmp/l2.out
tap_check "virtio-console: the line sent to the input FIFO reaches the guest" \
  grep -q "l2: hvc0-got: lab-says-hi" /tmp/l2.out ||
  tap_diag "the console's hvc0 lines: $(grep -a hvc0 /tmp/l2.out | tr '\n' '|')"
tap_check "virtio-net: the guest pings the lab over IPv6 link-local" \
  grep -q "l2: ping6: 0" /tmp/l2.out
tap_check "GET /v1/vms/l2 counts the guest's virtio-blk writes (${blk_written:-none} bytes)" \
  test "${blk_written:-0}" -gt 0
SCEN

lab_run_with_extra "$WORK_DIR" "$BUILD_DIR" "$LAB_TIMEOUT"
