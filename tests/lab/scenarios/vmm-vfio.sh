#!/bin/sh
# VFIO passthrough by iovd-vmm run standalone: the lab's first e1000e (8086:10d3) is
# bound to vfio-pci and given to an L2 Debian kernel, whose stock e1000e driver must probe
# it, read the MAC the lab machine gave that NIC, bring the link up and ping the lab's
# second e1000e (same QEMU hub) over IPv6 link-local, with MSI-X, and again with
# e1000e's IntMode=1 (MSI, see below). Before that, iovd-vmm must refuse a function still
# bound to its host driver and one whose IOMMU group is not viable (the ICH9 SMBus,
# grouped with the LPC bridge and SATA). No DMAR fault may appear in the lab's kernel
# log, and no BUG in the L2 kernels' logs: the device's DMA goes to guest RAM
# mapped at IOVA = guest physical address, and nowhere else.
# lab-topology: --nvme 0 --nics 2 --memory 1024 --timeout 900
# lab-prepare: l2/build-vfio.sh
. /lab/lab.sh

tap_plan 18
tap_check "kvm_amd loads" lab_modprobe kvm_amd
tap_check "vfio-pci, vfio_iommu_type1, e1000e and ahci load" \
  lab_modprobe vfio-pci vfio_iommu_type1 e1000e ahci
lab_require_programs iovd-vmm || exit 1

lab_e1000e_pair || exit 1
GROUP=$(lab_group_of "$NIC")
RESET=$(cat "$SYSFS_PCI/$NIC/reset_method" 2>/dev/null)
tap_diag "passed through: $NIC (group $GROUP, MAC $MAC, reset: $RESET); peer: $PEER ($PEER_IF)"

# run_vmm NAME DEVICE_JSON [CMDLINE_EXTRA]: iovd-vmm in the foreground, jailed as iovd runs
# it (--jail: its own uid, no capabilities, an empty root without a device node and a
# read-only /sys), so kernel, initrd, console and the device nodes come as descriptors,
# as iovd passes them: /dev/kvm ("kvm": "fd:6"), /dev/vfio/vfio ("vfio_container":
# "fd:7") and $VMM_GROUP, the group's node, as fd 8 (a device entry names it with
# "vfio_group": "fd:8"; there is none before vfio-pci drives the function). Status in
# VMM_STATUS, its stderr in /tmp/NAME.log, the guest's serial console in /tmp/NAME.console.
run_vmm() {
  cat >"/tmp/$1.json" <<JSON
{"name": "$1", "vcpus": 1, "memory_mib": 256, "kernel": "fd:3", "initrd": "fd:4",
 "kvm": "fd:6", "vfio_container": "fd:7",
 "cmdline": "console=ttyS0 reboot=k panic=-1 quiet ${3:-}",
 "devices": [$2]}
JSON
  iovd-vmm --jail 2000000000:2000000000 --config "/tmp/$1.json" --serial "file:fd:5" \
    3</lab/vmlinuz 4</lab/l2.cpio.gz 5>>"/tmp/$1.console" 6<>/dev/kvm 7<>/dev/vfio/vfio \
    8<>"${VMM_GROUP:-/dev/null}" >"/tmp/$1.log" 2>&1
  VMM_STATUS=$?
}
refused() { # refused NAME PATTERN: exit status 1 and the pattern on stderr
  [ "$VMM_STATUS" = 1 ] && grep -q "$2" "/tmp/$1.log" || {
    echo "status $VMM_STATUS"
    cat "/tmp/$1.log"
    return 1
  }
}

run_vmm bound "{\"type\": \"vfio\", \"host\": \"$NIC\"}"
tap_check "iovd-vmm refuses $NIC while e1000e drives it" refused bound "not bound to vfio-pci"

bind_vfio() {
  [ -e "$SYSFS_PCI/$1/driver" ] && echo "$1" >"$SYSFS_PCI/$1/driver/unbind"
  echo vfio-pci >"$SYSFS_PCI/$1/driver_override"
  echo "$1" >/sys/bus/pci/drivers_probe
  [ "$(lab_driver_of "$1")" = vfio-pci ]
}
tap_check "$NIC bound to vfio-pci, /dev/vfio/$GROUP there" \
  eval "bind_vfio $NIC && test -c /dev/vfio/$GROUP"

