#!/bin/sh
# VF network settings through iovd on a real kernel: QEMU's igb PF driven by Linux's igb.
# 3 VFs made through the API; MAC and VLAN set on two (and QoS, trust, spoof check, a rate)
# through PUT /v1/devices/{vf}/net; for every VF `ip link show PF` (iproute2, rtnetlink
# read independently of iovd) shows exactly what GET /v1/devices/{vf} reports. Bad
# requests (invalid values, unknown fields, a rate igb refuses after the MAC it accepted,
# a VF of the NVMe PF, the PF itself) are refused and change nothing. iovctl vf set and
# iovctl device. QEMU's igb accepts spoof check without enforcing it: only the setting is
# checked. Needs QEMU >= 8 (igb); the runner skips it on 7.2.
# lab-topology: --nvme 1 --nics 1 --igb 1
. /lab/lab.sh

IP=/usr/local/sbin/ip
MAC0=02:00:00:00:20:01
MAC1=02:00:00:00:20:02
MAC2=02:00:00:00:20:03

tap_plan 40
tap_check "modules load (igb, nvme)" lab_modprobe igb nvme
lab_require_programs iovd iovctl || exit 1
iovd_start_checked || exit 1
pf=$(lab_find_pf 8086:10c9)
tap_is "an igb PF (8086:10c9) is in sysfs" "${pf:+found}" found || exit 1
nvme=$(lab_find_pf 1b36:0010)
pfif=$(ls "$SYSFS_PCI/$pf/net" 2>/dev/null | head -n 1)

# One VF as `ip link show` prints it, normalised: mac vlan qos spoof link-state trust
# max_tx_rate (iproute2 leaves out a zero vlan, qos and rate).
ip_vf() {
  line=$($IP link show "$pfif" | grep "vf $1 ")
  field() {
    v=$(echo "$line" | sed -n "s/.*$1.*/\\1/p")
    echo "${v:-$2}"
  }
  echo "$(field 'link\/ether \([0-9a-f:]*\)' -) $(field ', vlan \([0-9]*\)' 0)" \
    "$(field ', qos \([0-9]*\)' 0) $(field 'spoof checking \([a-z]*\)' -)" \
    "$(field 'link-state \([a-z]*\)' -) $(field 'trust \([a-z]*\)' -)" \
    "$(field 'max_tx_rate \([0-9]*\)Mbps' 0)"
}
# The same from the last API answer's net object (or the answer itself with '.').
api_vf() {
  api_jq "${1:-.net} | \"\\(.mac) \\(.vlan) \\(.qos)\" +
    \" \\(if .spoof_check then \"on\" else \"off\" end) \\(.link_state)\" +
    \" \\(if .trust then \"on\" else \"off\" end) \\(.max_tx_rate)\""
}
lab_carrier() {
  [ "$(cat "/sys/class/net/$1/carrier" 2>/dev/null)" = 1 ]
}

api_expect "PUT /v1/devices/$pf/sriov {num_vfs: 3}" 200 PUT "/v1/devices/$pf/sriov" '{"num_vfs": 3}'
vfs=$(for n in 0 1 2; do basename "$(readlink "$SYSFS_PCI/$pf/virtfn$n")"; done)
vf0=$(echo $vfs | cut -d' ' -f1) vf1=$(echo $vfs | cut -d' ' -f2) vf2=$(echo $vfs | cut -d' ' -f3)
# igb sets rates only while its link is up: the PF joins QEMU's hub 0 with the e1000e.
$IP link set "$pfif" up
tap_check "the PF's interface $pfif is up with carrier" lab_wait 30 lab_carrier "$pfif"

api GET "/v1/devices/$vf0"
tap_is "GET $vf0: net names $pf, $pfif, VF 0, its link up" \
  "$(api_jq '.net | "\(.pf) \(.pf_interface) \(.vf_index) \(.pf_admin_up) \(.pf_link_state)"')" \
  "$pf $pfif 0 true up" || tap_diag "$API_BODY"

api_expect "PUT $vf0/net {mac, vlan 42}" 200 PUT "/v1/devices/$vf0/net" \
  "{\"mac\": \"$MAC0\", \"vlan\": 42}"
tap_is "its answer is the kernel's: $MAC0 vlan 42" "$(api_jq '"\(.mac) \(.vlan) \(.qos)"')" \
  "$MAC0 42 0"
api_expect "PUT $vf1/net {mac, vlan 7, qos 3, trust, no spoof check}" 200 PUT \
  "/v1/devices/$vf1/net" \
  "{\"mac\": \"$MAC1\", \"vlan\": 7, \"qos\": 3, \"trust\": true, \"spoof_check\": false}"
api_expect "PUT $vf2/net {max_tx_rate 100}" 200 PUT "/v1/devices/$vf2/net" '{"max_tx_rate": 100}'
n=0
for vf in $vf0 $vf1 $vf2; do
  api GET "/v1/devices/$vf"
  tap_is "ip link show $pfif: vf $n is what GET $vf reports" "$(ip_vf $n)" "$(api_vf)" ||
    tap_diag "$($IP link show "$pfif")"
  n=$((n + 1))
