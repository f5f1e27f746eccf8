#!/bin/sh
# Nested KVM: the lab's vCPU (QEMU -cpu max under TCG) offers AMD SVM, so kvm_amd loads
# and /dev/kvm runs guest code inside the lab. This is the base for the VMM scenarios.
. /lab/lab.sh

tap_plan 4
tap_check "the vCPU advertises SVM (cpuinfo flag svm)" grep -qw svm /proc/cpuinfo
tap_check "kvm_amd loads with its dependencies (kvm, ccp, irqbypass)" lab_modprobe kvm_amd
tap_check "/dev/kvm is a character device" test -c /dev/kvm
tap_check "lab-kvm-smoke: a real-mode guest writes 0x42 to port 0x10, then halts" lab-kvm-smoke
