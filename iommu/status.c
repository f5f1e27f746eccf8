/* SPDX-License-Identifier: MIT */
/*
 * iommu: what the IOMMU hardware guarantees, read from sysfs (sysfs-class-iommu-*-iommu):
 * whether DMA remapping is active (units and groups exist) and whether interrupts are
 * remapped, which is what keeps a passed-through device's MSIs inside its VM.
 */
#include <dirent.h>
#include <limits.h>
#include <stdio.h>

#include "iommu/iommu.h"
#include "util/util.h"

/* VT-d spec §11.4.3, Extended Capability Register: bit 3 IR, interrupt remapping. */
#define VTD_ECAP_IR (1ull << 3)

/* One unit's answer. Intel: ECAP.IR. AMD: interrupt remapping is part of the base AMD
 * IOMMU architecture (the IntCtl and IntTabLen fields of every device table entry in the
 * AMD I/O Virtualization Technology (IOMMU) Specification), so a
 * readable unit (its Extended Feature Register in "features") has it. */
static enum iov_tristate unit_interrupt_remapping(const char *unit_dir)
{
        _cleanup_free_ char *ecap_path = util_path_join(unit_dir, "intel-iommu/ecap", NULL);
        _cleanup_free_ char *amd_path = util_path_join(unit_dir, "amd-iommu/features", NULL);
        _cleanup_free_ char *text = NULL;
        uint64_t v;
        if (!ecap_path || !amd_path)
                return IOV_UNKNOWN;
        if (util_read_line(ecap_path, &text) == 0)
                return util_parse_u64(text, 16, &v) < 0 ? IOV_UNKNOWN
                       : (v & VTD_ECAP_IR)              ? IOV_YES
                                                        : IOV_NO;
        if (util_read_line(amd_path, &text) == 0)
                return util_parse_u64(text, 16, &v) < 0 ? IOV_UNKNOWN : IOV_YES;
        return IOV_UNKNOWN;
}

/* Every unit must remap: one that does not is a hole whatever the others do. */
static enum iov_tristate combine(enum iov_tristate all, enum iov_tristate unit)
{
        if (all == IOV_NO || unit == IOV_NO)
                return IOV_NO;
        if (all == IOV_UNKNOWN || unit == IOV_UNKNOWN)
                return IOV_UNKNOWN;
        return IOV_YES;
}

static int read_units(const char *sysfs_root, unsigned *ret_n, enum iov_tristate *ret_ir)
{
        _cleanup_free_ char *dir = util_path_join(sysfs_root, "class/iommu", NULL);
        if (!dir)
                return -ENOMEM;
        unsigned n = 0;
        enum iov_tristate ir = IOV_YES;
        DIR *d = opendir(dir);
        if (!d && errno != ENOENT)
                return -errno;
        for (struct dirent *de; d && (de = readdir(d));) {
                if (de->d_name[0] == '.')
                        continue;
                _cleanup_free_ char *unit = util_path_join(dir, de->d_name, NULL);
                if (!unit) {
                        closedir(d);
                        return -ENOMEM;
                }
                ir = combine(ir, unit_interrupt_remapping(unit));
                n++;
        }
        if (d)
                closedir(d);
        *ret_n = n;
        /* No unit at all: nothing remaps interrupts. */
        *ret_ir = n ? ir : IOV_NO;
        return 0;
}

/* The numbered entries of kernel/iommu_groups, counting no further than max. */
static int count_groups(const char *sysfs_root, unsigned max, unsigned *ret)
{
        _cleanup_free_ char *dir = util_path_join(sysfs_root, "kernel/iommu_groups", NULL);
        if (!dir)
                return -ENOMEM;
        DIR *d = opendir(dir);
        if (!d) {
                if (errno != ENOENT)
                        return -errno;
                *ret = 0;
                return 0;
        }
        unsigned n = 0;
        for (struct dirent *de; n < max && (de = readdir(d));) {
                uint64_t id;
                if (util_parse_u64(de->d_name, 10, &id) == 0)
                        n++;
        }
        closedir(d);
        *ret = n;
        return 0;
}

/* A bool module parameter prints Y or N. */
static bool read_allow_unsafe(const char *sysfs_root)
{
        _cleanup_free_ char *path = util_path_join(
                sysfs_root, "module/vfio_iommu_type1/parameters/allow_unsafe_interrupts", NULL);
        _cleanup_free_ char *value = NULL;
        if (!path || util_read_line(path, &value) < 0)
                return false;
        return streq(value, "Y") || streq(value, "1");
}

static int status_read(const char *sysfs_root, unsigned max_groups, struct iov_iommu_status *ret)
{
        struct iov_iommu_status st = {0};
        unsigned units = 0;
        int r = read_units(sysfs_root, &units, &st.interrupt_remapping);
        if (r == 0)
                r = count_groups(sysfs_root, max_groups, &st.n_groups);
        if (r < 0)
                return r;
        st.enabled = units > 0 && st.n_groups > 0;
        _cleanup_free_ char *vfio = util_path_join(sysfs_root, "bus/pci/drivers/vfio-pci", NULL);
        if (!vfio)
                return -ENOMEM;
        st.vfio_pci_loaded = access(vfio, F_OK) == 0;
        st.allow_unsafe_interrupts = read_allow_unsafe(sysfs_root);
        *ret = st;
        return 0;
}

int iommu_status_read(const char *sysfs_root, struct iov_iommu_status *ret)
{
        return status_read(sysfs_root, UINT_MAX, ret);
}

/* Every allocation asks; a host with one group per VF has tens of thousands of entries in
 * kernel/iommu_groups, and "groups exist" needs only the first. */
int iommu_status_probe(const char *sysfs_root, struct iov_iommu_status *ret)
{
        return status_read(sysfs_root, 1, ret);
}
