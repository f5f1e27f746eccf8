#!/bin/sh
# Lab side of `bench/lab/run link` (@...@ filled in by run): 1514-byte raw frames from a
# client VM's virtio-net to its driver VM over a VM-to-VM link (both L2 guests under iovd,
# the driver VM counting on its port's interface), against the same client on a TAP with
# the lab counting (the link's alternative: a TAP per VM and the host's stack between
# them). @RUNS@ runs each, in one lab boot; the receivers' figures are the throughput.
. /lab/lab.sh
lab_modprobe kvm_amd tun || echo "bench-error: kvm_amd or tun does not load"
iovd_start || echo "bench-error: iovd does not start"
CMDLINE="@CMDLINE@"
vm() {
  api POST /v1/vms "$1" >/dev/null
  [ "$API_STATUS" = 201 ] || echo "bench-error: POST /v1/vms: $API_STATUS $API_BODY"
}
vm_console() {
  api GET "/v1/vms/$1/console"
  api_jq .output | tr -d '\r'
}
vm "{\"name\": \"netdom\", \"memory_mib\": 256, \"kernel\": \"/lab/vmlinuz\",
  \"initrd\": \"/lab/l2.cpio\", \"cmdline\": \"$CMDLINE bench=link-rx\",
  \"devices\": [{\"type\": \"virtio-net\", \"port\": \"client-a\", \"mac\": \"52:54:00:00:00:0a\"}]}"
vm "{\"name\": \"client\", \"memory_mib\": 256, \"kernel\": \"/lab/vmlinuz\",
  \"initrd\": \"/lab/l2.cpio\", \"cmdline\": \"$CMDLINE bench=link-tx\",
  \"devices\": [{\"type\": \"virtio-net\", \"mac\": \"52:54:00:00:00:01\",
    \"peer\": {\"vm\": \"netdom\", \"port\": \"client-a\"}}]}"
api POST /v1/vms/netdom/start >/dev/null
lab_vm_console_follow netdom
lab_wait 900 vm_console_has netdom link-rx-ready ||
  echo "bench-error: netdom's receiver never got ready"
api POST /v1/vms/client/start >/dev/null
lab_vm_console_follow client
# While the runs go: both ends' counters every 20 s on the lab's console.
n=0
until vm_state_is netdom stopped || [ $n -ge 60 ]; do
  for v in netdom client; do
    api GET "/v1/vms/$v"
    echo "lab: $v link: $(api_jq -c '.links[0] | del(.device, .role, .port)')"
  done
  sleep 20
  n=$((n + 1))
done
vm_state_is netdom stopped || echo "bench-error: netdom did not finish"
lab_wait 300 vm_state_is client stopped || echo "bench-error: client did not finish"
vm_console netdom | grep "^l2: link-rx run=" | while read -r _ _ figures; do
  echo "bench-result: link link-rx $figures"
done
vm_console client | grep "^l2: link-tx run=" | while read -r _ _ figures; do
  echo "bench-result: link link-sender $figures"
done
api GET /v1/vms/netdom
echo "bench-result: link port-counters $(api_jq -c '.links[0]')"

# The same client on a TAP, the lab receiving.
vm "{\"name\": \"tapclient\", \"memory_mib\": 256, \"kernel\": \"/lab/vmlinuz\",
  \"initrd\": \"/lab/l2.cpio\", \"cmdline\": \"$CMDLINE bench=link-tx\",
  \"devices\": [{\"type\": \"virtio-net\", \"tap\": \"vtap0\", \"mac\": \"52:54:00:00:00:01\"}]}"
api POST /v1/vms/tapclient/start >/dev/null
lab_vm_console_follow tapclient
lab_wait 60 test -e /sys/class/net/vtap0 && ip link set dev vtap0 up
i=1
wait_s=900
while [ $i -le @RUNS@ ]; do
  echo "bench-result: link tap-rx run=$i $(/lab/netbench recv vtap0 $wait_s)"
  i=$((i + 1))
  wait_s=60
done
lab_wait 300 vm_state_is tapclient stopped || echo "bench-error: tapclient did not finish"
iovd_stop >/dev/null
