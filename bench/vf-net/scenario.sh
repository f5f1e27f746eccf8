#!/bin/sh
# Lab side of bench/vf-net/run (a benchmark, not a test; TAP only so the lab runner can
# judge the boot). One igb VF, allocated with settings and released over and over by
# lab-vf-net-bench (bench/vf-net/vf-net-bench.c), two ways in one process, alternating
# blocks of BENCH_CYCLES cycles for BENCH_ROUNDS rounds:
#   iovd  POST /v1/allocations from a pool with a net template (VLAN 100, trust) and a MAC,
#         then DELETE, over one keep-alive connection to iovd's socket
#   bare  the same kernel operations directly (iovd's netdev/ for rtnetlink): settings
#         read, set and read back, driver_override + drivers_probe to vfio-pci, wait for
#         /dev/vfio/G; then reset, unbind, clear the override, settings back; iovd is
#         stopped (SIGSTOP) meanwhile so it does not react to the uevents
# Its "bench:" lines become TAP comments for run to summarise; its "bench-cpu:" markers go
# to the console, where cpumon.py (outside) samples the lab QEMU's CPU time.
# lab-topology: --nvme 0 --nics 1 --igb 1
. /lab/lab.sh

IP=/usr/local/sbin/ip
ROUNDS=${BENCH_ROUNDS:-3}
CYCLES=${BENCH_CYCLES:-5}
MAC=02:00:00:00:30:01

tap_plan 6
tap_check "modules load (igb, vfio-pci)" lab_modprobe igb vfio-pci vfio_iommu_type1
lab_require_programs iovd lab-vf-net-bench || exit 1
iovd_start_checked || exit 1
pf=$(lab_find_pf 8086:10c9)
pfif=$(ls "$SYSFS_PCI/$pf/net" | head -n 1)
api PUT "/v1/devices/$pf/sriov" '{"num_vfs": 1}'
vf=$(basename "$(readlink "$SYSFS_PCI/$pf/virtfn0")")
api_expect "pool nics: $vf with net {vlan 100, trust}" 201 POST /v1/pools \
  "{\"name\": \"nics\", \"selector\": {\"addresses\": [\"$vf\"]}, \"net\": {\"vlan\": 100, \"trust\": true}}"
before=$($IP link show "$pfif" | grep ' vf ')

lab-vf-net-bench "$IOVD_SOCKET" nics "$vf" "$MAC" 100 "$ROUNDS" "$CYCLES" "$IOVD_PID" \
  >/tmp/bench.out
tap_is "every cycle of both arms succeeded" "$?" 0
kill -CONT "$IOVD_PID" # stopped during the bare arm: a failure there leaves it so
while IFS= read -r line; do
  tap_line "# $line"
done </tmp/bench.out
# Where iovd's time went, summed over every iovd cycle (GET /metrics).
curl -s --max-time 30 --unix-socket "$IOVD_SOCKET" http://localhost/metrics |
  grep '^iovd_allocation_step\|^iovd_device_refresh' | while read -r line; do
  tap_line "# bench-step: $line"
done
tap_is "the VF's settings are as before the benchmark" "$($IP link show "$pfif" | grep ' vf ')" \
  "$before"
tap_is "... and it is driverless again" "$(lab_driver_of "$vf")" none
iovd_stop
