/* SPDX-License-Identifier: MIT */
/*
 * pci: one function's sysfs attributes: driver, override, IOMMU group, NUMA node and the
 * SR-IOV topology (sriov_* on PFs, virtfnN and physfn links; sysfs-bus-pci ABI).
 */
#include <fcntl.h>
#include <stdio.h>

#include "pci/pci-internal.h"
#include "util/util.h"

static int read_optional_link(int dir_fd, const char *name, char **ret)
{
        char buf[256];
        int r = pci_link_basename_at(dir_fd, name, buf, sizeof(buf));
        if (r == -ENOENT) {
                *ret = NULL;
                return 0;
        }
        if (r < 0)
                return r;
        *ret = strdup(buf);
        return *ret ? 0 : -ENOMEM;
}

/* "(null)" is how the kernel prints an unset override. */
static int read_override(int dir_fd, char **ret)
{
        char buf[256];
        ssize_t n = pci_attr_read_at(dir_fd, "driver_override", buf, sizeof(buf));
        if (n == -ENOENT || (n >= 0 && (n == 0 || streq(buf, "(null)")))) {
                *ret = NULL;
                return 0;
        }
        if (n < 0)
                return (int)n;
        *ret = strdup(buf);
        return *ret ? 0 : -ENOMEM;
}

static int read_group(int dir_fd, int *ret)
{
        char buf[32];
        uint64_t id;
        int r = pci_link_basename_at(dir_fd, "iommu_group", buf, sizeof(buf));
        if (r == -ENOENT) {
                *ret = -1;
                return 0;
        }
        if (r == 0)
                r = util_parse_u64(buf, 10, &id);
        if (r == 0 && id > INT32_MAX)
                r = -ERANGE;
        if (r == 0)
                *ret = (int)id;
        return r;
}

static int read_vfs(int dir_fd, struct iov_pci_device *d)
{
        size_t allocated = 0;
        for (unsigned n = 0;; n++) {
                char link[32], buf[64];
                snprintf(link, sizeof(link), "virtfn%u", n);
                int r = pci_link_basename_at(dir_fd, link, buf, sizeof(buf));
                if (r == -ENOENT)
                        return 0;
                if (r < 0)
                        return r;
                if (d->n_vfs == allocated) {
                        allocated = allocated ? allocated * 2 : 8;
                        struct iov_pci_address *v = realloc(d->vfs, allocated * sizeof(*v));
                        if (!v)
                                return -ENOMEM;
                        d->vfs = v;
                }
                r = pci_address_parse(buf, &d->vfs[d->n_vfs]);
                if (r < 0)
                        return r;
                d->n_vfs++;
        }
}

/* The attributes after sriov_totalvfs came in later kernels (offset, stride and VF
 * device in 4.x); a missing one reads as its default instead of failing the scan. */
static int read_sriov_details(int dir_fd, uint64_t v[5])
{
        static const struct {
                const char *name;
                int base;
                uint64_t fallback;
        } attrs[] = {
                {"sriov_numvfs", 10, 0},
                {"sriov_offset", 10, 0},
                {"sriov_stride", 10, 0},
                {"sriov_vf_device", 16, 0},
                {"sriov_drivers_autoprobe", 10, 1}, /* the kernel's default */
        };
        for (size_t i = 0; i < ARRAY_SIZE(attrs); i++) {
                int r = pci_attr_read_u64_at(dir_fd, attrs[i].name, attrs[i].base, &v[i]);
                if (r == -ENOENT)
                        v[i] = attrs[i].fallback;
                else if (r < 0)
                        return r;
        }
        return 0;
}

/* A PF has sriov_totalvfs (PCIe r5 §9.3.3.6 TotalVFs, as the kernel exports it). */
static int read_sriov(int dir_fd, struct iov_pci_device *d)
{
        uint64_t total, v[5];
        int r = pci_attr_read_u64_at(dir_fd, "sriov_totalvfs", 10, &total);
        if (r == -ENOENT)
                return 0;
        if (r == 0)
                r = read_sriov_details(dir_fd, v);
        if (r < 0)
                return r;
        d->is_pf = true;
        d->total_vfs = (unsigned)total;
        d->num_vfs = (unsigned)v[0];
        d->vf_offset = (unsigned)v[1];
        d->vf_stride = (unsigned)v[2];
        d->vf_device_id = (uint16_t)v[3];
        d->drivers_autoprobe = v[4] != 0;
        return read_vfs(dir_fd, d);
}

/* The attributes one by one: for trees without a uevent file. */
static int read_identity_attributes(int dir_fd, struct iov_pci_device *d)
{
        uint64_t v[5] = {0};
        static const char *const names[] = {"subsystem_vendor", "subsystem_device", "class",
                                            "vendor", "device"};
        for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
                int r = pci_attr_read_u64_at(dir_fd, names[i], 16, &v[i]);
                /* Old kernels and some bridges lack subsystem ids: 0 means "none". */
                if (r < 0 && !(r == -ENOENT && i < 2))
                        return r;
        }
        d->subsystem_vendor_id = (uint16_t)v[0];
        d->subsystem_device_id = (uint16_t)v[1];
        d->class_code = (uint32_t)v[2] & 0xffffff;
        d->vendor_id = (uint16_t)v[3];
        d->device_id = (uint16_t)v[4];
        return read_optional_link(dir_fd, "driver", &d->driver);
}

