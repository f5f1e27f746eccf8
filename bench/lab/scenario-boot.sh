#!/bin/sh
# Lab side of `bench/lab/run boot` (@...@ filled in by run): the same kernel and L2
# initramfs booted @RUNS@ times under each VMM, alternating; boottime times each from its
# fork to the guest's marker line on the VMM's output.
. /lab/lab.sh
. /lab/kvm-stat.sh
lab_modprobe kvm_amd || echo "bench-error: kvm_amd does not load"
lab_guest_ram_huge @SHMEM_THP@
cmdline="@CMDLINE@ bench=boot"
# KVM's counters (kvm-stat.sh) from the VMM's start to the guest's userspace marker, read
# by boottime at the marker while the VM still exists: every exit, those KVM serves
# itself (CPUID, MSRs, HLT, ioeventfd) included, under either VMM.
KVM_AT_MARKER="KVM_STAT_NETNS=${KVM_STAT_NETNS:-}; . /lab/kvm-stat.sh; kvm_stat >/tmp/kvm.at"
# The L2 kernel's own clock at the marker: what the wall time spends before it starts
# (VMM setup, firmware, the bzImage's decompressor) is the difference.
guest_clock() {
  echo "guest_s=$(grep -a -o 'iovd-bench-marker: userspace at [0-9.]*' "$1" | grep -o '[0-9.]*$')"
}
# iovd-vmm's exit counts from its statistics at exit: all of them, PCI config space's
# (CF8/CFC and ECAM), and all of them up to the userspace marker 42.
exits() {
  echo "exits=$(grep -a -o '"exits":{[^}]*}' "$1" | grep -o '[0-9]*' | awk '{ s += $1 } END { print s + 0 }')" \
    "pci_config_exits=$(grep -a -o '"pci-config":[0-9]*' "$1" | grep -o '[0-9]*$')" \
    "pci_ecam_exits=$(grep -a -o '"pci-ecam":[0-9]*' "$1" | grep -o '[0-9]*$')" \
    "exits_to_marker=$(grep -a -o '"value":42,[^}]*' "$1" | grep -o '"exits":[0-9]*' | grep -o '[0-9]*$')"
}
i=1
while [ $i -le @RUNS@ ]; do
  echo "bench-cpu: begin boot iovd-vmm run=$i"
  k=$(kvm_stat) && rm -f /tmp/kvm.at
  r=$(BOOTTIME_ANNOUNCE="bench-cpu: end boot iovd-vmm run=$i" BOOTTIME_AT_MARKER="$KVM_AT_MARKER" \
    /lab/boottime iovd-bench-marker /tmp/iovd.$i.log 300 5 -- \
    iovd-vmm --kernel /lab/vmlinuz --initrd /lab/l2.cpio --memory 256 --vcpus 1 \
    --cmdline "$cmdline bench.port")
  # iovd-vmm's own figure: the boot-progress marker's time in its exit statistics.
  port=$(grep -o '"value":42,"usec":[0-9]*' /tmp/iovd.$i.log | grep -o '[0-9]*$' | head -n 1)
  echo "bench-result: boot iovd-vmm run=$i $r port_us=${port:-none} $(guest_clock /tmp/iovd.$i.log)" \
    "$(exits /tmp/iovd.$i.log) $(kvm_delta "$k" "$(cat /tmp/kvm.at 2>/dev/null)")"
  echo "bench-cpu: begin boot qemu-microvm run=$i"
  k=$(kvm_stat) && rm -f /tmp/kvm.at
  r=$(BOOTTIME_ANNOUNCE="bench-cpu: end boot qemu-microvm run=$i" BOOTTIME_AT_MARKER="$KVM_AT_MARKER" \
    /lab/boottime iovd-bench-marker /tmp/qemu.$i.log 300 5 -- \
    qemu-system-x86_64 -M microvm -accel kvm -cpu "${QEMU_CPU:-host}" -m 256 -smp 1 -nodefaults \
    -no-user-config -display none -monitor none -serial stdio -no-reboot \
    -kernel /lab/vmlinuz -initrd /lab/l2.cpio -append "$cmdline")
  echo "bench-result: boot qemu-microvm run=$i $r $(guest_clock /tmp/qemu.$i.log)" \
    "$(kvm_delta "$k" "$(cat /tmp/kvm.at 2>/dev/null)")"
  # Diagnostic, not the comparison: iovd-vmm again with pci=off, which takes Linux's PCI
  # scan and its configuration-space exits out (QEMU's microvm has no PCI at all).
  echo "bench-cpu: begin boot iovd-vmm-pci-off run=$i"
  r=$(BOOTTIME_ANNOUNCE="bench-cpu: end boot iovd-vmm-pci-off run=$i" \
    /lab/boottime iovd-bench-marker /tmp/nopci.$i.log 300 5 -- \
    iovd-vmm --kernel /lab/vmlinuz --initrd /lab/l2.cpio --memory 256 --vcpus 1 \
    --cmdline "$cmdline pci=off")
  echo "bench-result: boot iovd-vmm-pci-off run=$i $r $(guest_clock /tmp/nopci.$i.log)" \
    "$(exits /tmp/nopci.$i.log)"
  i=$((i + 1))
done
for f in /tmp/iovd.1.log /tmp/qemu.1.log; do
  echo "lab: last lines of $f:"
  tail -n 8 $f
done
