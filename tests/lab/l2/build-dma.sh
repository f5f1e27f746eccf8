#!/usr/bin/env bash
# Host side of the vfio-containment and vfio-present-as scenarios: the L2 initramfs of
# build.sh with the stock e1000e driver, the static lab-dma program (built with the lab's
# programs, already in LAB_ROOT/opt/iovd/bin) and init-dma as its /init.
# Usage: build-dma.sh LAB_ROOT KERNEL_IMAGE KERNEL_ROOT KERNEL_VERSION
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[ -x "$1/opt/iovd/bin/lab-dma" ] || {
  echo "build-dma.sh: lab-dma is not built (tests/lab/meson.build)" >&2
  exit 1
}
L2_EXTRA_MODULES=e1000e L2_PROGRAMS=lab-dma L2_INIT=$HERE/init-dma exec "$HERE/build.sh" "$@"
