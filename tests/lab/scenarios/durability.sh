#!/bin/sh
# Durability on a real kernel: iovd is killed with SIGKILL right after an allocation is
# acknowledged, and again while allocations are in flight. After each restart the
# acknowledged allocation is still there and bound, no VF is half-bound (vfio-pci override
# without an allocation) and none is handed out twice; a second daemon on the same state
# directory refuses to start.
. /lab/lab.sh

tap_plan 17
tap_check "modules load (nvme, vfio-pci)" lab_modprobe nvme vfio-pci vfio_iommu_type1
lab_require_programs iovd || exit 1
iovd_start_checked || exit 1
pf=$(lab_find_pf 1b36:0010)
api_expect "PUT /v1/devices/$pf/sriov {num_vfs: 3}" 200 PUT "/v1/devices/$pf/sriov" '{"num_vfs": 3}'
api_expect "POST /v1/pools nvme-vfs" 201 POST /v1/pools \
  "{\"name\": \"nvme-vfs\", \"selector\": {\"physfn\": \"$pf\"}}"

api_expect "POST /v1/allocations {pool: nvme-vfs} is acknowledged" 201 POST /v1/allocations \
  '{"owner": "acknowledged", "pool": "nvme-vfs"}'
kill -9 "$IOVD_PID"
wait "$IOVD_PID" 2>/dev/null
alloc=$(api_jq .id)
vf=$(api_jq '.devices[0] | if type == "object" then .address else . end')
iovd_start_checked || exit 1
api GET "/v1/allocations/$alloc"
tap_is "after SIGKILL and restart, allocation $alloc still holds $vf" \
  "$API_STATUS $(api_jq '.devices[0] | if type == "object" then .address else . end')" "200 $vf"
tap_is "$vf is still bound to vfio-pci" "$(lab_driver_of "$vf")" vfio-pci

# Kill the daemon at different points of an allocation in flight.
for delay in 0 0.02 0.1; do
  curl -s --max-time 10 --unix-socket "$IOVD_SOCKET" -X POST -H 'Content-Type: application/json' \
    --data '{"owner": "in-flight", "pool": "nvme-vfs"}' http://lab/v1/allocations \
    >/dev/null 2>&1 &
  client=$!
  sleep "$delay"
  kill -9 "$IOVD_PID"
  wait "$IOVD_PID" 2>/dev/null
  wait "$client" 2>/dev/null
  tap_check_here "SIGKILL $delay s into an allocation: iovd restarts" iovd_start
  tap_check "SIGKILL $delay s in: nothing half-bound, nothing twice, $alloc intact" sh -c \
    ". /lab/lab.sh; lab_check_vfs_consistent $pf && lab_allocated_devices | grep -q '^$vf $alloc\$'"
done

# Take everything that is left: each VF must come out once, then the pool is empty.
status=201
while [ "$status" = 201 ]; do
  api POST /v1/allocations '{"owner": "drain", "pool": "nvme-vfs"}'
  status=$API_STATUS
done
tap_is "when the pool is empty a further allocation is refused (HTTP 409)" "$status" 409
tap_is "every VF is held exactly once" \
  "$(lab_allocated_devices | awk '{ print $1 }' | sort | tr '\n' ' ')" \
  "$(for l in "$SYSFS_PCI/$pf"/virtfn*; do basename "$(readlink "$l")"; done | sort | tr '\n' ' ')"

timeout 10 iovd --listen unix:/run/iovd/second.sock --state-dir "$IOVD_STATE" \
  --run-dir /run/iovd-second >/tmp/second.log 2>&1 3>&-
rc=$?
if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ]; then
  tap_ok "a second iovd on the same state directory refuses to start (status $rc)"
else
  tap_not_ok "a second iovd on the same state directory refuses to start" "status $rc" \
    "$(tail -n 5 /tmp/second.log)"
fi
iovd_stop
