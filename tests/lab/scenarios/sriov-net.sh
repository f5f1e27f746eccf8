#!/bin/sh
# SR-IOV on a network card: QEMU's igb (Intel 82576) PF, driven by Linux's igb, is in
# iovd's inventory with 7 VFs to offer; 3 made through the API are igb VFs (8086:10ca),
# each in its own IOMMU group. The PF's link is joined to the lab's e1000e (QEMU hub 0):
# an IPv6 link-local ping from the PF is answered by the e1000e, whose receive counter
# grows. iproute2's `ip link set PF vf N mac|vlan|trust` (rtnetlink, through igb) shows up
# in `ip link show`: the ground for VF network settings in iovd. A VF bound to igbvf
# carries frames to the e1000e too. Needs QEMU >= 8 (igb); the runner skips it on 7.2.
# lab-topology: --nvme 0 --nics 1 --igb 1
. /lab/lab.sh

IP=/usr/local/sbin/ip
VF_MAC0=02:00:00:00:10:01
VF_MAC1=02:00:00:00:10:02

tap_plan 19
tap_check "modules load (igb, igbvf, e1000e)" lab_modprobe igb igbvf e1000e
lab_require_programs iovd || exit 1
iovd_start_checked || exit 1
pf=$(lab_find_pf 8086:10c9)
tap_is "an igb PF (8086:10c9) is in sysfs" "${pf:+found}" found || exit 1

# The network interface of a PCI function ("" until its driver made one).
lab_netdev_of() {
  ls "$SYSFS_PCI/$1/net" 2>/dev/null | head -n 1
}
# Up, IPv6 only (no DAD: the link-local address is usable at once).
lab_link_up() {
  echo 0 >"/proc/sys/net/ipv6/conf/$1/accept_dad" && $IP link set "$1" up
}
lab_link_local() {
  $IP -6 addr show dev "$1" scope link | sed -n 's/.*inet6 \(fe80::[^/]*\).*/\1/p' | head -n 1
}
lab_carrier() {
  [ "$(cat "/sys/class/net/$1/carrier" 2>/dev/null)" = 1 ]
}
rx_packets() {
  cat "/sys/class/net/$1/statistics/rx_packets"
}

api GET /v1/devices
tap_is "GET /v1/devices: $pf is an SR-IOV PF with total_vfs 7, driver igb" \
  "$(api_jq "$API_LIST | map(select(.address == \"$pf\")) | .[0] |
    \"\(.sriov.total_vfs) \(.sriov.num_vfs) \(.driver)\"")" "7 0 igb"

api_expect "PUT /v1/devices/$pf/sriov {num_vfs: 3}" 200 PUT "/v1/devices/$pf/sriov" '{"num_vfs": 3}'
tap_is "sysfs: sriov_numvfs is 3" "$(cat "$SYSFS_PCI/$pf/sriov_numvfs")" 3
vfs=$(for l in "$SYSFS_PCI/$pf"/virtfn*; do basename "$(readlink "$l")"; done | sort)
groups=$(lab_group_of "$pf")
ids="" own=yes
for vf in $vfs; do
  api GET "/v1/devices/$vf"
  ids="$ids $(api_jq '"\(.vendor_id):\(.device_id):\(.physfn)"')"
  group=$(api_jq .iommu_group)
  [ "$group" = "$(lab_group_of "$vf")" ] || own="no: $vf API $group, sysfs $(lab_group_of "$vf")"
  case " $groups " in *" $group "*) own="no: $vf shares group $group ($groups)" ;; esac
  groups="$groups $group"
done
tap_is "the 3 VFs are igb VFs (8086:10ca) of $pf" "$ids" \
  " 8086:10ca:$pf 8086:10ca:$pf 8086:10ca:$pf"
tap_is "each VF is in an IOMMU group of its own (API as sysfs)" "$own" yes

# The link: PF and e1000e on one QEMU hub; IPv6 link-local only, no IPv4 at all.
pfif=$(lab_netdev_of "$pf")
e1000e=$(for d in "$SYSFS_PCI"/*; do
  [ "$(cat "$d/vendor"):$(cat "$d/device")" = 0x8086:0x10d3 ] && basename "$d"
done | head -n 1)
peer=$(lab_netdev_of "$e1000e")
lab_link_up "$pfif" && lab_link_up "$peer" &&
  lab_wait 30 lab_carrier "$pfif" && lab_wait 30 lab_carrier "$peer"
tap_is "the PF ($pfif) and the e1000e ($peer) are up with carrier" \
  "$(lab_carrier "$pfif" && lab_carrier "$peer" && echo yes)" yes
peer_ll=$(lab_link_local "$peer")
before=$(rx_packets "$peer")
tap_check "ping -6 from the PF to the e1000e's link-local $peer_ll is answered" \
  ping -6 -c 3 -W 5 -I "$pfif" "$peer_ll%$pfif"
tap_check "the e1000e received them (rx_packets grew from $before)" \
  test "$(rx_packets "$peer")" -ge $((before + 3))

# VF settings through rtnetlink (IFLA_VF_*), applied by igb, read back by ip link show.
tap_check "ip link set $pfif vf 0 mac $VF_MAC0 vlan 42" \
  $IP link set "$pfif" vf 0 mac "$VF_MAC0" vlan 42
tap_check "ip link set $pfif vf 1 mac $VF_MAC1 trust on" \
  $IP link set "$pfif" vf 1 mac "$VF_MAC1" trust on
$IP link show "$pfif" >/tmp/pf-link.txt 2>&1
tap_is "ip link show: vf 0 has MAC $VF_MAC0, vlan 42" \
  "$(grep -c "vf 0 .*link/ether $VF_MAC0 .*vlan 42" /tmp/pf-link.txt)" 1 ||
  tap_diag "$(cat /tmp/pf-link.txt)"
tap_is "ip link show: vf 1 has MAC $VF_MAC1, trust on" \
  "$(grep -c "vf 1 .*link/ether $VF_MAC1 .*trust on" /tmp/pf-link.txt)" 1

# VF 1 (no VLAN) bound to igbvf: its own interface, with the MAC the PF gave it, reaches
# the e1000e through QEMU's igb switch.
vf1=$(echo "$vfs" | sed -n 2p)
echo igbvf >"$SYSFS_PCI/$vf1/driver_override"
echo "$vf1" >/sys/bus/pci/drivers_probe
vf_has_netdev() {
  [ -n "$(lab_netdev_of "$1")" ]
}
tap_check "VF $vf1 is bound to igbvf and has a network interface" lab_wait 30 vf_has_netdev "$vf1"
vfif=$(lab_netdev_of "$vf1")
tap_is "its interface $vfif has MAC $VF_MAC1" \
  "$(cat "/sys/class/net/$vfif/address" 2>/dev/null)" "$VF_MAC1"
lab_link_up "$vfif"
tap_check "$vfif is up with carrier" lab_wait 30 lab_carrier "$vfif" ||
  tap_diag "$($IP link show "$vfif")" "$(dmesg | grep -i igb | tail -n 20)"
tap_check "ping -6 from the VF ($vfif) to the e1000e is answered" \
  ping -6 -c 3 -W 5 -I "$vfif" "$peer_ll%$vfif" ||
  tap_diag "$($IP addr show "$vfif")" "$($IP link show "$pfif")"
iovd_stop
