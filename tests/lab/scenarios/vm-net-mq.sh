#!/bin/sh
# Multiqueue virtio-net (issue 12): an L2 Linux guest with 2 vCPUs and a TAP NIC with
# "queues": 2, once on iovd-vmm's userspace path ("vhost": false) and once on vhost-net
# (one vhost device per pair). iovd opens two queues of a multiqueue TAP (the lab sees
# tx-0 and tx-1); the guest's virtio_net driver sets two pairs through the control queue
# (its eth0 shows rx-0, rx-1, tx-0, tx-1); pings from each guest CPU leave on that CPU's
# transmit queue (XPS) and the replies come back on the same pair (the TAP's flow
# steering), so both pairs carry frames: the guest's per-queue interrupts count on both,
# and on the userspace path the VMM's per-queue counters too (with the adaptive poll on:
# "poll_us": 50, its hits and misses counted), on vhost-net a worker per pair and nothing
# in the VMM's. The L2 kernel and initramfs come from tests/lab/l2/build-link.sh.
# The lab itself has one CPU, like every other lab: the guest's two vCPUs are two threads of
# the lab's. With two lab CPUs (QEMU's multi-threaded TCG running nested SVM on both), the
# vhost arm's L2 guest triple-faulted in 2 of 2 CI runs (once at boot, once before its
# pings; 0 of 9 runs here), and this was the only lab with two CPUs; nothing the scenario
# checks needs the lab's CPUs to be two.
# lab-topology: --nvme 0 --nics 0 --no-iommu --memory 1024 --cpus 1 --timeout 1800
# lab-prepare: l2/build-link.sh
. /lab/lab.sh

tap_plan 29
tap_check "kvm_amd, tun and vhost_net load" lab_modprobe kvm_amd tun vhost_net
lab_require_programs iovd iovd-vmm || exit 1
iovd_start_checked || exit 1

CMDLINE="console=ttyS0 reboot=k panic=-1 quiet"
net='.stats.virtio[] | select(.type == "virtio-net")'

report_and_exit() {
  lab_vm_report "$1"
  iovd_stop
  exit 1
}

# irq NAME_PATTERN: the guest's interrupt count of the eth0 queue vector matching it, from
# the last "l2-link: irqs" line.
irq() {
  api GET "/v1/vms/$vm/console"
  api_jq -r .output | grep "l2-link: irqs" | tail -n 1 | tr ' ' '\n' |
    grep -A 1 -- "$1\$" | tail -n 1
}

# run_arm NAME VHOST TAP MAC DATA_PATH POLL_US: 10 results.
# The answers of VM $1's guest to "pingcpu $2" so far.
ping_answers() {
  api GET "/v1/vms/$1/console"
  api_jq .output | grep "l2-link: pingcpu $2 [of]"
}
# (or the VM no longer runs: a crashed guest is reported at once, not after 120 s)
ping_answers_above() {
  [ "$(ping_answers "$1" "$2" | wc -l)" -gt "$3" ] || ! vm_state_is "$1" running
}
# ping_from VM CPU ADDR: up to three tries, 2 s apart: right after carrier the guest's own
# link-local address may still be tentative (ping6: "Cannot assign requested address").
ping_from() {
  for n in 1 2 3; do
    before=$(ping_answers "$1" "$2" | wc -l)
    lab_send "$LAB_IMAGES/$1.in" "pingcpu $2 $3"
    lab_wait 120 ping_answers_above "$1" "$2" "$before" || return 1
    ping_answers "$1" "$2" | tail -n 1 | grep -q "pingcpu $2 ok" && return 0
    sleep 2
  done
  return 1
}

