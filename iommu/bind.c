/* SPDX-License-Identifier: MIT */
/*
 * iommu: moving a whole IOMMU group to vfio-pci and back. Per member, in the order the
 * kernel needs (Documentation/ABI/testing/sysfs-bus-pci, driver_override): write
 * driver_override, unbind from the current driver, ask drivers_probe to match again,
 * then verify the driver link. Every step waits (bounded, polling every millisecond) for
 * its effect: with the real kernel the writes are synchronous and the first check
 * succeeds; a simulated kernel reacts a little later. Any failure gives every member
 * already touched back to what it had.
 */
#include <stdio.h>

#include "iommu/iommu-internal.h"
#include "util/util.h"

#define VFIO_DRIVER "vfio-pci"
#define POLL_USEC   1000

void iommu_bind_records_free(struct iov_bind_record *records, size_t n)
{
        if (!records)
                return;
        for (size_t i = 0; i < n; i++) {
                free(records[i].original_driver);
                free(records[i].original_override);
        }
        free(records);
}

/* Wait until the device's driver is `want` (NULL: none). -ENODEV when the device goes. */
static int wait_for_driver(const char *sysfs_root, const struct iov_pci_address *a,
                           const char *want, unsigned timeout_ms)
{
        uint64_t deadline = util_now_usec() + (uint64_t)timeout_ms * 1000;
        for (;;) {
                _cleanup_free_ char *driver = NULL;
                int r = iommu_device_driver(sysfs_root, a, &driver);
                if (r < 0)
                        return r;
                if (streq_ptr(driver, want))
                        return 0;
                if (util_now_usec() >= deadline)
                        return -ETIMEDOUT;
                util_sleep_usec(POLL_USEC);
        }
}

static int write_device_attr(const char *sysfs_root, const struct iov_pci_address *a,
                             const char *attribute, const char *value)
{
        _cleanup_free_ char *path = pci_device_sysfs_path(sysfs_root, a, attribute);
        if (!path)
                return -ENOMEM;
        int r = util_write_attr(path, value);
        /* The attribute vanishing with its device is the device vanishing. */
        return r == -ENOENT ? -ENODEV : r;
}

/* drivers/DRIVER/FILE or drivers_probe (driver NULL) with the address. */
static int write_bus_attr(const char *sysfs_root, const char *driver, const char *file,
                          const struct iov_pci_address *a)
{
        char name[IOV_PCI_ADDRESS_MAX];
        _cleanup_free_ char *path =
                driver ? util_path_join(sysfs_root, "bus/pci/drivers", driver, file, NULL)
                       : util_path_join(sysfs_root, "bus/pci", file, NULL);
        if (!path)
                return -ENOMEM;
        return util_write_attr(path, pci_address_format(a, name));
}

static int unbind(const char *sysfs_root, const struct iov_pci_address *a, const char *driver,
                  unsigned timeout_ms)
{
        int r = write_bus_attr(sysfs_root, driver, "unbind", a);
        if (r < 0 && r != -ENODEV)
                return r;
        return wait_for_driver(sysfs_root, a, NULL, timeout_ms);
}

static int read_override(const char *sysfs_root, const struct iov_pci_address *a, char **ret)
{
        _cleanup_free_ char *path = pci_device_sysfs_path(sysfs_root, a, "driver_override");
        char *value = NULL;
        if (!path)
                return -ENOMEM;
        int r = util_read_line(path, &value);
        if (r == -ENOENT) {
                *ret = NULL;
                return 0;
        }
        if (r < 0)
                return r;
        if (!*value || streq(value, "(null)")) {
                free(value);
                value = NULL;
        }
        *ret = value;
        return 0;
}

int iommu_device_binding(const char *sysfs_root, const struct iov_pci_address *a, char **ret_driver,
                         char **ret_override)
{
        _cleanup_free_ char *driver = NULL, *override = NULL;
        int r = iommu_device_driver(sysfs_root, a, &driver);
        if (r == 0)
                r = read_override(sysfs_root, a, &override);
        if (r < 0)
                return r == -ENODEV ? -ENOENT : r;
        *ret_driver = TAKE_PTR(driver);
        *ret_override = TAKE_PTR(override);
        return 0;
}

static int record_member(const char *sysfs_root, const struct iov_pci_address *a,
                         struct iov_bind_record *ret)
{
        struct iov_bind_record rec = {.address = *a};
        int r = iommu_device_driver(sysfs_root, a, &rec.original_driver);
        if (r == 0)
                r = read_override(sysfs_root, a, &rec.original_override);
        if (r < 0) {
                free(rec.original_driver);
                return r;
        }
        uint32_t class_code;
        rec.is_bridge = pci_device_read_class(sysfs_root, a, &class_code) == 0 &&
                        pci_class_is_pci_bridge(class_code);
        *ret = rec;
        return 0;
}

static int move_to_vfio(const char *sysfs_root, const struct iov_bind_record *rec,
                        unsigned timeout_ms)
{
        if (streq_ptr(rec->original_driver, VFIO_DRIVER))
                return 0;
        int r = write_device_attr(sysfs_root, &rec->address, "driver_override", VFIO_DRIVER);
        if (r == 0 && rec->original_driver)
                r = unbind(sysfs_root, &rec->address, rec->original_driver, timeout_ms);
        if (r == 0)
                r = write_bus_attr(sysfs_root, NULL, "drivers_probe", &rec->address);
        if (r == 0)
                r = wait_for_driver(sysfs_root, &rec->address, VFIO_DRIVER, timeout_ms);
        return r;
}

