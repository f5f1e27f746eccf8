#!/bin/sh
# SR-IOV through the API on a real kernel: 3 VFs on the NVMe PF, each with physfn, its own
# IOMMU group and no driver; then 2 through iovctl (the kernel needs 0 in between); 5 (above
# sriov_totalvfs) and malformed requests are refused and change nothing. A second PF
# with its own VF shows that each VF is tied to its own PF.
# lab-topology: --nvme 2
. /lab/lab.sh

tap_plan 25
tap_check "modules load (nvme, vfio-pci)" lab_modprobe nvme vfio-pci vfio_iommu_type1
lab_require_programs iovd iovctl || exit 1
iovd_start_checked || exit 1
pfs=$(for d in "$SYSFS_PCI"/*; do [ -e "$d/sriov_totalvfs" ] && basename "$d"; done)
pf=$(echo "$pfs" | head -n 1)
pf2=$(echo "$pfs" | sed -n 2p)
pf_group=$(lab_group_of "$pf")

api_expect "PUT /v1/devices/$pf/sriov {num_vfs: 3}" 200 PUT "/v1/devices/$pf/sriov" '{"num_vfs": 3}'
tap_is "sysfs: sriov_numvfs is 3" "$(cat "$SYSFS_PCI/$pf/sriov_numvfs")" 3
vfs=$(for l in "$SYSFS_PCI/$pf"/virtfn*; do basename "$(readlink "$l")"; done | sort)
api GET "/v1/devices/$pf"
tap_is "GET /v1/devices/$pf: sriov.vfs are the virtfn links" \
  "$(api_jq '.sriov.vfs | sort | join(" ")')" "$(echo $vfs)"

groups="$pf_group"
for vf in $vfs; do
  api GET "/v1/devices/$vf"
  group=$(api_jq .iommu_group)
  tap_is "$vf: physfn $pf, no driver, IOMMU group as sysfs" \
    "$(api_jq '"\(.physfn) \(.driver)"') $group" "$pf null $(lab_group_of "$vf")"
  case " $groups " in
  *" $group "*) tap_not_ok "$vf: its IOMMU group $group is its own" "shared with: $groups" ;;
  *) tap_ok "$vf: its IOMMU group $group is its own" ;;
  esac
  groups="$groups $group"
done

tap_check "iovctl sriov $pf 2" iovctl --socket "$IOVD_SOCKET" sriov "$pf" 2
tap_is "sysfs: sriov_numvfs is 2" "$(cat "$SYSFS_PCI/$pf/sriov_numvfs")" 2
api GET /v1/devices
tap_is "GET /v1/devices: exactly the 2 VFs sysfs has" \
  "$(api_jq "$API_LIST | map(select(.physfn == \"$pf\") | .address) | sort | join(\" \")")" \
  "$(echo $(for l in "$SYSFS_PCI/$pf"/virtfn*; do basename "$(readlink "$l")"; done | sort))"

api PUT "/v1/devices/$pf/sriov" '{"num_vfs": 5}'
tap_is "PUT {num_vfs: 5} (above total_vfs 4) is refused with a JSON error" \
  "${API_STATUS%??} $(api_jq '.error.code | type')" "4 string"
# The second PF: its VF belongs to it, and the first PF's VFs do not change.
tap_check "iovctl sriov $pf2 1" iovctl --socket "$IOVD_SOCKET" sriov "$pf2" 1
vf2=$(basename "$(readlink "$SYSFS_PCI/$pf2/virtfn0")")
api GET "/v1/devices/$vf2"
tap_is "$vf2: physfn $pf2, IOMMU group as sysfs" "$(api_jq '"\(.physfn) \(.iommu_group)"')" \
  "$pf2 $(lab_group_of "$vf2")"
api GET "/v1/devices/$pf"
tap_is "GET /v1/devices/$pf: still its own 2 VFs" "$(api_jq '.sriov.vfs | length')" 2

iovctl --socket "$IOVD_SOCKET" sriov "$pf" 5 >/tmp/iovctl.out 2>&1
tap_is "iovctl sriov $pf 5 fails with exit status 1 (API error)" "$?" 1 ||
  tap_diag "$(cat /tmp/iovctl.out)"
tap_is "after the refusals sysfs still has 2 VFs" "$(cat "$SYSFS_PCI/$pf/sriov_numvfs")" 2

for body in '{"num_vfs": -1}' '{"num_vfs": "2"}' '{"num_vfs": 2, "colour": "red"}' '{"num_vfs": 2'; do
  api_expect "PUT $body is a bad request" 400 PUT "/v1/devices/$pf/sriov" "$body"
done
tap_is "after the bad requests sysfs still has 2 VFs" "$(cat "$SYSFS_PCI/$pf/sriov_numvfs")" 2
iovd_stop
