#!/bin/sh
# Nested KVM: the lab's vCPU (QEMU -cpu max under TCG) offers AMD SVM, so kvm_amd loads
# and /dev/kvm runs guest code inside the lab; iovd sees it. This is the base for the VMM
# scenarios.
. /lab/lab.sh

tap_plan 6
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
