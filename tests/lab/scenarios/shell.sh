#!/bin/sh
# Not a test: what `tests/lab/lab shell` puts at /lab/scenario.sh. Loads the lab's modules
# and starts iovd when it is built, so the shell starts from the state scenarios use.
. /lab/lab.sh

lab_modprobe nvme vfio-pci vfio_iommu_type1 kvm_amd e1000e
if command -v iovd >/dev/null; then
  iovd_start && echo "iovd is up on $IOVD_SOCKET (log $IOVD_LOG)"
fi
