#!/bin/sh
# Lab side of `bench/lab/run blk` (@...@ filled in by run): blkbench on a 64 MiB image in
# the lab's tmpfs, @RUNS@ times, then an L2 guest with that image as a read-only
# virtio-blk device runs the same reads on /dev/vda with O_DIRECT @RUNS@ times, first
# under iovd-vmm, then under QEMU with KVM (aio=io_uring), the same kernel and initramfs.
# The lab reads through its page cache: a tmpfs file lives there (and tmpfs has no
# O_DIRECT in this kernel), so that is the storage itself, the limit.
. /lab/lab.sh
. /lab/kvm-stat.sh
lab_modprobe kvm_amd || echo "bench-error: kvm_amd does not load"
lab_guest_ram_huge @SHMEM_THP@
dd if=/dev/urandom of=/tmp/disk.img bs=1M count=64 2>/dev/null
i=1
while [ $i -le @RUNS@ ]; do
  echo "bench-cpu: begin blk lab run=$i"
  r=$(/lab/blkbench /tmp/disk.img @SECONDS@ cached)
  echo "bench-cpu: end blk lab run=$i"
  echo "bench-result: blk lab run=$i $r"
  i=$((i + 1))
done

# One L2 guest doing the reads: its figures named $1, the VMM's command line after it.
# The L2 console goes to the lab console as it comes (cpumon.py watches its bench-cpu
# lines there, kvm_runs adds KVM's counters per run), and to /tmp/l2.out.
l2_blk() {
  who=$1
  shift
  { timeout 1200 "$@" 2>&1; echo "lab: $1 exited $?"; } | kvm_runs | tee /tmp/l2.out
  grep -a "^l2: blk run=" /tmp/l2.out | while read -r _ _ figures; do
    echo "bench-result: blk $who $figures"
  done
  # The sequential depth-16 row's shape (l2-init: queue limits, bytes per request).
  grep -a "^l2: blk-" /tmp/l2.out | tr -d '\r' | while read -r _ kind figures; do
    echo "bench-result: blk ${who%virtio}${kind#blk-} $figures"
  done
}

cat >/tmp/vm.json <<JSON
{"name": "bench", "vcpus": 1, "memory_mib": 256, "kernel": "/lab/vmlinuz",
 "initrd": "/lab/l2.cpio", "cmdline": "@CMDLINE@ bench=blk",
 "devices": [{"type": "virtio-blk", "path": "/tmp/disk.img", "read_only": true}]}
JSON
l2_blk l2-virtio iovd-vmm --config /tmp/vm.json
# iovd-vmm's device counters at exit (requests, notifications, interrupts): the cost per
# request behind the figures.
echo "bench-result: blk iovd-vmm-counters $(grep -a -o '"virtio":\[[^]]*\]' /tmp/l2.out)"

# QEMU on the same image: io_uring for the file like iovd-vmm's, and its page cache like
# iovd-vmm's (cache=none is O_DIRECT, which tmpfs refuses). One request queue (QEMU's
# num-queues follows the vCPUs), no iothread: QEMU's default.
# shellcheck disable=SC2086 # QEMU_L2 is a list of words
l2_blk qemu-l2-virtio $QEMU_L2 -append "@CMDLINE@ bench=blk bench.arm=qemu-" \
  -drive file=/tmp/disk.img,if=none,id=d,format=raw,readonly=on,aio=io_uring \
  -device virtio-blk-pci,drive=d@QEMU_BLK@
