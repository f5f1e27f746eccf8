#!/usr/bin/env bash
# Host side of the vm-link scenario: the L2 initramfs of build.sh with the stock
# virtio_net driver (and what modules.dep says it needs) and init-link as its /init.
# Usage: build-link.sh LAB_ROOT KERNEL_IMAGE KERNEL_ROOT KERNEL_VERSION
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
L2_EXTRA_MODULES=virtio_net L2_INIT=$HERE/init-link exec "$HERE/build.sh" "$@"
