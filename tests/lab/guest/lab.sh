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
# with the command and its output as diagnostics.
tap_check() {
  desc=$1
  shift
  if out=$("$@" 2>&1); then
    tap_ok "$desc"
  else
    tap_not_ok "$desc" "command: $*" "$out"
  fi
}

# tap_is DESCRIPTION GOT EXPECTED
tap_is() {
  if [ "$2" = "$3" ]; then
    tap_ok "$1"
  else
    tap_not_ok "$1" "got:      '$2'" "expected: '$3'"
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

# api_expect DESCRIPTION STATUS METHOD PATH [BODY]: one TAP line on the HTTP status.
api_expect() {
  desc=$1 want=$2
  shift 2
  api "$@"
  if [ "$API_STATUS" = "$want" ]; then
    tap_ok "$desc"
  else
    tap_not_ok "$desc" "$* -> HTTP $API_STATUS, expected $want" "body: $API_BODY"
  fi
}

# jq over the last API body: api_jq FILTER [jq options...]
api_jq() {
  filter=$1
  shift
  printf '%s' "$API_BODY" | jq -r "$@" "$filter"
}

iovd_is_up() {
  curl -sf --max-time 2 --unix-socket "$IOVD_SOCKET" http://lab/v1/host >/dev/null
}

# Start the daemon in the background (IOVD_PID); wait at most 20 s until it answers.
iovd_start() {
  mkdir -p /run/iovd "$IOVD_STATE"
  iovd --listen "unix:$IOVD_SOCKET" --state-dir "$IOVD_STATE" --run-dir /run/iovd \
    "$@" >>"$IOVD_LOG" 2>&1 3>&- &
  IOVD_PID=$!
  lab_wait 20 iovd_is_up
}

iovd_stop() {
  [ -n "$IOVD_PID" ] || return 0
  kill "$IOVD_PID" 2>/dev/null
  wait "$IOVD_PID" 2>/dev/null
  IOVD_PID=
}

# Show the daemon's log as TAP diagnostics (on failure).
iovd_diag_log() {
  [ -f "$IOVD_LOG" ] && tap_diag "iovd log (last 40 lines):" "$(tail -n 40 "$IOVD_LOG")"
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
