#!/bin/sh
# VM-to-VM links (issue 13, proof 1): two L2 Linux guests through iovd's API, a driver VM
# "netdom" with one port (client-a) and a client whose virtio-net is linked to it; the
# stock virtio_net driver runs on both sides. The client pings netdom over IPv6
# link-local; kill -9 of netdom's iovd-vmm turns the client's carrier off while the client
# keeps running; netdom's restart policy starts it again and traffic flows again; frames
# from a forged source MAC are dropped at the port and counted. The L2 kernel and
# initramfs come from tests/lab/l2/build-link.sh. Two L2 boots at once, then netdom's
# second boot: the waits are those of vm-linux, plus one boot.
# lab-topology: --nvme 0 --nics 0 --no-iommu --memory 1024 --timeout 1200
# lab-prepare: l2/build-link.sh
. /lab/lab.sh

tap_plan 24
tap_check "kvm_amd loads" lab_modprobe kvm_amd
lab_require_programs iovd iovd-vmm || exit 1
iovd_start_checked || exit 1

CMDLINE="console=ttyS0 reboot=k panic=-1 quiet"
DRIVER_MAC=52:54:00:00:00:0a
CLIENT_MAC=52:54:00:00:00:01
FORGED_MAC=52:54:00:00:00:66
# netdom's IPv6 link-local address, from its MAC (EUI-64, RFC 4291 appendix A).
DRIVER_LL=fe80::5054:ff:fe00:a
T0=$(date +%s)

elapsed() {
  echo "$(($(date +%s) - T0)) s"
}
uptime_s() {
  cut -d ' ' -f 1 /proc/uptime
}
# Lines of VM $1's console that contain $2.
console_count() {
  api GET "/v1/vms/$1/console"
  api_jq .output | grep -c -- "$2"
}
console_count_above() {
  [ "$(console_count "$1" "$2")" -gt "$3" ]
}
# The last carrier line of VM $1's guest says $2.
console_carrier_is() {
  api GET "/v1/vms/$1/console"
  api_jq .output | grep "l2-link: carrier" | tail -n 1 | grep -q "carrier $2 "
}
# The carrier the client's iovd-vmm reports for its one link is $1.
# The time of that change, from the same answer, goes to /tmp/carrier-$1: read later, the
# link's last change may already be the restarted netdom's new channel.
client_vmm_carrier_is() {
  api GET /v1/vms/client
  [ "$(api_jq '.links[0].carrier')" = "$1" ] || return 1
  [ -s "/tmp/carrier-$1" ] || api_jq '.links[0].carrier_changed_usec' >"/tmp/carrier-$1"
}
# A field of netdom's one link.
port_counter() {
  api GET /v1/vms/netdom
  api_jq ".links[0].$1 // 0"
}