done
tap_is "vf 1 is $MAC1 vlan 7 qos 3, spoof check off, trust on" "$(ip_vf 1 | cut -d' ' -f1-4,6)" \
  "$MAC1 7 3 off on"

before=$($IP link show "$pfif" | grep ' vf ')
api GET "/v1/devices/$vf2"
mac2=$(api_jq .net.mac)
api_expect "PUT {vlan 4095}: 400" 400 PUT "/v1/devices/$vf0/net" '{"vlan": 4095}'
api_expect "PUT {mac 01:00:5e:00:00:01} (multicast): 400" 400 PUT "/v1/devices/$vf0/net" \
  '{"mac": "01:00:5e:00:00:01"}'
api_expect "PUT {vlan 5, colour}: 400 unknown_field" 400 PUT "/v1/devices/$vf0/net" \
  '{"vlan": 5, "colour": "red"}'
api_expect "PUT {mac, min_tx_rate 10}: igb refuses a minimum rate, 422" 422 PUT \
  "/v1/devices/$vf2/net" "{\"mac\": \"$MAC2\", \"min_tx_rate\": 10}"
tap_is "... with code setting_refused" "$(api_jq .error.code)" setting_refused
api PUT "/v1/devices/$nvme/sriov" '{"num_vfs": 1}'
nvf=$(basename "$(readlink "$SYSFS_PCI/$nvme/virtfn0")")
api_expect "PUT $nvf/net (a VF of the NVMe PF): 409" 409 PUT "/v1/devices/$nvf/net" '{"vlan": 5}'
tap_is "... with code not_a_network_function" "$(api_jq .error.code)" not_a_network_function
api_expect "PUT $pf/net (the PF): 400" 400 PUT "/v1/devices/$pf/net" '{"vlan": 5}'
tap_is "after the refusals ip link show has every VF as before" \
  "$($IP link show "$pfif" | grep ' vf ')" "$before"
api GET "/v1/devices/$vf2"
tap_is "GET $vf2: MAC still $mac2 (the MAC igb took before refusing the rate was undone)" \
  "$(api_jq .net.mac)" "$mac2"

tap_check "iovctl vf set $vf2 --vlan 9 --trust on" \
  iovctl --socket "$IOVD_SOCKET" vf set "$vf2" --vlan 9 --trust on
iovctl --socket "$IOVD_SOCKET" device "$vf2" >/tmp/iovctl-device.txt 2>&1
tap_is "iovctl device $vf2 shows net.vlan 9 and ip link show agrees" \
  "$(grep -c '^net\.vlan  *9$' /tmp/iovctl-device.txt) $(ip_vf 2 | cut -d' ' -f2)" "1 9" ||
  tap_diag "$(cat /tmp/iovctl-device.txt)"
tap_check "modules load (vfio-pci)" lab_modprobe vfio-pci vfio_iommu_type1
api_expect "POST /v1/pools nics {physfn $pf, net {vlan 100, trust}}" 201 POST /v1/pools \
  "{\"name\": \"nics\", \"selector\": {\"physfn\": \"$pf\"}, \"net\": {\"vlan\": 100, \"trust\": true}}"
before=$(ip_vf 0)
allocate_auto() {
  api_expect "POST /v1/allocations {pool nics, mac auto}" 201 POST /v1/allocations \
    '{"owner": "vm-net", "pool": "nics", "mac": "auto"}'
  alloc=$(api_jq .id) index=$(api_jq .net.vf_index) auto_mac=$(api_jq .net.applied.mac)
}
allocate_auto
tap_is "ip link show: vf $index has the allocation's MAC $auto_mac, vlan 100, trust on" \
  "$(ip_vf "$index" | cut -d' ' -f1,2,6)" "$auto_mac 100 on" || tap_diag "$API_BODY"
first=$(printf '%d' "0x${auto_mac%%:*}")
tap_is "$auto_mac is locally administered unicast" "$((first & 3))" 2
avf=$(basename "$(readlink "$SYSFS_PCI/$pf/virtfn$index")")
tap_is "the VF $avf is on vfio-pci" "$(lab_driver_of "$avf")" vfio-pci
api_expect "DELETE the allocation" 200 DELETE "/v1/allocations/$alloc"
tap_is "ip link show: vf $index has its own settings back" "$(ip_vf "$index")" "$before"
iovd_stop
iovd_start_checked || exit 1
first_mac=$auto_mac
allocate_auto
tap_is "after a restart the same owner gets the same MAC" "$auto_mac" "$first_mac"
api_expect "POST /v1/allocations {pool nics, mac $auto_mac} (the first one's): 409" 409 POST \
  /v1/allocations "{\"owner\": \"vm-other\", \"pool\": \"nics\", \"mac\": \"$auto_mac\"}"
tap_is "refused as mac_in_use" "$(api_jq .error.code)" mac_in_use
api_expect "DELETE the allocation" 200 DELETE "/v1/allocations/$alloc"
iovd_stop
