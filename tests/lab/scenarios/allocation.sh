#!/bin/sh
# Allocation on a real kernel: a VF allocated from a pool (iovctl alloc) is bound to
# vfio-pci and its /dev/vfio/N opens viable and attaches to a type1 container; release
# (iovctl release) gives it back driverless; a NIC that e1000e drives is refused and left
# alone. The multi-device group (ICH9 LPC + SATA + SMBus) is refused while AHCI drives
# the SATA function, and granted whole once no member has a host driver; on release,
# members that cannot be reset are quarantined. Bad requests are refused and change
# nothing.
. /lab/lab.sh

tap_plan 29
tap_check "modules load (nvme, e1000e, ahci, vfio-pci)" \
  lab_modprobe nvme e1000e ahci vfio-pci vfio_iommu_type1
lab_require_programs iovd iovctl lab-vfio-check || exit 1
iovd_start_checked || exit 1
pf=$(lab_find_pf 1b36:0010)

api_expect "PUT /v1/devices/$pf/sriov {num_vfs: 2}" 200 PUT "/v1/devices/$pf/sriov" '{"num_vfs": 2}'
api_expect "POST /v1/pools nvme-vfs (the VFs of $pf)" 201 POST /v1/pools \
  "{\"name\": \"nvme-vfs\", \"selector\": {\"physfn\": \"$pf\"}}"
api GET /v1/pools/nvme-vfs
tap_is "GET /v1/pools/nvme-vfs: capacity 2, free 2" "$(api_jq '"\(.capacity) \(.free)"')" "2 2"

# ---- a VF by pool ----
tap_check_here "iovctl alloc --owner lab --pool nvme-vfs" sh -c \
  "iovctl --socket $IOVD_SOCKET --json alloc --owner lab --pool nvme-vfs >/tmp/alloc.json"
API_BODY=$(cat /tmp/alloc.json)
alloc=$(api_jq .id)
vf=$(api_jq '.devices[0] | if type == "object" then .address else . end')
vfio=$(api_jq .vfio_group)
tap_is "the allocation holds one VF of $pf and names its VFIO group node" \
  "$(basename "$(readlink "$SYSFS_PCI/$vf/physfn" 2>/dev/null)" 2>/dev/null) $vfio" \
  "$pf /dev/vfio/$(lab_group_of "$vf")"
tap_is "$vf is bound to vfio-pci" "$(lab_driver_of "$vf")" vfio-pci
tap_check "$vfio opens, is viable and attaches to a type1 container" lab-vfio-check "$vfio" --attach
api GET "/v1/devices/$vf"
tap_is "GET /v1/devices/$vf: allocation is $alloc" \
  "$(api_jq '.allocation | if type == "object" then .id else . end')" "$alloc"
api GET /v1/pools/nvme-vfs
tap_is "GET /v1/pools/nvme-vfs: free 1" "$(api_jq .free)" 1
tap_check "iovctl release $alloc" iovctl --socket "$IOVD_SOCKET" release "$alloc"
tap_is "$vf is driverless again, with no driver_override left" \
  "$(lab_driver_of "$vf") $(lab_override_of "$vf")" "none none"
api_expect "GET /v1/allocations/$alloc after release: not found" 404 GET "/v1/allocations/$alloc"

# ---- a NIC its host driver holds: iovd never takes a device from a host driver ----
nic=$(for d in "$SYSFS_PCI"/*; do
  [ "$(cat "$d/vendor"):$(cat "$d/device")" = "0x8086:0x10d3" ] && basename "$d"
done | head -n 1)
api POST /v1/allocations "{\"owner\": \"lab\", \"device\": \"$nic\"}"
tap_is "allocating $nic (driven by e1000e) is refused: 409 group_not_viable, blocker $nic" \
  "$API_STATUS $(api_jq '"\(.error.code) \(.error.blockers | map(.address) | join(","))"')" \
  "409 group_not_viable $nic"
tap_is "$nic is still on e1000e" "$(lab_driver_of "$nic")" e1000e

# ---- the multi-device group ----
sata=0000:00:1f.2
group=$(lab_group_of "$sata")
members=$(echo $(ls "/sys/kernel/iommu_groups/$group/devices"))
tap_is "$sata is driven by ahci, the other members of group $group have no driver" \
  "$(for m in $members; do lab_driver_of "$m"; done | tr '\n' ' ')" "none ahci none "
api POST /v1/allocations "{\"owner\": \"lab\", \"device\": \"$sata\"}"
tap_is "allocating $sata is refused while ahci drives it (HTTP 409)" "$API_STATUS" 409
tap_is "after the refusal nothing moved" \
  "$(for m in $members; do lab_driver_of "$m"; done | tr '\n' ' ')" "none ahci none "
echo "$sata" >"$SYSFS_PCI/$sata/driver/unbind"
# An unbind outside iovd reaches the inventory through its uevent (the udev thread skips
# only binds and unbinds the snapshot already shows).
api_shows_no_driver() {
  api GET "/v1/devices/$1" && [ "$(api_jq .driver)" = null ]
}
tap_check "GET /v1/devices/$sata shows no driver once the unbind's uevent is in" \
  lab_wait 10 api_shows_no_driver "$sata"
api_expect "with ahci unbound, POST /v1/allocations {device: $sata} is granted" 201 \
  POST /v1/allocations "{\"owner\": \"lab\", \"device\": \"$sata\"}"
group_alloc=$(api_jq .id)
tap_is "the allocation holds the whole group $group" \
  "$(api_jq '.devices | map(if type == "object" then .address else . end) | sort | join(" ")')" \
  "$members"
tap_is "every member of group $group is bound to vfio-pci" \
  "$(for m in $members; do lab_driver_of "$m"; done | tr '\n' ' ')" "vfio-pci vfio-pci vfio-pci "
tap_check "/dev/vfio/$group is viable" lab-vfio-check "/dev/vfio/$group"
api_expect "DELETE /v1/allocations/$group_alloc" "200 204" DELETE "/v1/allocations/$group_alloc"
# A device goes back only after a reset; one without a reset method (no sysfs "reset")
# stays on vfio-pci, quarantined and reported.
no_reset=$(for m in $members; do [ -e "$SYSFS_PCI/$m/reset" ] || echo "$m"; done | tr '\n' ' ')
tap_is "the release reports exactly the members without a reset method as quarantined" \
  "$(api_jq '(.quarantined // []) | map(.address) | sort | join(" ")') " "$no_reset"
tap_is "members that reset are driverless again, quarantined ones stay on vfio-pci" \
  "$(for m in $members; do lab_driver_of "$m"; done | tr '\n' ' ')" \
  "$(for m in $members; do
    case " $no_reset " in *" $m "*) echo vfio-pci ;; *) echo none ;; esac
  done | tr '\n' ' ')"

# ---- bad requests ----
api_expect "POST /v1/allocations {pool: no-such-pool} is not found" 404 POST /v1/allocations \
  '{"owner": "lab", "pool": "no-such-pool"}'
api_expect "POST /v1/allocations with a malformed address is a bad request" 400 \
  POST /v1/allocations '{"owner": "lab", "device": "0000:01:00.1/../../x"}'
iovd_stop
