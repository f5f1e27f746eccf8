#!/bin/sh
# SPDX-License-Identifier: MIT
# The installed iovd.service: systemd-analyze verify accepts it (ExecStart pointed at the
# built iovd), and stopping or restarting iovd signals only iovd, never the VMMs of
# running VMs (KillMode=process; docs/architecture.md: restarting iovd does not stop running VMs).
# TAP output. Usage: test-unit.sh UNIT IOVD
unit=$1
iovd=$2
echo "1..3"
if grep -qx 'KillMode=process' "$unit"; then
        echo "ok 1 - KillMode=process"
else
        echo "not ok 1 - KillMode is $(grep '^KillMode=' "$unit" || echo unset), expected process"
fi
if grep -q '^ExecStart=.*/iovd ' "$unit"; then
        echo "ok 2 - ExecStart runs iovd"
else
        echo "not ok 2 - ExecStart: $(grep '^ExecStart=' "$unit" || echo missing)"
fi
if ! command -v systemd-analyze >/dev/null 2>&1; then
        echo "ok 3 # SKIP systemd-analyze is not installed"
        exit 0
fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
sed "s#^ExecStart=[^ ]*#ExecStart=$iovd#" "$unit" >"$dir/iovd.service"
# --man=no: the Documentation= pages are built, not installed, when this runs.
if out=$(systemd-analyze verify --man=no "$dir/iovd.service" 2>&1) && [ -z "$out" ]; then
        echo "ok 3 - systemd-analyze verify"
else
        echo "not ok 3 - systemd-analyze verify:"
        printf '%s\n' "$out" | sed 's/^/# /'
fi
