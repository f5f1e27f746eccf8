# Sourced by the lab side of `bench/lab/run boot`, `blk` and `net`: guest RAM in huge pages
# for both VMMs (lab_guest_ram_huge), and KVM's own counters, which count
# the same way under any VMM, so iovd-vmm and QEMU can be set side by side. debugfs has
# one file per statistic at the top of kvm/, the sum over every VM and vCPU in the lab
# (Documentation/virt/kvm/api.rst, "KVM statistics"); the benchmarks run one L2 guest at
# a time, so a difference between two readings is that guest's.
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null

# Guest RAM in huge pages for both VMMs, by the same rule: each asks with MADV_HUGEPAGE.
# iovd-vmm's RAM is shared memory (a memfd), which Linux backs with huge pages only with
# shmem_enabled "advise" or more (Debian: never); QEMU's is anonymous memory, which
# follows `enabled` (the lab's Debian kernel: always; "madvise" would do too, QEMU asks).
# With 4 KiB pages every first touch of a guest page is a nested page fault exit
# (pf_fixed). Documentation/admin-guide/mm/transhuge.rst. On a host (bench/host/run,
# HOST_BENCH set) the host's settings stay as they are. $1: shmem_enabled, advise unless
# never is asked for (LAB_BENCH_SHMEM_THP: iovd-vmm's RAM in 4 KiB pages, for comparison).
lab_guest_ram_huge() {
  thp=/sys/kernel/mm/transparent_hugepage
  if [ -z "${HOST_BENCH:-}" ]; then
    echo "${1:-advise}" >$thp/shmem_enabled
    grep -q '\[never\]' $thp/enabled && echo madvise >$thp/enabled
  fi
  echo "lab: transparent_hugepage enabled $(cat $thp/enabled)," \
    "shmem_enabled $(cat $thp/shmem_enabled)"
}
# exits: every VM exit; io_exits: port I/O exits (those an ioeventfd serves in the kernel
# included); mmio_exits: MMIO exits that went out to the VMM; halt_exits: HLT;
# irq_injections: interrupts injected; irq_exits: exits for the lab's own interrupts (its
# timer, its devices); irq_window_exits: waits for the guest to accept an interrupt;
# insn_emulation: instructions KVM emulated (MMIO among them); pf_fixed: page faults KVM
# fixed by mapping guest memory (with nested paging, one exit per first touch of a page
# the host maps small). What the names leave out (MSR writes: the x2APIC's EOI and the
# TSC deadline; CPUID) is the rest.
KVM_STATS="exits io_exits mmio_exits halt_exits irq_injections irq_exits irq_window_exits
  insn_emulation pf_fixed${KVM_STAT_NETNS:+ vmm_cpu_ticks}"

kvm_stat() {
  if [ -n "${KVM_STAT_NETNS:-}" ]; then
    kvm_stat_netns
    return
  fi
  for k in $KVM_STATS; do
    printf '%s ' "$(cat "/sys/kernel/debug/kvm/$k" 2>/dev/null || echo 0)"
  done
}

# On a shared host (bench/host/run, KVM_STAT_NETNS=1) other VMs run beside the benchmark's,
# so the top-level sums would count theirs: instead the sums over the VMs' own folders,
# PID-FD (Documentation/virt/kvm/api.rst; each holds the vCPU statistics summed over its
# vCPUs), of the VMMs in this network namespace (the benchmark runs in one of its own),
# and their processes' CPU time (utime + stime in clock ticks, proc(5)) as vmm_cpu_ticks.
kvm_stat_netns() {
  ns=$(readlink /proc/self/ns/net) dirs='' pids=''
  for d in /sys/kernel/debug/kvm/*-*; do
    pid=${d##*/}
    pid=${pid%%-*}
    [ "$(readlink "/proc/$pid/ns/net" 2>/dev/null)" = "$ns" ] || continue
    dirs="$dirs $d" pids="$pids $pid"
  done
  for k in $KVM_STATS; do
    [ "$k" = vmm_cpu_ticks ] && continue
    s=0
    for d in $dirs; do s=$((s + $(cat "$d/$k" 2>/dev/null || echo 0))); done
    printf '%s ' "$s"
  done
  s=0
  for pid in $pids; do
    s=$((s + $(awk '{ print $14 + $15 }' "/proc/$pid/stat" 2>/dev/null || echo 0)))
  done
  printf '%s ' "$s"
}

# kvm_delta "$(kvm_stat)" "$(kvm_stat)": kvm_NAME=N for each counter, end minus begin.
kvm_delta() {
  echo "$1 $2" | awk -v names="$KVM_STATS" '{
    n = split(names, k)
    for (i = 1; i <= n; i++) printf "kvm_%s=%d ", k[i], $(n + i) - $i
  }'
}

# Passes an L2 console through and, for every run the guest brackets with "bench-cpu:
# begin/end BENCH WHO run=N" lines, prints "bench-result: BENCH WHO run=N kvm_...=..." with
# KVM's counters over that run. Each line is read as the guest prints it: cpumon.py times
# the runs by when those lines reach the lab's console.
kvm_runs() {
  cr=$(printf '\r') begin=
  while IFS= read -r line; do
    line=${line%"$cr"}
    echo "$line"
    case "$line" in
    *"bench-cpu: begin "*) begin=$(kvm_stat) ;;
    *"bench-cpu: end "*)
      echo "bench-result: ${line#*bench-cpu: end } $(kvm_delta "$begin" "$(kvm_stat)")"
      ;;
    esac
  done
}

# The QEMU arm's command line up to the kernel's: q35 (virtio-pci devices with MSI-X, as
# iovd-vmm has; microvm's virtio-mmio has one interrupt line and a status read per
# interrupt), KVM, the same vCPU and memory as the iovd-vmm arm. The serial console goes
# to QEMU's stdout (no -serial stdio: that would put the lab's console in raw mode).
QEMU_L2="qemu-system-x86_64 -M q35 -accel kvm -cpu ${QEMU_CPU:-host} -m 256 -smp 1 -nodefaults
  -no-user-config -display none -monitor none -no-reboot -serial file:/proc/self/fd/1
  -kernel /lab/vmlinuz -initrd /lab/l2.cpio"
