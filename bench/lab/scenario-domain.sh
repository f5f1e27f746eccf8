#!/bin/sh
# Lab side of `bench/lab/run domain` (@...@ filled in by run): 1514-byte raw frames from a
# client VM to the lab's end of the lab's first e1000e (the second e1000e, on the same
# QEMU hub), three ways in one lab boot, @RUNS@ runs each, the lab's receiver counting:
#   own-rx     the driver VM netdom sends on the e1000e it owns by passthrough (the limit)
#   domain-rx  the client sends over its VM-to-VM link to netdom's port; netdom's Linux
#              bridge forwards to the e1000e (the device domain)
#   tap-rx     the same client kernel on a TAP, the lab's own Linux bridge forwarding to
#              the same e1000e under the lab's e1000e driver (the host owns the device)
. /lab/lab.sh
lab_modprobe kvm_amd tun vfio-pci vfio_iommu_type1 e1000e bridge ||
  echo "bench-error: a module does not load"
CMDLINE="@CMDLINE@"
IP=/usr/local/sbin/ip
vm() {
  api POST /v1/vms "$1" >/dev/null
  [ "$API_STATUS" = 201 ] || echo "bench-error: POST /v1/vms: $API_STATUS $API_BODY"
}
vm_console() {
  api GET "/v1/vms/$1/console"
  api_jq .output | tr -d '\r'
}
# vm_exits VM WHEN: the VM's exit and per-device counters now (cumulative since its VMM
# started). Taken once the sender's guest says it is ready (it then waits 2-3 s) and
# after the arm's last run: the difference over the frames sent is exits per frame.
vm_exits() {
  api GET "/v1/vms/$1"
  echo "bench-result: domain vmstats-$1-$2 exits=$(api_jq -c .stats.exits)" \
    "devices=$(api_jq -c .stats.devices)"
}
# recv WHO: @RUNS@ runs of the lab's receiver on the NIC's other end; the first one waits
# for the sender's guest to boot.
recv() {
  i=1 wait_s=900
  while [ $i -le @RUNS@ ]; do
    echo "bench-result: domain $1 run=$i $(/lab/netbench recv "$PEER_IF" $wait_s)"
    i=$((i + 1))
    wait_s=60
  done
}

lab_e1000e_pair >/dev/null || echo "bench-error: no two e1000e functions"
$IP link set dev "$PEER_IF" up
echo "$NIC" >"$SYSFS_PCI/$NIC/driver/unbind"
iovd_start || echo "bench-error: iovd does not start"
api POST /v1/pools "{\"name\": \"nics\", \"selector\": {\"addresses\": [\"$NIC\"]}}" >/dev/null
vm "{\"name\": \"netdom\", \"vcpus\": 1, \"memory_mib\": 256, \"kernel\": \"/lab/vmlinuz\",
  \"initrd\": \"/lab/l2.cpio\", \"cmdline\": \"$CMDLINE bench=domain\",
  \"devices\": [{\"type\": \"vfio\", \"pool\": \"nics\", \"guest_address\": 4},
    {\"type\": \"virtio-net\", \"port\": \"client-a\", \"mac\": \"52:54:00:00:00:0a\"}]}"
client() { # NAME DEVICE_JSON
  vm "{\"name\": \"$1\", \"vcpus\": 1, \"memory_mib\": 256, \"kernel\": \"/lab/vmlinuz\",
    \"initrd\": \"/lab/l2.cpio\", \"cmdline\": \"$CMDLINE bench=link-tx\",
    \"devices\": [$2]}"
}
client client "{\"type\": \"virtio-net\", \"mac\": \"52:54:00:00:00:01\",
  \"peer\": {\"vm\": \"netdom\", \"port\": \"client-a\"}}"
api POST /v1/vms/netdom/start >/dev/null
lab_vm_console_follow netdom
(lab_wait 900 vm_console_has netdom domain-own-ready && vm_exits netdom own-before) &
snapshot=$!
recv own-rx
wait $snapshot
vm_exits netdom own-after
lab_wait 120 vm_console_has netdom domain-bridge-ready ||
  echo "bench-error: netdom's bridge never got ready"
api POST /v1/vms/client/start >/dev/null
lab_vm_console_follow client
(lab_wait 900 vm_console_has client link-tx-ready && vm_exits netdom domain-before &&
  vm_exits client domain-before) &
snapshot=$!
recv domain-rx
wait $snapshot
vm_exits netdom domain-after
vm_exits client domain-after
lab_wait 300 vm_state_is client stopped || echo "bench-error: client did not finish"
vm_console netdom | grep "^l2: domain-own run=" | while read -r _ _ figures; do
  echo "bench-result: domain own-sender $figures"
done
vm_console client | grep "^l2: link-tx run=" | while read -r _ _ figures; do
  echo "bench-result: domain domain-sender $figures"
done
api GET /v1/vms/netdom
echo "bench-result: domain port-counters $(api_jq -c '.links[0]')"
api POST /v1/vms/netdom/stop '{"timeout_sec": 5}' >/dev/null
lab_wait 60 vm_state_is netdom stopped || echo "bench-error: netdom did not stop"
api DELETE /v1/vms/client >/dev/null
api DELETE /v1/vms/netdom >/dev/null

# The host owns the NIC: the lab's e1000e driver and a Linux bridge with the client's TAP.
echo "$NIC" >/sys/bus/pci/drivers/e1000e/bind
lab_wait 20 has_net "$NIC" || echo "bench-error: $NIC has no interface under e1000e"
NIC_IF=$(net_of "$NIC")
$IP link add br0 type bridge
echo 0 >/sys/class/net/br0/bridge/forward_delay
$IP link set dev "$NIC_IF" master br0
$IP link set dev "$NIC_IF" up
$IP link set dev br0 up
client tapclient "{\"type\": \"virtio-net\", \"tap\": \"vtap0\", \"mac\": \"52:54:00:00:00:01\"}"
api POST /v1/vms/tapclient/start >/dev/null
lab_vm_console_follow tapclient
lab_wait 60 test -e /sys/class/net/vtap0 || echo "bench-error: no vtap0"
$IP link set dev vtap0 master br0
$IP link set dev vtap0 up
(lab_wait 900 vm_console_has tapclient link-tx-ready && vm_exits tapclient tap-before) &
snapshot=$!
recv tap-rx
wait $snapshot
vm_exits tapclient tap-after
lab_wait 300 vm_state_is tapclient stopped || echo "bench-error: tapclient did not finish"
vm_console tapclient | grep "^l2: link-tx run=" | while read -r _ _ figures; do
  echo "bench-result: domain tap-sender $figures"
done
iovd_stop >/dev/null
