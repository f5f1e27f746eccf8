# shellcheck shell=bash
# The lab machine: QEMU q35 under TCG, an emulated Intel IOMMU with interrupt remapping
# (unless LAB_IOMMU=0), LAB_NVME SR-IOV NVMe physical functions behind their own PCIe root
# ports, each offering LAB_MAX_VFS virtual functions, LAB_NICS e1000e NICs on a private hub,
# LAB_IGB igb (Intel 82576, SR-IOV) NICs on the same hub, each behind its own root port,
# LAB_MEMORY MiB and LAB_CPUS vCPUs. The ICH9 LPC + SATA + SMBus functions q35 always has
# share one IOMMU group: the multi-device group. Sourced by tests/lab/lab.
#
# lab_qemu_command WORKDIR INITRD MODE fills the array LAB_QEMU_CMD. MODE "run": the
# console (ttyS0) goes to WORKDIR/console.log; MODE "shell": to this terminal. ttyS1
# always goes to WORKDIR/tap.log: the scenario's TAP channel, kept apart from kernel
# messages.

: "${LAB_NVME:=1}" "${LAB_MAX_VFS:=4}" "${LAB_NICS:=1}" "${LAB_MEMORY:=1024}" "${LAB_CPUS:=1}"
: "${LAB_IGB:=0}" "${LAB_NVME_CMB:=0}"
# shellcheck source=emulator.sh
. "$LAB_DIR/lib/emulator.sh"
: "${LAB_IOMMU:=1}"

lab_qemu_nvme_args() {
  local work=$1 i cmb=""
  # A controller memory buffer: BAR 2, 64-bit prefetchable (QEMU hw/nvme/ctrl.c).
  if [ "$LAB_NVME_CMB" -gt 0 ]; then cmb=",cmb_size_mb=$LAB_NVME_CMB"; fi
  for ((i = 0; i < LAB_NVME; i++)); do
    truncate -s 16M "$work/nvme$i.img"
    # QEMU's NVMe controller offers SR-IOV only inside an NVM subsystem; its VFs share
    # the PF's flexible queue and interrupt resources (sriov_vq/vi_flexible).
    LAB_QEMU_CMD+=(
      -device "pcie-root-port,id=rp$i,bus=pcie.0,chassis=$((i + 1))"
      -device "nvme-subsys,id=subsys$i"
      -drive "file=$work/nvme$i.img,if=none,id=nv$i,format=raw"
      -device "nvme,id=nvme$i,serial=lab$i,subsys=subsys$i,bus=rp$i,sriov_max_vfs=$LAB_MAX_VFS,sriov_vq_flexible=$((2 * LAB_MAX_VFS)),sriov_vi_flexible=$LAB_MAX_VFS,max_ioqpairs=$((2 * LAB_MAX_VFS + 4)),msix_qsize=$((LAB_MAX_VFS + 4))$cmb"
      -device "nvme-ns,drive=nv$i,bus=nvme$i,shared=false"
    )
  done
}

lab_qemu_nic_args() {
  local i
  # Connected only to each other through hub 0: nothing leaves the lab.
  for ((i = 0; i < LAB_NICS; i++)); do
    LAB_QEMU_CMD+=(-netdev "hubport,id=net$i,hubid=0" -device "e1000e,netdev=net$i")
  done
}

# igb PFs after the NVMe ones, each on its own root port (chassis numbers follow theirs).
# On hub 0 with the e1000e NICs: a frame a PF or one of its VFs sends is seen on them.
# QEMU's igb offers 8 VFs; Linux's igb driver allows 7 (LAB.md).
lab_qemu_igb_args() {
  local i
  for ((i = 0; i < LAB_IGB; i++)); do
    LAB_QEMU_CMD+=(
      -device "pcie-root-port,id=rpigb$i,bus=pcie.0,chassis=$((LAB_NVME + i + 1))"
      -netdev "hubport,id=igbnet$i,hubid=0"
      -device "igb,id=igb$i,bus=rpigb$i,netdev=igbnet$i"
    )
  done
}

