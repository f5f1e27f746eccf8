#!/bin/sh
# Lab side of bench/vf-net/run (a benchmark, not a test; TAP only so the lab runner can
# judge the boot). One igb VF, allocated and released over and over two ways, alternating:
#   iovd  POST /v1/allocations from a pool with a net template (VLAN 100, trust) and a MAC,
#         then DELETE: iovd records the VF's settings, applies them, binds the group to
#         vfio-pci, saves; on release resets, gives the VF back, restores the settings
#   bare  the same kernel operations by hand: ip link set PF vf 0 mac/vlan/trust and a read
#         back, driver_override + drivers_probe to vfio-pci, wait for /dev/vfio/G; then
#         reset, unbind, clear the override, ip link set the settings back
#   plain iovd again, from a pool without a template and with no MAC: the allocation alone
#   client the scenario's own cost per iovd cycle: two curl and one jq, two HTTP round
#         trips that do no work
# Times from /proc/uptime (10 ms steps; a cycle takes far longer under TCG), printed as
# "# bench: ARM round=R cycle=C ms=N" for run to summarise.
# lab-topology: --nvme 0 --nics 1 --igb 1
. /lab/lab.sh

IP=/usr/local/sbin/ip
ROUNDS=${BENCH_ROUNDS:-3}
CYCLES=${BENCH_CYCLES:-5}
MAC=02:00:00:00:30:01

tap_plan 5
tap_check "modules load (igb, vfio-pci)" lab_modprobe igb vfio-pci vfio_iommu_type1
iovd_start_checked || exit 1
pf=$(lab_find_pf 8086:10c9)
pfif=$(ls "$SYSFS_PCI/$pf/net" | head -n 1)
api PUT "/v1/devices/$pf/sriov" '{"num_vfs": 1}'
vf=$(basename "$(readlink "$SYSFS_PCI/$pf/virtfn0")")
group=$(lab_group_of "$vf")
api_expect "pool nics: $vf with net {vlan 100, trust}" 201 POST /v1/pools \
  "{\"name\": \"nics\", \"selector\": {\"addresses\": [\"$vf\"]}, \"net\": {\"vlan\": 100, \"trust\": true}}"
api_expect "pool plain: $vf, no template" 201 POST /v1/pools \
  "{\"name\": \"plain\", \"selector\": {\"addresses\": [\"$vf\"]}}"
orig_mac=$($IP link show "$pfif" | sed -n 's/.*vf 0 .*link\/ether \([0-9a-f:]*\).*/\1/p')

now_ms() {
  awk '{ printf "%d\n", $1 * 1000 }' /proc/uptime
}
vfio_ready() {
  [ -e "/dev/vfio/$group" ]
}
bare_cycle() {
  $IP link set "$pfif" vf 0 mac "$MAC" vlan 100 trust on &&
    $IP link show "$pfif" >/dev/null &&
    echo vfio-pci >"$SYSFS_PCI/$vf/driver_override" &&
    echo "$vf" >/sys/bus/pci/drivers_probe &&
    lab_wait 10 vfio_ready &&
    echo 1 >"$SYSFS_PCI/$vf/reset" &&
    echo "$vf" >/sys/bus/pci/drivers/vfio-pci/unbind &&
    echo >"$SYSFS_PCI/$vf/driver_override" &&
    $IP link set "$pfif" vf 0 mac "$orig_mac" vlan 0 trust off
}
alloc_release() {
  api POST /v1/allocations "$1"
  [ "$API_STATUS" = 201 ] || return 1
  api DELETE "/v1/allocations/$(api_jq .id)"
  [ "$API_STATUS" = 200 ]
}
iovd_cycle() {
  alloc_release "{\"owner\": \"bench\", \"pool\": \"nics\", \"mac\": \"$MAC\"}"
}
# iovd without network settings: what the settings add to an allocation.
plain_cycle() {
  alloc_release '{"owner": "bench", "pool": "plain"}'
}
# The client's share of an iovd cycle: the same processes (two curl, one jq) and two
# HTTP round trips on a request that does no work (GET /v1/host reads no hardware).
client_cycle() {
  api GET /v1/host && api_jq .counts >/dev/null && api GET /v1/host
}

failed=""
for round in $(seq 1 "$ROUNDS"); do
  for arm in iovd plain bare client; do
    for cycle in $(seq 1 "$CYCLES"); do
      start=$(now_ms)
      ${arm}_cycle || failed="$failed $arm/$round/$cycle"
      tap_diag "bench: $arm round=$round cycle=$cycle ms=$(($(now_ms) - start))"
    done
  done
done
# Where iovd's time went, summed over every iovd and plain cycle (GET /metrics).
curl -s --max-time 30 --unix-socket "$IOVD_SOCKET" http://localhost/metrics |
  grep '^iovd_allocation_step\|^iovd_device_refresh' | while read -r line; do
  tap_diag "bench-step: $line"
done
tap_is "every cycle succeeded" "${failed:-none}" none || tap_diag "$API_BODY"
iovd_stop
