#!/usr/bin/env bash
# Host side of the vfio-nvme scenario: the L2 initramfs of build.sh with the stock nvme
# driver (and what modules.dep says it needs) and init-nvme as its /init.
# Usage: build-nvme.sh LAB_ROOT KERNEL_IMAGE KERNEL_ROOT KERNEL_VERSION
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
L2_EXTRA_MODULES=nvme L2_INIT=$HERE/init-nvme exec "$HERE/build.sh" "$@"
