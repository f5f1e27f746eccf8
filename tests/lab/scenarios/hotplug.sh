#!/bin/sh
# Hotplug on a real kernel: the VFs are removed behind iovd's back (0 written to
# sriov_numvfs in sysfs, not through the API). The events stream reports each removal,
# the inventory follows, and the allocation on a vanished VF shows state "lost".
. /lab/lab.sh

tap_plan 12
tap_check "modules load (nvme, vfio-pci)" lab_modprobe nvme vfio-pci vfio_iommu_type1
lab_require_programs iovd || exit 1
iovd_start_checked || exit 1
pf=$(lab_find_pf 1b36:0010)
api_expect "PUT /v1/devices/$pf/sriov {num_vfs: 3}" 200 PUT "/v1/devices/$pf/sriov" '{"num_vfs": 3}'
vfs=$(for l in "$SYSFS_PCI/$pf"/virtfn*; do basename "$(readlink "$l")"; done | sort)
api_expect "POST /v1/pools nvme-vfs" 201 POST /v1/pools \
  "{\"name\": \"nvme-vfs\", \"selector\": {\"physfn\": \"$pf\"}}"
api_expect "POST /v1/allocations {pool: nvme-vfs}" 201 POST /v1/allocations \
  '{"owner": "lab", "pool": "nvme-vfs"}'
alloc=$(api_jq .id)

curl -sN --unix-socket "$IOVD_SOCKET" http://lab/v1/events >/tmp/events.log 2>&1 3>&- &
events=$!
# The removal must not happen before the stream is subscribed: wait for the daemon to
# count the client.
subscribed() {
  api GET /metrics
  printf '%s\n' "$API_BODY" | grep -q '^iovd_event_subscribers [1-9]'
}
tap_check "GET /v1/events is subscribed (iovd_event_subscribers in /metrics)" \
  lab_wait 30 subscribed
tap_check "0 written to $pf's sriov_numvfs behind iovd's back" \
  sh -c "echo 0 >$SYSFS_PCI/$pf/sriov_numvfs"

all_removed() {
  for vf in $vfs; do
    grep "device_removed" /tmp/events.log | grep -q "$vf" || return 1
  done
}
if lab_wait 30 all_removed; then
  tap_ok "GET /v1/events reports device_removed for $(echo $vfs)"
else
  tap_not_ok "GET /v1/events reports device_removed for $(echo $vfs)" "$(tail -n 20 /tmp/events.log)"
fi
lost_event() {
  grep "allocation_lost" /tmp/events.log | grep -q "$alloc"
}
if lab_wait 30 lost_event; then
  tap_ok "GET /v1/events reports allocation_lost for $alloc"
else
  tap_not_ok "GET /v1/events reports allocation_lost for $alloc" "$(tail -n 20 /tmp/events.log)"
fi
kill "$events" 2>/dev/null

no_vfs_listed() {
  api GET /v1/devices
  [ "$(api_jq "$API_LIST | map(select(.physfn != null)) | length")" = 0 ]
}
tap_check "GET /v1/devices lists no VF any more" lab_wait 30 no_vfs_listed
api GET "/v1/devices/$pf"
tap_is "GET /v1/devices/$pf: sriov.num_vfs 0, no vfs" \
  "$(api_jq '"\(.sriov.num_vfs) \(.sriov.vfs | length)"')" "0 0"
api GET "/v1/allocations/$alloc"
tap_is "GET /v1/allocations/$alloc: state lost" "$(api_jq .state)" lost
iovd_stop
echo "lab: the events stream:"
cat /tmp/events.log
