#!/usr/bin/env bash
# Host side of bench/passthrough/scenario.sh (its "# lab-prepare:" line): the L2 kernel
# and an initramfs with the nvme and virtio-blk drivers, lab-barread and lab-blkbench
# (already in LAB_ROOT/opt/iovd/bin) and l2-init as /init, built by tests/lab/l2/build.sh.
# Usage: prepare.sh LAB_ROOT KERNEL_IMAGE KERNEL_ROOT KERNEL_VERSION
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
for program in lab-barread lab-blkbench; do
  [ -x "$1/opt/iovd/bin/$program" ] || {
    echo "bench/passthrough: $program is not built (meson compile)" >&2
    exit 1
  }
done
L2_EXTRA_MODULES="nvme virtio_blk" L2_PROGRAMS="lab-barread lab-blkbench" \
  L2_INIT=$HERE/l2-init exec "$HERE/../../tests/lab/l2/build.sh" "$@"
