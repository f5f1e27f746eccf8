#!/usr/bin/env bash
# Host side of the vfio-nvme-cmb scenario: the L2 initramfs of build-nvme.sh plus the
# static lab-dma program (already in LAB_ROOT/opt/iovd/bin), with which init-nvme writes
# and reads the controller memory buffer through BAR 2.
# Usage: build-nvme-cmb.sh LAB_ROOT KERNEL_IMAGE KERNEL_ROOT KERNEL_VERSION
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[ -x "$1/opt/iovd/bin/lab-dma" ] || {
  echo "build-nvme-cmb.sh: lab-dma is not built (tests/lab/meson.build)" >&2
  exit 1
}
L2_EXTRA_MODULES=nvme L2_PROGRAMS=lab-dma L2_INIT=$HERE/init-nvme exec "$HERE/build.sh" "$@"
