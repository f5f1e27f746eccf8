#!/bin/sh
# The Kubernetes device plugin on a real kernel: iovd-device-plugin registers the pool of
# two NVMe VFs with a fake kubelet (lab-kubelet, kubelet's calls in kubelet's order), which
# admits a pod: Allocate binds the VF to vfio-pci, names its real /dev/vfio/N (viable,
# attaches to a type1 container) and PCIDEVICE_IOVD_IO_NVME_VFS; once the pod is gone the
# plugin releases the allocation and the VF is driverless again.
. /lab/lab.sh

tap_plan 11
tap_check "modules load (nvme, vfio-pci)" lab_modprobe nvme vfio-pci vfio_iommu_type1
lab_require_programs iovd iovd-device-plugin lab-kubelet lab-vfio-check || exit 1
iovd_start_checked || exit 1
pf=$(lab_find_pf 1b36:0010)
api_expect "PUT /v1/devices/$pf/sriov {num_vfs: 2}" 200 PUT "/v1/devices/$pf/sriov" '{"num_vfs": 2}'
api_expect "POST /v1/pools nvme-vfs (the VFs of $pf)" 201 POST /v1/pools \
  "{\"name\": \"nvme-vfs\", \"selector\": {\"physfn\": \"$pf\"}}"

K=/tmp/kubelet
lab-kubelet --dir $K --iovd-socket "$IOVD_SOCKET" --want 2 >/tmp/lab-kubelet.log 2>&1 &
lab_wait 30 test -S $K/device-plugins/kubelet.sock
iovd-device-plugin --iovd-socket "$IOVD_SOCKET" --plugin-dir $K/device-plugins \
  --pod-resources-socket $K/pod-resources/kubelet.sock --release-grace 2s \
  --reconcile-interval 500ms >/tmp/plugin.log 2>&1 &

if ! lab_wait 120 test -f $K/admitted; then
  tap_diag "lab-kubelet: $(cat /tmp/lab-kubelet.log)"
  tap_diag "plugin: $(cat /tmp/plugin.log)"
fi
tap_check "registered, 2 Healthy VFs listed, a pod admitted (Allocate)" test -f $K/admitted
vf=$(awk '$1 == "device" { print $2 }' $K/admitted 2>/dev/null)
node=$(awk '$1 == "host" && $3 != "/dev/vfio/vfio" { print $2 }' $K/admitted 2>/dev/null)
tap_is "the pod's VF $vf is bound to vfio-pci" "$(lab_driver_of "$vf")" vfio-pci
tap_is "Allocate names its group node" "$node" "/dev/vfio/$(lab_group_of "$vf")"
tap_check "$node opens, is viable and attaches to a type1 container" lab-vfio-check "$node" --attach
tap_is "the container's PCIDEVICE_IOVD_IO_NVME_VFS" \
  "$(awk '$1 == "env" { print $2 }' $K/admitted 2>/dev/null)" "PCIDEVICE_IOVD_IO_NVME_VFS=$vf"

touch $K/remove-pod
if ! lab_wait 60 test -f $K/released; then
  tap_diag "lab-kubelet: $(cat /tmp/lab-kubelet.log)"
  tap_diag "plugin: $(cat /tmp/plugin.log)"
fi
tap_check "pod gone: the plugin released the allocation" test -f $K/released
tap_is "$vf is driverless again" "$(lab_driver_of "$vf")" none
