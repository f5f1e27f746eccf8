#!/bin/bash
# SPDX-License-Identifier: MIT
# Inside the systemd lab (tests/package/lab-systemd.sh): the iovd package installed on a
# Debian root booted with systemd as PID 1, on the lab's kernel with nested KVM. Run by
# lab-scenario.service once iovd.service is up; TAP on ttyS1, then power off.
# Proves: Type=notify (systemctl returns once the socket answers), STATUS= text, the
# hardened unit still creates VFs, allocates one to vfio-pci and runs a VM, systemctl
# restart and stop/start keep the VM (KillMode=process), the watchdog restarts an iovd
# that stopped (SIGSTOP), the VMM runs jailed (its own uid, no capability), the VM runs in its own cgroup named after it (vm-idle) with the
# definition's memory.max and cpu.max, listed by systemd-cgls, and records
# systemd-analyze security's exposure; the unit uses no IP as shipped, and the drop-in
# iovd.service(8) gives for TCP makes it answer on 127.0.0.1.
stty -F /dev/ttyS1 raw -echo 2>/dev/null
exec 3>/dev/ttyS1
n=0
ok() { n=$((n + 1)); echo "ok $n - $1" >&3; }
not_ok() {
        n=$((n + 1))
        echo "not ok $n - $1" >&3
        shift
        [ $# -gt 0 ] && printf '%s\n' "$@" | sed 's/^/# /' >&3
        return 0
}
note() { echo "# $*" >&3; }
main_pid() { systemctl show -p MainPID --value iovd.service; }
vm_field() { iovctl vm show idle 2>/dev/null | awk -v k="$1" '$1 == k { print $2 }'; }

echo "1..14" >&3
note "systemd $(systemctl --version | head -n 1 | cut -d ' ' -f 2) as PID 1 ($(cat /proc/1/comm))," \
        "kernel $(uname -r), booted in $(cut -d ' ' -f 1 /proc/uptime) s"

state=$(systemctl is-active iovd.service)
if [ "$state" = active ] && [ "$(systemctl show -p Type --value iovd.service)" = notify ]; then
        ok "iovd.service (Type=notify) active at boot, status: $(systemctl show -p StatusText --value iovd.service)"
else
        not_ok "iovd.service active at boot" "state $state" "$(systemctl status iovd.service 2>&1 | tail -n 20)"
fi

# Type=notify: systemctl restart returns once iovd sent READY=1, which it sends only once
# its sockets listen: the socket answers at once, without a retry.
if systemctl restart iovd.service && out=$(iovctl host 2>&1); then
        ok "systemctl restart returns when the socket answers (iovctl host at once)"
else
        not_ok "systemctl restart returns when the socket answers" "$out"
fi

# SR-IOV and VFIO under ProtectSystem=strict, DevicePolicy=closed and the capability set.
pf=$(for d in /sys/bus/pci/devices/*; do
        [ "$(cat "$d/vendor"):$(cat "$d/device")" = 0x1b36:0x0010 ] && [ -e "$d/sriov_totalvfs" ] &&
                basename "$d"
done | head -n 1)
if [ -n "$pf" ] && out=$(iovctl sriov "$pf" 2 2>&1) &&
        [ "$(iovctl devices --physfn "$pf" | tail -n +2 | wc -l)" = 2 ]; then
        ok "the unit creates VFs (iovctl sriov $pf 2)"
else
        not_ok "the unit creates VFs" "PF '$pf'" "$out"
fi
vf=$(iovctl devices --physfn "$pf" 2>/dev/null | awk 'NR == 2 { print $1 }')
alloc=$(iovctl --json alloc --owner lab --device "$vf" 2>&1)
id=$(printf '%s\n' "$alloc" | sed -n 's/^ *"id": *"\(a-[0-9a-f]*\)".*/\1/p')
vfio=$(printf '%s\n' "$alloc" | sed -n 's/^ *"vfio_group": *"\([^"]*\)".*/\1/p')
driver=$(basename "$(readlink "/sys/bus/pci/devices/$vf/driver" 2>/dev/null)" 2>/dev/null)
if [ -n "$id" ] && [ -c "$vfio" ] && [ "$driver" = vfio-pci ] && iovctl release "$id" >/dev/null; then
        ok "the unit allocates $vf to vfio-pci ($vfio) and releases it"
else
        not_ok "the unit allocates a VF to vfio-pci" "driver '$driver'" "$alloc"
fi

# VM files come only from the unit's image directory (iovd --image-dir, by default
# /var/lib/iovd/images, made by the package's tmpfiles).
if [ -c /dev/kvm ] && cp /opt/iovd/guest/idle.bzImage /var/lib/iovd/images/ &&
        iovctl vm create idle --kernel /var/lib/iovd/images/idle.bzImage --memory 96 >/dev/null &&
        out=$(iovctl vm start idle --wait --marker 1 --timeout 300 2>&1); then
        ok "a VM runs under the hardened unit (vm start --wait --marker 1)"
else
        not_ok "a VM runs under the hardened unit" "$(ls -l /dev/kvm 2>&1)" "$out" \
                "$(journalctl -u iovd.service --no-pager | tail -n 20)"
fi
vmm=$(vm_field pid)

# The VMM is jailed (vmm/jail.c): its own uid (--vmm-uid-base's first), no capability.
uid=$(awk '$1 == "Uid:" { print $2 }' "/proc/$vmm/status" 2>/dev/null)
capeff=$(awk '$1 == "CapEff:" { print $2 }' "/proc/$vmm/status" 2>/dev/null)
if [ "$uid" = 2000000000 ] && [ "$capeff" = 0000000000000000 ]; then
        ok "the VMM runs jailed under the unit (uid $uid, CapEff $capeff)"
else
        not_ok "the VMM runs jailed under the unit" "vmm '$vmm': uid '$uid', CapEff '$capeff'"
fi
# The VM's cgroup (vms/vm-cgroup.c): vm-NAME below iovd.service (Delegate=cpu memory pids),
# memory.max = 96 MiB + 256 MiB, cpu.max = 1 vCPU * the 100000 us period.
cg=$(sed -n 's/^0:://p' "/proc/$vmm/cgroup" 2>/dev/null)
mem=$(cat "/sys/fs/cgroup$cg/memory.max" 2>/dev/null)
cpu=$(cat "/sys/fs/cgroup$cg/cpu.max" 2>/dev/null)
cgls=$(systemd-cgls --no-pager --unit iovd.service 2>&1)
if [ -n "$vmm" ] && [ "$cg" = /system.slice/iovd.service/vm-idle ] &&
        [ "$mem" = "$(((96 + 256) << 20))" ] && [ "$cpu" = "100000 100000" ] &&
        printf '%s\n' "$cgls" | grep -q 'vm-idle'; then
        ok "the VM runs in its cgroup $cg (memory.max $mem, cpu.max $cpu), listed by systemd-cgls"
        printf '%s\n' "$cgls" | sed 's/^/# /' >&3
else
        not_ok "the VM runs in its own named cgroup" "vmm $vmm in '$cg'" \
                "memory.max '$mem', cpu.max '$cpu'" "$cgls" \
                "$(journalctl -u iovd.service --no-pager | grep -i cgroup | tail -n 5)"
fi

systemctl restart iovd.service
# The unit's ExecStopPost turned the controllers off so the new iovd could start in the
# unit's cgroup; the new iovd wrote the VM's limits again.
mem_after=$(cat "/sys/fs/cgroup$cg/memory.max" 2>/dev/null)
if [ -n "$vmm" ] && kill -0 "$vmm" 2>/dev/null && [ "$(vm_field state)" = running ] &&
        [ "$(vm_field pid)" = "$vmm" ] && [ "$mem_after" = "$mem" ]; then
        ok "systemctl restart iovd keeps the VM (iovd-vmm $vmm re-attached, memory.max $mem_after)"
else
        not_ok "systemctl restart iovd keeps the VM" "vmm $vmm, memory.max '$mem_after'," \
                "now: $(iovctl vm show idle 2>&1)" \
                "$(journalctl -u iovd.service --no-pager | tail -n 15)"
fi

systemctl stop iovd.service
alive=no
kill -0 "$vmm" 2>/dev/null && alive=yes
systemctl start iovd.service
if [ -n "$vmm" ] && [ "$alive" = yes ] && [ "$(vm_field pid)" = "$vmm" ] &&
        [ "$(vm_field state)" = running ]; then
        ok "systemctl stop leaves the VM running, start re-attaches it"
else
        not_ok "systemctl stop leaves the VM running" "alive while stopped: $alive" \
                "$(iovctl vm show idle 2>&1)"
fi

# The watchdog: a stopped iovd sends no WATCHDOG=1; after WatchdogSec systemd aborts it
# (SIGABRT stays pending on a stopped process, so SIGKILL after TimeoutAbortSec) and
# Restart=on-failure starts it again.
old=$(main_pid)
kill -STOP "$old"
start=$(cut -d . -f 1 /proc/uptime)
for _ in $(seq 1 200); do
        new=$(main_pid)
        [ "$new" != "$old" ] && [ "$new" != 0 ] && systemctl is-active -q iovd.service &&
                iovctl host >/dev/null 2>&1 && break
        sleep 1
done
waited=$(($(cut -d . -f 1 /proc/uptime) - start))
if [ "$new" != "$old" ] && iovctl host >/dev/null 2>&1 &&
        journalctl -u iovd.service --no-pager | grep -q 'Watchdog timeout'; then
        ok "the watchdog restarted a stopped iovd ($old -> $new after $waited s)"
else
        not_ok "the watchdog restarted a stopped iovd" "main pid $old -> $new after $waited s" \
                "$(journalctl -u iovd.service --no-pager | tail -n 20)"
fi
if [ -n "$vmm" ] && [ "$(vm_field pid)" = "$vmm" ] && [ "$(vm_field state)" = running ]; then
        ok "the VM survived the watchdog's restart"
else
        not_ok "the VM survived the watchdog's restart" "$(iovctl vm show idle 2>&1)"
fi

exposure=$(systemd-analyze security iovd.service 2>&1 | grep -i 'overall exposure')
if [ -n "$exposure" ]; then
        ok "systemd-analyze security: ${exposure#*: }"
        systemd-analyze security iovd.service 2>&1 | grep -E '^✗' | head -n 40 | sed 's/^/# /' >&3
else
        not_ok "systemd-analyze security" "$(systemd-analyze security iovd.service 2>&1 | tail -n 5)"
fi

# RestrictAddressFamilies= without AF_INET and IPAddressDeny=any: a TCP listener needs the
# drop-in of iovd.service(8), CHANGING THE OPTIONS, which adds both back for localhost.
token=/etc/iovd-token
head -c 18 /dev/urandom | base64 | tr '+/' '-_' >"$token" && chmod 600 "$token"
mkdir -p /etc/systemd/system/iovd.service.d
cat >/etc/systemd/system/iovd.service.d/tcp.conf <<CONF
[Service]
ExecStart=
ExecStart=/usr/sbin/iovd --listen unix:/run/iovd/iovd.sock --listen tcp:127.0.0.1:7070 --token-file $token --state-dir /var/lib/iovd --run-dir /run/iovd
RestrictAddressFamilies=AF_INET AF_INET6
IPAddressAllow=localhost
CONF
systemctl daemon-reload
if systemctl restart iovd.service &&
        out=$(iovctl --url http://127.0.0.1:7070 --token-file "$token" host 2>&1); then
        ok "with the TCP drop-in iovd answers on 127.0.0.1:7070"
else
        not_ok "with the TCP drop-in iovd answers on 127.0.0.1:7070" "$out" \
                "$(journalctl -u iovd.service --no-pager | tail -n 20)"
fi
rm -r /etc/systemd/system/iovd.service.d
systemctl daemon-reload
systemctl restart iovd.service

if iovctl vm kill idle >/dev/null 2>&1; then ok "vm kill"; else not_ok "vm kill"; fi
exec 3>&-
sync
systemctl --no-block poweroff
