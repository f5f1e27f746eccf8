#!/bin/sh
# A large 64-bit prefetchable BAR above 4 GiB: the lab's NVMe controller with a 64 MiB
# controller memory buffer (QEMU's cmb_size_mb: BAR 2, 64-bit, prefetchable) passed
# through by iovd-vmm. A 64-bit prefetchable BAR of 64 MiB or more goes to the guest's
# window above RAM (here from 4 GiB: 256 MiB of RAM), which the host bridge's _CRS
# announces; BAR 0 (registers, doorbells, MSI-X) stays below 4 GiB. The L2 guest must see
# BAR 2 there, 64-bit prefetchable, and its stock nvme driver must still read the lab's
# pattern and write its own, which the lab reads back after the VM stopped; and a word
# the guest writes into the CMB through BAR 2 (lab-dma bar, driver unbound) must read
# back (where nothing is mapped, reads return all ones).
# lab-topology: --nvme 1 --max-vfs 0 --nvme-cmb 64 --nics 0 --memory 1024 --timeout 900
# lab-prepare: l2/build-nvme-cmb.sh
. /lab/lab.sh

tap_plan 13
tap_check "kvm_amd, vfio-pci, vfio_iommu_type1 and nvme load" \
  lab_modprobe kvm_amd vfio-pci vfio_iommu_type1 nvme
lab_require_programs iovd-vmm || exit 1

# Without SR-IOV (QEMU refuses it with a CMB) lab_find_pf finds no PF: look by id.
PF=""
for d in "$SYSFS_PCI"/*; do
  [ "$(cat "$d/vendor"):$(cat "$d/device")" = "0x1b36:0x0010" ] && PF=$(basename "$d") && break
done
tap_check "the lab's NVMe controller ($PF)" test -n "$PF" || exit 1
tap_diag "$PF BARs (start end flags): $(grep -v '^0x0000000000000000' "$SYSFS_PCI/$PF/resource" | tr '\n' ';')"
# BAR 2: 64 MiB, flags with IORESOURCE_PREFETCH (0x2000) and IORESOURCE_MEM_64 (0x100000).
bar2_size() {
  sed -n 3p "$SYSFS_PCI/$PF/resource" | {
    read -r start end flags
    echo $((end - start + 1)) $((flags & 0x102000))
  }
}
tap_is "the lab's controller has a 64 MiB 64-bit prefetchable BAR 2 (its CMB)" \
  "$(bar2_size)" "67108864 1056768"
lab_wait 20 test -b /dev/nvme0n1
lab_nvme_write_pattern
tap_check "$PF bound to vfio-pci" lab_bind_vfio "$PF"

lab_pt_vmm_run cmb "{\"type\": \"vfio\", \"host\": \"$PF\", \"guest_address\": 5}" \
  "iovtest.nonce=$NONCE iovtest.cmb=0x$NONCE"
grep -a "l2-nvme:" /tmp/cmb.console | while read -r line; do tap_diag "$line"; done
# bar_in_guest N: "START FLAGS" of BAR N as the guest's sysfs has it.
bar_in_guest() {
  grep -a "l2-nvme: bar $1 " /tmp/cmb.console | head -n 1 | tr -d '\r' | awk '{ print $4, $6 }'
}
high_prefetchable() {
  set -- $(bar_in_guest 2)
  echo "BAR 2 at ${1:-none}, flags ${2:-none}"
  [ -n "${1:-}" ] && [ $(($1 >= 0x100000000)) = 1 ] && [ $(($2 & 0x102000)) = 1056768 ]
}
low_bar0() {
  set -- $(bar_in_guest 0)
  echo "BAR 0 at ${1:-none}"
  [ -n "${1:-}" ] && [ $(($1 < 0x100000000)) = 1 ]
}
tap_check "the L2 guest has BAR 2 above 4 GiB, 64-bit prefetchable" high_prefetchable
tap_check "and BAR 0 below 4 GiB" low_bar0
tap_check "the L2 guest's stock nvme driver drives the controller and read the lab's pattern" \
  grep -q "l2-nvme: read iovd-lab-pattern-A-$NONCE" /tmp/cmb.console
tap_check "the L2 guest wrote 0x$NONCE into the CMB through BAR 2 and read it back" \
  grep -q "l2-nvme: lab-dma: bar 2 offset 0x1000 wrote 0x$NONCE read 0x$NONCE" /tmp/cmb.console
tap_is "iovd-vmm exits 0 after the guest's reboot" "$VMM_STATUS" 0

# The controller back to the lab's nvme driver.
echo "$PF" >"$SYSFS_PCI/$PF/driver/unbind"
echo >"$SYSFS_PCI/$PF/driver_override"
echo "$PF" >/sys/bus/pci/drivers_probe
lab_wait 30 test -b /dev/nvme0n1
tap_is "the lab reads the L2 guest's pattern at block 512" "$(lab_nvme_block_text 512)" \
  "iovd-l2-pattern-B-$NONCE"
tap_is "no BUG in the L2 kernel's log" "$(grep -c 'BUG' /tmp/cmb.console)" 0
faults=$(dmesg | grep -ci "dmar.*fault")
tap_is "no DMAR fault in the lab's kernel log" "$faults" 0 || dmesg | grep -i dmar | tail -n 5