lab_qemu_command() {
  local work=$1 initrd=$2 mode=$3
  # no_timer_check: under TCG on a loaded host the kernel's IO-APIC timer self-test can miss
  # its deadline and panic ("timer doesn't work through Interrupt-remapped IO-APIC").
  local append="console=ttyS0 panic=-1 quiet no_timer_check intel_iommu=on iommu=pt lab.mode=$mode"
  # LAB_KERNEL_ARGS: more parameters for the lab kernel (measurements, debugging).
  [ -n "${LAB_KERNEL_ARGS:-}" ] && append+=" $LAB_KERNEL_ARGS"
  # Harnesses that do not call lab_emulator_prepare (lib/emulator.sh) get the host's QEMU.
  [ -n "${LAB_QEMU_PREFIX+set}" ] || LAB_QEMU_PREFIX=(qemu-system-x86_64)
  LAB_QEMU_CMD=(
    "${LAB_QEMU_PREFIX[@]}" -machine q35,kernel-irqchip=split -accel tcg -cpu max
    -smp "$LAB_CPUS" -m "$LAB_MEMORY" -no-reboot -display none -nic none
  )
  if [ "$mode" = shell ]; then
    LAB_QEMU_CMD+=(-serial mon:stdio)
  else
    # The monitor listens on a socket (when its path fits) so lab_qemu_run can read the
    # CPU state of a lab that hangs before it is killed.
    if [ "${#work}" -lt 90 ]; then
      LAB_QEMU_CMD+=(-monitor "unix:$work/monitor.sock,server=on,wait=off")
    else
      LAB_QEMU_CMD+=(-monitor none)
    fi
    LAB_QEMU_CMD+=(-serial "file:$work/console.log")
  fi
  LAB_QEMU_CMD+=(-serial "file:$work/tap.log" -serial "file:$work/heartbeat.log")
  [ "$LAB_IOMMU" = 1 ] && LAB_QEMU_CMD+=(-device intel-iommu,intremap=on,caching-mode=on)
  lab_qemu_nvme_args "$work"
  lab_qemu_nic_args
  lab_qemu_igb_args
  LAB_QEMU_CMD+=(-kernel "$LAB_KERNEL_IMAGE" -initrd "$initrd" -append "$append")
}

# CPU time (in clock ticks) a process has used.
lab_qemu_ticks() {
  awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null
}

# lab_qemu_cpu_state WORKDIR PID: what a hung lab's CPU is doing, for its failure report:
# QEMU's CPU time against its wall time (a halted vCPU uses none) and, through the monitor,
# the registers (HLT, IF, CR0/CR3) and the local APIC (pending interrupts, timer).
lab_qemu_cpu_state() {
  local work=$1 pid=$2 ticks started
  ticks=$([ -n "$pid" ] && lab_qemu_ticks "$pid")
  started=$([ -n "$pid" ] && awk '{ print $22 }' "/proc/$pid/stat" 2>/dev/null)
  if [ -n "$ticks" ]; then
    echo "QEMU used $((ticks / $(getconf CLK_TCK))) s of CPU in its" \
      "$(($(cut -d . -f 1 /proc/uptime) - started / $(getconf CLK_TCK))) s"
  fi
  [ -S "$work/monitor.sock" ] || return 0
  python3 - "$work/monitor.sock" <<'PY'
import socket, sys

def until_prompt(s):
    out = b""
    while not out.endswith(b"(qemu) "):
        chunk = s.recv(65536)
        if not chunk:
            break
        out += chunk
    return out.decode(errors="replace")

s = socket.socket(socket.AF_UNIX)
s.settimeout(10)
try:
    s.connect(sys.argv[1])
    until_prompt(s)
    for command in ("info registers", "info lapic", "info pic"):
        s.sendall(command.encode() + b"\n")
        # The reply starts with the monitor's line-editing echo of the command.
        reply = until_prompt(s).rsplit("(qemu) ", 1)[0].partition("\n")[2]
        print("(qemu) %s\n%s" % (command, reply.rstrip()))
except OSError as e:
    print("monitor: %s" % e)
PY
}

# lab_qemu_frozen WORKDIR: one look, through the monitor, for the state a frozen lab is
# in (lab_qemu_state_frozen).
lab_qemu_frozen() {
  lab_qemu_state_frozen "$(lab_qemu_cpu_state "$1" "" 2>/dev/null)"
}

