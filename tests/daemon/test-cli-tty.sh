#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# iovctl on a terminal and off one, against a real iovd on a generated lab tree (with the
# fake kernel, so VFs appear): run under a pseudo-terminal of a given width (pty-run),
# list tables fit it (the widest column cut with an ellipsis), states are coloured
# unless NO_COLOR or --color=never, sriov (counting the VFs from the event stream) and
# vm start --wait draw a progress line on the terminal; into a pipe the output is what it always was (no colour, no cut, no
# progress line, whatever COLUMNS says). vm start --wait with the tiny guests on
# /dev/kvm where it can be opened. TAP output.
# Usage: test-cli-tty.sh IOVD IOVCTL IOV_FIXTURE IOV_FAKEKERNEL PTY_RUN GUEST_DIR
set -u
iovd=$1 iovctl=$2 fixture=$3 fakekernel=$4 pty_run=$5 guest_dir=$6
dir=$(mktemp -d)
# shellcheck source=tests/daemon/iovd-on-tree.sh
. "$(dirname "$0")/iovd-on-tree.sh"

n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() {
        n=$((n + 1))
        echo "not ok $n - $1"
        shift
        [ $# -gt 0 ] && printf '%s\n' "$@" | cat -v | sed 's/^/# /'
}
skip() { n=$((n + 1)); echo "ok $n # SKIP $1"; }
# check NAME COMMAND...: a TAP line for a test command's status.
check() {
        local name=$1
        shift
        if "$@"; then ok "$name"; else notok "$name" "$(cat "$dir/out" 2>/dev/null)"; fi
}
esc=$(printf '\033')
# On the terminal: iovctl's output as the terminal got it, its CR LF made LF again.
on_tty() {
        local cols=$1
        shift
        "$pty_run" "$cols" "$iovctl" "$@" | tr -d '\r'
}
# Display columns (wc -L counts characters in the UTF-8 locale set below, not bytes).
widest_line() { wc -L | tr -d ' '; }

unset NO_COLOR COLUMNS
export LANG=C.UTF-8 TERM=xterm
iovd_on_tree --image-dir "$guest_dir"

echo "1..15"

# Tables: off a terminal the whole cells, whatever COLUMNS says; on one, its width.
"$iovctl" devices >"$dir/plain"
plain_width=$(widest_line <"$dir/plain")
[ "$plain_width" -gt 100 ] || bail "devices is only $plain_width wide: nothing to cut"
COLUMNS=40 "$iovctl" --color=auto devices >"$dir/out"
check "into a pipe: devices unchanged with COLUMNS=40 (widest line $plain_width)" \
        cmp -s "$dir/plain" "$dir/out"
on_tty 100 devices >"$dir/out"
width=$(widest_line <"$dir/out")
check "on a 100-column terminal: devices fits ($width columns)" test "$width" -le 100
check "on a 100-column terminal: NAME cut with an ellipsis" grep -q '…$' "$dir/out"
check "on a 100-column terminal: every address whole" \
        cmp -s <(awk '{print $1}' "$dir/plain") <(awk '{print $1}' "$dir/out")
COLUMNS=120 on_tty 100 devices >"$dir/out"
width=$(widest_line <"$dir/out")
check "COLUMNS=120 over the window size ($width columns)" test "$width" -gt 100 -a "$width" -le 120

# Colour: state words, on a terminal only, never with NO_COLOR or --color=never.
touch "$dir/kernel.img"
"$iovctl" vm create demo --kernel "$dir/kernel.img" >/dev/null || bail "vm create"
on_tty 100 vm list >"$dir/out"
check "on a terminal: the created state in cyan" grep -q "${esc}\[36mcreated${esc}\[0m" "$dir/out"
NO_COLOR=1 on_tty 100 vm list >"$dir/out"
check "NO_COLOR=1: no escape sequence" test "$(grep -c "$esc" "$dir/out")" = 0
on_tty 100 --color=never vm show demo >"$dir/out"
check "--color=never: no escape sequence" test "$(grep -c "$esc" "$dir/out")" = 0
NO_COLOR=1 "$iovctl" --color=always vm show demo >"$dir/out"
check "--color=always into a pipe, over NO_COLOR" grep -q "^state *${esc}\[36mcreated" "$dir/out"

# Progress: sriov waits in iovd for the VFs.
on_tty 100 sriov 0000:01:00.0 2 >"$dir/out"
check "on a terminal: sriov's progress line, erased before the answer" \
        grep -q "${esc}\[K| sriov 0000:01:00.0: waiting for 2 VFs [0-9.]*s${esc}\[K.*address" "$dir/out"
check "on a terminal: sriov counts the VFs as the event stream announces them" \
        grep -q "sriov 0000:01:00.0: 2 of 2 VFs [0-9.]*s${esc}\[Kaddress" "$dir/out"
"$iovctl" sriov 0000:01:00.0 3 >"$dir/out" 2>&1
check "into a pipe: no progress line, no escape sequence" \
        test "$(grep -c "$esc" "$dir/out")" = 0 -a "$(head -n 1 "$dir/out")" = "address            0000:01:00.0"
on_tty 100 --quiet sriov 0000:01:00.0 1 >"$dir/out"
check "--quiet on a terminal: no progress line" test "$(grep -c "sriov 0000" "$dir/out")" = 0

# vm start --wait: a VM that cannot start fails at once; the tiny guests on /dev/kvm.
"$iovctl" vm start demo --wait >"$dir/out" 2>&1
check "vm start --wait of a VM that cannot start: exit 1" test $? = 1
if [ -r /dev/kvm ] && [ -w /dev/kvm ] && [ -f "$guest_dir/idle.bzImage" ]; then
        "$iovctl" vm create idle --kernel "$guest_dir/idle.bzImage" --memory 96 >/dev/null ||
                bail "vm create idle"
        on_tty 100 vm start idle --wait --marker 1 --timeout 60 >"$dir/out"
        waited() {
                grep -q "waiting for its boot marker [0-9.]*s${esc}\[Kid  " "$dir/out" &&
                        grep -q "^stats.markers *value=1 " "$dir/out"
        }
        check "vm start --wait --marker 1 on a terminal: progress, then the VM with its marker" \
                waited
        "$iovctl" vm kill idle >/dev/null
else
        skip "/dev/kvm cannot be opened here: no guest to wait for"
fi
