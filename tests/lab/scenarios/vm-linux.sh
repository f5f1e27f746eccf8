#!/bin/sh
# The lab's Debian kernel as L2 guests through iovd's VM API: linux-a boots to its init's
# marker (serial console and boot-progress port, reported by GET /v1/vms/linux-a); a
# second Linux guest b runs beside it. Both survive iovd being restarted (SIGTERM, then
# SIGKILL) in the same iovd-vmm processes; SIGKILL of b's iovd-vmm makes b crashed with a
# reason while linux-a still answers on its console; `reboot -f` in linux-a ends in
# "stopped". The L2 kernel and initramfs come from tests/lab/l2/build.sh.
# Both guests boot at once on the lab's one vCPU: their markers came 120-140 s after the
# start with a load average of 4-5 on the 2 host cores, 260 s and more than 400 s when
# another lab's QEMU ran beside this one; hence the long waits. They add up to less than
# the lab's timeout, so a guest that never gets there is reported (lab_vm_report) from
# inside the lab rather than cut off by the runner.
# lab-topology: --nvme 0 --nics 0 --no-iommu --memory 1024 --timeout 900
# lab-prepare: l2/build.sh
. /lab/lab.sh

tap_plan 27
tap_check "kvm_amd loads" lab_modprobe kvm_amd
lab_require_programs iovd iovd-vmm || exit 1
iovd_start_checked || exit 1

CMDLINE="console=ttyS0 reboot=k panic=-1 quiet"
T0=$(date +%s)

# "STATE PID" of a VM as the API reports it.
vm_state_pid() {
  api GET "/v1/vms/$1"
  echo "$(api_jq .state) $(api_jq .pid)"
}
vm_create_linux() {
  mkfifo "$LAB_IMAGES/$1.in"
  api_expect "POST /v1/vms $1 (lab kernel, L2 initramfs, $2 MiB, virtio console input)" 201 \
    POST /v1/vms "{\"name\": \"$1\", \"vcpus\": 1, \"memory_mib\": $2,
      \"kernel\": \"/lab/vmlinuz\", \"initrd\": \"/lab/l2.cpio.gz\", \"cmdline\": \"$CMDLINE\",
      \"devices\": [{\"type\": \"virtio-console\", \"input\": \"$LAB_IMAGES/$1.in\"}]}"
}
elapsed() {
  echo "$(($(date +%s) - T0)) s"
}

vm_create_linux linux-a 256
api_expect "POST /v1/vms/linux-a/start" "200 202 204" POST /v1/vms/linux-a/start
vm_create_linux b 192
api_expect "POST /v1/vms/b/start" "200 202 204" POST /v1/vms/b/start
lab_vm_console_follow linux-a
lab_vm_console_follow b

# Without its marker nothing else can be checked: tell what each VM is doing, and stop.
report_and_exit() {
  lab_vm_report linux-a
  lab_vm_report b
  iovd_stop
  exit 1
}
tap_check "linux-a's console shows the L2 init's marker" \
  vm_console_wait 480 linux-a iovd-l2-marker || report_and_exit
echo "lab: linux-a marker after $(elapsed)"
api GET /v1/vms/linux-a
tap_is "GET /v1/vms/linux-a reports boot marker 42 with its time" \
  "$(api_jq '[.stats.markers[] | select(.value == 42 and .usec > 0)] | length')" 1
tap_diag "linux-a boot marker 42 at $(api_jq '.stats.markers[0].usec') us after its VMM started"
tap_check "b's console shows the L2 init's marker" vm_console_wait 240 b iovd-l2-marker ||
  report_and_exit
echo "lab: b marker after $(elapsed)"
for vm in linux-a b; do
  api GET "/v1/vms/$vm/console"
  tap_diag "$vm: $(api_jq .output | tr -d "\r" | grep -m 1 iovd-l2-marker)"
done
tap_check "linux-a's init listens on its virtio console" \
  vm_console_wait 120 linux-a "l2: hvc0-ready" || report_and_exit

before="$(vm_state_pid linux-a), $(vm_state_pid b)"
tap_is "both run, each in its own iovd-vmm ($before)" \
  "$(echo "$before" | sed -E "s/[0-9]+/N/g")" "running N, running N"
pid_a=$(vm_state_pid linux-a | cut -d' ' -f2)
tap_is "linux-a's iovd-vmm runs jailed: uid not 0, CapEff 0, Seccomp 2, NoNewPrivs 1" \
  "$(lab_vmm_jailed "$pid_a")" jailed
kill -TERM "$IOVD_PID"
wait "$IOVD_PID" 2>/dev/null
iovd_start_checked || exit 1
tap_is "after SIGTERM and a new iovd: both running in the same iovd-vmm processes" \
  "$(vm_state_pid linux-a), $(vm_state_pid b)" "$before"
kill -9 "$IOVD_PID"
wait "$IOVD_PID" 2>/dev/null
iovd_start_checked || exit 1
tap_is "after SIGKILL and a new iovd: both running in the same iovd-vmm processes" \
  "$(vm_state_pid linux-a), $(vm_state_pid b)" "$before"
api GET /v1/vms/linux-a
tap_is "the new iovd reads linux-a's live stats from its iovd-vmm (boot marker 42)" \
  "$(api_jq '[.stats.markers[] | select(.value == 42)] | length')" 1
api_expect "POST /v1/vms/linux-a/start while it runs: 409" 409 POST /v1/vms/linux-a/start
tap_is "the 409 names the conflict and linux-a is still running" \
  "$(api_jq '.error.code | type') $(vm_state_pid linux-a)" "string ${before%%,*}"

lab_send "$LAB_IMAGES/linux-a.in" "ping 1"
tap_check "linux-a answers on its console after the restarts" \
  lab_wait 120 vm_console_has linux-a "l2: pong 1" || lab_vm_report linux-a

b_pid=$(vm_state_pid b | cut -d ' ' -f 2)
kill -9 "$b_pid"
tap_check "SIGKILL of b's iovd-vmm ($b_pid): b is crashed" lab_wait 30 vm_state_is b crashed
api GET /v1/vms/b
b_reason=$(api_jq '.reason // ""')
tap_check "b's crash has a reason ('$b_reason')" test -n "$b_reason"
tap_is "linux-a unaffected: running in the same iovd-vmm" \
  "$(vm_state_pid linux-a)" "${before%%,*}"
lab_send "$LAB_IMAGES/linux-a.in" "ping 2"
tap_check "linux-a still answers on its console" lab_wait 120 vm_console_has linux-a "l2: pong 2" ||
  lab_vm_report linux-a

lab_send "$LAB_IMAGES/linux-a.in" "reboot"
tap_check "reboot -f in linux-a: the VM is stopped" lab_wait 120 vm_state_is linux-a stopped ||
  lab_vm_report linux-a
api GET /v1/vms/linux-a
a_reason=$(api_jq '.reason // ""')
tap_check "linux-a stopped through a guest reset or power-off ('$a_reason')" \
  sh -c "echo '$a_reason' | grep -Eq 'i8042|ACPI'"
tap_is "no iovd-vmm process is left" "$(pidof iovd-vmm)" ""
echo "lab: scenario done after $(elapsed)"
iovd_stop