# lab_qemu_state_frozen TEXT: the test on lab_qemu_cpu_state's text: IF (RFLAGS bit 9)
# set, no interrupt in service and a vector waiting in the local APIC's IRR. A healthy CPU
# takes such an interrupt at its next instruction. QEMU 7.2's TCG emulation of SVM now
# and then stops delivering the lab's interrupts while it runs an L2 guest: the lab then
# sits in HLT, or the CPU keeps running the L2 guest at one RIP, with the timer vector
# pending for good, and not even an NMI gets through (tests/lab/README.md). A CPU with IF
# clear (a dead kernel) does not count.
lab_qemu_state_frozen() {
  local rflags
  rflags=$(sed -n 's/.*RFL=\([0-9a-fA-F]*\) .*/\1/p' <<<"$1" | head -n 1)
  [ -n "$rflags" ] && (((16#$rflags & 0x200) != 0)) &&
    grep -Eq '^ISR[[:space:]]+\(none\)' <<<"$1" && grep -Eq '^IRR[[:space:]]+[0-9]' <<<"$1"
}

# One run of LAB_QEMU_CMD within LIMIT seconds: QEMU's status, 124 when it ran out of time,
# 125 when it froze: the lab's heartbeat (ttyS2, every 2 s from guest/init) had started
# and then stopped for LAB_FREEZE_SECONDS, and the monitor shows lab_qemu_frozen. A lab
# that is only slow keeps beating; one that has not started beating is never called
# frozen. Either way the CPU state goes to WORKDIR/cpu-state.txt before QEMU is stopped.
lab_qemu_run_once() {
  local work=$1 limit=$2 pid deadline size last_size=0 beat_at=$SECONDS verdict=""
  rm -f "$work/heartbeat.log"
  "${LAB_QEMU_CMD[@]}" </dev/null >"$work/qemu.out" 2>&1 &
  pid=$!
  deadline=$((SECONDS + limit))
  while kill -0 "$pid" 2>/dev/null; do
    size=$(stat -c %s "$work/heartbeat.log" 2>/dev/null || echo 0)
    if [ "$size" != "$last_size" ]; then
      last_size=$size
      beat_at=$SECONDS
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      verdict=124
    elif [ "$last_size" -gt 0 ] && [ $((SECONDS - beat_at)) -ge "${LAB_FREEZE_SECONDS:-30}" ] &&
      lab_qemu_frozen "$work"; then
      verdict=125
    fi
    if [ -n "$verdict" ]; then
      lab_qemu_cpu_state "$work" "$pid" >"$work/cpu-state.txt" 2>&1
      kill -TERM "$pid" 2>/dev/null
      sleep 5
      kill -KILL "$pid" 2>/dev/null
      wait "$pid" 2>/dev/null
      return "$verdict"
    fi
    sleep 1
  done
  wait "$pid"
}

# lab_qemu_run WORKDIR TIMEOUT: run LAB_QEMU_CMD (output to WORKDIR/qemu.out) and return
# its status, or 124 when it ran out of time. A lab that froze (see lab_qemu_frozen) is
# booted again from the start, within what is left of TIMEOUT, at most twice; each such
# run is told as a TAP comment and its logs kept as *-frozen-N.*. Everything the judge
# sees comes from the last run, judged in full.
lab_qemu_run() {
  local work=$1 limit=$2 start=$SECONDS attempt=1 status
  rm -f "$work/cpu-state.txt" "$work"/*-frozen-*
  while :; do
    lab_qemu_run_once "$work" "$((limit - (SECONDS - start)))"
    status=$?
    [ "$status" -eq 125 ] || return "$status"
    echo "# lab: run $attempt froze after $((SECONDS - start)) s (the lab's interrupts stopped" \
      "being delivered: QEMU's SVM emulation, not the code under test)"
    # No run left (or no time for one): this run's logs stay for the judge, as a timeout.
    if [ "$attempt" -ge 3 ] || [ "$((limit - (SECONDS - start)))" -lt 60 ]; then
      return 124
    fi
    for f in console.log tap.log cpu-state.txt; do
      [ -f "$work/$f" ] && mv "$work/$f" "$work/${f%.*}-frozen-$attempt.${f##*.}"
    done
    echo "# lab: its logs are $work/*-frozen-$attempt.*; booting it again"
    attempt=$((attempt + 1))
  done
}

# lab_run_with_extra WORKDIR BUILD_DIR TIMEOUT: boot WORKDIR/scenario.sh in a lab whose
# initramfs also holds the files under WORKDIR/extra (an L2 kernel and initramfs, say),
# and judge it, on the lab's QEMU (lib/emulator.sh); exits with the verdict. For harnesses
# outside tests/lab (tests/guest) that build their own scenario; needs lib/kernel.sh,
# lib/initramfs.sh and lib/judge.sh sourced.
lab_run_with_extra() {
  local work=$1 build=$2 limit=$3 start status=0
  lab_emulator_prepare || {
    lab_judge_harness_failure "no usable QEMU; see stderr"
    exit 1
  }
  lab_initramfs_build "$work/base.gz" "$build" "$work/scenario.sh" || exit 1
  # A second archive after the first: the kernel unpacks both (initramfs-format docs).
  (cd "$work/extra" && find . | cpio -o -H newc -R 0:0 --quiet | gzip -1) >"$work/extra.gz"
  cat "$work/base.gz" "$work/extra.gz" >"$work/initrd.gz"
  lab_qemu_command "$work" "$work/initrd.gz" run
  start=$(date +%s)
  lab_qemu_run "$work" "$limit" || status=$?
  lab_judge "$work" "$status" "$limit" "$(($(date +%s) - start))"
  exit $?
}
