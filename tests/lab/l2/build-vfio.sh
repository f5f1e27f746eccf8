#!/usr/bin/env bash
# Host side of the vmm-vfio scenario: the L2 initramfs of build.sh with the stock e1000e
# driver (and what modules.dep says it needs) and init-vfio as its /init.
# Usage: build-vfio.sh LAB_ROOT KERNEL_IMAGE KERNEL_ROOT KERNEL_VERSION
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
L2_EXTRA_MODULES=e1000e L2_INIT=$HERE/init-vfio exec "$HERE/build.sh" "$@"
