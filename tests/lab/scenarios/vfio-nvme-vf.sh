#!/bin/sh
# NVMe VF passthrough through iovd's API: a VF of the lab's NVMe controller, brought online with
# NVMe virtualization management (nvme-cli's virt-mgmt, NVMe 2.0 §5.22: the PF gives up
# its flexible queue and interrupt resources, the secondary controller gets some and goes
# online; QEMU refuses CC.EN on an offline VF, hw/nvme/ctrl.c nvme_start_ctrl), with
# namespace 1 moved from the PF to it (detach, attach: QEMU's namespace is private). The
# VF is the one device of pool "vfs" and goes to the L2 guest in a VM whose definition
# names that pool. The L2 guest's stock nvme driver must drive the VF, read the lab's
# pattern and write its own, which the lab reads through the PF after the VM stopped and
# the namespace is back. GET /v1/vms shows the VF (host address, its own IOMMU group,
# guest slot 5), the guest sees it there; the VM's delete gives it back to its pool.
# lab-topology: --nvme 1 --max-vfs 4 --nics 0 --memory 1024 --timeout 900
# lab-prepare: l2/build-nvme.sh
. /lab/lab.sh

# nvme-cli comes from the host (tools/install-deps installs it; lib/initramfs.sh copies it).
command -v nvme >/dev/null || {
  tap_skip_all "nvme-cli is not installed on the host (tools/install-deps)"
  exit 0
}
tap_plan 18
tap_check "kvm_amd, vfio-pci, vfio_iommu_type1 and nvme load" \
  lab_modprobe kvm_amd vfio-pci vfio_iommu_type1 nvme
lab_require_programs iovd iovd-vmm || exit 1
PF=$(lab_find_pf 1b36:0010)
lab_wait 20 test -b /dev/nvme0n1
lab_nvme_write_pattern "through the PF"

nvme list-secondary /dev/nvme0 >/tmp/secondary.txt 2>&1
# The secondary controller of VF 1 and its primary (nvme-cli's list: "SCID ... : 0x0001").
SCID=$(awk '/SCID/ { scid = $NF } /VFN/ && $NF ~ /^0x0*1$/ { print scid; exit }' /tmp/secondary.txt)
PCID=$(awk '/PCID/ { print $NF; exit }' /tmp/secondary.txt)
tap_check "the PF lists a secondary controller for VF 1 ($SCID, primary $PCID)" \
  test -n "$SCID" -a -n "$PCID" || { tap_diag "$(cat /tmp/secondary.txt)"; exit 1; }
SCID=$((SCID)) PCID=$((PCID))

mgmt() { nvme virt-mgmt /dev/nvme0 "$@" >>/tmp/mgmt.log 2>&1 || { cat /tmp/mgmt.log; return 1; }; }
bring_vf_online() {
  # The primary keeps no flexible resources (effective after its reset), 1 VF appears
  # without a host driver, gets what QEMU allows a VF by default (sriov_max_vq_per_vf =
  # sriov_vq_flexible / sriov_max_vfs = 2 queues: admin and one I/O queue;
  # sriov_max_vi_per_vf = sriov_vi_flexible / sriov_max_vfs = 1 interrupt vector), and
  # goes online.
  mgmt -c $PCID -r 0 -a 1 -n 0 && mgmt -c $PCID -r 1 -a 1 -n 0 &&
    echo 1 >"$SYSFS_PCI/$PF/reset" && lab_wait 20 test -e /dev/nvme0 &&
    echo 0 >"$SYSFS_PCI/$PF/sriov_drivers_autoprobe" &&
    echo 1 >"$SYSFS_PCI/$PF/sriov_numvfs" &&
    mgmt -c $SCID -r 0 -a 8 -n 2 && mgmt -c $SCID -r 1 -a 8 -n 1 && mgmt -c $SCID -a 9
}
tap_check "VF 1 brought online (nvme virt-mgmt)" bring_vf_online
VF=$(basename "$(readlink "$SYSFS_PCI/$PF/virtfn0")")
nvme list-secondary /dev/nvme0 | grep -A4 "SCID.*: $(printf '0x%04x' $SCID)" |
  while read -r line; do tap_diag "$line"; done

move_ns() { # move_ns FROM TO: namespace 1 detached from controller FROM, attached to TO
  nvme detach-ns /dev/nvme0 -n 1 -c "$1" >>/tmp/ns.log 2>&1 &&
    nvme attach-ns /dev/nvme0 -n 1 -c "$2" >>/tmp/ns.log 2>&1 || { cat /tmp/ns.log; return 1; }
}
tap_check "namespace 1 moved from the PF to VF 1's controller" move_ns $PCID $SCID
# The VF came up without a driver (sriov_drivers_autoprobe 0): iovd may hand it out.
tap_is "VF $VF has no host driver" "$(lab_driver_of "$VF")" none
iovd_start_checked || exit 1
lab_pt_pool vfs "$VF"

lab_pt_vm_run nvmevf '{"type": "vfio", "pool": "vfs", "guest_address": 5}' "iovtest.nonce=$NONCE"
tap_is "POST /v1/vms nvmevf with a vfio entry from pool vfs" "$PT_CREATE" 201
lab_pt_check_held nvmevf "$VF" 5
lab_nvme_check_guest /tmp/nvmevf.console "$VF" "the VF"
tap_is "iovd-vmm exits 0 after the guest's reboot: the VM is stopped" \
  "$VMM_STATUS $PT_STATE" "0 stopped"
lab_pt_check_released nvmevf "$VF" vfs
iovd_stop >/dev/null

move_ns $SCID $PCID >/dev/null
nvme ns-rescan /dev/nvme0 >/dev/null 2>&1
lab_wait 30 test -b /dev/nvme0n1
tap_is "the lab reads the L2 guest's pattern at block 512 through the PF" "$(lab_nvme_block_text 512)" \
  "iovd-l2-pattern-B-$NONCE"
faults=$(dmesg | grep -ci "dmar.*fault")
tap_is "no DMAR fault in the lab's kernel log" "$faults" 0 || dmesg | grep -i dmar | tail -n 5
