/* SPDX-License-Identifier: MIT */
/*
 * sriov: creating and removing virtual functions on a physical function (PCIe r5 §9).
 */
#pragma once

#include <stdbool.h>

#include "pci/pci.h"

/* Set the number of VFs on a PF: sriov_drivers_autoprobe first (off keeps new VFs
 * driverless until they are allocated), then 0, then num_vfs (the kernel refuses to
 * change a non-zero count directly), then wait at most timeout_ms until num_vfs virtfn
 * links exist. -EINVAL when num_vfs > sriov_totalvfs, -ENODEV when the device is not a
 * PF, -ETIMEDOUT when the VFs do not appear. */
int sriov_set_num_vfs(const char *sysfs_root, const struct iov_pci_address *pf, unsigned num_vfs,
                      bool drivers_autoprobe, unsigned timeout_ms);
