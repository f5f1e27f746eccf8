# shellcheck shell=sh
# /lab/lab.sh for the lab's scenarios when bench/host/run runs them on the host: the lab's
# own helpers (tests/lab/guest/lab.sh, @LAB_SH@ filled in by run), with module loading as
# a host has it. KVM is the host's (run checked /dev/kvm), whichever vendor module it is;
# any other module counts as loaded when the kernel has it (/sys/module, built in or
# loaded) or modprobe loads it.
. @LAB_SH@

# The scenarios leave the host's settings alone (scenario-boot.sh's shmem_enabled).
# shellcheck disable=SC2034 # read by the scenarios that source this file
HOST_BENCH=1

lab_modprobe() {
  for m in "$@"; do
    case "$m" in
    kvm_amd | kvm_intel) [ -w /dev/kvm ] && continue ;;
    esac
    [ -e "/sys/module/$m" ] || modprobe "$m" 2>/dev/null || return 1
  done
}
