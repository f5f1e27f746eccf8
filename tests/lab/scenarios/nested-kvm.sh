#!/bin/sh
# Nested KVM: the lab's vCPU (QEMU -cpu max under TCG) offers AMD SVM, so kvm_amd loads
# and /dev/kvm runs guest code inside the lab: lab-kvm-smoke on raw ioctls, then iovd-vmm
# with a tests/guest payload; iovd reports KVM. The base for the VMM scenarios.
. /lab/lab.sh

tap_plan 8
tap_check "the vCPU advertises SVM (cpuinfo flag svm)" grep -qw svm /proc/cpuinfo
tap_check "kvm_amd loads with its dependencies (kvm, ccp, irqbypass)" lab_modprobe kvm_amd
tap_check "/dev/kvm is a character device" test -c /dev/kvm
tap_check "lab-kvm-smoke: a real-mode guest writes 0x42 to port 0x10, then halts" lab-kvm-smoke

lab_require_programs iovd || exit 1
iovd_start_checked || exit 1
api GET /v1/host
tap_is "GET /v1/host: KVM available, API version 12" \
  "$(api_jq '"\(.kvm.available) \(.kvm.api_version)"')" "true 12"
iovd_stop

# iovd-vmm on the lab's /dev/kvm with the smallest payload of tests/guest: it prints a line
# on the emulated UART and resets the VM through the i8042.
lab_require_programs iovd-vmm || exit 1
timeout 60 iovd-vmm --kernel /opt/iovd/guest/hello.bzImage --memory 64 >/tmp/vmm.out \
  2>/tmp/vmm.err 3>&-
tap_is "iovd-vmm runs hello.bzImage to its i8042 reset (exit status 0)" "$?" 0 ||
  tap_diag "$(tail -n 10 /tmp/vmm.err)"
tap_is "the payload's UART line reaches iovd-vmm's stdout" "$(cat /tmp/vmm.out)" \
  "hello from the guest"
