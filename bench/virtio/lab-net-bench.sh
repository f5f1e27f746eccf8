#!/usr/bin/env bash
# Benchmark (not a test): virtio-net throughput from the lab to its L2 guest over the TAP,
# against the same transfer over a veth pair in the lab (the limit; the receiving end in
# a network namespace of its own, so the data crosses the pair). Both: N MiB of zeros
# through busybox nc over TCP on IPv6 link-local, timed by the sender, in the same lab
# boot. Under QEMU TCG with nested SVM: absolute figures are the lab's, the ratio is the
# point.
#
# Usage: bench/virtio/lab-net-bench.sh [BUILD_DIR] [MIB]
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BENCH=lab-net-bench
# shellcheck source=lab-bench-lib.sh
. "$HERE/lab-bench-lib.sh"
MIB=${2:-64}
LAB_MODULES+=(tun veth)

bench_require
# iproute2's ip for the veth pair (busybox's cannot create one).
lab_copy_with_libs "$WORK_DIR/extra" "$(command -v ip)" /lab/ip

L2_MODULES="virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci
  failover net_failover virtio_net"
# shellcheck disable=SC2086 # one module a word
bench_l2_root $L2_MODULES
cat >"$WORK_DIR/l2/init" <<L2
#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in $(echo $L2_MODULES); do insmod /lib/modules/\$m.ko; done
ip link set dev eth0 up
sleep 4
echo "l2-net: listening"
nc -l -p 5001 >/dev/null
echo "l2-net: received"
reboot -f
L2
cat >"$WORK_DIR/scenario.sh" <<SCEN
#!/bin/sh
. /lab/lab.sh
tap_plan 2
lab_modprobe kvm_amd tun veth
now() { cut -d ' ' -f 1 /proc/uptime; }
# send ADDRESS: seconds to push $MIB MiB to port 5001 there
send() {
  t0=\$(now)
  dd if=/dev/zero bs=64k count=$((MIB * 16)) 2>/dev/null | nc "\$1" 5001
  t1=\$(now)
  awk "BEGIN { print \$t1 - \$t0 }"
}

# The limit: a veth pair, the receiving end in a network namespace of its own.
/lab/ip link add v0 type veth peer name v1
/lab/ip link set dev v0 address 02:00:00:00:00:11 up
unshare -n sh -c 'while ! ip link show v1 >/dev/null 2>&1; do sleep 0.2; done
  ip link set dev lo up; ip link set dev v1 address 02:00:00:00:00:12 up; sleep 4
  nc -l -p 5001 >/dev/null' &
sleep 1
/lab/ip link set dev v1 netns \$!
sleep 6
veth=\$(send fe80::ff:fe00:12%v0)
echo "lab-bench: veth seconds=\$veth"
tap_check "the veth transfer finished" test -n "\$veth"

cat >/tmp/vm.json <<EOF
{"name": "bench", "vcpus": 1, "memory_mib": 256, "kernel": "/lab/vmlinuz",
 "initrd": "/lab/l2.cpio.gz", "cmdline": "console=ttyS0 reboot=k panic=-1 quiet",
 "devices": [{"type": "virtio-net", "tap": "vtap0", "mac": "52:54:00:00:00:02"}]}
EOF
( { timeout 1200 iovd-vmm --config /tmp/vm.json 2>/tmp/l2.err 3>&-
    echo \$? >/tmp/l2.status; } | tee /tmp/l2.out ) &
lab_wait 60 test -e /sys/class/net/vtap0 &&
  ip link set dev vtap0 address 02:00:00:00:00:01 up
lab_wait 1200 sh -c 'grep -q "l2-net: listening" /tmp/l2.out || test -s /tmp/l2.status'
sleep 2
virtio=\$(send fe80::5054:ff:fe00:2%vtap0)
echo "lab-bench: virtio seconds=\$virtio"
lab_wait 600 test -s /tmp/l2.status
sleep 1
tap_check "the L2 guest received the virtio-net transfer" grep -q "l2-net: received" /tmp/l2.out
SCEN

bench_lab_run

veth=$(grep -a -o "lab-bench: veth seconds=[0-9.]*" "$WORK_DIR/console.log" | head -n 1)
virtio=$(grep -a -o "lab-bench: virtio seconds=[0-9.]*" "$WORK_DIR/console.log" | head -n 1)
grep -aq "ok 2 - the L2 guest received" "$WORK_DIR/tap.log" && [ -n "$veth" ] && [ -n "$virtio" ] ||
  { echo "lab-net-bench: no figures; see $WORK_DIR/console.log" >&2; exit 1; }
python3 - "${veth##*=}" "${virtio##*=}" "$MIB" <<'PY'
import sys
veth, virtio, mib = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
print(f"TCP over IPv6 link-local, {mib} MiB from the lab, timed by the sender")
print(f"{'veth pair in the lab':28}{mib / veth:>10.1f} MiB/s")
print(f"{'virtio-net to the L2 guest':28}{mib / virtio:>10.1f} MiB/s")
print(f"{'ratio virtio / veth':28}{veth / virtio:>10.4f}")
PY
