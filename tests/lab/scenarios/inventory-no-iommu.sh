#!/bin/sh
# The inventory lab without the intel-iommu device: GET /v1/host must say the IOMMU and
# interrupt remapping are off, no device is in a group, and an allocation is refused
# without touching the device's driver. iovd-vmm refuses the same function for passthrough:
# without an IOMMU vfio-pci does not take it (no group), and nothing could confine its DMA.
# lab-topology: --no-iommu
. /lab/lab.sh

tap_plan 11
tap_check "modules load (nvme, e1000e, vfio-pci)" lab_modprobe nvme e1000e vfio-pci vfio_iommu_type1
lab_require_programs iovd || exit 1
iovd_start_checked || exit 1

api GET /v1/host
tap_is "GET /v1/host: iommu.enabled is false" "$(api_jq .iommu.enabled)" false
tap_is "GET /v1/host: iommu.interrupt_remapping is not true" \
  "$(api_jq '.iommu.interrupt_remapping == true')" false

api GET /v1/devices
tap_is "GET /v1/devices: no function is in an IOMMU group" \
  "$(api_jq "$API_LIST | map(select(.iommu_group != null)) | length")" 0

nic=$(for d in "$SYSFS_PCI"/*; do
  [ "$(cat "$d/vendor"):$(cat "$d/device")" = "0x8086:0x10d3" ] && basename "$d"
done | head -n 1)
api POST /v1/allocations "{\"owner\": \"lab\", \"device\": \"$nic\"}"
tap_is "POST /v1/allocations of $nic is refused (HTTP 409)" "$API_STATUS" 409
tap_is "the refusal says why: error.code iommu_unavailable" "$(api_jq .error.code)" \
  iommu_unavailable
tap_is "$nic is still bound to e1000e" "$(lab_driver_of "$nic")" e1000e
iovd_stop

# Passthrough of the same NIC without an IOMMU: vfio-pci refuses to bind it (it has no
# IOMMU group; only the unsafe no-IOMMU mode would take it), and iovd-vmm refuses the
# device before the guest runs, saying why.
tap_check "kvm_amd loads" lab_modprobe kvm_amd
lab_bind_vfio "$nic" >/dev/null 2>&1
tap_is "vfio-pci does not take $nic without an IOMMU" "$(lab_driver_of "$nic")" none
cat >/tmp/pt.json <<JSON
{"name": "pt", "vcpus": 1, "memory_mib": 64, "kernel": "/opt/iovd/guest/hello.bzImage",
 "devices": [{"type": "vfio", "host": "$nic"}]}
JSON
timeout 60 iovd-vmm --config /tmp/pt.json >/tmp/pt.log 2>&1
status=$?
tap_check "iovd-vmm refuses to pass $nic through without an IOMMU (status $status)" \
  eval "[ $status = 1 ] && grep -q 'has no IOMMU group' /tmp/pt.log" || tap_diag "$(cat /tmp/pt.log)"
