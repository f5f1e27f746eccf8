#!/bin/sh
# Passthrough through iovd's API (issue 9, scenarios 1 and 4): the lab's first e1000e is
# the one device of a pool; a VM whose definition names that pool gets it at create (an
# allocation the VM owns: no other VM or client can take or release it), and its L2
# Debian kernel's stock e1000e driver probes it, reads the MAC the lab gave the NIC and
# pings the lab's second e1000e (same QEMU hub, IPv6 link-local). The guest reboots:
# the VM is stopped, the NIC reset and still held. Started again, its VMM is killed
# with SIGKILL mid-run: the VM is crashed, the NIC reset and still held. Deleting the VM
# gives the NIC back to its pool, driverless as iovd found it. No DMAR fault in the lab's kernel log.
# The VMM runs jailed (its own uid, no capability, seccomp, no_new_privs) with the NIC's
# VFIO descriptors and a virtio console whose input iovd opened for it.
# The L2 guest is l2/build-vfio.sh's (l2/init-vfio).
# lab-topology: --nvme 0 --nics 2 --memory 1024 --timeout 900
# lab-prepare: l2/build-vfio.sh
. /lab/lab.sh

tap_plan 31
tap_check "kvm_amd loads" lab_modprobe kvm_amd
tap_check "vfio-pci, vfio_iommu_type1 and e1000e load" \
  lab_modprobe vfio-pci vfio_iommu_type1 e1000e
lab_require_programs iovd iovd-vmm || exit 1

lab_e1000e_pair || exit 1
tap_diag "passed through: $NIC (group $(lab_group_of "$NIC"), MAC $MAC); peer: $PEER ($PEER_IF)"

# The peer's link-local address (fe80::/64 from its MAC), once it is no longer tentative.
ip link set "$PEER_IF" up
peer_ll() {
  awk -v dev="$PEER_IF" '$6 == dev && $1 ~ /^fe80/ && $5 !~ /^[4-7c-f]/ { print $1 }' \
    /proc/net/if_inet6 | grep .
}
lab_wait 30 peer_ll
PEER_ADDR=$(peer_ll | sed 's/\(....\)/\1:/g; s/:$//' | head -n 1)

# iovd hands out only what no host driver holds (allocation.sh): the operator takes the
# NIC from e1000e first, and iovd gives it back driverless, as it found it.
echo "$NIC" >"$SYSFS_PCI/$NIC/driver/unbind"
tap_is "$NIC taken from e1000e by hand" "$(lab_driver_of "$NIC")" none

iovd_start_checked || exit 1
api_expect "POST /v1/pools nics: the lab's first e1000e" 201 \
  POST /v1/pools "{\"name\": \"nics\", \"selector\": {\"addresses\": [\"$NIC\"]}}"

CMDLINE="console=ttyS0 reboot=k panic=-1 quiet iovtest.peer=$PEER_ADDR iovtest.intmode=2"
vm_body() { # vm_body NAME
  echo "{\"name\": \"$1\", \"vcpus\": 1, \"memory_mib\": 256, \"kernel\": \"/lab/vmlinuz\",
    \"initrd\": \"/lab/l2.cpio.gz\", \"cmdline\": \"$CMDLINE\",
    \"devices\": [{\"type\": \"vfio\", \"pool\": \"nics\", \"guest_address\": 4},
      {\"type\": \"virtio-console\", \"input\": \"$LAB_IMAGES/$1.in\"}]}"
}
mkfifo "$LAB_IMAGES/l2.in" "$LAB_IMAGES/other.in"
api_expect "POST /v1/vms l2 with a vfio entry from pool nics" 201 POST /v1/vms "$(vm_body l2)"
VM=$(api_jq .id)
ALLOC=$(api_jq '.passthrough[0].allocation')
tap_is "the VM's passthrough device is $NIC" "$(api_jq '.passthrough[0].host')" "$NIC"
api GET "/v1/allocations/$ALLOC"
tap_is "allocation $ALLOC belongs to VM $VM" "$(api_jq .vm)" "$VM"
tap_is "$NIC bound to vfio-pci" "$(lab_driver_of "$NIC")" vfio-pci
api DELETE "/v1/allocations/$ALLOC"
tap_is "DELETE of the VM's allocation: 409 allocation_in_use" \
  "$API_STATUS $(api_jq .error.code)" "409 allocation_in_use"
api_expect "a second VM from the same pool is refused (409)" 409 POST /v1/vms "$(vm_body other)"

vm_state_is() {
  api GET "/v1/vms/$1"
  [ "$(api_jq .state)" = "$2" ]
}
resets() { grep -c "): devices reset" "$IOVD_LOG"; }
report_and_exit() {
  lab_vm_report l2
  iovd_stop
  exit 1
}

# Run 1: the guest probes, pings and reboots (reboot=k: the VMM exits 0).
api_expect "POST /v1/vms/l2/start" 200 POST /v1/vms/l2/start
lab_vm_console_follow l2
tap_is "one reset before the start" "$(resets)" 1
tap_check "the guest ran and rebooted: the VM is stopped" lab_wait 420 vm_state_is l2 stopped ||
  report_and_exit
tap_check "L2's stock e1000e driver probed the NIC and reads MAC $MAC" \
  vm_console_has l2 "l2-vfio: eth0 driver e1000e mac $MAC"
tap_check "L2 pings the lab's $PEER_IF through the passed-through NIC" \
  vm_console_has l2 "l2-vfio: ping ok"
tap_is "reset again after the stop" "$(resets)" 2
api GET "/v1/allocations/$ALLOC"
tap_is "after the stop: still held by the VM, on vfio-pci" \
  "$(api_jq .vm) $(lab_driver_of "$NIC")" "$VM vfio-pci"

# Run 2: SIGKILL of the VMM while the guest uses the NIC.
api_expect "POST /v1/vms/l2/start again" 200 POST /v1/vms/l2/start
PID=$(api_jq .pid)
tap_is "iovd-vmm $PID runs jailed: uid not 0, CapEff 0, Seccomp 2, NoNewPrivs 1" \
  "$(lab_vmm_jailed "$PID")" jailed
tap_check "the guest's e1000e driver probed the NIC again" \
  vm_console_wait 300 l2 "l2-vfio: eth0 driver e1000e" || report_and_exit
api GET /v1/vms/l2
tap_is "the jailed VMM runs the virtio console beside the NIC" \
  "$(api_jq '[.stats.virtio[]?.type] | index("virtio-console") != null')" true
kill -9 "$PID"
tap_check "after kill -9 of iovd-vmm $PID the VM is crashed" lab_wait 30 vm_state_is l2 crashed
tap_is "reset before the start and after the crash" "$(resets)" 4
api GET "/v1/allocations/$ALLOC"
tap_is "after the crash: still held by the VM, on vfio-pci" \
  "$(api_jq .vm) $(lab_driver_of "$NIC")" "$VM vfio-pci"
api_expect "no other VM gets the crashed VM's NIC (409)" 409 POST /v1/vms "$(vm_body other)"

api_expect "DELETE /v1/vms/l2" 200 DELETE /v1/vms/l2
tap_is "the NIC is given back as iovd found it (no driver)" "$(lab_driver_of "$NIC")" none
api GET /v1/pools/nics
tap_is "pool nics has its device free again" "$(api_jq .free)" 1
faults=$(dmesg | grep -ci "dmar.*fault")
tap_is "no DMAR fault in the lab's kernel log" "$faults" 0 || dmesg | grep -i dmar | tail -n 5
iovd_stop >/dev/null
