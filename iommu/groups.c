/* SPDX-License-Identifier: MIT */
/*
 * iommu: IOMMU groups (sysfs_root/kernel/iommu_groups/N/devices) and their viability,
 * the one rule (iommu_member_blocks) applied to a snapshot or to sysfs: VFIO hands a group
 * to userspace only when every member is driverless or bound to a VFIO driver, bridges
 * excepted (Documentation/driver-api/vfio.rst, "Groups, Devices, and IOMMUs").
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>

#include "iommu/iommu-internal.h"
#include "util/util.h"

static int compare_addresses(const void *a, const void *b)
{
        return pci_address_compare(a, b);
}

static int compare_groups(const void *a, const void *b)
{
        const struct iov_iommu_group *x = a, *y = b;
        return x->id < y->id ? -1 : x->id > y->id;
}

int iommu_device_driver(const char *sysfs_root, const struct iov_pci_address *a, char **ret)
{
        _cleanup_free_ char *dir = pci_device_sysfs_path(sysfs_root, a, NULL);
        _cleanup_free_ char *link = pci_device_sysfs_path(sysfs_root, a, "driver");
        if (!dir || !link)
                return -ENOMEM;
        char *driver = NULL;
        int r = util_readlink_basename(link, &driver);
        if (r == -ENOENT) {
                if (access(dir, F_OK) < 0)
                        return -ENODEV;
                driver = NULL;
        } else if (r < 0)
                return r;
        *ret = driver;
        return 0;
}

/* Members are the PCI addresses among the entries; anything else (a non-PCI device on
 * some platforms, a stray name) is not ours to bind and is ignored. Takes dir_fd. */
static int read_members(int dir_fd, struct iov_iommu_group *g)
{
        DIR *d = fdopendir(dir_fd);
        if (!d) {
                int r = -errno;
                close(dir_fd);
                return r;
        }
        size_t allocated = 0;
        int r = 0;
        for (struct dirent *de; (de = readdir(d));) {
                struct iov_pci_address a;
                if (pci_address_parse(de->d_name, &a) < 0)
                        continue;
                if (g->n_devices == allocated) {
                        allocated = allocated ? allocated * 2 : 4;
                        void *p = realloc(g->devices, allocated * sizeof(*g->devices));
                        if (!p) {
                                r = -ENOMEM;
                                break;
                        }
                        g->devices = p;
                }
                g->devices[g->n_devices++] = a;
        }
        closedir(d);
        if (r == 0)
                qsort(g->devices, g->n_devices, sizeof(*g->devices), compare_addresses);
        return r;
}

/* groups_fd: sysfs_root/kernel/iommu_groups; a relative open skips the walk from the root,
 * which matters with one group per VF. */
