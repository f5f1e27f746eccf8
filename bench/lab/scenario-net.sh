#!/bin/sh
# Lab side of `bench/lab/run net` (@...@ filled in by run). The limit first: netbench over
# a veth pair in the lab, @RUNS@ runs. Then an L2 guest under iovd-vmm with virtio-net on
# the TAP vtap0, twice: on iovd-vmm's userspace path ("vhost": false) and on vhost-net
# ("vhost": true; its results are named vhost-...), and on the userspace path again with
# the adaptive poll ("poll_us": 50; poll-...). Each time the guest sends @RUNS@ runs
# to the lab's receiver on vtap0, then receives @RUNS@ runs the lab sends. Raw frames
# only: no interface here gets an IP address.
. /lab/lab.sh
lab_modprobe kvm_amd tun veth || echo "bench-error: kvm_amd, tun or veth does not load"
lab_modprobe vhost_net || echo "bench-error: vhost_net does not load"
# busybox ip names only the first end of a veth pair; the peer is the interface whose
# ifindex is vb0's iflink.
ip link add vb0 type veth
peer=
for d in /sys/class/net/*; do
  [ "$(cat "$d/ifindex")" = "$(cat /sys/class/net/vb0/iflink)" ] && peer=${d##*/}
done
ip link set vb0 up && ip link set "$peer" up
i=1
while [ $i -le @RUNS@ ]; do
  /lab/netbench recv "$peer" 30 >/tmp/veth.recv &
  sleep 0.5
  echo "bench-cpu: begin net veth run=$i"
  sent=$(/lab/netbench send vb0 @SECONDS@)
  echo "bench-cpu: end net veth run=$i"
  wait
  echo "bench-result: net veth run=$i $(cat /tmp/veth.recv) $sent"
  i=$((i + 1))
done
ip link del vb0

# One L2 guest on data path $1 (vhost true or false); its results prefixed with $2; $3 its
# adaptive poll in microseconds (0: off).
l2_net() {
  vhost=$1 p=$2 poll_us=${3:-0}
  rm -f /tmp/l2.status /tmp/l2.out
  cat >/tmp/vm.json <<JSON
{"name": "bench", "vcpus": 1, "memory_mib": 256, "kernel": "/lab/vmlinuz",
 "initrd": "/lab/l2.cpio", "cmdline": "@CMDLINE@ bench=net",
 "devices": [{"type": "virtio-net", "tap": "vtap0", "mac": "52:54:00:00:00:02",
              "vhost": $vhost, "poll_us": $poll_us}]}
JSON
  # The L2 console goes to the lab console as it comes, and to /tmp/l2.out.
  ( { timeout 1200 iovd-vmm --config /tmp/vm.json 2>&1; echo $? >/tmp/l2.status; } |
    tee /tmp/l2.out ) &
  lab_wait 60 test -e /sys/class/net/vtap0 && ip link set dev vtap0 up
  # Guest to lab: each run ends when the guest pauses (1 s without frames).
  # The first run also waits for the guest to boot.
  i=1
  wait_s=600
  while [ $i -le @RUNS@ ] && [ ! -s /tmp/l2.status ]; do
    echo "bench-result: net ${p}tap-rx run=$i $(/lab/netbench recv vtap0 $wait_s)"
    i=$((i + 1))
    wait_s=60
  done
  # Lab to guest, once the guest listens.
  lab_wait 300 grep -q "l2: net-rx-ready" /tmp/l2.out
  sleep 1
  i=1
  while [ $i -le @RUNS@ ]; do
    echo "bench-cpu: begin net ${p}l2-net-rx run=$i"
    r=$(/lab/netbench send vtap0 @SECONDS@)
    echo "bench-cpu: end net ${p}l2-net-rx run=$i"
    echo "bench-result: net ${p}tap-tx-sender run=$i $r"
    sleep 3
    i=$((i + 1))
  done
  lab_wait 300 test -s /tmp/l2.status
  echo "lab: iovd-vmm (vhost $vhost) exited $(cat /tmp/l2.status)"
  grep -a "^l2: net-" /tmp/l2.out | tr -d '\r' | grep -v ready | while read -r _ kind figures; do
    echo "bench-result: net ${p}l2-$kind $figures"
  done
  # iovd-vmm's device counters at exit (requests, notifications, interrupts, data_path):
  # the cost per request behind the figures.
  echo "bench-result: net ${p}iovd-vmm-counters $(grep -a -o '"virtio":\[[^]]*\]' /tmp/l2.out)"
}
l2_net false ""
l2_net true vhost-
l2_net false poll- 50
