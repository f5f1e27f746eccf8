#!/bin/sh
# INTx of a passed-through function: the lab's first e1000e given by iovd-vmm to an L2
# guest booted with pci=nomsi, so its stock e1000e driver can only use the legacy
# interrupt. The VMM wires slot 4's INTA to IOAPIC pin 16 (16 + (slot + pin) mod 4,
# vmm/irq.c), says so in the ACPI _PRT and in the MP table, and hands VFIO an INTx
# trigger eventfd that is a KVM irqfd with a resample eventfd, VFIO's unmask. The guest
# must ping the lab's second e1000e, and its /proc/interrupts must show eth0 on IO-APIC
# pin 16, level-triggered (fasteoi), with more than one interrupt (each one after the
# first needs the unmask at the guest's EOI). Twice: with ACPI (_PRT) and with acpi=off
# (the MP table's PCI interrupt entries).
# lab-topology: --nvme 0 --nics 2 --memory 1024 --timeout 900
# lab-prepare: l2/build-vfio.sh
. /lab/lab.sh

tap_plan 15
tap_check "kvm_amd, vfio-pci, vfio_iommu_type1 and e1000e load" \
  lab_modprobe kvm_amd vfio-pci vfio_iommu_type1 e1000e
lab_require_programs iovd-vmm || exit 1

lab_e1000e_pair || exit 1
PIN=$(od -An -tu1 -j61 -N1 "$SYSFS_PCI/$NIC/config" | tr -d ' ')
tap_diag "passed through: $NIC (MAC $MAC, interrupt pin $PIN: 1 is INTA); peer $PEER ($PEER_IF)"
tap_check "$NIC bound to vfio-pci" lab_bind_vfio "$NIC"

# The peer's link-local address (fe80::/64 from its MAC), once it is no longer tentative.
ip link set "$PEER_IF" up
peer_ll() {
  awk -v dev="$PEER_IF" '$6 == dev && $1 ~ /^fe80/ && $5 !~ /^[4-7c-f]/ { print $1 }' \
    /proc/net/if_inet6 | grep .
}
lab_wait 30 peer_ll
PEER_ADDR=$(peer_ll | sed 's/\(....\)/\1:/g; s/:$//' | head -n 1)
tap_diag "peer $PEER_IF at $PEER_ADDR"

# intx_counted NAME: /proc/interrupts of the guest (init-vfio prints eth0's line) shows
# eth0 on IO-APIC pin 16, fasteoi (level), with more than one interrupt.
intx_counted() {
  n=$(grep -a -E "l2-vfio: irq +16: +[0-9]+ +IO-APIC +16-fasteoi +eth0" "/tmp/$1.console" |
    awk '{ print $4 }' | head -n 1)
  echo "eth0 interrupts on IO-APIC 16: ${n:-none}"
  [ "${n:-0}" -gt 1 ]
}

# intx_run NAME CMDLINE_EXTRA: the L2 guest with the NIC at slot 4, MSI off in its kernel.
intx_run() {
  T0=$(date +%s)
  lab_pt_vmm_run "$1" "{\"type\": \"vfio\", \"host\": \"$NIC\", \"guest_address\": 4}" \
    "pci=nomsi iovtest.peer=$PEER_ADDR $2"
  tap_diag "the L2 guest $1 ran $(($(date +%s) - T0)) s"
  grep -a "l2-vfio:" "/tmp/$1.console" | while read -r line; do tap_diag "$line"; done
  tap_check "$1: L2's e1000e driver probed the NIC and reads MAC $MAC" \
    grep -q "l2-vfio: eth0 driver e1000e mac $MAC" "/tmp/$1.console"
  tap_check "$1: L2 pings the lab's $PEER_IF over INTx" grep -q "l2-vfio: ping ok" "/tmp/$1.console"
  tap_is "$1: no MSI or MSI-X vector in the guest" \
    "$(grep -a -c -E "l2-vfio: irq .*(PCI-MSI|msi)" "/tmp/$1.console")" 0
  tap_check "$1: eth0's interrupts arrive on IO-APIC pin 16, level (fasteoi), counting" \
    intx_counted "$1"
  tap_is "$1: iovd-vmm exits 0 after the guest's reboot" "$VMM_STATUS" 0
}

intx_run acpi ""
intx_run mptable "acpi=off"

tap_is "neither L2 kernel logged a BUG" \
  "$(cat /tmp/acpi.console /tmp/mptable.console | grep -c 'BUG')" 0
faults=$(dmesg | grep -ci "dmar.*fault")
tap_is "no DMAR fault in the lab's kernel log" "$faults" 0 || dmesg | grep -i dmar | tail -n 5
