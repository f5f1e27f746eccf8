# shellcheck shell=sh
# Helpers for lab scenarios (busybox sh), sourced as /lab/lab.sh. TAP goes to fd 3 (ttyS1,
# read by the runner outside); every line is echoed to the console too, so console.log
# reads as a story.
#
# A scenario: `. /lab/lab.sh; tap_plan N; ...; tap_check "what" cmd args...`.

IOVD_SOCKET=/run/iovd/iovd.sock
IOVD_STATE=/var/lib/iovd
IOVD_LOG=/tmp/iovd.log
SYSFS_PCI=/sys/bus/pci/devices
TAP_COUNT=0

tap_line() {
  echo "$*" >&3
  echo "lab-tap: $*"
}

tap_plan() {
  tap_line "1..$1"
}

tap_skip_all() {
  tap_line "1..0 # SKIP $*"
}

tap_diag() {
  printf '%s\n' "$@" | while IFS= read -r line; do tap_line "# $line"; done
}

tap_ok() {
  TAP_COUNT=$((TAP_COUNT + 1))
  tap_line "ok $TAP_COUNT - $1"
}

# tap_not_ok DESCRIPTION [DIAGNOSTIC...]
tap_not_ok() {
  TAP_COUNT=$((TAP_COUNT + 1))
  tap_line "not ok $TAP_COUNT - $1"
  shift
  [ $# -gt 0 ] && tap_diag "$@"
  return 0
}

# tap_check DESCRIPTION COMMAND [ARGS...]: ok when the command succeeds; otherwise not ok
# with the command and its output as diagnostics. Returns the verdict.
tap_check() {
  desc=$1
  shift
  if out=$("$@" 2>&1); then
    tap_ok "$desc"
  else
    tap_not_ok "$desc" "command: $*" "$out"
    return 1
  fi
}

# tap_check_here: the same, but the command runs in this shell (it may set variables or
# start background processes this shell must know about).
tap_check_here() {
  desc=$1
  shift
  if "$@" >/tmp/tap-check.out 2>&1; then
    tap_ok "$desc"
  else
    tap_not_ok "$desc" "command: $*" "$(cat /tmp/tap-check.out)"
    return 1
  fi
}

# tap_is DESCRIPTION GOT EXPECTED; returns the verdict.
tap_is() {
  if [ "$2" = "$3" ]; then
    tap_ok "$1"
  else
    tap_not_ok "$1" "got:      '$2'" "expected: '$3'"
    return 1
  fi
}

# ---- modules and sysfs ---------------------------------------------------------------------

lab_modprobe() {
  for m in "$@"; do
    modprobe "$m" || return 1
  done
}

# Print the driver bound to a PCI function, or "none".
lab_driver_of() {
  if [ -e "$SYSFS_PCI/$1/driver" ]; then
    basename "$(readlink "$SYSFS_PCI/$1/driver")"
  else
    echo none
  fi
}

# lab_e1000e_pair: the lab's two e1000e functions (8086:10d3) as NIC (the one passed
# through) and PEER (its link partner, which stays in the lab), each waited for until its
# interface exists; sets NIC, PEER, MAC (NIC's address) and PEER_IF, defines net_of ADDR
# (the interface of a function) and has_net; one TAP result; 1 when there are not two.
lab_e1000e_pair() {
  nics=""
  for d in "$SYSFS_PCI"/*; do
    [ "$(cat "$d/vendor"):$(cat "$d/device")" = "0x8086:0x10d3" ] && nics="$nics $(basename "$d")"
  done
  set -- $nics
  NIC=${1:-} PEER=${2:-}
  tap_is "two e1000e functions ($nics)" "$#" 2 || return 1
  net_of() { ls "$SYSFS_PCI/$1/net" 2>/dev/null | head -n 1; }
  has_net() { [ -n "$(net_of "$1")" ]; }
  lab_wait 20 has_net "$NIC"
  lab_wait 20 has_net "$PEER"
  MAC=$(cat "$SYSFS_PCI/$NIC/net/$(net_of "$NIC")/address")
  PEER_IF=$(net_of "$PEER")
}

lab_group_of() {
  if [ -e "$SYSFS_PCI/$1/iommu_group" ]; then
    basename "$(readlink "$SYSFS_PCI/$1/iommu_group")"
  else
    echo none
  fi
}

# The first function whose vendor:device is $1 (e.g. 1b36:0010) and which is a PF.
lab_find_pf() {
  for d in "$SYSFS_PCI"/*; do
    [ -e "$d/sriov_totalvfs" ] || continue
    id="$(sed 's/^0x//' "$d/vendor"):$(sed 's/^0x//' "$d/device")"
    [ "$id" = "$1" ] && { basename "$d"; return 0; }
  done
  return 1
}

# Wait until a condition command succeeds: lab_wait SECONDS COMMAND [ARGS...]
lab_wait() {
  deadline=$(($(date +%s) + $1))
  shift
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -ge "$deadline" ] && return 1
    sleep 0.1
  done
}

# ---- iovd ------------------------------------------------------------------------------

# api METHOD PATH [JSON BODY]: sets API_STATUS (HTTP status, 000 when no answer) and
# API_BODY.
api() {
  if [ $# -ge 3 ]; then
    resp=$(curl -sS --max-time 30 --unix-socket "$IOVD_SOCKET" -X "$1" \
      -H 'Content-Type: application/json' --data "$3" -w '\n%{http_code}' "http://lab$2" 2>&1)
  else
    resp=$(curl -sS --max-time 30 --unix-socket "$IOVD_SOCKET" -X "$1" -w '\n%{http_code}' \
      "http://lab$2" 2>&1)
  fi
  API_STATUS=$(printf '%s\n' "$resp" | tail -n 1)
  API_BODY=$(printf '%s\n' "$resp" | sed '$d')
  case "$API_STATUS" in
  [0-9][0-9][0-9]) ;;
  *) API_STATUS=000 ;;
  esac
}

# api_expect DESCRIPTION STATUS METHOD PATH [BODY]: one TAP line on the HTTP status;
# STATUS may list several accepted ones ("200 204").
api_expect() {
  desc=$1 want=$2
  shift 2
  api "$@"
  if echo " $want " | grep -q " $API_STATUS "; then
    tap_ok "$desc"
  else
    tap_not_ok "$desc" "$* -> HTTP $API_STATUS, expected $want" "body: $API_BODY"
    return 1
  fi
}

# jq over the last API body: api_jq FILTER [jq options...]
api_jq() {
  filter=$1
  shift
  printf '%s' "$API_BODY" | jq -r "$@" "$filter"
}

# Up: the socket answers HTTP at all (the status is for the scenario to judge).
iovd_is_up() {
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 --unix-socket "$IOVD_SOCKET" \
    http://lab/v1/host)
  [ "$code" != 000 ]
}

# The directories VM definitions may take files from (iovd --image-dir): the lab's kernel
# and initramfs, the guest payloads, and one for what scenarios make (FIFOs, disks).
LAB_IMAGES=/run/iovd-images

# Start the daemon in the background (IOVD_PID); wait at most 60 s until it answers.
iovd_start() {
  mkdir -p /run/iovd "$IOVD_STATE" "$LAB_IMAGES"
  iovd --listen "unix:$IOVD_SOCKET" --state-dir "$IOVD_STATE" --run-dir /run/iovd \
    --image-dir /lab --image-dir /opt/iovd/guest --image-dir "$LAB_IMAGES" \
    "$@" >>"$IOVD_LOG" 2>&1 3>&- &
  IOVD_PID=$!
  lab_wait 60 iovd_is_up && return 0
  echo "iovd did not answer within 60 s; its log:"
  tail -n 40 "$IOVD_LOG"
  return 1
}

# Stop the daemon; its log goes to the console log for whoever reads a failure.
iovd_stop() {
  [ -n "$IOVD_PID" ] || return 0
  kill "$IOVD_PID" 2>/dev/null
  wait "$IOVD_PID" 2>/dev/null
  IOVD_PID=
  echo "lab: iovd's log:"
  cat "$IOVD_LOG"
}

# One TAP result for starting the daemon (its log as diagnostics when it fails).
iovd_start_checked() {
  tap_check_here "iovd starts and answers on $IOVD_SOCKET" iovd_start "$@"
}

# Every scenario that needs the daemon starts with this; a missing program is a failure.
lab_require_programs() {
  for p in "$@"; do
    command -v "$p" >/dev/null || {
      tap_not_ok "program $p is in the lab" "not built: $p is missing from the meson build"
      return 1
    }
  done
}

# ---- reading the API's JSON ------------------------------------------------------------

# The list in the last body, whether the API wraps it ({"items": [...]}, {"devices": ...})
# or not.
API_LIST='(if type == "array" then . else (.items // .devices // .allocations // .pools // .groups // []) end)'

# Fields of one device object in the form sysfs gives them, for comparison:
# "vendor device class driver group".
API_DEVICE_FIELDS='"\(.vendor_id) \(.device_id) \(.class) \(.driver // "none") \(.iommu_group // "none")"'

# The same fields read from sysfs for one function.
lab_sysfs_device_fields() {
  d=$SYSFS_PCI/$1
  echo "$(sed 's/^0x//' "$d/vendor") $(sed 's/^0x//' "$d/device") $(sed 's/^0x//' "$d/class")" \
    "$(lab_driver_of "$1") $(lab_group_of "$1")"
}

# The sysfs driver_override of a function, "none" when unset.
lab_override_of() {
  o=$(cat "$SYSFS_PCI/$1/driver_override" 2>/dev/null)
  [ -z "$o" ] || [ "$o" = "(null)" ] && o=none
  echo "$o"
}

# ---- allocations -----------------------------------------------------------------------

# "ADDRESS ALLOCATION-ID" for every device of every allocation iovd reports.
lab_allocated_devices() {
  api GET /v1/allocations
  api_jq "$API_LIST | .[] | .id as \$id | .devices[] |
    \"\\(if type == \"object\" then .address else . end) \\(\$id)\""
}

# The daemon's promise after any crash: every VF of the PF is either in exactly one
# allocation and bound to vfio-pci, or in none, driverless and without driver_override.
# Prints each violation; returns 1 when there is one.
lab_check_vfs_consistent() {
  pf=$1
  held=$(lab_allocated_devices)
  bad=0
  dup=$(echo "$held" | awk 'NF { print $1 }' | sort | uniq -d)
  [ -n "$dup" ] && { echo "in two allocations: $dup"; bad=1; }
  for l in "$SYSFS_PCI/$pf"/virtfn*; do
    vf=$(basename "$(readlink "$l")")
    state="$(lab_driver_of "$vf") $(lab_override_of "$vf")"
    if echo "$held" | grep -q "^$vf "; then
      [ "$(lab_driver_of "$vf")" = vfio-pci ] || { echo "$vf allocated but: $state"; bad=1; }
    else
      [ "$state" = "none none" ] || { echo "$vf free but half-bound: $state"; bad=1; }
    fi
  done
  return $bad
}

# "VVVV:DDDD vendor name / device name" from pci.ids for each id given ("null" for a name
# pci.ids does not have), one awk pass over the file.
lab_pciids_names() {
  awk -v ids="$*" '
    BEGIN { n = split(ids, list, " "); for (i = 1; i <= n; i++) want[list[i]] = 1 }
    /^[0-9a-f][0-9a-f][0-9a-f][0-9a-f]  / { vendor = $1; vname[vendor] = substr($0, 7); next }
    /^\t[0-9a-f][0-9a-f][0-9a-f][0-9a-f]  / {
      id = vendor ":" substr($0, 2, 4)
      if (id in want) dname[id] = substr($0, 8)
    }
    /^C / { exit }
    END {
      for (i = 1; i <= n; i++) {
        split(list[i], p, ":")
        v = (p[1] in vname) ? vname[p[1]] : "null"
        d = (list[i] in dname) ? dname[list[i]] : "null"
        print list[i] " " v " / " d
      }
    }' /usr/share/misc/pci.ids
}

# ---- VMs -------------------------------------------------------------------------------

# vm_state_is NAME STATE: the API reports the VM in that state.
vm_state_is() {
  api GET "/v1/vms/$1"
  [ "$(api_jq .state)" = "$2" ]
}

# lab_vmm_jailed PID: "jailed" when /proc/PID/status shows a uid not 0, no effective
# capability, a seccomp filter and no_new_privs (the jailed iovd-vmm); else what it shows.
lab_vmm_jailed() {
  awk '/^Uid:/ { u = $2 } /^CapEff:/ { c = $2 } /^Seccomp:/ { s = $2 } /^NoNewPrivs:/ { n = $2 }
    END { if (u != 0 && c == "0000000000000000" && s == 2 && n == 1) print "jailed"
          else print "Uid " u " CapEff " c " Seccomp " s " NoNewPrivs " n }' "/proc/$1/status"
}

# vm_console_has NAME PATTERN: what the VM printed (GET /v1/vms/NAME/console) matches.
vm_console_has() {
  api GET "/v1/vms/$1/console"
  echo "$API_BODY" | grep -q "$2"
}

# vm_console_wait SECONDS NAME PATTERN: wait until the VM's console matches, giving up as
# soon as the VM is no longer running (a guest that crashed at boot is reported at once,
# not after the whole wait). Only for VMs nothing restarts while it waits.
vm_console_wait() {
  lab_wait "$1" vm_console_has_or_ended "$2" "$3"
  vm_console_has "$2" "$3"
}

vm_console_has_or_ended() {
  vm_console_has "$1" "$2" || ! vm_state_is "$1" running
}

# lab_vm_report NAME: TAP diagnostics for a VM that did not do what a scenario waited for:
# its state and reason, its exit counters sampled twice 2 s apart (growing: the guest runs
# but is stuck in a loop; unchanged: every vCPU waits for an interrupt that never comes),
# each iovd-vmm thread's state and kernel wait channel, and the tails of its serial console
# and of iovd-vmm's own log.
lab_vm_report() {
  api GET "/v1/vms/$1"
  tap_diag "vm $1: HTTP $API_STATUS state $(api_jq .state) pid $(api_jq .pid) reason '$(api_jq '.reason // ""')'"
  exits1=$(api_jq '.stats.exits | tostring' 2>/dev/null)
  sleep 2
  api GET "/v1/vms/$1"
  tap_diag "vm $1: exits $exits1" "vm $1: 2 s later $(api_jq '.stats.exits | tostring' 2>/dev/null)" \
    "vm $1: devices $(api_jq '.stats.devices | tostring' 2>/dev/null)"
  pid=$(api_jq '.pid // empty')
  if [ -n "$pid" ] && [ -d "/proc/$pid" ]; then
    for task in /proc/"$pid"/task/*; do
      tap_diag "vm $1: thread $(basename "$task") $(cat "$task/comm" 2>/dev/null):" \
        "  $(grep '^State' "$task/status" 2>/dev/null) wchan $(cat "$task/wchan" 2>/dev/null)"
    done
  fi
  # The VM's run directory is named by its id; a name matched in config.json files could
  # be another VM's (a name is also text in other definitions).
  dir=/run/iovd/vms/$(api_jq '.id // "none"')
  tap_diag "vm $1: last console lines ($dir/console.log):"
  [ -f "$dir/console.log" ] && tap_diag "$(tail -n 15 "$dir/console.log" | tr -d '\r' | sed 's/^/  /')"
  tap_diag "vm $1: iovd-vmm's log ($dir/vmm.log):"
  [ -f "$dir/vmm.log" ] && tap_diag "$(tail -n 15 "$dir/vmm.log" | sed 's/^/  /')"
  # A seccomp kill or a crash of iovd-vmm leaves its trace only in the kernel log.
  tap_diag "lab kernel log, VMM-related lines:" \
    "$(dmesg | grep -Ei 'audit|seccomp|segfault|traps:|iovd|kvm' | tail -n 10 | sed 's/^/  /')"
  return 0
}

# lab_send FIFO TEXT: one line to a VM's console input FIFO. Bounded, so a FIFO nobody
# reads any more (its VMM gone) fails the step instead of blocking the scenario.
lab_send() {
  timeout 10 sh -c 'printf "%s\n" "$2" >"$1"' lab_send "$1" "$2"
}

# lab_vm_console_follow NAME: copy what the VM's serial port and hvc0 print to the lab's
# console as it comes, each line prefixed with the VM's name, so the console log of a lab
# that hangs shows where its L2 guest got to. Runs in the background until the lab ends.
lab_vm_console_follow() {
  api GET "/v1/vms/$1"
  id=$(api_jq '.id // empty')
  [ -n "$id" ] || return 1
  (
    until [ -f "/run/iovd/vms/$id/console.log" ]; do sleep 0.2; done
    # A read loop, not sed or tr: those buffer a pipe's output in blocks.
    tail -n +1 -F "/run/iovd/vms/$id/console.log" 2>/dev/null |
      while IFS= read -r line; do printf '%s| %s\n' "$1" "$line"; done
  ) 3>&- &
}

# ---- passthrough ---------------------------------------------------------------------

# lab_bind_vfio BDF: the function unbound from its driver and bound to vfio-pci.
lab_bind_vfio() {
  [ -e "$SYSFS_PCI/$1/driver" ] && echo "$1" >"$SYSFS_PCI/$1/driver/unbind"
  echo vfio-pci >"$SYSFS_PCI/$1/driver_override"
  echo "$1" >/sys/bus/pci/drivers_probe
  [ "$(lab_driver_of "$1")" = vfio-pci ]
}

# lab_unbind BDF: the function taken from its host driver. iovd hands out only functions
# no host driver holds (allocation.sh) and gives them back as it found them: driverless.
lab_unbind() {
  [ -e "$SYSFS_PCI/$1/driver" ] && echo "$1" >"$SYSFS_PCI/$1/driver/unbind"
  [ "$(lab_driver_of "$1")" = none ]
}

# lab_pt_pool NAME BDF: one TAP result for a pool whose one device is BDF.
lab_pt_pool() {
  api_expect "POST /v1/pools $1: $2" 201 POST /v1/pools \
    "{\"name\": \"$1\", \"selector\": {\"addresses\": [\"$2\"]}}"
}

# lab_pt_ids BDF: "0xVVVV:0xDDDD subsystem 0xVVVV:0xDDDD" of a function, as sysfs (the
# lab's, or the L2 guest's for what it is shown) spells them.
lab_pt_ids() {
  d=$SYSFS_PCI/$1
  echo "$(cat "$d/vendor"):$(cat "$d/device") subsystem" \
    "$(cat "$d/subsystem_vendor"):$(cat "$d/subsystem_device")"
}

lab_pt_vm_body() { # NAME DEVICES_JSON [CMDLINE_EXTRA] [MEMORY_MIB]
  printf '{"name": "%s", "vcpus": 1, "memory_mib": %s, "kernel": "/lab/vmlinuz",
 "initrd": "/lab/l2.cpio.gz", "cmdline": "console=ttyS0 reboot=k panic=-1 quiet %s",
 "devices": [%s]}\n' "$1" "${4:-256}" "${3:-}" "$2"
}

lab_pt_vm_ended() {
  api GET "/v1/vms/$1"
  case "$(api_jq .state)" in
  stopped | crashed) return 0 ;;
  esac
  return 1
}

# lab_pt_vm_wait SECONDS NAME: until the VM has ended. Once a second, not lab_wait's ten
# times: every look is a curl and a jq, and under TCG they take the L2 guest's CPU.
lab_pt_vm_wait() {
  deadline=$(($(date +%s) + $1))
  until lab_pt_vm_ended "$2"; do
    [ "$(date +%s)" -ge "$deadline" ] && return 1
    sleep 1
  done
}

# iovd-vmm's exit status as its monitor recorded it in the VM's run directory
# (vms/supervisor.h: "exited N" or "signal N", the latter as 128 + N like the shell).
lab_pt_exit_status() {
  [ -f "$1/exit" ] || { echo none; return 0; }
  read -r kind code <"$1/exit"
  [ "$kind" = signal ] && code=$((128 + code))
  echo "$code"
}

# Start VM NAME, copy its serial console to the lab's console as it comes and wait until
# it ended: at most LAB_PT_WAIT seconds (420), then it is reported and killed.
lab_pt_vm_start() {
  api POST "/v1/vms/$1/start"
  [ "$API_STATUS" = 200 ] || {
    echo "lab: POST /v1/vms/$1/start -> HTTP $API_STATUS: $API_BODY"
    return 1
  }
  tail -n +1 -F "$PT_VM_DIR/console.log" 2>/dev/null 3>&- &
  lab_pt_follow=$!
  if ! lab_pt_vm_wait "${LAB_PT_WAIT:-420}" "$1"; then
    lab_vm_report "$1"
    api POST "/v1/vms/$1/kill"
    lab_pt_vm_wait 30 "$1"
  fi
  sleep 0.5
  kill "$lab_pt_follow" 2>/dev/null
  wait "$lab_pt_follow" 2>/dev/null
  return 0
}

# What the VM left, read before its delete takes the run directory and the devices away.
lab_pt_vm_collect() {
  cp "$PT_VM_DIR/console.log" "/tmp/$1.console" 2>/dev/null
  cp "$PT_VM_DIR/vmm.log" "/tmp/$1.log" 2>/dev/null
  sed "s/^/$1 vmm| /" "/tmp/$1.log"
  VMM_STATUS=$(lab_pt_exit_status "$PT_VM_DIR")
  api GET "/v1/vms/$1"
  printf '%s\n' "$API_BODY" >"/tmp/$1.vm.json"
  PT_STATE=$(api_jq .state) PT_REASON=$(api_jq '.reason // ""')
  PT_HOST=$(api_jq '.passthrough[0].host // "none"')
  PT_HELD_DRIVER=$(lab_driver_of "$PT_HOST")
  api GET "/v1/allocations/$(jq -r '.passthrough[0].allocation // "none"' "/tmp/$1.vm.json")"
  printf '%s\n' "$API_BODY" >"/tmp/$1.alloc.json"
}

# lab_pt_vm_run NAME DEVICES_JSON [CMDLINE_EXTRA] [MEMORY_MIB]: the L2 kernel
# (/lab/vmlinuz, /lab/l2.cpio.gz) with DEVICES_JSON (the entries of "devices": a
# passthrough entry names a "device" or a "pool", as a VM's definition does) as a VM of
# iovd's: created, started, its serial console copied to the lab's console as it comes,
# waited for until the guest rebooted (the VM stopped), then deleted. iovd must be up
# (iovd_start_checked). For the scenario to judge:
#   PT_CREATE            the create's HTTP status (201; its body in /tmp/NAME.created.json)
#   VMM_STATUS           iovd-vmm's exit status (0 after the guest's reboot; none: no end)
#   PT_STATE, PT_REASON  the VM's state and reason once it ended
#   PT_HOST, PT_HELD_DRIVER  the first passthrough entry's host function and its driver
#                        then (vfio-pci: still held)
#   PT_DELETE            the delete's HTTP status (its body in /tmp/NAME.deleted.json)
#   /tmp/NAME.console, /tmp/NAME.log  the guest's serial console, iovd-vmm's log
#   /tmp/NAME.vm.json, /tmp/NAME.alloc.json  GET /v1/vms/NAME and of its first
#                        allocation after the end, while the VM still held its devices
# lab_pt_check_held and lab_pt_check_released judge the passthrough part.
lab_pt_vm_run() {
  VMM_STATUS=none PT_STATE=none PT_REASON='' PT_HOST=none PT_HELD_DRIVER=none PT_DELETE=none
  : >"/tmp/$1.console"
  : >"/tmp/$1.log"
  echo '{}' >"/tmp/$1.vm.json"
  echo '{}' >"/tmp/$1.alloc.json"
  api POST /v1/vms "$(lab_pt_vm_body "$@")"
  PT_CREATE=$API_STATUS
  printf '%s\n' "$API_BODY" >"/tmp/$1.created.json"
  [ "$PT_CREATE" = 201 ] || {
    echo "lab: POST /v1/vms $1 -> HTTP $PT_CREATE: $API_BODY"
    return 1
  }
  PT_VM_DIR=/run/iovd/vms/$(api_jq .id)
  lab_pt_vm_start "$1"
  lab_pt_vm_collect "$1"
  api DELETE "/v1/vms/$1"
  PT_DELETE=$API_STATUS
  printf '%s\n' "$API_BODY" >"/tmp/$1.deleted.json"
}

# lab_pt_check_held NAME HOST GUEST_SLOT [PRESENT_AS]: one TAP result: GET /v1/vms/NAME
# after the VM ended shows HOST passed through, with its IOMMU group (as sysfs has it),
# the guest slot and the presented ids as the entry gave them (null: none), and HOST's
# allocation names the VM, is active and has HOST on vfio-pci.
lab_pt_check_held() {
  present=$(printf '%s' "${4:-null}" | jq -c .)
  got="$(jq -r '.id as $vm | .passthrough[0] | "\(.host) group \(.iommu_group) slot \(.guest_address) present_as \(.present_as | tojson) vm \($vm)"' "/tmp/$1.vm.json") $(jq -r '"\(.vm) \(.state)"' "/tmp/$1.alloc.json") $PT_HELD_DRIVER"
  vm=$(jq -r .id "/tmp/$1.vm.json")
  tap_is "GET /v1/vms/$1: $2, IOMMU group $(lab_group_of "$2"), guest slot $3, present_as $present; held by the VM, on vfio-pci" \
    "$got" "$2 group $(lab_group_of "$2") slot $3 present_as $present vm $vm $vm active vfio-pci"
}

# lab_pt_check_released NAME HOST POOL: two TAP results: DELETE /v1/vms/NAME released
# HOST's allocation (gone from the API), and HOST is back as iovd found it (no driver)
# and free again in pool POOL.
lab_pt_check_released() {
  alloc=$(jq -r '.passthrough[0].allocation' "/tmp/$1.vm.json")
  api GET "/v1/allocations/$alloc"
  released=$(jq -r '[.released[]?.released[]?] | join(" ")' "/tmp/$1.deleted.json")
  tap_is "DELETE /v1/vms/$1 released $released; allocation $alloc is gone" \
    "$PT_DELETE $released $API_STATUS" "200 $2 404"
  api GET "/v1/pools/$3"
  tap_is "$2 is driverless again and free in pool $3" \
    "$(lab_driver_of "$2") free $(api_jq .free)" "none free 1"
}

# lab_pt_vmm_run NAME DEVICES_JSON [CMDLINE_EXTRA] [MEMORY_MIB]: the same guest with
# iovd-vmm --config alone, in the foreground, for what measures the VMM by itself
# (bench/passthrough): passthrough entries name the "host" function, bound to vfio-pci
# beforehand (lab_bind_vfio). VMM_STATUS, /tmp/NAME.log and /tmp/NAME.console as above.
lab_pt_vmm_run() {
  cat >"/tmp/$1.json" <<JSON
{"name": "$1", "vcpus": 1, "memory_mib": ${4:-256}, "kernel": "/lab/vmlinuz",
 "initrd": "/lab/l2.cpio.gz",
 "cmdline": "console=ttyS0 reboot=k panic=-1 quiet ${3:-}",
 "devices": [$2]}
JSON
  : >"/tmp/$1.console"
  tail -f "/tmp/$1.console" &
  lab_pt_follow=$!
  iovd-vmm --config "/tmp/$1.json" --serial "file:/tmp/$1.console" >"/tmp/$1.log" 2>&1
  VMM_STATUS=$?
  sleep 0.5
  kill "$lab_pt_follow" 2>/dev/null
  sed "s/^/$1 vmm| /" "/tmp/$1.log"
}

# ---- NVMe patterns: what the lab writes for an L2 guest to read, and reads back ----------
# lab_nvme_block_text BLOCK: the text at 4 KiB block BLOCK of /dev/nvme0n1.
lab_nvme_block_text() {
  dd if=/dev/nvme0n1 bs=4096 skip="$1" count=1 iflag=direct 2>/dev/null | tr -d '\000' | head -c 64
}

# lab_nvme_write_pattern [WHERE]: sets NONCE, writes "iovd-lab-pattern-A-NONCE" at block 256
# (the L2 guest's l2-nvme init reads it there) and zeroes block 512 (where it writes
# "iovd-l2-pattern-B-NONCE"); one TAP result that the lab reads its pattern back.
lab_nvme_write_pattern() {
  NONCE=$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')
  printf 'iovd-lab-pattern-A-%s' "$NONCE" |
    dd of=/dev/nvme0n1 bs=4096 seek=256 conv=sync,fsync 2>/dev/null
  dd if=/dev/zero of=/dev/nvme0n1 bs=4096 seek=512 count=1 conv=fsync 2>/dev/null
  sync
  tap_is "the lab wrote its pattern at block 256${1:+ $1}" "$(lab_nvme_block_text 256)" \
    "iovd-lab-pattern-A-$NONCE"
}

# lab_nvme_check_guest CONSOLE BDF WHAT: three TAP results from an l2-nvme guest's console:
# it saw BDF's ids at 00:05.0, its stock nvme driver drove WHAT ("the controller", "the
# VF"), it read the lab's pattern; its l2-nvme lines as diagnostics.
lab_nvme_check_guest() {
  tap_check "the L2 guest sees $3's ids at 00:05.0" \
    grep -q "l2-nvme: ids $(lab_pt_ids "$2") at 0000:00:05.0" "$1"
  grep -a "l2-nvme:" "$1" | while read -r line; do tap_diag "$line"; done
  tap_check "the L2 guest's stock nvme driver drives $3" \
    grep -q "l2-nvme: controller .* driver nvme" "$1"
  tap_check "the L2 guest read the lab's pattern through $3" \
    grep -q "l2-nvme: read iovd-lab-pattern-A-$NONCE" "$1"
}

# ---- the kernel's view of a process's exit ----------------------------------------------

# lab_exit_trace_start PID: when each thread of PID enters do_exit and the steps of its
# exit that decide when its peers see it gone (guest memory unmapped, files closed, then
# released: sockets, VFIO, KVM), on CLOCK_MONOTONIC (the clock of /proc/uptime and of the
# VMM's carrier_changed_usec). The function tracer on these few functions only: the
# function graph of do_exit slowed a killed VMM's exit from about 1 s to 16 s under TCG.
# Returns 1 without tracefs or the function tracer.
LAB_TRACING=/sys/kernel/tracing
LAB_EXIT_TRACE_FUNCTIONS="do_exit exit_mm exit_mmap exit_files task_work_run sock_close
  vfio_device_fops_release vfio_fops_release vfio_group_fops_release kvm_vm_release"
lab_exit_trace_start() {
  [ -e "$LAB_TRACING/current_tracer" ] || mount -t tracefs nodev "$LAB_TRACING" 2>/dev/null
  grep -qw function "$LAB_TRACING/available_tracers" 2>/dev/null || return 1
  echo 0 >"$LAB_TRACING/tracing_on"
  echo mono >"$LAB_TRACING/trace_clock"
  : >"$LAB_TRACING/set_ftrace_filter"
  for f in $LAB_EXIT_TRACE_FUNCTIONS; do
    echo "$f" >>"$LAB_TRACING/set_ftrace_filter" 2>/dev/null # a module not loaded: skipped
  done
  : >"$LAB_TRACING/set_ftrace_pid"
  for t in /proc/"$1"/task/*; do echo "${t##*/}" >>"$LAB_TRACING/set_ftrace_pid"; done
  echo function >"$LAB_TRACING/current_tracer"
  : >"$LAB_TRACING/trace"
  echo 1 >"$LAB_TRACING/tracing_on"
}

# lab_exit_trace_report FILE: stops the trace, keeps it in FILE and prints its lines as
# TAP diagnostics (task, CPU, time in seconds, function).
lab_exit_trace_report() {
  echo 0 >"$LAB_TRACING/tracing_on"
  cat "$LAB_TRACING/trace" >"$1"
  echo nop >"$LAB_TRACING/current_tracer"
  : >"$LAB_TRACING/set_ftrace_pid"
  : >"$LAB_TRACING/set_ftrace_filter"
  grep -v '^#' "$1" | head -n 120 | while read -r line; do tap_diag "exit trace: $line"; done
}