# Console FIFOs in an image directory: VM files come only from there (iovd --image-dir).
mkfifo "$LAB_IMAGES/netdom.in" "$LAB_IMAGES/client.in"
api_expect "POST /v1/vms netdom: port client-a, restart on crash" 201 POST /v1/vms \
  "{\"name\": \"netdom\", \"memory_mib\": 192, \"kernel\": \"/lab/vmlinuz\",
    \"initrd\": \"/lab/l2.cpio.gz\", \"cmdline\": \"$CMDLINE\", \"restart\": \"on-crash\",
    \"devices\": [{\"type\": \"virtio-console\", \"input\": \"$LAB_IMAGES/netdom.in\"},
      {\"type\": \"virtio-net\", \"port\": \"client-a\", \"mac\": \"$DRIVER_MAC\"}]}"
api_expect "POST /v1/vms client: virtio-net linked to netdom's port client-a" 201 POST /v1/vms \
  "{\"name\": \"client\", \"memory_mib\": 192, \"kernel\": \"/lab/vmlinuz\",
    \"initrd\": \"/lab/l2.cpio.gz\", \"cmdline\": \"$CMDLINE\",
    \"devices\": [{\"type\": \"virtio-console\", \"input\": \"$LAB_IMAGES/client.in\"},
      {\"type\": \"virtio-net\", \"mac\": \"$CLIENT_MAC\",
       \"peer\": {\"vm\": \"netdom\", \"port\": \"client-a\"}}]}"
api_expect "POST /v1/vms/netdom/start" 200 POST /v1/vms/netdom/start
api_expect "POST /v1/vms/client/start" 200 POST /v1/vms/client/start
lab_vm_console_follow netdom
lab_vm_console_follow client

report_and_exit() {
  lab_vm_report netdom
  lab_vm_report client
  iovd_stop
  exit 1
}
tap_check "netdom's init is up (eth0 up, console served)" \
  lab_wait 480 vm_console_has netdom "l2: hvc0-ready" || report_and_exit
tap_check "client's init is up (eth0 up, console served)" \
  lab_wait 240 vm_console_has client "l2: hvc0-ready" || report_and_exit
echo "lab: both guests up after $(elapsed)"
api GET /v1/vms/client
tap_is "GET /v1/vms/client: its link to netdom's port client-a is up" \
  "$(api_jq '.links[0] | "\(.role) \(.peer_vm) \(.port) \(.state)"')" "client netdom client-a up"
tap_check "the client's guest sees carrier" lab_wait 60 console_carrier_is client 1 ||
  report_and_exit

# ping_netdom TAG: the client pings netdom; up to three tries, 2 s apart: right after
# carrier comes up the client's link-local address may not be there yet (ping6: "Cannot
# assign requested address") or still tentative (as in device-domain.sh).
ping_netdom() {
  for n in 1 2 3; do
    lab_send "$LAB_IMAGES/client.in" "pingpeer $1-$n $DRIVER_LL"
    lab_wait 120 vm_console_has client "l2-link: pingpeer $1-$n [of]" || return 1
    vm_console_has client "l2-link: pingpeer $1-$n ok" && return 0
    sleep 2
  done
  return 1
}
tap_check "the client pings netdom over the link" ping_netdom a || report_and_exit
received=$(port_counter frames_received)
tap_check "netdom's port counted the client's frames ($received)" test "$received" -gt 0
api GET /v1/vms/netdom
tap_diag "netdom's link: $(api_jq -c '.links[0]')"

downs=$(console_count client "l2-link: carrier 0")
api GET /v1/vms/netdom
netdom_pid=$(api_jq .pid)
rm -f /tmp/carrier-false
t_kill=$(uptime_s)
kill -9 "$netdom_pid"
tap_check "kill -9 of netdom's iovd-vmm ($netdom_pid): the client's iovd-vmm turns carrier off" \
  lab_wait 10 client_vmm_carrier_is false
# When, by the client VMM's own clock (CLOCK_MONOTONIC; /proc/uptime is the same clock
# here: the lab never suspends): the API's polling is not in this figure.
latency=$(echo "$(cat /tmp/carrier-false) $t_kill" |
  awk '{printf "%.3f", $1 / 1000000 - $2}')
tap_check "carrier off in the client's device $latency s after the kill: within a second" \
  awk "BEGIN { exit !($latency < 1) }"
tap_check "the client's guest sees carrier off" \
  lab_wait 30 console_count_above client "l2-link: carrier 0" "$downs"
t_seen=$(uptime_s)
tap_diag "carrier off on the client's console $(echo "$t_seen $t_kill" | awk '{printf "%.2f", $1 - $2}') s after the kill (the guest polls every 0.1 s, the lab polls the console)"
lab_send "$LAB_IMAGES/client.in" "ping 1"
tap_check "the client keeps running and answers" lab_wait 60 vm_console_has client "l2: pong 1"
tap_check "the client VM is running" vm_state_is client running

tap_check "netdom's restart policy starts it again" lab_wait 60 vm_state_is netdom running
api GET /v1/vms/netdom
tap_check "in a new iovd-vmm ($(api_jq .pid), was $netdom_pid)" test "$(api_jq .pid)" != "$netdom_pid"
tap_check "netdom's init is up again" \
  lab_wait 480 console_count_above netdom "l2: hvc0-ready" 1 || report_and_exit
echo "lab: netdom up again after $(elapsed)"
tap_check "the client's guest sees carrier again" lab_wait 120 console_carrier_is client 1 ||
  report_and_exit
tap_check "traffic flows again: the client pings netdom" ping_netdom b ||
  lab_vm_report client

forged_before=$(port_counter dropped_source_mac)
lab_send "$LAB_IMAGES/client.in" "mac $FORGED_MAC"
lab_send "$LAB_IMAGES/client.in" "pingpeer c $DRIVER_LL"
tap_check "from a forged source MAC the client's ping fails" \
  lab_wait 120 vm_console_has client "pingpeer c failed"
forged_after=$(port_counter dropped_source_mac)
tap_check "netdom's port dropped and counted the forged frames ($forged_before -> $forged_after)" \
  test "$forged_after" -gt "$forged_before"
api GET /v1/vms/netdom
tap_diag "netdom's link: $(api_jq -c '.links[0]')"
echo "lab: scenario done after $(elapsed)"
iovd_stop
