# SPDX-License-Identifier: MIT
# Sourced by the shell tests that need a real iovd on a generated lab tree with the fake
# kernel (so VFs and allocations work). The sourcing script sets iovd, iovctl, fixture,
# fakekernel and dir (a fresh temporary directory); this file gives it:
#   bail MESSAGE         TAP "Bail out!" and exit 1
#   iovd_on_tree [OPT..] generate the tree in $dir/tree, start the fake kernel and iovd
#                        (its socket, state and run dirs in $dir, --image-dir $dir, plus
#                        OPT), export IOVD_SOCKET, and bail unless `iovctl host` answers
# and an EXIT trap that ends both (by pid) and removes $dir.
dpid='' kpid=''

bail() {
        echo "Bail out! $1"
        exit 1
}

tree_cleanup() {
        [ -n "$dpid" ] && kill "$dpid" 2>/dev/null && wait "$dpid" 2>/dev/null
        [ -n "$kpid" ] && kill "$kpid" 2>/dev/null && wait "$kpid" 2>/dev/null
        rm -rf "$dir"
}
trap tree_cleanup EXIT

iovd_on_tree() {
        "$fixture" --lab "$dir/tree" >/dev/null || bail "iov-fixture failed"
        mkfifo "$dir/kernel-out"
        "$fakekernel" "$dir/tree" >"$dir/kernel-out" 2>&1 &
        kpid=$!
        local line
        read -r line <"$dir/kernel-out"
        [ "$line" = READY ] || bail "fake kernel said '$line'"
        cat "$dir/kernel-out" >/dev/null &
        export IOVD_SOCKET=$dir/iovd.sock
        "$iovd" --listen "unix:$IOVD_SOCKET" --state-dir "$dir/state" --run-dir "$dir/run" \
                --sysfs-root "$dir/tree/sys" --dev-root "$dir/tree/dev" --image-dir "$dir" "$@" \
                >"$dir/iovd.log" 2>&1 &
        dpid=$!
        for _ in $(seq 200); do
                "$iovctl" host >/dev/null 2>&1 && return 0
                sleep 0.05
        done
        "$iovctl" host >/dev/null 2>&1 || bail "iovd did not answer: $(cat "$dir/iovd.log")"
}
