/* SPDX-License-Identifier: MIT */
/*
 * pci: sysfs attribute access below a device directory, paths, and function reset
 * (Documentation/ABI/testing/sysfs-bus-pci).
 */
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>

#include "pci/pci-internal.h"
#include "util/util.h"

ssize_t pci_attr_read_at(int dir_fd, const char *name, char *buf, size_t size)
{
        _cleanup_close_ int fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        ssize_t n;
        do
                n = read(fd, buf, size);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return -errno;
        if ((size_t)n >= size)
                return -EFBIG;
        while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
                n--;
        buf[n] = '\0';
        return n;
}

int pci_attr_read_u64_at(int dir_fd, const char *name, int base, uint64_t *ret)
{
        char buf[64];
        ssize_t n = pci_attr_read_at(dir_fd, name, buf, sizeof(buf));
        if (n < 0)
                return (int)n;
        const char *s = buf;
        if (base == 16 && (strncmp(s, "0x", 2) == 0 || strncmp(s, "0X", 2) == 0))
                s += 2;
        return util_parse_u64(s, base, ret);
}

int pci_attr_read_int_at(int dir_fd, const char *name, int *ret)
{
        char buf[32];
        ssize_t n = pci_attr_read_at(dir_fd, name, buf, sizeof(buf));
        if (n < 0)
                return (int)n;
        bool negative = buf[0] == '-';
        uint64_t v;
        int r = util_parse_u64(buf + negative, 10, &v);
        if (r < 0)
                return r;
        if (v > (uint64_t)INT32_MAX + negative)
                return -ERANGE;
        *ret = negative ? (int)-(int64_t)v : (int)v;
        return 0;
}

int pci_link_basename_at(int dir_fd, const char *name, char *buf, size_t size)
{
        char target[4096];
        ssize_t n = readlinkat(dir_fd, name, target, sizeof(target) - 1);
        if (n < 0)
                return -errno;
        target[n] = '\0';
        const char *base = strrchr(target, '/');
        base = base ? base + 1 : target;
        size_t len = strlen(base);
        if (len == 0 || len >= size)
                return -EINVAL;
        memcpy(buf, base, len + 1);
        return 0;
}

char *pci_device_sysfs_path(const char *sysfs_root, const struct iov_pci_address *address,
                            const char *attribute)
{
        char name[IOV_PCI_ADDRESS_MAX];
        pci_address_format(address, name);
        if (attribute)
                return util_path_join(sysfs_root, "bus/pci/devices", name, attribute, NULL);
        return util_path_join(sysfs_root, "bus/pci/devices", name, NULL);
}

int pci_device_reset(const char *sysfs_root, const struct iov_pci_address *address)
{
        _cleanup_free_ char *dir = pci_device_sysfs_path(sysfs_root, address, NULL);
        _cleanup_free_ char *path = pci_device_sysfs_path(sysfs_root, address, "reset");
        if (!dir || !path)
                return -ENOMEM;
        if (access(dir, F_OK) < 0)
                return errno == ENOENT ? -ENODEV : -errno;
        /* The kernel creates "reset" only when the device has a reset method
         * (pci_reset_function() would fail anyway). */
        if (access(path, F_OK) < 0)
                return errno == ENOENT ? -ENOTTY : -errno;
        return util_write_attr(path, "1");
}
