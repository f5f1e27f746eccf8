#!/bin/sh
# VF network settings survive kill -9 of iovd (issue 10): QEMU's igb PF driven by Linux's
# igb, a pool with a net template (VLAN 100, trust) and allocations asking for a MAC.
# iovd is killed (IOVD_TEST_CRASH_AT) at each step of the net path: the original settings
# recorded; applied, before the bind; bound, before the answer; a release saved, before
# anything is given back. While it is down `ip link show` has the new settings (and the VF
# vfio-pci) where they were applied; after a normal restart no VF keeps changed settings,
# vfio-pci or an override without an allocation, and GET /v1/allocations agrees: a pending
# or releasing record is undone at start (docs/architecture.md). Then kill -9 from outside
# at random moments: each allocation ends undone or committed (held, with its settings).
# Needs QEMU >= 8 (igb); the runner skips it on 7.2.
# lab-topology: --nvme 0 --nics 1 --igb 1
. /lab/lab.sh

IP=/usr/local/sbin/ip
MAC0=02:00:00:00:20:01

tap_plan 37
tap_check "modules load (igb, vfio-pci)" lab_modprobe igb vfio-pci vfio_iommu_type1
lab_require_programs iovd || exit 1
iovd_start_checked || exit 1
pf=$(lab_find_pf 8086:10c9)
tap_is "an igb PF (8086:10c9) is in sysfs" "${pf:+found}" found || exit 1
pfif=$(ls "$SYSFS_PCI/$pf/net" 2>/dev/null | head -n 1)
api_expect "PUT /v1/devices/$pf/sriov {num_vfs: 2}" 200 PUT "/v1/devices/$pf/sriov" '{"num_vfs": 2}'
vf0=$(basename "$(readlink "$SYSFS_PCI/$pf/virtfn0")")
# Settings of its own, for a crash to have something to put back.
api_expect "PUT $vf0/net {mac $MAC0, vlan 42}" 200 PUT "/v1/devices/$vf0/net" \
  "{\"mac\": \"$MAC0\", \"vlan\": 42}"
api_expect "POST /v1/pools nics {physfn $pf, net {vlan 100, trust}}" 201 POST /v1/pools \
  "{\"name\": \"nics\", \"selector\": {\"physfn\": \"$pf\"}, \"net\": {\"vlan\": 100, \"trust\": true}}"
iovd_stop >/dev/null

# VF 0 as ip link shows it: MAC, VLAN (0: none), trust.
ip_vf0() {
  line=$($IP link show "$pfif" | grep "vf 0 ")
  mac=$(echo "$line" | sed -n 's/.*link\/ether \([0-9a-f:]*\).*/\1/p')
  vlan=$(echo "$line" | sed -n 's/.*, vlan \([0-9]*\).*/\1/p')
  trust=$(echo "$line" | sed -n 's/.*trust \([a-z]*\).*/\1/p')
  echo "$mac ${vlan:-0} ${trust:--}"
}

# ---- kill -9 between "settings applied" and "allocation acknowledged" ----------------

MAC_CRASH=02:00:00:00:20:0c
CRASH_BODY="{\"owner\": \"crash\", \"pool\": \"nics\", \"mac\": \"$MAC_CRASH\"}"
ip_vfs() {
  $IP link show "$pfif" | grep ' vf '
}
log_lines() {
  wc -l <"$IOVD_LOG"
}
# Start iovd killing itself at step $1 (IOVD_TEST_CRASH_AT, daemon_test_crash_point).
iovd_start_crashing() {
  export IOVD_TEST_HOOKS=1 IOVD_TEST_CRASH_AT=$1
  iovd_start
  started=$?
  unset IOVD_TEST_HOOKS IOVD_TEST_CRASH_AT
  return $started
}
iovd_exited() {
  [ ! -e "/proc/$IOVD_PID" ] || [ "$(cut -d' ' -f3 "/proc/$IOVD_PID/stat" 2>/dev/null)" = Z ]
}
# In this shell (it reaps iovd): iovd is gone by SIGKILL (status 137) and its log since
# line $2 says it killed itself at step $1. One still running is killed: a failure.
iovd_died_at() {
  if ! lab_wait 20 iovd_exited; then
    echo "iovd still runs: it never reached $1"
    kill -9 "$IOVD_PID"
    wait "$IOVD_PID"
    IOVD_PID=
    return 1
  fi
  wait "$IOVD_PID"
  status=$?
  IOVD_PID=
  tail -n +"$(($2 + 1))" "$IOVD_LOG" | grep -q "test hook: killed at $1\$" && [ $status = 137 ]
}
# The allocated VF's settings as ip link shows them: MAC, VLAN, trust.
vf0_settings() {
  ip_vf0
}
# After a restart: every VF as in $1 (ip link show), none on vfio-pci or with an override
# without an allocation, and iovd reports no allocation.
check_undone() {
  tap_is "$2: after the restart ip link show has every VF as before" "$(ip_vfs)" "$1" ||
    tap_diag "$(tail -n 20 "$IOVD_LOG")"
  tap_check "$2: no VF half-bound or held twice" lab_check_vfs_consistent "$pf"
  api GET /v1/allocations
  tap_is "$2: GET /v1/allocations lists none" "$(api_jq "$API_LIST | length")" 0
}
# crash_round STEP CHANGED: POST an allocation with a MAC from the pool with a template,
# iovd dies at STEP, then restarts normally. CHANGED: whether the VF has the new settings
# while iovd is down (the kill came after they were applied). 5 or 6 results.
crash_round() {
  before=$(ip_vfs)
  from=$(log_lines)
  iovd_start_crashing "$1" || return 1
  api POST /v1/allocations "$CRASH_BODY"
  tap_check_here "killed at $1: no answer ($API_STATUS), iovd died there" iovd_died_at "$1" "$from"
  if [ "$2" = changed ]; then
    tap_is "killed at $1: while iovd is down vf 0 has $MAC_CRASH, vlan 100, trust on" \
      "$(vf0_settings)" "$MAC_CRASH 100 on"
  else
    tap_is "killed at $1: while iovd is down no VF has changed" "$(ip_vfs)" "$before"
  fi
  [ "$1" = allocation-bound ] &&
    tap_is "killed at $1: while iovd is down $vf0 is on vfio-pci" "$(lab_driver_of "$vf0")" vfio-pci
  tap_check_here "killed at $1: iovd restarts" iovd_start
  check_undone "$before" "killed at $1"
  iovd_stop >/dev/null
}

