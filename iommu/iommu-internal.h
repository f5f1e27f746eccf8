/* SPDX-License-Identifier: MIT */
/* iommu: helpers shared by the group and binding files; not part of the interface. */
#pragma once

#include "iommu/iommu.h"

/* The driver a device is bound to (NULL: none) in ret; -ENODEV when the device is gone. */
int iommu_device_driver(const char *sysfs_root, const struct iov_pci_address *a, char **ret);
