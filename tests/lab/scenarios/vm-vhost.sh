#!/bin/sh
# virtio-net on vhost-net (issue 12): an L2 Linux guest through iovd's API with a TAP NIC
# in the lab ("vhost": true), the stock virtio_net driver in the guest. iovd opens
# /dev/vhost-net and passes it to the jailed iovd-vmm; GET says the NIC's data path is
# vhost, the kernel's vhost-PID worker runs, the lab pings the guest over the TAP (small
# and 8000-byte frames) while the VMM's own counters stay still (no exit and no request
# served in userspace per frame), and the guest negotiated the TAP's offloads and
# mergeable receive buffers. The L2 kernel and initramfs come from tests/lab/l2/build-link.sh.
# lab-topology: --nvme 0 --nics 0 --no-iommu --memory 1024 --timeout 900
# lab-prepare: l2/build-link.sh
. /lab/lab.sh

tap_plan 15
tap_check "kvm_amd, tun and vhost_net load" lab_modprobe kvm_amd tun vhost_net
lab_require_programs iovd iovd-vmm || exit 1
iovd_start_checked || exit 1

CMDLINE="console=ttyS0 reboot=k panic=-1 quiet"
MAC=52:54:00:00:00:0b
GUEST_LL=fe80::5054:ff:fe00:b
TAP=vhtap0

total_exits() {
  api GET /v1/vms/vh
  api_jq '[.stats.exits | to_entries[] | .value | numbers] | add'
}
report_and_exit() {
  lab_vm_report vh
  iovd_stop
  exit 1
}

mkfifo "$LAB_IMAGES/vh.in"
api_expect "POST /v1/vms vh: virtio-net on TAP $TAP with vhost true" 201 POST /v1/vms \
  "{\"name\": \"vh\", \"memory_mib\": 192, \"kernel\": \"/lab/vmlinuz\",
    \"initrd\": \"/lab/l2.cpio.gz\", \"cmdline\": \"$CMDLINE\",
    \"devices\": [{\"type\": \"virtio-console\", \"input\": \"$LAB_IMAGES/vh.in\"},
      {\"type\": \"virtio-net\", \"tap\": \"$TAP\", \"mac\": \"$MAC\", \"vhost\": true}]}"
api_expect "POST /v1/vms/vh/start" 200 POST /v1/vms/vh/start
lab_vm_console_follow vh
tap_check "vh's init is up (eth0 up, console served)" \
  vm_console_wait 480 vh "l2: hvc0-ready" || report_and_exit

api GET /v1/vms/vh
vmm_pid=$(api_jq .pid)
tap_is "GET /v1/vms/vh: the NIC's data path is vhost" \
  "$(api_jq -r '.stats.virtio[] | select(.type == "virtio-net") | .data_path')" vhost
# A kernel thread before Linux 6.4, a thread of the VMM's (vhost_task) since.
tap_check "the kernel's vhost-$vmm_pid worker runs" \
  sh -c "cat /proc/[0-9]*/comm /proc/$vmm_pid/task/*/comm 2>/dev/null | grep -q '^vhost-$vmm_pid'"

ip link set "$TAP" up
echo 0 >"/proc/sys/net/ipv6/conf/$TAP/disable_ipv6" 2>/dev/null
exits_before=$(total_exits)
tap_check "the lab pings the guest over $TAP (100 frames each way)" \
  lab_wait 60 ping6 -c 100 -i 0.05 -w 50 -I "$TAP" "$GUEST_LL"
tap_check "and with 8000-byte payloads (fragments both ways)" \
  ping6 -c 20 -s 8000 -i 0.1 -w 30 -I "$TAP" "$GUEST_LL"
exits_after=$(total_exits)
api GET /v1/vms/vh
net='.stats.virtio[] | select(.type == "virtio-net")'
tap_diag "VMM exits $exits_before -> $exits_after during 240+ frames; virtio-net: $(api_jq -c "$net")"
tap_check "the VMM saw fewer exits than frames ($((exits_after - exits_before)) for >= 240)" \
  test $((exits_after - exits_before)) -lt 240
tap_is "no frame went through iovd-vmm's userspace path" \
  "$(api_jq "$net | .requests_read + .requests_written + .doorbell_exits")" 0

lab_send "$LAB_IMAGES/vh.in" "features"
tap_check "the guest reports its negotiated virtio features" \
  lab_wait 60 vm_console_has vh "l2-link: features" || report_and_exit
api GET /v1/vms/vh/console
bits=$(api_jq -r .output | grep -m 1 "l2-link: features" | sed 's/.*features //' | tr -d '\r ')
tap_diag "guest features $bits"
# virtio 1.2 §5.1.3: CSUM 0, GUEST_CSUM 1, GUEST_TSO4 7, GUEST_TSO6 8, HOST_TSO4 11,
# MRG_RXBUF 15 (the string has bit 0 first).
bit() {
  echo "$bits" | cut -c $(($1 + 1))
}
tap_is "CSUM GUEST_CSUM GUEST_TSO4 GUEST_TSO6 HOST_TSO4 MRG_RXBUF negotiated" \
  "$(bit 0)$(bit 1)$(bit 7)$(bit 8)$(bit 11)$(bit 15)" 111111

api_expect "POST /v1/vms/vh/kill" 200 POST /v1/vms/vh/kill
tap_check "vh is stopped" lab_wait 30 vm_state_is vh stopped
iovd_stop
