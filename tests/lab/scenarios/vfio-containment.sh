#!/bin/sh
# DMA containment, the IOMMU's whole point: the lab's first e1000e, the one device of pool
# "nics", is given to an L2 Debian kernel (256 MiB of RAM) through iovd's API (a VM whose
# definition names the pool) and programmed by lab-dma in the guest,
# through its BAR 0 (sysfs resource0, the guest's driver unbound), to DMA at a guest-
# physical address beyond the guest's RAM: a transmit ring there (the device reads a
# descriptor) and receive buffers there (the device writes the frames the lab's second
# e1000e sends). That address is the physical address of a page of lab memory filled
# with a pattern (lab-dma canary): without the IOMMU's translation the device would read
# and overwrite it. The lab's kernel must log a DMAR read fault and a DMAR write fault
# for that device at that address (QEMU's intel-iommu reports translation faults to the
# lab's kernel, drivers/iommu/intel/dmar.c prints them), the pattern must be intact,
# the guest must carry on (it reads the NIC after the faults and reboots itself: the VMM
# exits 0, the VM is stopped), and the lab and iovd as well. GET /v1/vms shows the NIC
# (host address, group, guest slot 4), the guest sees it there; the VM's delete gives
# the NIC back to its pool.
# lab-topology: --nvme 0 --nics 2 --memory 1024 --timeout 900
# lab-prepare: l2/build-dma.sh
. /lab/lab.sh

tap_plan 21
tap_check "kvm_amd, vfio-pci, vfio_iommu_type1 and e1000e load" \
  lab_modprobe kvm_amd vfio-pci vfio_iommu_type1 e1000e
lab_require_programs iovd iovd-vmm lab-dma || exit 1

nics=""
for d in "$SYSFS_PCI"/*; do
  [ "$(cat "$d/vendor"):$(cat "$d/device")" = "0x8086:0x10d3" ] && nics="$nics $(basename "$d")"
done
set -- $nics
NIC=${1:-} PEER=${2:-}
tap_is "two e1000e functions ($nics)" "$#" 2 || exit 1
net_of() { ls "$SYSFS_PCI/$1/net" 2>/dev/null | head -n 1; }
has_net() { [ -n "$(net_of "$1")" ]; }
lab_wait 20 has_net "$PEER"
PEER_IF=$(net_of "$PEER")
tap_check "$NIC taken from e1000e (iovd hands out only driverless functions)" \
  lab_unbind "$NIC"
iovd_start_checked || exit 1
lab_pt_pool nics "$NIC"
dmesg | grep -c "DMAR:.*fault" >/tmp/faults-before

# The canary: lab memory at a physical address above the guest's 256 MiB (plus 4 MiB).
lab-dma canary 0x10400000 >/tmp/canary.out 2>&1 &
CANARY=$!
canary_ready() { grep -q '^canary 0x' /tmp/canary.out; }
lab_wait 30 canary_ready
ADDR=$(sed -n 's/^canary \(0x[0-9a-f]*\)$/\1/p' /tmp/canary.out)
tap_check "lab-dma canary holds a page of lab memory at $ADDR" test -n "$ADDR"
tap_diag "$(cat /tmp/canary.out)"

# Frames for the receive side: the peer sends to all-nodes every half second.
ip link set "$PEER_IF" up
(while :; do ping6 -c 1 -W 1 -I "$PEER_IF" ff02::1 >/dev/null 2>&1; sleep 0.5; done) &
SENDER=$!

lab_pt_vm_run dma '{"type": "vfio", "pool": "nics", "guest_address": 4}' "iovtest.dma=$ADDR"
kill "$SENDER" 2>/dev/null
grep -a "lab-dma:\|l2-dma:" /tmp/dma.console | while read -r line; do tap_diag "$line"; done

tap_is "POST /v1/vms dma with a vfio entry from pool nics" "$PT_CREATE" 201
lab_pt_check_held dma "$NIC" 4
tap_check "the L2 guest sees the NIC's ids at 00:04.0" \
  grep -q "l2-dma: ids $(lab_pt_ids "$NIC") .* at 0000:00:04.0" /tmp/dma.console
tap_check "the L2 guest's e1000e driver probed the NIC first" \
  grep -q "l2-dma: driver e1000e" /tmp/dma.console
tap_check "lab-dma programmed the transmit ring at $ADDR" \
  grep -q "lab-dma: tx ring at $ADDR: tail 1" /tmp/dma.console
tap_check "lab-dma programmed receive buffers at $ADDR" \
  grep -q "lab-dma: rx ring at 0x[0-9a-f]*, buffers at $ADDR" /tmp/dma.console

# drivers/iommu/intel/dmar.c, dmar_fault_do_one(): "[DMA Read NO_PASID] Request device
# [BB:DD.F] fault addr 0x... [fault reason ...] ...". The source is the lab's NIC.
SOURCE=${NIC#0000:}
faults_of() { dmesg | grep "DMAR: \[DMA $1.*Request device \[$SOURCE\] fault addr $ADDR "; }
tap_check "the lab's kernel logged a DMAR read fault of $SOURCE at $ADDR" faults_of Read
tap_check "the lab's kernel logged a DMAR write fault of $SOURCE at $ADDR" faults_of Write
dmesg | grep -i "dmar" | tail -n 8 | while read -r line; do tap_diag "$line"; done

kill -TERM "$CANARY"
wait "$CANARY"
CANARY_STATUS=$?
tap_diag "$(tail -n 1 /tmp/canary.out)"
tap_is "the lab memory at $ADDR kept its pattern" "$CANARY_STATUS" 0
tap_check "the guest ran on after the faults (it read the NIC again)" \
  grep -q "lab-dma: alive" /tmp/dma.console
tap_is "iovd-vmm exits 0 after the guest's reboot: the VM is stopped" \
  "$VMM_STATUS $PT_STATE" "0 stopped"
tap_is "$NIC still bound to vfio-pci while the VM existed" "$PT_HELD_DRIVER" vfio-pci
tap_check "iovd answers after the faults" iovd_is_up
lab_pt_check_released dma "$NIC" nics
iovd_stop >/dev/null
