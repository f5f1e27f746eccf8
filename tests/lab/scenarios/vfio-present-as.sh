#!/bin/sh
# Stable guest devices: the lab's first e1000e (8086:10d3, subsystem 8086:0000) passed
# through iovd's API (a VM whose vfio entry names the device by its address; the NIC is
# the one device of pool "nics") with "present_as" and a pinned "guest_address". The L2 guest must
# see the presented ids (subsystem 8086:0001, another 82574L board, revision 03) at slot
# 6 and its stock e1000e driver must still bind and read the lab's MAC; a device id that
# e1000e does not know must leave it unbound (the guest really matches drivers on what
# is presented); the lab still sees the device's own ids. GET /v1/vms shows the NIC with
# the presented ids and slot; each VM's delete gives it back to its pool. present_as
# objects that cannot work (empty, a class change, id ffff) are refused at create (400
# invalid_device, the parser iovd-vmm uses) and nothing is allocated.
# lab-topology: --nvme 0 --nics 1 --memory 1024 --timeout 900
# lab-prepare: l2/build-dma.sh
. /lab/lab.sh
# Two L2 boots within the lab's 900 s.
LAB_PT_WAIT=360

tap_plan 22
tap_check "kvm_amd, vfio-pci, vfio_iommu_type1 and e1000e load" \
  lab_modprobe kvm_amd vfio-pci vfio_iommu_type1 e1000e
lab_require_programs iovd iovd-vmm || exit 1

NIC=""
for d in "$SYSFS_PCI"/*; do
  [ "$(cat "$d/vendor"):$(cat "$d/device")" = "0x8086:0x10d3" ] && NIC=$(basename "$d") && break
done
tap_check "an e1000e function ($NIC)" test -n "$NIC" || exit 1
net_of() { ls "$SYSFS_PCI/$1/net" 2>/dev/null | head -n 1; }
has_net() { [ -n "$(net_of "$1")" ]; }
lab_wait 20 has_net "$NIC"
MAC=$(cat "$SYSFS_PCI/$NIC/net/$(net_of "$NIC")/address")
OWN="$(cat "$SYSFS_PCI/$NIC/subsystem_vendor"):$(cat "$SYSFS_PCI/$NIC/subsystem_device")"
tap_diag "$NIC: subsystem $OWN, revision $(cat "$SYSFS_PCI/$NIC/revision"), MAC $MAC"
tap_check "$NIC taken from e1000e (iovd hands out only driverless functions)" \
  lab_unbind "$NIC"
iovd_start_checked || exit 1
lab_pt_pool nics "$NIC"

# refused NAME PRESENT_AS PATTERN: the create is refused (400 invalid_device) saying why,
# no VM exists and the NIC is still free, driverless, in its pool.
refused() {
  api POST /v1/vms "$(lab_pt_vm_body "$1" "{\"type\": \"vfio\", \"device\": \"$NIC\", \"present_as\": $2}")"
  got="$API_STATUS $(api_jq .error.code)"
  msg=$(api_jq .error.message)
  api GET "/v1/vms/$1"
  vm=$API_STATUS
  api GET /v1/pools/nics
  [ "$got" = "400 invalid_device" ] && echo "$msg" | grep -q "$3" && [ "$vm" = 404 ] &&
    [ "$(api_jq .free) $(lab_driver_of "$NIC")" = "1 none" ] || {
    echo "create: $got: $msg; GET the VM: $vm; pool nics: $API_BODY; driver $(lab_driver_of "$NIC")"
    return 1
  }
}
tap_check "an empty present_as is refused" refused empty '{}' "names no id"
tap_check "a class change is refused" refused class '{"class": "010802"}' \
  "cannot change the class"
tap_check "vendor_id ffff (no device) is refused" refused nodevice '{"vendor_id": "ffff"}' \
  "not 0000 or ffff"

PRESENT='{"subsystem_vendor_id": "8086", "subsystem_id": "0001", "revision": "03"}'
lab_pt_vm_run pa "{\"type\": \"vfio\", \"device\": \"$NIC\", \"guest_address\": 6, \"present_as\": $PRESENT}" \
  "iovtest.bdf=0000:00:06.0"
tap_is "POST /v1/vms pa with a vfio entry for device $NIC" "$PT_CREATE" 201
lab_pt_check_held pa "$NIC" 6 "$PRESENT"
grep -a "l2-dma:" /tmp/pa.console | while read -r line; do tap_diag "$line"; done
tap_check "the L2 guest sees 8086:10d3 as subsystem 8086:0001 revision 03 at 00:06.0" \
  grep -q "l2-dma: ids 0x8086:0x10d3 subsystem 0x8086:0x0001 revision 0x03 class 0x020000 at 0000:00:06.0" \
  /tmp/pa.console
tap_check "its stock e1000e driver binds and reads the lab's MAC $MAC" \
  grep -q "l2-dma: netdev eth0 mac $MAC" /tmp/pa.console
tap_is "iovd-vmm exits 0 after the guest's reboot: the VM is stopped" \
  "$VMM_STATUS $PT_STATE" "0 stopped"
lab_pt_check_released pa "$NIC" nics

# A device id no driver of the guest knows: the guest matches on what it is shown.
lab_pt_vm_run unknown "{\"type\": \"vfio\", \"pool\": \"nics\", \"guest_address\": 6, \"present_as\": {\"device_id\": \"7fff\"}}" \
  "iovtest.bdf=0000:00:06.0"
lab_pt_check_held unknown "$NIC" 6 '{"device_id": "7fff"}'
grep -a "l2-dma:" /tmp/unknown.console | while read -r line; do tap_diag "$line"; done
tap_check "presented as 8086:7fff, the L2 guest sees that id" \
  grep -q "l2-dma: ids 0x8086:0x7fff subsystem 0x8086:0x0000 .* at 0000:00:06.0" \
  /tmp/unknown.console
tap_check "and no driver binds it" grep -q "l2-dma: driver none" /tmp/unknown.console
tap_is "iovd-vmm exits 0 after that guest's reboot too: the VM is stopped" \
  "$VMM_STATUS $PT_STATE" "0 stopped"
lab_pt_check_released unknown "$NIC" nics
iovd_stop >/dev/null

tap_is "the lab still sees the device's own subsystem ids" \
  "$(cat "$SYSFS_PCI/$NIC/subsystem_vendor"):$(cat "$SYSFS_PCI/$NIC/subsystem_device")" "$OWN"
