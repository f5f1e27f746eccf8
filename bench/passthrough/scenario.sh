#!/bin/sh
# Lab side of bench/passthrough/run (a benchmark, not a test): the same work in the lab on
# its own devices and in an L2 guest that gets them passed through by iovd-vmm.
#   bar   lab-barread on the e1000e's STATUS register (BAR 0 + 8) for SECONDS: ns per
#         read in the lab (no driver) and in the guest (the BAR mmapped into a KVM memory
#         slot); iovd-vmm's trapped MMIO accesses of that device over the guest's whole
#         life, divided by the guest's reads: an upper bound of VM exits per read.
#   nvme  lab-blkbench (bench/virtio/blkbench.c: 1 MiB sequential, then 4 KiB random
#         reads, O_DIRECT) on namespace 1 of the NVMe controller in the lab, then on the
#         same namespace passed through, and on a virtio-blk image of the same size (a file
#         in the lab's tmpfs) beside it in the same guest; with the MSI-X interrupts per
#         second the NVMe I/O queues got meanwhile (/proc/interrupts), both sides.
# RUNS runs each, medians; each summary line ("# pt-bench: ...") has both figures and the
# ratio (guest / lab: 1 is the limit). TAP, so the lab's judge reports a lab that failed.
# lab-topology: --nvme 1 --nics 1 --memory 1536 --timeout 1800
# lab-prepare: ../../bench/passthrough/prepare.sh
. /lab/lab.sh
RUNS=3 SECONDS_EACH=3

tap_plan 4
tap_check "modules load" lab_modprobe kvm_amd vfio-pci vfio_iommu_type1 e1000e nvme
lab_require_programs iovd-vmm lab-barread lab-blkbench || exit 1
NIC=""
for d in "$SYSFS_PCI"/*; do
  [ "$(cat "$d/vendor"):$(cat "$d/device")" = "0x8086:0x10d3" ] && NIC=$(basename "$d") && break
done
PF=$(lab_find_pf 1b36:0010)
lab_wait 20 test -b /dev/nvme0n1
# e1000e claims its BARs exclusively (no sysfs mmap while bound): measured without it.
echo "$NIC" >"$SYSFS_PCI/$NIC/driver/unbind"
SIZE_MIB=$(($(cat /sys/block/nvme0n1/size) / 2048))
# The NVMe I/O queues' MSI-X interrupts so far, and the uptime (the guest counts the same).
nvme_irqs() { awk '/nvme0q[1-9]/ { for (c = 2; c < NF; c++) if ($c ~ /^[0-9]+$/) s += $c } END { print s + 0 }' /proc/interrupts; }
now() { cut -d ' ' -f 1 /proc/uptime; }
i=1
while [ $i -le $RUNS ]; do
  echo "lab-bench: bar run=$i $(lab-barread "$NIC" 0x8 $SECONDS_EACH)"
  irq0=$(nvme_irqs) t0=$(now)
  r=$(lab-blkbench /dev/nvme0n1 $SECONDS_EACH direct)
  rate=$(awk -v n=$(($(nvme_irqs) - irq0)) -v t0="$t0" -v t1="$(now)" 'BEGIN { printf "%.0f", n / (t1 - t0) }')
  echo "lab-bench: nvme run=$i $r irq_per_s=$rate"
  i=$((i + 1))
done >/tmp/lab.figures
cat /tmp/lab.figures
dd if=/dev/urandom of=/tmp/disk.img bs=1M count="$SIZE_MIB" 2>/dev/null
tap_check "$NIC and $PF bound to vfio-pci" eval "lab_bind_vfio $NIC && lab_bind_vfio $PF"

lab_pt_vmm_run bench "{\"type\": \"vfio\", \"host\": \"$NIC\", \"guest_address\": 4},
  {\"type\": \"vfio\", \"host\": \"$PF\", \"guest_address\": 5},
  {\"type\": \"virtio-blk\", \"path\": \"/tmp/disk.img\", \"read_only\": true}" \
  "iovtest.runs=$RUNS iovtest.seconds=$SECONDS_EACH"
tap_is "iovd-vmm exits 0 after the guest's reboot" "$VMM_STATUS" 0

# values FILE WHAT KEY: the KEY= figures of the lines "WHAT run=...", one a line.
values() { grep -a "$2 run=" "$1" | tr -d '\r' | tr ' ' '\n' | sed -n "s/^$3=//p"; }
median() {
  sort -n | awk '{ v[NR] = $1 } END {
    if (NR == 0) print "none"; else if (NR % 2) print v[(NR + 1) / 2];
    else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2f", a / b; else print "none" }'; }
G=/tmp/bench.console L=/tmp/lab.figures
lab_ns=$(values $L bar ns_per_read | median) l2_ns=$(values $G bar ns_per_read | median)
l2_reads=$(values $G bar reads | awk '{ s += $1 } END { print s + 0 }')
# iovd-vmm's final stats: the device's trapped MMIO accesses (absent: none) and all MMIO
# exits of the guest's life, boot and the other devices included.
stats=$(grep -a "iovd-vmm: stats" /tmp/bench.log | tail -n 1)
trapped=$(echo "$stats" | sed -n "s/.*\"vfio-$NIC\":\([0-9]*\).*/\1/p")
mmio=$(echo "$stats" | sed -n 's/.*"mmio":\([0-9]*\).*/\1/p')
per_read() { awk -v t="${1:-0}" -v r="$l2_reads" 'BEGIN { if (r > 0) printf "%.6f", t / r; else print "none" }'; }
tap_diag "pt-bench: bar read (e1000e STATUS), ns per read, medians of $RUNS x ${SECONDS_EACH}s:" \
  "  lab $lab_ns, L2 guest $l2_ns, ratio (lab/L2: guest rate / lab rate) $(ratio "$lab_ns" "$l2_ns");" \
  "  VM exits per read: $(per_read "$trapped") trapped (${trapped:-0} accesses of the device in the guest's life, $l2_reads reads), <= $(per_read "$mmio") counting all ${mmio:-0} MMIO exits"
lab_irq=$(values $L nvme irq_per_s | median) l2_irq=$(values $G nvme irq_per_s | median)
tap_diag "pt-bench: NVMe MSI-X interrupts per second during those reads (I/O queues):" \
  "  lab $lab_irq, L2 passthrough (vfio eventfd -> KVM irqfd) $l2_irq (ratio $(ratio "$l2_irq" "$lab_irq"))"
for key in seq_mib_s rand4k_iops; do
  lab_v=$(values $L nvme $key | median) nvme_v=$(values $G nvme $key | median)
  vblk_v=$(values $G virtio-blk $key | median)
  tap_diag "pt-bench: nvme $key, medians of $RUNS x ${SECONDS_EACH}s (${SIZE_MIB} MiB namespace):" \
    "  lab $lab_v, L2 passthrough $nvme_v (ratio $(ratio "$nvme_v" "$lab_v")), L2 virtio-blk $vblk_v (ratio $(ratio "$vblk_v" "$lab_v"))"
done
tap_check "every figure is there" eval "[ \"$l2_ns\" != none ] && [ \"$lab_ns\" != none ] && [ -n \"$(values $G nvme seq_mib_s)\" ] && [ -n \"$(values $G virtio-blk seq_mib_s)\" ]"