crash_round allocation-pending-saved unchanged
crash_round allocation-net-applied changed
crash_round allocation-bound changed

# Killed once the release was saved, before anything was given back.
before=$(ip_vfs)
from=$(log_lines)
iovd_start_crashing allocation-releasing-saved
api_expect "POST /v1/allocations {pool nics, mac $MAC_CRASH}" 201 POST /v1/allocations "$CRASH_BODY"
tap_is "... vf 0 has $MAC_CRASH, vlan 100, trust on" "$(vf0_settings)" "$MAC_CRASH 100 on"
api DELETE "/v1/allocations/$(api_jq .id)"
tap_check_here "killed at allocation-releasing-saved: no answer ($API_STATUS), iovd died there" \
  iovd_died_at allocation-releasing-saved "$from"
tap_check_here "killed at allocation-releasing-saved: iovd restarts" iovd_start
check_undone "$before" "killed at allocation-releasing-saved"

# kill -9 from outside at a random moment, within twice the time one allocation took.
# Either the allocation was undone (every VF as before, no allocation) or it was
# committed (an allocation holds vf 0, on vfio-pci, with the new settings): nothing is
# left changed without an allocation.
start_ms=$(awk '{ printf "%d", $1 * 1000 }' /proc/uptime)
api POST /v1/allocations "$CRASH_BODY"
took_ms=$(($(awk '{ printf "%d", $1 * 1000 }' /proc/uptime) - start_ms))
api DELETE "/v1/allocations/$(api_jq .id)"
iovd_stop >/dev/null
random_kill() {
  delay=$(awk -v t="$took_ms" -v s="$1" 'BEGIN { srand(s); printf "%.3f", rand() * 2 * t / 1000 }')
  iovd_start || return 1
  curl -s --max-time 30 --unix-socket "$IOVD_SOCKET" -X POST -H 'Content-Type: application/json' \
    --data "$CRASH_BODY" http://lab/v1/allocations >/dev/null 2>&1 3>&- &
  client=$!
  sleep "$delay"
  kill -9 "$IOVD_PID"
  wait "$IOVD_PID" 2>/dev/null
  wait "$client" 2>/dev/null
  IOVD_PID=
  iovd_start || return 1
  api GET /v1/allocations
  holding=$(api_jq "$API_LIST | map(.devices[] | if type == \"object\" then .address else . end) | join(\" \")")
  if [ -z "$holding" ]; then
    outcome="undone after $delay s"
    [ "$(ip_vfs)" = "$before" ] || { echo "no allocation, but: $(ip_vfs)"; return 1; }
  else
    outcome="committed after $delay s"
    [ "$holding" = "$vf0" ] && [ "$(vf0_settings)" = "$MAC_CRASH 100 on" ] ||
      { echo "an allocation of $holding, but vf 0: $(ip_vf0)"; return 1; }
  fi
  lab_check_vfs_consistent "$pf" || return 1
  echo "$outcome" >>/tmp/random-outcomes
}
random_round() {
  random_kill "$1"
  verdict=$?
  api GET /v1/allocations
  for id in $(api_jq "$API_LIST | .[].id"); do
    api DELETE "/v1/allocations/$id"
  done
  iovd_stop >/dev/null
  return $verdict
}
before=$(ip_vfs)
for seed in 1 2 3 4; do
  tap_check_here "kill -9 at a random moment ($seed): undone, or committed and held" \
    random_round "$(($(date +%s) + seed))"
done
tap_diag "random kills: $(tr '\n' ';' </tmp/random-outcomes 2>/dev/null) one allocation took $took_ms ms"
tap_is "after them, released, every VF is as before" "$(ip_vfs)" "$before"
echo "lab: iovd's log:"
cat "$IOVD_LOG"
