#!/bin/sh
# NVMe passthrough through iovd's API: the lab's NVMe controller (1b36:0010, the PF) is
# given to an L2 Debian kernel (a VM whose definition names the device by its address;
# the controller is the one device of pool "disks"), whose stock nvme driver must bring it up (admin and I/O queues on
# MSI-X, the table inside BAR 0 after the doorbells). The lab writes a pattern on
# namespace 1 before the VM starts; the L2 guest reads it and writes its own; the lab
# reads that back through its own nvme driver after the VM stopped and was deleted (the
# delete gives the controller back to its pool, driverless). GET /v1/vms shows it (host
# address, group, guest slot 5), the guest sees it there. No DMAR fault may appear, no
# BUG in the L2 kernel.
# lab-topology: --nvme 1 --nics 0 --memory 1024 --timeout 900
# lab-prepare: l2/build-nvme.sh
. /lab/lab.sh

tap_plan 17
tap_check "kvm_amd, vfio-pci, vfio_iommu_type1 and nvme load" \
  lab_modprobe kvm_amd vfio-pci vfio_iommu_type1 nvme
lab_require_programs iovd iovd-vmm || exit 1

PF=$(lab_find_pf 1b36:0010)
tap_check "the lab's NVMe controller ($PF)" test -n "$PF" || exit 1
# Its BAR 0 (registers, doorbells, MSI-X table and PBA) is small: the 32-bit window holds it.
tap_diag "$PF BAR 0 (start end flags): $(head -n 1 "$SYSFS_PCI/$PF/resource")"
lab_wait 20 test -b /dev/nvme0n1
lab_nvme_write_pattern
tap_check "$PF taken from nvme (iovd hands out only driverless functions)" lab_unbind "$PF"
iovd_start_checked || exit 1
lab_pt_pool disks "$PF"

lab_pt_vm_run nvme "{\"type\": \"vfio\", \"device\": \"$PF\", \"guest_address\": 5}" \
  "iovtest.nonce=$NONCE"
tap_is "POST /v1/vms nvme with a vfio entry for device $PF" "$PT_CREATE" 201
lab_pt_check_held nvme "$PF" 5
lab_nvme_check_guest /tmp/nvme.console "$PF" "the controller"
tap_is "iovd-vmm exits 0 after the guest's reboot: the VM is stopped" \
  "$VMM_STATUS $PT_STATE" "0 stopped"
lab_pt_check_released nvme "$PF" disks
iovd_stop >/dev/null

# The controller back to the lab's nvme driver.
echo "$PF" >/sys/bus/pci/drivers_probe
lab_wait 30 test -b /dev/nvme0n1
tap_is "the lab reads the L2 guest's pattern at block 512" "$(lab_nvme_block_text 512)" \
  "iovd-l2-pattern-B-$NONCE"
tap_is "no BUG in the L2 kernel's log" "$(grep -c 'BUG' /tmp/nvme.console)" 0
faults=$(dmesg | grep -ci "dmar.*fault")
tap_is "no DMAR fault in the lab's kernel log" "$faults" 0 || dmesg | grep -i dmar | tail -n 5