static int read_group_at(int groups_fd, unsigned id, struct iov_iommu_group *ret)
{
        char name[32];
        snprintf(name, sizeof(name), "%u/devices", id);
        int fd = openat(groups_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        struct iov_iommu_group g = {.id = id};
        int r = read_members(fd, &g);
        if (r < 0) {
                iommu_group_clear(&g);
                return r;
        }
        *ret = g;
        return 0;
}

static int open_groups_dir(const char *sysfs_root)
{
        _cleanup_free_ char *dir = util_path_join(sysfs_root, "kernel/iommu_groups", NULL);
        if (!dir)
                return -ENOMEM;
        int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        return fd < 0 ? -errno : fd;
}

int iommu_group_read(const char *sysfs_root, unsigned id, struct iov_iommu_group *ret)
{
        int fd = open_groups_dir(sysfs_root);
        if (fd < 0)
                return fd;
        _cleanup_close_ int groups_fd = fd;
        return read_group_at(groups_fd, id, ret);
}

void iommu_group_clear(struct iov_iommu_group *group)
{
        if (!group)
                return;
        free(group->devices);
        group->devices = NULL;
        group->n_devices = 0;
}

void iommu_groups_free(struct iov_iommu_group *groups, size_t n)
{
        if (!groups)
                return;
        for (size_t i = 0; i < n; i++)
                iommu_group_clear(&groups[i]);
        free(groups);
}

static int collect_ids(DIR *d, unsigned **ret, size_t *ret_n)
{
        _cleanup_free_ unsigned *ids = NULL;
        size_t n = 0, allocated = 0;
        for (struct dirent *de; (de = readdir(d));) {
                uint64_t id;
                if (util_parse_u64(de->d_name, 10, &id) < 0 || id > UINT32_MAX)
                        continue;
                if (n == allocated) {
                        allocated = allocated ? allocated * 2 : 16;
                        unsigned *p = realloc(ids, allocated * sizeof(*ids));
                        if (!p)
                                return -ENOMEM;
                        ids = p;
                }
                ids[n++] = (unsigned)id;
        }
        *ret = TAKE_PTR(ids);
        *ret_n = n;
        return 0;
}

int iommu_groups_scan(const char *sysfs_root, struct iov_iommu_group **ret, size_t *ret_n)
{
        int fd = open_groups_dir(sysfs_root);
        if (fd < 0 && fd != -ENOENT)
                return fd;
        _cleanup_close_ int groups_fd = fd;
        _cleanup_free_ unsigned *ids = NULL;
        size_t n = 0;
        if (groups_fd >= 0) { /* no directory: no IOMMU, no groups */
                int dup_fd = fcntl(groups_fd, F_DUPFD_CLOEXEC, 3);
                DIR *d = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;
                if (!d) {
                        if (dup_fd >= 0)
                                close(dup_fd);
                        return -errno;
                }
                int r = collect_ids(d, &ids, &n);
                closedir(d);
                if (r < 0)
                        return r;
        }
        struct iov_iommu_group *groups = calloc(n ? n : 1, sizeof(*groups));
        if (!groups)
                return -ENOMEM;
        size_t got = 0;
        for (size_t i = 0; i < n; i++) {
                int r = read_group_at(groups_fd, ids[i], &groups[got]);
                if (r == -ENOENT) /* went away since the listing */
                        continue;
                if (r < 0) {
                        iommu_groups_free(groups, got);
                        return r;
                }
                got++;
        }
        qsort(groups, got, sizeof(*groups), compare_groups);
        *ret = groups;
        *ret_n = got;
        return 0;
}

void iommu_group_blockers_free(struct iov_group_blocker *blockers, size_t n)
{
        if (!blockers)
                return;
        for (size_t i = 0; i < n; i++)
                free(blockers[i].driver);
        free(blockers);
}

bool iommu_member_blocks(uint32_t class_code, const char *driver)
{
        if (!driver || streq(driver, "vfio-pci"))
                return false;
        return !(streq(driver, "pcieport") && pci_class_is_pci_bridge(class_code));
}

bool iommu_group_viable_in(const struct iov_iommu_group *group,
                           const struct iov_pci_inventory *inventory)
{
        for (size_t i = 0; i < group->n_devices; i++) {
                const struct iov_pci_device *m = pci_inventory_find(inventory, &group->devices[i]);
                if (m && iommu_member_blocks(m->class_code, m->driver))
                        return false;
        }
        return true;
}

/* A member as sysfs shows it now: 1 when it blocks (ret_driver: its driver), 0 when not,
 * -ENODEV when it left the group meanwhile. The class is read only for bound members. */
static int member_check(const char *sysfs_root, const struct iov_pci_address *a, char **ret_driver)
{
        _cleanup_free_ char *driver = NULL;
        uint32_t class_code = 0;
        int r = iommu_device_driver(sysfs_root, a, &driver);
        if (r == 0 && driver)
                r = pci_device_read_class(sysfs_root, a, &class_code);
        if (r == -ENOENT)
                return -ENODEV;
        if (r < 0)
                return r;
        if (!iommu_member_blocks(class_code, driver))
                return 0;
        *ret_driver = TAKE_PTR(driver);
        return 1;
}

int iommu_group_check_viable(const char *sysfs_root, unsigned id,
                             struct iov_group_blocker **ret_blockers, size_t *ret_n_blockers)
{
        struct iov_iommu_group g;
        int r = iommu_group_read(sysfs_root, id, &g);
        if (r < 0)
                return r;
        struct iov_group_blocker *blockers =
                calloc(g.n_devices ? g.n_devices : 1, sizeof(*blockers));
        size_t n = 0;
        r = 0;
        for (size_t i = 0; blockers && i < g.n_devices; i++) {
                char *driver = NULL;
                int k = member_check(sysfs_root, &g.devices[i], &driver);
                if (k == 0 || k == -ENODEV) /* passes, or left the group meanwhile */
                        continue;
                if (k < 0) {
                        r = k;
                        break;
                }
                blockers[n++] = (struct iov_group_blocker){g.devices[i], driver};
        }
        iommu_group_clear(&g);
        if (!blockers || r < 0) {
                iommu_group_blockers_free(blockers, n);
                return blockers ? r : -ENOMEM;
        }
        if (ret_blockers && ret_n_blockers && n > 0) {
                *ret_blockers = blockers;
                *ret_n_blockers = n;
        } else {
                iommu_group_blockers_free(blockers, n);
                if (ret_blockers && ret_n_blockers) {
                        *ret_blockers = NULL;
                        *ret_n_blockers = 0;
                }
        }
        return n == 0;
}

char *iommu_vfio_group_path(const char *dev_root, unsigned id)
{
        char name[16];
        snprintf(name, sizeof(name), "%u", id);
        return util_path_join(dev_root, "vfio", name, NULL);
}
