#!/usr/bin/env bash
# The lab's outside judge (lib/judge.sh) on canned lab outcomes, without QEMU: a lab that
# ran cleanly passes, a skip is a skip, and every way a lab can go wrong (timeout, panic,
# QEMU failure, no plan, missing or out-of-order results, a failing result) fails with
# the reason and the console log's tail. TAP on stdout.
set -uo pipefail

LAB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib/judge.sh
. "$LAB_DIR/lib/judge.sh"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
n=0
failed=0

# judge_case NAME WANT_STATUS WANT_TEXT QEMU_STATUS TAP_CONTENT [CONSOLE_CONTENT]
judge_case() {
  local name=$1 want_status=$2 want_text=$3 qemu_status=$4 tap=$5 console=${6:-}
  local out status
  rm -f "$work"/*
  [ -n "$tap" ] && printf '%b' "$tap" >"$work/tap.log"
  printf '%b' "$console" >"$work/console.log"
  out=$(lab_judge "$work" "$qemu_status" 300 7 2>"$work/stderr")
  status=$?
  # A failure is also told on stderr (all meson shows of a failing test), console included.
  if [ "$status" -ne 0 ] && [ -n "$console" ] &&
    ! grep -qF "$(printf '%b' "$console" | tail -n 1)" "$work/stderr"; then
    out="$out (the console's tail is missing from stderr)"
    status=99
  fi
  n=$((n + 1))
  if [ "$status" = "$want_status" ] && grep -qF -- "$want_text" <<<"$out"; then
    echo "ok $n - $name"
  else
    echo "not ok $n - $name"
    echo "# exit status $status (expected $want_status); output must contain '$want_text':"
    sed 's/^/#   /' <<<"$out"
    failed=$((failed + 1))
  fi
}

judge_case "a clean lab passes, its results passed on and one added" 0 \
  "ok 3 - lab: ran to the end and powered off" 0 "1..2\nok 1 - a\r\nok 2 - b\n"
judge_case "a clean lab's plan covers the added result" 0 "1..3" 0 "1..2\nok 1 - a\nok 2 - b\n"
judge_case "a skipped scenario is a skip" 0 "1..0 # SKIP no kvm_amd" 0 "1..0 # SKIP no kvm_amd\n"
judge_case "a failing result fails the lab" 1 "not ok 2 - b" 0 "1..2\nok 1 - a\nnot ok 2 - b\n"
judge_case "a timeout fails, with the console tail" 1 "timed out after 300 s" 124 \
  "1..2\nok 1 - a\n" "booting\nstuck here\n"
judge_case "the console tail is shown" 1 "#   stuck here" 124 "1..2\nok 1 - a\n" \
  "booting\nstuck here\n"
judge_case "a kernel panic fails even with all results in" 1 "not ok 2 - lab: kernel panic" 0 \
  "1..1\nok 1 - a\n" "Kernel panic - not syncing: Attempted to kill init!\n"
judge_case "QEMU failing fails" 1 "qemu exited with status 1" 1 ""
judge_case "no TAP at all fails" 1 "the scenario printed no plan" 0 ""
judge_case "results without a plan fail" 1 "printed no plan" 0 "ok 1 - a\n"
judge_case "fewer results than planned fail" 1 "planned 3 results, got 1" 0 "1..3\nok 1 - a\n"
judge_case "results out of order fail" 1 "out of order" 0 "1..2\nok 2 - b\nok 1 - a\n"
judge_case "a skip after results does not hide them" 1 "printed no plan" 0 \
  "ok 1 - a\n1..0 # SKIP late\n"

# The freeze test of lib/qemu.sh on monitor text (the registers and local APIC lines that
# matter, as QEMU 7.2 prints them).
# shellcheck source=lib/qemu.sh
. "$LAB_DIR/lib/qemu.sh"
frozen_case() {
  local name=$1 want=$2 text=$3 got=no
  lab_qemu_state_frozen "$(printf '%b' "$text")" && got=yes
  n=$((n + 1))
  if [ "$got" = "$want" ]; then
    echo "ok $n - $name"
  else
    echo "not ok $n - $name (frozen: $got, expected $want)"
    failed=$((failed + 1))
  fi
}
regs='RIP=ffffffffadc592eb RFL=%s [---Z-P-] CPL=0 II=0 A20=1 SMM=0 HLT=%s\n'
frozen_case "halted, IF set, timer pending in IRR: frozen" yes \
  "$(printf "$regs" 00000246 1)\nISR\t (none)\nIRR\t 236 \n"
frozen_case "running (an L2 guest) with IF set and the timer pending: frozen" yes \
  "$(printf "$regs" 00000282 0)\nISR\t (none)\nIRR\t 236 \n"
frozen_case "halted, IF set, nothing pending: an idle lab" no \
  "$(printf "$regs" 00000246 1)\nISR\t (none)\nIRR\t (none)\n    IRR      (none)\n"
frozen_case "halted with IF clear: a dead kernel, not a freeze" no \
  "$(printf "$regs" 00000046 1)\nISR\t (none)\nIRR\t 236 \n"
frozen_case "an interrupt in service: its handler runs, not frozen" no \
  "$(printf "$regs" 00000246 0)\nISR\t 236 \nIRR\t 236 \n"
frozen_case "no monitor answer: not frozen" no "monitor: [Errno 111] Connection refused\n"

# The CPU-time line of a timed-out lab's report (no monitor socket here).
sleep 5 &
state=$(lab_qemu_cpu_state "$work" $!)
kill $! 2>/dev/null
n=$((n + 1))
if grep -Eq '^QEMU used [0-9]+ s of CPU in its [0-9]+ s$' <<<"$state"; then
  echo "ok $n - a hung lab's report gives QEMU's CPU and wall seconds"
else
  echo "not ok $n - a hung lab's report gives QEMU's CPU and wall seconds"
  sed 's/^/#   /' <<<"$state"
  failed=$((failed + 1))
fi

# The archive lib/emulator.sh fetches QEMU's backports from: the one the host's apt
# sources use for its own suite, in either format; the security archive is not it.
# (lib/qemu.sh sourced lib/emulator.sh.)
archive_case() {
  local name=$1 want=$2 got
  got=$(lab_emulator_archive bookworm "$work/apt")
  n=$((n + 1))
  if [ "$got" = "$want" ]; then
    echo "ok $n - $name"
  else
    echo "not ok $n - $name (got '$got', expected '$want')"
    failed=$((failed + 1))
  fi
}
rm -rf "$work/apt" && mkdir -p "$work/apt/sources.list.d"
printf '%s\n' "Types: deb" "URIs: http://security.example/debian-security" \
  "Suites: bookworm-security" "" "Types: deb" "URIs: http://archive.example/debian" \
  "Suites: bookworm bookworm-updates" "Components: main" >"$work/apt/sources.list.d/d.sources"
archive_case "deb822 sources: the stanza with the release's own suite" \
  http://archive.example/debian
printf '%s\n' "deb [arch=amd64] http://one.example/debian bookworm main" >"$work/apt/sources.list"
archive_case "a one-line sources.list entry (with options) comes first" http://one.example/debian
rm -f "$work/apt/sources.list" "$work/apt/sources.list.d/d.sources"
archive_case "no source for the release: nothing" ""

echo "1..$n"
[ "$failed" -eq 0 ]
