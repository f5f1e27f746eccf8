/* SPDX-License-Identifier: MIT */
/*
 * sriov: enabling VFs on a PF through sysfs (sriov_totalvfs, sriov_numvfs,
 * sriov_drivers_autoprobe, virtfnN; Documentation/ABI/testing/sysfs-bus-pci). The kernel
 * refuses to change a non-zero VF count to another non-zero count, so a change goes
 * through 0; each write's effect (the virtfn links) is awaited, bounded, before the next.
 */
#include <stdio.h>

#include "sriov/sriov.h"
#include "util/util.h"

#define POLL_USEC 1000

/* Number of consecutive virtfnN links, capped at limit + 1. */
static unsigned count_vfs(const char *pf_dir, unsigned limit)
{
        unsigned n = 0;
        for (; n <= limit; n++) {
                char link[32];
                snprintf(link, sizeof(link), "virtfn%u", n);
                _cleanup_free_ char *path = util_path_join(pf_dir, link, NULL);
                /* access() follows the link: a link whose VF is not there yet counts not. */
                if (!path || access(path, F_OK) < 0)
                        break;
        }
        return n;
}

static int wait_for_vfs(const char *pf_dir, unsigned want, unsigned timeout_ms)
{
        uint64_t deadline = util_now_usec() + (uint64_t)timeout_ms * 1000;
        for (;;) {
                if (access(pf_dir, F_OK) < 0)
                        return -ENODEV;
                if (count_vfs(pf_dir, want) == want)
                        return 0;
                if (util_now_usec() >= deadline)
                        return -ETIMEDOUT;
                util_sleep_usec(POLL_USEC);
        }
}

static int write_num_vfs(const char *pf_dir, unsigned num_vfs, unsigned timeout_ms)
{
        char value[16];
        _cleanup_free_ char *path = util_path_join(pf_dir, "sriov_numvfs", NULL);
        if (!path)
                return -ENOMEM;
        snprintf(value, sizeof(value), "%u", num_vfs);
        int r = util_write_attr(path, value);
        return r < 0 ? r : wait_for_vfs(pf_dir, num_vfs, timeout_ms);
}

static int read_total(const char *pf_dir, unsigned *ret)
{
        _cleanup_free_ char *path = util_path_join(pf_dir, "sriov_totalvfs", NULL);
        uint64_t total;
        if (!path)
                return -ENOMEM;
        int r = util_read_u64(path, &total);
        if (r == -ENOENT)
                return access(pf_dir, F_OK) < 0 ? -ENOENT : -ENODEV;
        if (r == 0 && total > 0xffff) /* TotalVFs is 16 bits, PCIe r5 §9.3.3.6 */
                r = -ERANGE;
        if (r == 0)
                *ret = (unsigned)total;
        return r;
}

/* Written only when it changes: a request that keeps the setting writes nothing (and
 * a reader of the PF never meets a write in progress on a tree of plain files). */
static int set_autoprobe(const char *path, bool on)
{
        uint64_t now = 0;
        if (util_read_u64(path, &now) == 0 && (now != 0) == on)
                return 0;
        return util_write_attr(path, on ? "1" : "0");
}

int sriov_set_num_vfs(const char *sysfs_root, const struct iov_pci_address *pf, unsigned num_vfs,
                      bool drivers_autoprobe, unsigned timeout_ms)
{
        _cleanup_free_ char *dir = pci_device_sysfs_path(sysfs_root, pf, NULL);
        _cleanup_free_ char *autoprobe =
                pci_device_sysfs_path(sysfs_root, pf, "sriov_drivers_autoprobe");
        if (!dir || !autoprobe)
                return -ENOMEM;
        unsigned total = 0;
        int r = read_total(dir, &total);
        if (r < 0)
                return r;
        /* Checked before any write: a refused request leaves the device as it was. */
        if (num_vfs > total)
                return -EINVAL;
        r = set_autoprobe(autoprobe, drivers_autoprobe);
        if (r < 0)
                return r;
        unsigned current = count_vfs(dir, total);
        if (current == num_vfs)
                return 0;
        if (current > 0) {
                r = write_num_vfs(dir, 0, timeout_ms);
                if (r < 0)
                        return r;
        }
        return num_vfs ? write_num_vfs(dir, num_vfs, timeout_ms) : 0;
}