/* Wait until some driver has the device; its name in ret. */
static int wait_for_any_driver(const char *sysfs_root, const struct iov_pci_address *a,
                               unsigned timeout_ms, char **ret)
{
        uint64_t deadline = util_now_usec() + (uint64_t)timeout_ms * 1000;
        for (;;) {
                char *driver = NULL;
                int r = iommu_device_driver(sysfs_root, a, &driver);
                if (r < 0)
                        return r;
                if (driver) {
                        *ret = driver;
                        return 0;
                }
                if (util_now_usec() >= deadline)
                        return -ETIMEDOUT;
                util_sleep_usec(POLL_USEC);
        }
}

/* Reprobe; when the kernel picks another driver than the one the device had (it had been
 * bound by hand), take it from that one and bind the original explicitly. */
static int rebind_original(const char *sysfs_root, const struct iov_bind_record *rec,
                           unsigned timeout_ms)
{
        _cleanup_free_ char *probed = NULL;
        int r = write_bus_attr(sysfs_root, NULL, "drivers_probe", &rec->address);
        if (r == 0)
                r = wait_for_any_driver(sysfs_root, &rec->address, timeout_ms, &probed);
        if (r == 0 && streq(probed, rec->original_driver))
                return 0;
        if (r == 0)
                r = unbind(sysfs_root, &rec->address, probed, timeout_ms);
        if (r < 0 && r != -ETIMEDOUT)
                return r;
        r = write_bus_attr(sysfs_root, rec->original_driver, "bind", &rec->address);
        return r < 0 ? r
                     : wait_for_driver(sysfs_root, &rec->address, rec->original_driver, timeout_ms);
}

/* Give one member back. A member that is gone cannot be given back: -ENODEV. */
static int restore_member(const char *sysfs_root, const struct iov_bind_record *rec,
                          unsigned timeout_ms)
{
        _cleanup_free_ char *current = NULL;
        int r = iommu_device_driver(sysfs_root, &rec->address, &current);
        if (r < 0)
                return r;
        if (current && !streq_ptr(current, rec->original_driver)) {
                r = unbind(sysfs_root, &rec->address, current, timeout_ms);
                if (r < 0)
                        return r;
        }
        /* An empty write clears the override (sysfs-bus-pci). */
        r = write_device_attr(sysfs_root, &rec->address, "driver_override",
                              rec->original_override ? rec->original_override : "\n");
        if (r < 0 || !rec->original_driver || streq_ptr(current, rec->original_driver))
                return r;
        return rebind_original(sysfs_root, rec, timeout_ms);
}

int iommu_group_restore(const char *sysfs_root, const struct iov_bind_record *records, size_t n,
                        unsigned timeout_ms)
{
        int first = 0;
        /* Reverse order, and on through failures: give back as much as possible. */
        for (size_t i = n; i > 0; i--) {
                const struct iov_bind_record *rec = &records[i - 1];
                if (rec->is_bridge)
                        continue;
                int r = restore_member(sysfs_root, rec, timeout_ms);
                if (r < 0 && first == 0)
                        first = r;
        }
        return first;
}

static int record_group(const char *sysfs_root, const struct iov_iommu_group *g,
                        struct iov_bind_record **ret)
{
        struct iov_bind_record *records = calloc(g->n_devices, sizeof(*records));
        if (!records)
                return -ENOMEM;
        for (size_t i = 0; i < g->n_devices; i++) {
                int r = record_member(sysfs_root, &g->devices[i], &records[i]);
                if (r < 0) {
                        iommu_bind_records_free(records, i);
                        return r;
                }
        }
        *ret = records;
        return 0;
}

int iommu_group_bind_vfio(const char *sysfs_root, unsigned id, unsigned timeout_ms,
                          struct iov_bind_record **ret, size_t *ret_n)
{
        _cleanup_free_ char *vfio =
                util_path_join(sysfs_root, "bus/pci/drivers", VFIO_DRIVER, NULL);
        if (!vfio)
                return -ENOMEM;
        if (access(vfio, F_OK) < 0)
                return -ENOPKG; /* vfio-pci is not loaded */
        struct iov_iommu_group g;
        int r = iommu_group_read(sysfs_root, id, &g);
        if (r < 0)
                return r;
        size_t n = g.n_devices;
        struct iov_bind_record *records = NULL;
        r = n ? record_group(sysfs_root, &g, &records) : -ENOENT;
        iommu_group_clear(&g);
        if (r < 0)
                return r;

        for (size_t i = 0; i < n; i++) {
                if (records[i].is_bridge)
                        continue;
                r = move_to_vfio(sysfs_root, &records[i], timeout_ms);
                if (r < 0) {
                        /* Members up to and including this one; the rest were not touched. */
                        iommu_group_restore(sysfs_root, records, i + 1, timeout_ms);
                        iommu_bind_records_free(records, n);
                        return r;
                }
        }
        *ret = records;
        *ret_n = n;
        return 0;
}