static bool parse_id_pair(const char *s, uint16_t *ret_a, uint16_t *ret_b)
{
        unsigned a, b;
        int end = 0;
        if (sscanf(s, "%4x:%4x%n", &a, &b, &end) != 2 || s[end] != '\0')
                return false;
        *ret_a = (uint16_t)a;
        *ret_b = (uint16_t)b;
        return true;
}

/* One line of uevent; returns a bit for each identity field it supplied. */
static unsigned parse_uevent_line(const char *line, struct iov_pci_device *d, char **driver)
{
        uint64_t v;
        if (strncmp(line, "PCI_ID=", 7) == 0)
                return parse_id_pair(line + 7, &d->vendor_id, &d->device_id) ? 1u : 0u;
        if (strncmp(line, "PCI_SUBSYS_ID=", 14) == 0)
                return parse_id_pair(line + 14, &d->subsystem_vendor_id, &d->subsystem_device_id)
                               ? 2u
                               : 0u;
        if (strncmp(line, "PCI_CLASS=", 10) == 0 && util_parse_u64(line + 10, 16, &v) == 0 &&
            v <= 0xffffff) {
                d->class_code = (uint32_t)v;
                return 4u;
        }
        if (strncmp(line, "DRIVER=", 7) == 0 && line[7] && !*driver)
                *driver = strdup(line + 7);
        return 0;
}

/* The kernel's uevent attribute for a PCI function holds identity, class, subsystem and
 * the bound driver (pci_uevent() in drivers/pci/pci-driver.c, DRIVER= from the driver
 * core) and costs one read instead of five reads and a readlink. 1 when it had all of
 * them, 0 when the caller has to fall back to the single attributes. */
static int read_uevent(int dir_fd, struct iov_pci_device *d)
{
        char buf[1024];
        ssize_t n = pci_attr_read_at(dir_fd, "uevent", buf, sizeof(buf));
        if (n == -ENOENT || n == -EFBIG)
                return 0;
        if (n < 0)
                return (int)n;
        unsigned seen = 0;
        char *driver = NULL;
        for (char *save = NULL, *line = strtok_r(buf, "\n", &save); line;
             line = strtok_r(NULL, "\n", &save))
                seen |= parse_uevent_line(line, d, &driver);
        if (seen != 7u) {
                free(driver);
                return 0;
        }
        d->driver = driver;
        return 1;
}

static int read_identity(int dir_fd, struct iov_pci_device *d)
{
        int r = read_uevent(dir_fd, d);
        return r != 0 ? (r < 0 ? r : 0) : read_identity_attributes(dir_fd, d);
}

static int read_topology(int dir_fd, struct iov_pci_device *d)
{
        char buf[64];
        /* A VF is never a PF itself (PCIe r5 §9.1), so the physfn test saves a probe. */
        int r = pci_link_basename_at(dir_fd, "physfn", buf, sizeof(buf));
        if (r == 0) {
                d->is_vf = true;
                return pci_address_parse(buf, &d->physfn);
        }
        if (r != -ENOENT)
                return r;
        return read_sriov(dir_fd, d);
}

int pci_device_read_at(int dir_fd, const struct iov_pci_address *address,
                       struct iov_pci_device *ret)
{
        struct iov_pci_device d = {.address = *address, .numa_node = -1};
        pci_address_format(address, d.name);
        int r = read_identity(dir_fd, &d);
        if (r == 0)
                r = read_override(dir_fd, &d.driver_override);
        if (r == 0)
                r = read_group(dir_fd, &d.iommu_group);
        if (r == 0) {
                r = pci_attr_read_int_at(dir_fd, "numa_node", &d.numa_node);
                if (r == -ENOENT) /* no NUMA support in the kernel */
                        r = 0;
        }
        if (r == 0)
                r = read_topology(dir_fd, &d);
        if (r == 0)
                r = pci_names_lookup(d.vendor_id, d.device_id, &d.vendor_name, &d.device_name);
        if (r < 0) {
                pci_device_clear(&d);
                return r;
        }
        *ret = d;
        return 0;
}

int pci_device_read(const char *sysfs_root, const struct iov_pci_address *address,
                    struct iov_pci_device *ret)
{
        _cleanup_free_ char *dir = pci_device_sysfs_path(sysfs_root, address, NULL);
        if (!dir)
                return -ENOMEM;
        _cleanup_close_ int fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        int r = pci_device_read_at(fd, address, ret);
        /* Attributes vanishing under us mean the device went away mid-read. */
        return r == -ENOENT && faccessat(fd, ".", F_OK, 0) < 0 ? -ENOENT : r;
}

void pci_device_clear(struct iov_pci_device *device)
{
        if (!device)
                return;
        free(device->vendor_name);
        free(device->device_name);
        free(device->driver);
        free(device->driver_override);
        free(device->vfs);
        *device = (struct iov_pci_device){.iommu_group = -1, .numa_node = -1};
}
