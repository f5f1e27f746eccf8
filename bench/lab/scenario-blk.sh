#!/bin/sh
# Lab side of `bench/lab/run blk` (@...@ filled in by run): blkbench on a 64 MiB image in
# the lab's tmpfs, @RUNS@ times, then an L2 guest under iovd-vmm with that image as a
# read-only virtio-blk device runs the same reads on /dev/vda with O_DIRECT @RUNS@ times.
# The lab reads through its page cache: a tmpfs file lives there (and tmpfs has no
# O_DIRECT in this kernel), so that is the storage itself, the limit.
. /lab/lab.sh
lab_modprobe kvm_amd || echo "bench-error: kvm_amd does not load"
dd if=/dev/urandom of=/tmp/disk.img bs=1M count=64 2>/dev/null
i=1
while [ $i -le @RUNS@ ]; do
  echo "bench-cpu: begin blk lab run=$i"
  r=$(/lab/blkbench /tmp/disk.img @SECONDS@ cached)
  echo "bench-cpu: end blk lab run=$i"
  echo "bench-result: blk lab run=$i $r"
  i=$((i + 1))
done
cat >/tmp/vm.json <<JSON
{"name": "bench", "vcpus": 1, "memory_mib": 256, "kernel": "/lab/vmlinuz",
 "initrd": "/lab/l2.cpio", "cmdline": "@CMDLINE@ bench=blk",
 "devices": [{"type": "virtio-blk", "path": "/tmp/disk.img", "read_only": true}]}
JSON
# The L2 console goes to the lab console as it comes (cpumon.py watches its bench-cpu
# lines there), and to /tmp/l2.out.
{ timeout 1200 iovd-vmm --config /tmp/vm.json 2>&1; echo "lab: iovd-vmm exited $?"; } |
  tee /tmp/l2.out
grep -a "^l2: blk run=" /tmp/l2.out | tr -d '\r' | while read -r _ _ figures; do
  echo "bench-result: blk l2-virtio $figures"
done
# iovd-vmm's device counters at exit (requests, notifications, interrupts): the cost per
# request behind the figures.
echo "bench-result: blk iovd-vmm-counters $(grep -a -o '"virtio":\[[^]]*\]' /tmp/l2.out)"
