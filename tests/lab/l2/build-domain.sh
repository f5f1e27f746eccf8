#!/usr/bin/env bash
# Host side of the device-domain scenario: two L2 initramfs images of build.sh. The
# driver VM's (/lab/l2.cpio.gz): the stock e1000e, virtio_net and bridge drivers (and
# what modules.dep says they need) with init-domain as its /init; the clients'
# (/lab/l2-client.cpio.gz): virtio_net with init-link, as in the vm-link scenario.
# Usage: build-domain.sh LAB_ROOT KERNEL_IMAGE KERNEL_ROOT KERNEL_VERSION
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
L2_EXTRA_MODULES=virtio_net L2_INIT=$HERE/init-link L2_OUT=l2-client.cpio.gz \
  "$HERE/build.sh" "$@"
L2_EXTRA_MODULES="e1000e virtio_net bridge" L2_INIT=$HERE/init-domain exec "$HERE/build.sh" "$@"
