/* SPDX-License-Identifier: MIT */
/*
 * What the host must offer before a function can be passed through, each checked with
 * a message that says what to do: the function exists, an IOMMU put it in a group
 * (without one VFIO cannot confine its DMA), vfio-pci drives it, and the process may pin
 * all of guest RAM (the type1 IOMMU pins every mapped page; vfio.rst, "VFIO Usage").
 */
#include <linux/capability.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/syscall.h>

#include "util/util.h"
#include "vmm/vfio/vfio.h"

/* The last path component of the symlink at dir/name, or -ENOENT when there is none. */
static int host_link_name(const char *dir, const char *name, char *buf, size_t size)
{
        char path[512], target[512];
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        ssize_t n = readlink(path, target, sizeof(target) - 1);
        if (n < 0)
                return -errno;
        target[n] = '\0';
        const char *base = strrchr(target, '/');
        const char *last = base ? base + 1 : target;
        size_t len = strlen(last);
        if (len >= size)
                return -ENAMETOOLONG;
        memcpy(buf, last, len + 1);
        return 0;
}

int vfio_host_check(const char *sysfs_root, const char *bdf, unsigned *ret_group, char *error,
                    size_t error_size)
{
        char dir[320], value[256];
        snprintf(dir, sizeof(dir), "%s/bus/pci/devices/%s", sysfs_root, bdf);
        if (access(dir, F_OK) < 0) {
                snprintf(error, error_size, "vfio: no PCI function %s on this host", bdf);
                return -ENODEV;
        }
        if (host_link_name(dir, "iommu_group", value, sizeof(value)) < 0) {
                snprintf(error, error_size,
                         "vfio: %s has no IOMMU group: the host's IOMMU is off (boot with "
                         "intel_iommu=on or amd_iommu=on), VFIO cannot confine its DMA",
                         bdf);
                return -ENXIO;
        }
        uint64_t group;
        if (util_parse_u64(value, 10, &group) < 0 || group > UINT32_MAX) {
                snprintf(error, error_size, "vfio: %s: unexpected iommu_group \"%s\"", bdf, value);
                return -EINVAL;
        }
        if (host_link_name(dir, "driver", value, sizeof(value)) < 0)
                snprintf(value, sizeof(value), "no driver");
        if (!streq(value, "vfio-pci")) {
                snprintf(error, error_size,
                         "vfio: %s is not bound to vfio-pci (%s): allocate it through iovd "
                         "(POST /v1/allocations) or bind its whole IOMMU group %u to vfio-pci",
                         bdf, value, (unsigned)group);
                return -EBUSY;
        }
        *ret_group = (unsigned)group;
        return 0;
}

static bool host_has_ipc_lock(void)
{
        struct __user_cap_header_struct header = {.version = _LINUX_CAPABILITY_VERSION_3};
        struct __user_cap_data_struct data[2] = {0};
        if (syscall(SYS_capget, &header, data) < 0)
                return false;
        return data[CAP_IPC_LOCK / 32].effective & (1u << (CAP_IPC_LOCK % 32));
}

int vfio_host_check_memlock(uint64_t ram_bytes, char *error, size_t error_size)
{
        struct rlimit limit;
        if (getrlimit(RLIMIT_MEMLOCK, &limit) < 0)
                return -errno;
        if (limit.rlim_cur == RLIM_INFINITY || limit.rlim_cur >= ram_bytes)
                return 0;
        /* type1 does not count pinned pages against the limit for CAP_IPC_LOCK. */
        if (host_has_ipc_lock())
                return 0;
        if (limit.rlim_max == RLIM_INFINITY || limit.rlim_max >= ram_bytes) {
                limit.rlim_cur = ram_bytes;
                if (setrlimit(RLIMIT_MEMLOCK, &limit) == 0)
                        return 0;
        }
        snprintf(error, error_size,
                 "vfio: RLIMIT_MEMLOCK is %llu KiB but VFIO pins all guest RAM (%llu KiB): "
                 "raise it (ulimit -l, LimitMEMLOCK= in the unit) or grant CAP_IPC_LOCK",
                 (unsigned long long)(limit.rlim_cur / 1024),
                 (unsigned long long)(ram_bytes / 1024));
        return -ENOMEM;
}
