#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# test-package.sh's second half, in a private mount namespace (unshare --mount): install
# the packages into ROOT (its /tmp holds the .debs) and use them there as an operator
# would. TAP lines numbered from N+1.
# Usage: in-root.sh ROOT VERSION HOST_PCI_DEVICES N
set -uo pipefail

root=$1
version=$2
host_devices=$3
n=$4
failed=0
# shellcheck source=tests/package/tap.sh
. "$(dirname "$0")/tap.sh"
in_root() {
  chroot "$root" "$@"
}

# The kernel's views, read-only where iovd only reads (this test never changes the host's
# PCI devices), and a /run of the root's own, as at boot.
if ! out=$(mount -t proc proc "$root/proc" && mount -t sysfs -o ro sysfs "$root/sys" &&
  mount --rbind /dev "$root/dev" && mount -t tmpfs -o mode=0755 tmpfs "$root/run" 2>&1); then
  not_ok "mount /proc, /sys, /dev, /run in the root" "$out"
  exit 1
fi

if out=$(in_root sh -c 'dpkg -i /tmp/iovd_*.deb /tmp/iovctl_*.deb /tmp/iovd-device-plugin_*.deb' 2>&1); then
  ok "dpkg -i iovd iovctl iovd-device-plugin into a fresh root"
else
  not_ok "dpkg -i iovd iovctl iovd-device-plugin into a fresh root" "$out"
fi
expect "postinst (sysusers): group iovd exists" "iovd" "$(in_root getent group iovd | cut -d: -f1)"
expect "postinst (tmpfiles): /run/iovd is 750 root:iovd" "750 root:iovd" \
  "$(in_root stat -c '%a %U:%G' /run/iovd 2>&1)"

# The unit's own command line, with the unit's Group=.
unit=$root/lib/systemd/system/iovd.service
exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
group=$(sed -n 's/^Group=//p' "$unit")
# shellcheck disable=SC2086 # the unit's words
chroot --userspec="0:$group" --groups="$group" "$root" $exec_start >"$root/tmp/iovd.log" 2>&1 &
iovd=$!
in_root useradd --no-create-home --groups iovd iovadmin
in_root useradd --no-create-home outsider
as_operator() {
  chroot --userspec=iovadmin:iovadmin --groups=iovadmin,iovd "$root" "$@"
}
for _ in $(seq 1 100); do
  as_operator iovctl host >/dev/null 2>&1 && break
  sleep 0.1
done

out=$(as_operator iovctl host 2>&1)
printf '%s\n' "$out" | sed 's/^/# iovctl host: /'
expect "iovctl host (group iovd) answers with the package's version" "$version" \
  "$(printf '%s\n' "$out" | awk '$1 == "version" { print $2 }')"
expect "iovctl host counts the host's PCI devices" "$host_devices" \
  "$(printf '%s\n' "$out" | awk '$1 == "counts.devices" { print $2 }')"
if grep -q 'VMM /usr/libexec/iovd-vmm)' "$root/tmp/iovd.log" && [ -x "$root/usr/libexec/iovd-vmm" ]; then
  ok "the installed iovd runs the installed iovd-vmm"
else
  not_ok "the installed iovd runs the installed iovd-vmm" "$(cat "$root/tmp/iovd.log")"
fi
chroot --userspec=outsider:outsider --groups=outsider "$root" iovctl host >/dev/null 2>&1
expect "iovctl host outside group iovd: exit 3 (socket refused)" 3 $?
expect "bash completion for iovctl loads" "complete -F _iovctl iovctl" \
  "$(in_root bash -c '. /usr/share/bash-completion/completions/iovctl && complete -p iovctl' 2>&1)"
# The plugin is static (CGO_ENABLED=0): it runs in the root with nothing but its package.
expect "the installed iovd-device-plugin runs and names iovd's socket" 1 \
  "$(in_root iovd-device-plugin -h 2>&1 | grep -c -- '-iovd-socket')"

kill "$iovd"
wait "$iovd"
exit $failed