run_arm() {
  vm=$1 tap=$3 mac=$4
  mkfifo "$LAB_IMAGES/$vm.in"
  api_expect "POST /v1/vms $vm: 2 vCPUs, virtio-net on $tap with queues 2, vhost $2" 201 \
    POST /v1/vms \
    "{\"name\": \"$vm\", \"vcpus\": 2, \"memory_mib\": 192, \"kernel\": \"/lab/vmlinuz\",
      \"initrd\": \"/lab/l2.cpio.gz\", \"cmdline\": \"$CMDLINE\",
      \"devices\": [{\"type\": \"virtio-console\", \"input\": \"$LAB_IMAGES/$vm.in\"},
        {\"type\": \"virtio-net\", \"tap\": \"$tap\", \"mac\": \"$mac\", \"queues\": 2,
         \"vhost\": $2, \"poll_us\": $6}]}"
  api_expect "POST /v1/vms/$vm/start" 200 POST "/v1/vms/$vm/start"
  lab_vm_console_follow "$vm"
  tap_check "$vm's init is up (eth0 up, console served)" \
    vm_console_wait 900 "$vm" "l2: hvc0-ready" || report_and_exit "$vm"
  api GET "/v1/vms/$vm"
  tap_is "GET /v1/vms/$vm: the NIC's data path is $5" "$(api_jq -r "$net | .data_path")" "$5"
  tap_is "the lab's $tap has two transmit queues" \
    "$(ls "/sys/class/net/$tap/queues" | grep -c '^tx-')" 2

  lab_send "$LAB_IMAGES/$vm.in" "queues"
  tap_check "$vm's eth0 uses two pairs (rx-0 rx-1 tx-0 tx-1)" \
    lab_wait 60 vm_console_has "$vm" "l2-link: queues rx-0 rx-1 tx-0 tx-1" || report_and_exit "$vm"

  ip link set "$tap" up
  echo 0 >"/proc/sys/net/ipv6/conf/$tap/disable_ipv6" 2>/dev/null
  lab_wait 30 sh -c "ip -6 addr show dev $tap | grep 'fe80::.*scope link' | grep -vq tentative"
  lab_ll=$(ip -6 addr show dev "$tap" | sed -n 's/.*inet6 \(fe80::[0-9a-f:]*\)\/64.*/\1/p' | head -n 1)
  for cpu in 0 1; do
    tap_check "$vm pings the lab ($lab_ll) from CPU $cpu" ping_from "$vm" "$cpu" "$lab_ll" ||
      { vm_state_is "$vm" running || report_and_exit "$vm"; }
  done
  lab_send "$LAB_IMAGES/$vm.in" "irqs"
  lab_wait 60 vm_console_has "$vm" "l2-link: irqs"
  tap_diag "$vm: guest interrupts $(api GET "/v1/vms/$vm/console"; api_jq -r .output | grep 'l2-link: irqs' | tail -n 1)"
  tap_check "the guest's receive queue 0 interrupted ($(irq 'input.0'))" test "$(irq 'input.0')" -gt 0
  tap_check "the guest's receive queue 1 interrupted ($(irq 'input.1'))" test "$(irq 'input.1')" -gt 0
  api GET "/v1/vms/$vm"
  tap_diag "$vm: virtio-net $(api_jq -c "$net")"
}

run_arm mqu false mqtap0 52:54:00:00:00:0c userspace 50
# The VMM's own counters on the userspace path: queue_requests is [rx0, tx0, rx1, tx1, ctrl].
tap_check "the VMM transmitted on both pairs ($(api_jq -c "$net | .queue_requests"))" \
  test "$(api_jq "$net | .queue_requests[1]")" -gt 0 -a "$(api_jq "$net | .queue_requests[3]")" -gt 0
tap_check "the adaptive poll ran ($(api_jq "$net | .poll_hits") hits, $(api_jq "$net | .poll_misses") misses)" \
  test "$(api_jq "$net | .poll_hits + .poll_misses")" -gt 0
api_expect "POST /v1/vms/mqu/kill" 200 POST /v1/vms/mqu/kill

run_arm mqv true mqtap1 52:54:00:00:00:0d vhost 0
vmm_pid=$(api_jq .pid)
# A kernel thread before Linux 6.4, a thread of the VMM's (vhost_task) since; one per pair.
workers=$(cat /proc/[0-9]*/comm /proc/"$vmm_pid"/task/*/comm 2>/dev/null | grep -c "^vhost-$vmm_pid")
tap_check "two vhost-$vmm_pid workers run ($workers)" test "$workers" -ge 2
tap_is "no frame of either pair went through iovd-vmm's userspace path" \
  "$(api_jq "$net | .queue_requests[0:4] | add")" 0
api_expect "POST /v1/vms/mqv/kill" 200 POST /v1/vms/mqv/kill
tap_check "mqv is stopped" lab_wait 30 vm_state_is mqv stopped
iovd_stop
