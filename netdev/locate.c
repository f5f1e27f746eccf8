/* SPDX-License-Identifier: MIT */
/*
 * locate: where the network settings of a VF live. The kernel keeps them in the PF's
 * driver, reached through the PF's interface (the one entry of the PF's net/ directory,
 * Documentation/ABI/testing/sysfs-class-net); the VF is known there by N of the PF's
 * virtfnN link that points to it (sysfs-bus-pci), which is also the index rtnetlink uses.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>

#include "netdev/netdev.h"
#include "util/util.h"

static int read_physfn(const char *sysfs_root, const struct iov_pci_address *vf,
                       struct iov_pci_address *ret)
{
        _cleanup_free_ char *dir = pci_device_sysfs_path(sysfs_root, vf, NULL);
        _cleanup_free_ char *link = pci_device_sysfs_path(sysfs_root, vf, "physfn");
        _cleanup_free_ char *name = NULL;
        if (!dir || !link)
                return -ENOMEM;
        if (access(dir, F_OK) < 0)
                return -ENOENT;
        int r = util_readlink_basename(link, &name);
        if (r == -ENOENT)
                return -EINVAL; /* a function without physfn is not a VF */
        return r < 0 ? r : pci_address_parse(name, ret);
}

/* The one interface in the PF's net/ directory; a PF with no net/ is no network device. */
static int read_ifname(const char *sysfs_root, const struct iov_pci_address *pf, char ret[IFNAMSIZ])
{
        _cleanup_free_ char *path = pci_device_sysfs_path(sysfs_root, pf, "net");
        if (!path)
                return -ENOMEM;
        DIR *dir = opendir(path);
        if (!dir)
                return errno == ENOENT ? -ENOTSUP : -errno;
        char name[IFNAMSIZ] = "";
        int r = 0;
        for (struct dirent *de; (de = readdir(dir));) {
                if (de->d_name[0] == '.')
                        continue;
                if (name[0] || strlen(de->d_name) >= IFNAMSIZ) {
                        r = name[0] ? -EMLINK : -ENAMETOOLONG;
                        break;
                }
                strcpy(name, de->d_name);
        }
        closedir(dir);
        if (r == 0 && !name[0])
                r = -ENOTSUP; /* net/ without an interface: the driver let it go */
        if (r == 0)
                memcpy(ret, name, IFNAMSIZ);
        return r;
}

static int find_vf_index(const char *sysfs_root, const struct iov_pci_address *pf,
                         const struct iov_pci_address *vf, uint32_t *ret)
{
        for (uint32_t n = 0; n < 65536; n++) { /* NumVFs is 16 bits, PCIe r5 §9.3.3.7 */
                char link[32];
                snprintf(link, sizeof(link), "virtfn%u", n);
                _cleanup_free_ char *path = pci_device_sysfs_path(sysfs_root, pf, link);
                _cleanup_free_ char *name = NULL;
                struct iov_pci_address a;
                if (!path)
                        return -ENOMEM;
                int r = util_readlink_basename(path, &name);
                if (r < 0)
                        return r; /* -ENOENT: past the last virtfn */
                if (pci_address_parse(name, &a) == 0 && pci_address_equal(&a, vf)) {
                        *ret = n;
                        return 0;
                }
        }
        return -ENOENT;
}

int netdev_vf_locate(const char *sysfs_root, const struct iov_pci_address *vf,
                     struct iov_netdev_vf_location *ret)
{
        struct iov_netdev_vf_location loc = {0};
        int r = read_physfn(sysfs_root, vf, &loc.pf);
        if (r >= 0)
                r = read_ifname(sysfs_root, &loc.pf, loc.ifname);
        if (r >= 0)
                r = find_vf_index(sysfs_root, &loc.pf, vf, &loc.index);
        if (r < 0)
                return r;
        *ret = loc;
        return 0;
}
