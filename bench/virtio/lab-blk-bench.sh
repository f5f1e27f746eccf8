#!/usr/bin/env bash
# Benchmark (not a test): virtio-blk read throughput in the lab's L2 guest against the same
# reads of the backing file done in the lab itself (the limit), with blkbench.c: sequential
# 1 MiB reads and random 4 KiB reads, SECONDS each. The L2 guest reads /dev/vda with
# O_DIRECT; the lab reads the image file through its page cache. Prints both and the
# ratios. Everything runs under QEMU TCG with nested SVM: absolute figures are those of
# the lab, the ratio is the point.
#
# Usage: bench/virtio/lab-blk-bench.sh [BUILD_DIR] [SECONDS]
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BENCH=lab-blk-bench
# shellcheck source=lab-bench-lib.sh
. "$HERE/lab-bench-lib.sh"
SECONDS_EACH=${2:-10}

bench_require gcc
gcc -O2 -static -o "$WORK_DIR/extra/lab/blkbench" "$HERE/blkbench.c" || exit 1
L2_MODULES="virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_blk"
# shellcheck disable=SC2086 # one module a word
bench_l2_root $L2_MODULES
cp "$WORK_DIR/extra/lab/blkbench" "$WORK_DIR/l2/bin/blkbench"
cat >"$WORK_DIR/l2/init" <<L2
#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in $L2_MODULES; do insmod /lib/modules/\$m.ko; done
sleep 1
echo "l2-bench: \$(blkbench /dev/vda $SECONDS_EACH direct)"
reboot -f
L2
cat >"$WORK_DIR/scenario.sh" <<SCEN
#!/bin/sh
. /lab/lab.sh
tap_plan 2
lab_modprobe kvm_amd
dd if=/dev/zero of=/tmp/disk.img bs=1M count=64 2>/dev/null
echo "lab-bench: \$(/lab/blkbench /tmp/disk.img $SECONDS_EACH cached)"
cat >/tmp/vm.json <<EOF
{"name": "bench", "vcpus": 1, "memory_mib": 256, "kernel": "/lab/vmlinuz",
 "initrd": "/lab/l2.cpio.gz", "cmdline": "console=ttyS0 reboot=k panic=-1 quiet",
 "devices": [{"type": "virtio-blk", "path": "/tmp/disk.img", "read_only": true}]}
EOF
timeout 1200 iovd-vmm --config /tmp/vm.json 2>/tmp/l2.err 3>&- | tee /tmp/l2.out
tap_check "the lab read the backing file" true
tap_check "the L2 guest ran blkbench on /dev/vda" grep -q "l2-bench: seq" /tmp/l2.out
SCEN

bench_lab_run

lab=$(grep -a -o "lab-bench: seq.*" "$WORK_DIR/console.log" | head -n 1 | tr -d '\r')
l2=$(grep -a -o "l2-bench: seq.*" "$WORK_DIR/console.log" | head -n 1 | tr -d '\r')
[ -n "$lab" ] && [ -n "$l2" ] || { echo "lab-blk-bench: no figures; see $WORK_DIR/console.log" >&2; exit 1; }
python3 - "$lab" "$l2" "$SECONDS_EACH" <<'PY'
import sys
def parse(s):
    return dict(kv.split("=") for kv in s.split(": ", 1)[1].split())
lab, l2, secs = parse(sys.argv[1]), parse(sys.argv[2]), sys.argv[3]
print(f"virtio-blk reads in the lab's L2 guest vs the backing file in the lab, {secs} s each")
print(f"{'':24}{'seq 1 MiB (MiB/s)':>20}{'rand 4 KiB (IOPS)':>20}")
for name, d in (("lab, backing file", lab), ("L2 guest, virtio-blk", l2)):
    print(f"{name:24}{float(d['seq_mib_s']):>20.1f}{float(d['rand4k_iops']):>20.0f}")
print(f"{'ratio L2 / lab':24}{float(l2['seq_mib_s']) / float(lab['seq_mib_s']):>20.4f}"
      f"{float(l2['rand4k_iops']) / float(lab['rand4k_iops']):>20.4f}")
PY
