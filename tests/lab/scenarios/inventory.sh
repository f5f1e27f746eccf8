#!/bin/sh
# Inventory on a real kernel: every PCI function of the lab appears in GET /v1/devices with
# the ids, class, driver and IOMMU group sysfs gives, with names from pci.ids; GET /v1/host
# reports the emulated Intel IOMMU and its interrupt remapping as enabled.
. /lab/lab.sh

functions=$(ls "$SYSFS_PCI")
n_functions=$(echo "$functions" | wc -l)
tap_plan $((13 + n_functions))

tap_check "modules load (nvme, e1000e, vfio-pci)" lab_modprobe nvme e1000e vfio-pci vfio_iommu_type1
lab_require_programs iovd iovctl || exit 1
iovd_start_checked || exit 1

api GET /v1/host
tap_is "GET /v1/host: iommu.enabled" "$(api_jq .iommu.enabled)" true
tap_is "GET /v1/host: iommu.interrupt_remapping" "$(api_jq .iommu.interrupt_remapping)" true
tap_is "GET /v1/host: vfio-pci is loaded" "$(api_jq '.vfio_pci.loaded // .vfio_pci_loaded')" true

api GET /v1/devices
tap_is "GET /v1/devices lists every function sysfs has" \
  "$(api_jq "$API_LIST | map(.address) | sort | join(\" \")")" "$(echo $functions)"

devices=$(api_jq "$API_LIST | .[] | \"\\(.address) \" + $API_DEVICE_FIELDS +
  \" \\(.vendor_name) / \\(.device_name)\"")
ids=$(for f in $functions; do
  echo "$(sed 's/^0x//' "$SYSFS_PCI/$f/vendor"):$(sed 's/^0x//' "$SYSFS_PCI/$f/device")"
done | sort -u)
names=$(lab_pciids_names $ids)
printf 'lab: iovd says:\n%s\nlab: pci.ids says:\n%s\n' "$devices" "$names"
for f in $functions; do
  id="$(sed 's/^0x//' "$SYSFS_PCI/$f/vendor"):$(sed 's/^0x//' "$SYSFS_PCI/$f/device")"
  tap_is "$f: ids, class, driver, IOMMU group as in sysfs; names as in pci.ids" \
    "$(echo "$devices" | grep "^$f " | cut -d ' ' -f 2-)" \
    "$(lab_sysfs_device_fields "$f") $(echo "$names" | grep "^$id " | cut -d ' ' -f 2-)"
done

pf=$(lab_find_pf 1b36:0010)
api GET "/v1/devices/$pf"
tap_is "GET /v1/devices/$pf: names from pci.ids" \
  "$(api_jq '"\(.vendor_name) / \(.device_name)"')" "Red Hat, Inc. / QEMU NVM Express Controller"
tap_is "GET /v1/devices/$pf: an SR-IOV PF with 4 VFs possible, none enabled" \
  "$(api_jq '"\(.sriov.total_vfs) \(.sriov.num_vfs) \(.sriov.vfs | length)"')" \
  "$(cat "$SYSFS_PCI/$pf/sriov_totalvfs") 0 0"

lpc_group=$(lab_group_of 0000:00:1f.0)
api GET "/v1/iommu-groups/$lpc_group"
ich9="0000:00:1f.0 0000:00:1f.2 0000:00:1f.3"
tap_is "GET /v1/iommu-groups/$lpc_group: the ICH9 LPC, SATA and SMBus share it, as in sysfs" \
  "$(api_jq '.devices | map(if type == "object" then .address else . end) | join(" ")') |" \
  "$(echo $(ls "/sys/kernel/iommu_groups/$lpc_group/devices")) |"
tap_is "the multi-device group is the ICH9 trio" \
  "$(echo $(ls "/sys/kernel/iommu_groups/$lpc_group/devices"))" "$ich9"

tap_check "iovctl devices lists the NVMe PF" sh -c \
  "iovctl --socket $IOVD_SOCKET devices | grep -q '$pf'"

api_expect "GET /v1/devices/0000:01:00.8 (no function 8) is refused as invalid" 400 \
  GET /v1/devices/0000:01:00.8
api_expect "GET /v1/devices/0000:42:00.0 (absent) is not found" 404 GET /v1/devices/0000:42:00.0
iovd_stop