# The ICH9 SMBus shares its group with the LPC bridge and SATA; ahci drives SATA, so the
# group is not viable (vfio.rst: every device bound to vfio-pci or to no driver).
SMBUS=""
for d in "$SYSFS_PCI"/*; do
  [ "$(cat "$d/class")" = 0x0c0500 ] && SMBUS=$(basename "$d")
done
bind_vfio "$SMBUS" >/dev/null 2>&1
VMM_GROUP=/dev/vfio/$(lab_group_of "$SMBUS")
run_vmm smbus "{\"type\": \"vfio\", \"host\": \"$SMBUS\", \"vfio_group\": \"fd:8\"}"
tap_check "iovd-vmm refuses $SMBUS: group $(lab_group_of "$SMBUS") is not viable" \
  refused smbus "is not viable"
echo "$SMBUS" >"$SYSFS_PCI/$SMBUS/driver/unbind" 2>/dev/null
echo >"$SYSFS_PCI/$SMBUS/driver_override" 2>/dev/null
echo "$SMBUS" >/sys/bus/pci/drivers_probe 2>/dev/null

# The peer's link-local address (fe80::/64 from its MAC), once it is no longer tentative.
ip link set "$PEER_IF" up
peer_ll() {
  awk -v dev="$PEER_IF" '$6 == dev && $1 ~ /^fe80/ && $5 !~ /^[4-7c-f]/ { print $1 }' \
    /proc/net/if_inet6 | grep .
}
lab_wait 30 peer_ll
PEER_ADDR=$(peer_ll | sed 's/\(....\)/\1:/g; s/:$//' | head -n 1)
tap_diag "peer $PEER_IF at $PEER_ADDR"

# l2_run NAME INTMODE: the L2 guest with the NIC at slot 4, e1000e in IntMode INTMODE
# (2 MSI-X, 1 MSI); its console in /tmp/NAME.console.
l2_run() {
  T0=$(date +%s)
  : >"/tmp/$1.console"
  tail -f "/tmp/$1.console" &
  FOLLOW=$!
  VMM_GROUP=/dev/vfio/$GROUP
  run_vmm "$1" "{\"type\": \"vfio\", \"host\": \"$NIC\", \"guest_address\": 4, \"vfio_group\": \"fd:8\"}" \
    "iovtest.peer=$PEER_ADDR iovtest.intmode=$2"
  kill "$FOLLOW" 2>/dev/null
  echo "lab: the L2 guest $1 ran $(($(date +%s) - T0)) s"
  sed 's/^/vmm| /' "/tmp/$1.log"
  grep -v "stats {" "/tmp/$1.log" | while read -r line; do tap_diag "$line"; done
  grep "l2-vfio: irq" "/tmp/$1.console" | while read -r line; do tap_diag "$line"; done
}

l2_run l2 2
tap_check "the L2 guest reached its init" grep -q iovd-l2-marker /tmp/l2.console
tap_check "L2's stock e1000e driver probed the NIC and reads MAC $MAC" \
  grep -q "l2-vfio: eth0 driver e1000e mac $MAC" /tmp/l2.console
tap_check "L2 sees the link up" grep -q "l2-vfio: carrier 1" /tmp/l2.console
tap_check "L2 pings the lab's $PEER_IF through the passed-through NIC (MSI-X)" \
  grep -q "l2-vfio: ping ok" /tmp/l2.console
tap_check "its interrupts were MSI-X" grep -q "l2-vfio: irq mode msix " /tmp/l2.console
tap_is "iovd-vmm exits 0 after the guest's reboot" "$VMM_STATUS" 0

# MSI: the same guest with e1000e's IntMode=1. At open the driver tests MSI
# (e1000_test_msi_interrupt): it enables IMS (RXT0, TXDW, RXDMT0, RXSEQ, LSC), writes
# ICS.RXSEQ and waits 100 ms for its handler to see RXSEQ in ICR, else it falls back to
# INTx. QEMU's e1000e (hw/net/e1000e_core.c, e1000e_set_ims) keeps only the IMS bits of
# its ims_valid_mask, which has no RXSEQ: the ICS write sets ICR.RXSEQ but raises no
# interrupt (QEMU's trace: "ICR PENDING: 0x0 (ICR: 0x80000008, IMS: 0x95)" after IMS
# 0x9d and ICS 0x8, no MSI sent, no vfio-msi interrupt in the lab). The test passes only
# when another cause (link up, a frame) interrupts within those 100 ms, through the same
# MSI vector; a run with MSI kept and one fallen back to INTx are both what the emulator
# can give, so: the ping must work either way, and when the driver kept MSI, eth0's
# interrupts must be PCI-MSI and have come (else that check is skipped, with the reason).
l2_run l2-msi 1
tap_check "L2 pings the lab's $PEER_IF through the passed-through NIC (IntMode=1)" \
  grep -q "l2-vfio: ping ok" /tmp/l2-msi.console
grep -a 'e1000e.*\(MSI\|interrupt\)' /tmp/l2-msi.console | while read -r line; do
  tap_diag "$line"
done
msi_delivered() { # the guest's eth0 line of /proc/interrupts: PCI-MSI, count > 0
  grep -a "l2-vfio: irq .*PCI-MSI.*eth0" /tmp/l2-msi.console |
    awk '{ if ($4 > 0) ok = 1 } END { exit !ok }'
}
if grep -aq "MSI interrupt test failed" /tmp/l2-msi.console; then
  tap_ok "L2's e1000e kept MSI and its interrupts came as PCI-MSI # SKIP its self-test fell back to INTx: QEMU's e1000e raises no interrupt for ICS.RXSEQ"
else
  tap_check "L2's e1000e kept MSI and its interrupts came as PCI-MSI" msi_delivered
fi
tap_is "iovd-vmm exits 0 after the MSI run" "$VMM_STATUS" 0

# A stray DMA into guest RAM shows up as a kernel BUG there (bad page map, bad page state).
tap_is "neither L2 kernel logged a BUG (no stray DMA into guest RAM)" \
  "$(cat /tmp/l2.console /tmp/l2-msi.console | grep -c 'BUG')" 0
faults=$(dmesg | grep -ci "dmar.*fault")
tap_is "no DMAR fault in the lab's kernel log" "$faults" 0 || dmesg | grep -i dmar | tail -n 5
tap_is "$NIC still bound to vfio-pci" "$(lab_driver_of "$NIC")" vfio-pci
