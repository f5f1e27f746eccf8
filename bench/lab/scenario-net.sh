#!/bin/sh
# Lab side of `bench/lab/run net` (@...@ filled in by run). The limit first: netbench over
# a veth pair in the lab, @RUNS@ runs. Then an L2 guest with virtio-net on the TAP vtap0,
# four times: under iovd-vmm on its userspace path ("vhost": false), under iovd-vmm on
# vhost-net ("vhost": true; results named vhost-...), under iovd-vmm's userspace path with
# the adaptive poll ("poll_us": 50; poll-...), and under QEMU with KVM and vhost-net
# (results named qemu-vhost-...). Each time the guest sends @RUNS@ runs to the lab's
# receiver on vtap0, then receives @RUNS@ runs the lab sends. Raw frames only: no
# interface here gets an IP address.
. /lab/lab.sh
. /lab/kvm-stat.sh
lab_modprobe kvm_amd tun veth || echo "bench-error: kvm_amd, tun or veth does not load"
lab_guest_ram_huge @SHMEM_THP@
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

# iovd-vmm's configuration for data path $1 (vhost true or false), the guest's figures
# prefixed with $2, $3 the adaptive poll in microseconds (0: off).
iovd_net_json() {
  cat <<JSON
{"name": "bench", "vcpus": 1, "memory_mib": 256, "kernel": "/lab/vmlinuz",
 "initrd": "/lab/l2.cpio", "cmdline": "@CMDLINE@ bench=net bench.arm=$2",
 "devices": [{"type": "virtio-net", "tap": "vtap0", "mac": "52:54:00:00:00:02",
              "vhost": $1, "poll_us": ${3:-0}}]}
JSON
}

# One L2 guest: its results prefixed with $1, the VMM's command line after it (the VMM
# creates the TAP vtap0).
l2_net() {
  p=$1
  shift
  rm -f /tmp/l2.status /tmp/l2.out
  # The L2 console goes to the lab console as it comes (kvm_runs adds KVM's counters over
  # each guest-to-lab run), and to /tmp/l2.out.
  ( { timeout 1200 "$@" 2>&1; echo $? >/tmp/l2.status; } | kvm_runs | tee /tmp/l2.out ) &
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
    begin=$(kvm_stat)
    echo "bench-cpu: begin net ${p}l2-net-rx run=$i"
    r=$(/lab/netbench send vtap0 @SECONDS@)
    echo "bench-cpu: end net ${p}l2-net-rx run=$i"
    echo "bench-result: net ${p}l2-net-rx run=$i $(kvm_delta "$begin" "$(kvm_stat)")"
    echo "bench-result: net ${p}tap-tx-sender run=$i $r"
    sleep 3
    i=$((i + 1))
  done
  lab_wait 300 test -s /tmp/l2.status
  echo "lab: $1 (${p:-userspace}) exited $(cat /tmp/l2.status)"
  grep -a "^l2: net-" /tmp/l2.out | tr -d '\r' | grep -v ready | while read -r _ kind figures; do
    echo "bench-result: net ${p}l2-$kind $figures"
  done
  # iovd-vmm's device counters at exit (requests, notifications, interrupts, data_path):
  # the cost per request behind the figures.
  if [ "$1" = iovd-vmm ]; then
    echo "bench-result: net ${p}iovd-vmm-counters $(grep -a -o '"virtio":\[[^]]*\]' /tmp/l2.out)"
  fi
}
iovd_net_json false "" >/tmp/vm.json
l2_net "" iovd-vmm --config /tmp/vm.json
# A kernel without vhost-net (bench/host/run on a host built without CONFIG_VHOST_NET)
# has no vhost arms, and QEMU runs its own userspace path (results named qemu-tap-).
qemu_vhost=off qemu_arm=qemu-tap-
if [ -e /dev/vhost-net ]; then
  iovd_net_json true vhost- >/tmp/vm-vhost.json
  l2_net vhost- iovd-vmm --config /tmp/vm-vhost.json
  qemu_vhost=on qemu_arm=qemu-vhost-
else
  echo "bench-error: no /dev/vhost-net: no vhost-net arms; QEMU with vhost=off"
fi
iovd_net_json false poll- 50 >/tmp/vm-poll.json
l2_net poll- iovd-vmm --config /tmp/vm-poll.json
# QEMU creates vtap0 itself (script=no: no bridge helper) and hands its rings to vhost-net.
# romfile=: no option ROM (a direct kernel boot needs none, and the lab has none).
# shellcheck disable=SC2086 # QEMU_L2 is a list of words
l2_net $qemu_arm $QEMU_L2 -append "@CMDLINE@ bench=net bench.arm=$qemu_arm" \
  -netdev tap,id=n,ifname=vtap0,script=no,downscript=no,vhost=$qemu_vhost \
  -device virtio-net-pci,netdev=n,mac=52:54:00:00:00:02,romfile=
