#!/bin/sh
# Durability on a real kernel: iovd is killed with SIGKILL right after an allocation is
# acknowledged, and again while allocations are in flight (as the bind starts, as it
# completes, and at fractions of an allocation's duration). After each restart the
# acknowledged allocation is still there and bound, no VF is half-bound (vfio-pci override
# without an allocation) and none is handed out twice; a second daemon on the same state
# directory refuses to start.
. /lab/lab.sh

tap_plan 21
tap_check "modules load (nvme, vfio-pci)" lab_modprobe nvme vfio-pci vfio_iommu_type1
lab_require_programs iovd || exit 1
iovd_start_checked || exit 1
pf=$(lab_find_pf 1b36:0010)
api_expect "PUT /v1/devices/$pf/sriov {num_vfs: 3}" 200 PUT "/v1/devices/$pf/sriov" '{"num_vfs": 3}'
api_expect "POST /v1/pools nvme-vfs" 201 POST /v1/pools \
  "{\"name\": \"nvme-vfs\", \"selector\": {\"physfn\": \"$pf\"}}"

before=$(cut -d ' ' -f 1 /proc/uptime)
api_expect "POST /v1/allocations {pool: nvme-vfs} is acknowledged" 201 POST /v1/allocations \
  '{"owner": "acknowledged", "pool": "nvme-vfs"}'
kill -9 "$IOVD_PID"
# How long one allocation takes from the client's start, curl's own start-up included.
took=$(awk -v a="$before" -v b="$(cut -d ' ' -f 1 /proc/uptime)" 'BEGIN { print b - a }')
wait "$IOVD_PID" 2>/dev/null
alloc=$(api_jq .id)
vf=$(api_jq '.devices[0] | if type == "object" then .address else . end')
iovd_start_checked || exit 1
api GET "/v1/allocations/$alloc"
tap_is "after SIGKILL and restart, allocation $alloc still holds $vf" \
  "$API_STATUS $(api_jq '.devices[0] | if type == "object" then .address else . end')" "200 $vf"
tap_is "$vf is still bound to vfio-pci" "$(lab_driver_of "$vf")" vfio-pci

# ---- SIGKILL while an allocation is in flight ----

# Free VFs' driver_override files: the first sign of a bind is vfio-pci written there.
free_overrides() {
  held=$(lab_allocated_devices)
  for l in "$SYSFS_PCI/$pf"/virtfn*; do
    v=$(basename "$(readlink "$l")")
    echo "$held" | grep -q "^$v " || echo "$SYSFS_PCI/$v/driver_override"
  done
}

# Triggers for the kill; each returns 1 if what it waits for never happens. Polled with
# shell builtins only (read, test), so the poll does not fork while the daemon works.
trigger_sleep() {
  sleep "$1"
}
trigger_override() {
  n=0
  while [ $n -lt 20000 ]; do
    for f in $overrides; do
      read -r o <"$f" && [ "$o" = vfio-pci ] && return 0
    done
    n=$((n + 1))
  done
  return 1
}
trigger_bound() {
  n=0
  while [ $n -lt 20000 ]; do
    for f in $overrides; do
      [ -e "${f%/driver_override}/driver" ] && return 0
    done
    n=$((n + 1))
  done
  return 1
}

# kill_round DESCRIPTION TRIGGER [ARGS]: start an allocation, SIGKILL iovd when the
# trigger fires, restart it, check the promise, then release what the round allocated so
# every round starts with the same free VFs.
kill_round() {
  what=$1
  shift
  overrides=$(free_overrides)
  curl -s --max-time 20 --unix-socket "$IOVD_SOCKET" -X POST \
    -H 'Content-Type: application/json' --data '{"owner": "in-flight", "pool": "nvme-vfs"}' \
    http://lab/v1/allocations >/dev/null 2>&1 3>&- &
  client=$!
  "$@"
  fired=$?
  kill -9 "$IOVD_PID"
  answered=yes
  kill -0 "$client" 2>/dev/null && answered=no
  wait "$IOVD_PID" 2>/dev/null
  wait "$client" 2>/dev/null
  # The trigger seeing the bind is certain; whether the answer was out by the kill is
  # timing (the client may be exiting), so it is reported, not judged.
  if [ "$1" != trigger_sleep ]; then
    tap_is "SIGKILL $what: the kill landed once the bind had begun" "$fired" 0
    tap_diag "the client had its answer and exited before the kill: $answered"
  fi
  tap_check_here "SIGKILL $what: iovd restarts" iovd_start
  tap_check "SIGKILL $what: nothing half-bound, nothing twice, $alloc intact" sh -c \
    ". /lab/lab.sh; lab_check_vfs_consistent $pf && lab_allocated_devices | grep -q '^$vf $alloc\$'"
  api GET /v1/allocations
  tap_diag "after SIGKILL $what: allocations of $(api_jq "$API_LIST | map(.owner) | join(\",\")");" \
    "$(grep 'state restored' "$IOVD_LOG" | tail -n 1)"
  for id in $(api_jq "$API_LIST | map(select(.owner == \"in-flight\")) | .[].id"); do
    api DELETE "/v1/allocations/$id"
  done
}

kill_round "as a VF's driver_override turns vfio-pci" trigger_override
kill_round "as a VF gets bound to vfio-pci" trigger_bound
# And at fractions of the time one allocation took: before the request arrives, around
# its answer.
for fraction in 0.3 1.0; do
  delay=$(awk -v t="$took" -v f="$fraction" 'BEGIN { printf "%.3f", t * f }')
  kill_round "$delay s into an allocation" trigger_sleep "$delay"
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
