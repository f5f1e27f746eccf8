#!/bin/sh
# iovd's VM supervisor on the lab's nested KVM: a VM defined and started through the API
# runs a tests/guest payload in its own iovd-vmm; its console is readable; a guest reset
# ends in "stopped". A running VM survives SIGKILL of iovd and is found again by the
# restarted daemon (same iovd-vmm process); kill stops it and leaves no VMM behind.
. /lab/lab.sh

tap_plan 17
tap_check "kvm_amd loads" lab_modprobe kvm_amd
lab_require_programs iovd iovd-vmm || exit 1
iovd_start_checked || exit 1


api_expect "POST /v1/vms hello (tests/guest hello.bzImage, 64 MiB)" 201 POST /v1/vms \
  '{"name": "hello", "vcpus": 1, "memory_mib": 64, "kernel": "/opt/iovd/guest/hello.bzImage"}'
api_expect "POST /v1/vms/hello/start" "200 202 204" POST /v1/vms/hello/start
tap_check "the guest resets through the i8042 and hello is stopped" lab_wait 60 vm_state_is hello stopped
tap_check "GET /v1/vms/hello/console has the guest's line" \
  vm_console_has hello "hello from the guest"

api_expect "POST /v1/vms idle (tests/guest idle.bzImage, 128 MiB)" 201 POST /v1/vms \
  '{"name": "idle", "vcpus": 1, "memory_mib": 128, "kernel": "/opt/iovd/guest/idle.bzImage"}'
api_expect "POST /v1/vms/idle/start" "200 202 204" POST /v1/vms/idle/start
tap_check "the idle guest says so on its console" lab_wait 60 vm_console_has idle idle
vmm=$(pidof iovd-vmm)
tap_is "one iovd-vmm runs the idle VM" "$(echo "$vmm" | wc -w)" 1

kill -9 "$IOVD_PID"
wait "$IOVD_PID" 2>/dev/null
iovd_start_checked || exit 1
api GET /v1/vms/idle
tap_is "after SIGKILL of iovd, idle is still running in the same iovd-vmm ($vmm)" \
  "$(api_jq .state) $(pidof iovd-vmm)" "running $vmm"
api_expect "POST /v1/vms/idle/kill" "200 202 204" POST /v1/vms/idle/kill
tap_check "idle is stopped" lab_wait 30 vm_state_is idle stopped
tap_is "no iovd-vmm process is left" "$(pidof iovd-vmm)" ""

api_expect "DELETE /v1/vms/hello" "200 204" DELETE /v1/vms/hello
api_expect "GET /v1/vms/hello after the delete: not found" 404 GET /v1/vms/hello
iovd_stop
