# shellcheck shell=bash
# Judge a finished lab from outside: the scenario's TAP (tap.log, from the lab's ttyS1)
# is passed on, and one more result is added for the lab itself: it must have printed a
# plan, exactly as many results as planned, numbered in order, and powered off on its own
# (no timeout, no panic). The plan printed here covers both. Sourced by tests/lab/lab.

lab_judge_console_tail() {
  local console=$1
  echo "# console log: $console (last 30 lines follow)"
  [ -f "$console" ] && tail -n 30 "$console" | tr -d '\r' | sed 's/^/#   /'
}

# meson shows only a failing test's stderr, so a failure is told there too: the scenario's
# TAP (results and diagnostics, in order) and the console's tail, enough to see where a
# lab on a CI machine got stuck without its work directory.
lab_judge_failure_to_stderr() {
  local tap=$1 console=$2 problem=$3
  {
    echo "lab: failed${problem:+ ($problem)}; the scenario's TAP follows"
    [ -f "$tap" ] && tr -d '\r' <"$tap" | sed 's/^/  /'
    echo "lab: the console's last 60 lines ($console)"
    [ -f "$console" ] && tail -n 60 "$console" | tr -d '\r' | sed 's/^/  /'
    if [ -s "$(dirname "$console")/cpu-state.txt" ]; then
      echo "lab: its CPU when it was stopped (lab_qemu_cpu_state)"
      sed 's/^/  /' "$(dirname "$console")/cpu-state.txt"
    fi
  } >&2
}

# Used when the lab could not even be built: a failing result, never a skip.
lab_judge_harness_failure() {
  echo "not ok 1 - lab: $1"
  echo "1..1"
}

# lab_judge WORKDIR QEMU_STATUS TIMEOUT WALL_SECONDS; exit status 0 only when all passed.
lab_judge() {
  local work=$1 status=$2 timeout=$3 wall=$4
  local tap=$work/tap.log console=$work/console.log
  local plan="" skip="" count=0 failed=0 problem="" line n

  while IFS= read -r line; do
    line=${line%$'\r'}
    case "$line" in
    "1..0 # SKIP"* | "1..0 # skip"*) skip=${line#1..0 # [Ss][Kk][Ii][Pp]} ;;
    1..*) plan=${line#1..} ;;
    "ok "* | "not ok "*)
      count=$((count + 1))
      n=${line#not }
      n=${n#ok }
      n=${n%% *}
      [ "$n" = "$count" ] || problem="result '$line' out of order (expected number $count)"
      [ "${line#not ok}" != "$line" ] && failed=$((failed + 1))
      echo "$line"
      ;;
    "#"*) echo "$line" ;;
    esac
  done < <([ -f "$tap" ] && cat "$tap")

  if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
    problem="timed out after $timeout s"
  elif grep -q "Kernel panic" "$console" 2>/dev/null; then
    problem="kernel panic"
  elif [ "$status" -ne 0 ]; then
    problem="qemu exited with status $status: $(head -c 500 "$work/qemu.out" 2>/dev/null)"
  elif [ -n "$skip" ] && [ "$count" -eq 0 ]; then
    echo "# lab: wall time $wall s"
    echo "1..0 # SKIP$skip"
    return 0
  elif [ -z "$plan" ]; then
    problem="the scenario printed no plan"
  elif [ -z "$problem" ] && [ "$plan" != "$count" ]; then
    problem="planned $plan results, got $count"
  fi

  count=$((count + 1))
  if [ -z "$problem" ]; then
    echo "ok $count - lab: ran to the end and powered off ($wall s)"
  else
    echo "not ok $count - lab: $problem"
    lab_judge_console_tail "$console"
    failed=$((failed + 1))
  fi
  echo "# lab: wall time $wall s; logs in $work"
  echo "1..$count"
  [ "$failed" -eq 0 ] && return 0
  lab_judge_failure_to_stderr "$tap" "$console" "$problem"
  return 1
}
