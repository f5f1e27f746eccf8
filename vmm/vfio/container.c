/* SPDX-License-Identifier: MIT */
/*
 * The IOMMU side of VFIO through the container/group interface (the Debian 6.1 and 6.12
 * kernels have no iommufd), in the order Documentation/driver-api/vfio.rst gives:
 * open /dev/vfio/vfio (or take the descriptor iovd opened: the jailed VMM has no /dev),
 * check VFIO_API_VERSION and the type1v2 extension, open the group,
 * check that it is viable, add it to the container, set the IOMMU type (with the first
 * group), map guest RAM, then ask the group for the device fd.
 *
 * Guest RAM is mapped with IOVA = guest physical address, so the device's DMA addresses
 * are the guest's; each RAM region must lie in a usable IOVA range (the kernel reports
 * them in VFIO_IOMMU_GET_INFO's capability chain: the MSI window at 0xfee00000 and other
 * reserved regions are outside them). Guest RAM never overlaps them here (it stops at
 * 3 GiB and resumes at 4 GiB); a kernel that says otherwise fails the start.
 */
#include <fcntl.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include "util/util.h"
#include "vmm/vfio/vfio.h"

#define VFIO_MAX_GROUPS      8
#define VFIO_MAX_IOVA_RANGES 16

struct iov_vfio_group {
        unsigned id;
        int fd;
};

struct iov_vfio_iommu {
        const struct iov_guest_memory *mem;
        int container_fd;
        struct iov_vfio_group groups[VFIO_MAX_GROUPS];
        unsigned n_groups;
        bool ram_mapped;
        struct vfio_iova_range ranges[VFIO_MAX_IOVA_RANGES];
        unsigned n_ranges;
};

int vfio_iommu_open(const struct iov_guest_memory *mem, const char *node,
                    struct iov_vfio_iommu **ret, char *error, size_t error_size)
{
        _cleanup_close_ int fd = -1;
        int r = util_open_inherited(node ? node : "/dev/vfio/vfio", O_RDWR, &fd);
        if (r < 0) {
                snprintf(error, error_size, "vfio: cannot open %s: %s (load vfio-pci)",
                         node ? node : "/dev/vfio/vfio", strerror(-r));
                return r;
        }
        int version = ioctl(fd, VFIO_GET_API_VERSION);
        if (version != VFIO_API_VERSION) {
                snprintf(error, error_size, "vfio: API version %d, iovd-vmm needs %d", version,
                         VFIO_API_VERSION);
                return -EPROTO;
        }
        if (ioctl(fd, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU) <= 0) {
                snprintf(error, error_size,
                         "vfio: no type1v2 IOMMU (load vfio_iommu_type1; is an IOMMU on?)");
                return -EOPNOTSUPP;
        }
        struct iov_vfio_iommu *iommu = calloc(1, sizeof(*iommu));
        if (!iommu)
                return -ENOMEM;
        iommu->mem = mem;
        iommu->container_fd = TAKE_FD(fd);
        *ret = iommu;
        return 0;
}

bool vfio_iova_usable(const struct vfio_iova_range *ranges, unsigned n, uint64_t iova,
                      uint64_t size)
{
        if (n == 0)
                return true;
        uint64_t last = iova + size - 1;
        for (unsigned i = 0; i < n; i++)
                if (iova >= ranges[i].start && last <= ranges[i].end && last >= iova)
                        return true;
        return false;
}

/* The usable IOVA ranges: VFIO_IOMMU_GET_INFO, grown to the size the kernel asks for,
 * then its capability chain (offsets from the start of the info). */
static int iommu_read_ranges(struct iov_vfio_iommu *iommu)
{
        struct vfio_iommu_type1_info probe = {.argsz = sizeof(probe)};
        if (ioctl(iommu->container_fd, VFIO_IOMMU_GET_INFO, &probe) < 0)
                return -errno;
        if (!(probe.flags & VFIO_IOMMU_INFO_CAPS) || probe.argsz <= sizeof(probe))
                return 0;
        _cleanup_free_ uint8_t *buf = calloc(1, probe.argsz);
        if (!buf)
                return -ENOMEM;
        struct vfio_iommu_type1_info *info = (struct vfio_iommu_type1_info *)buf;
        info->argsz = probe.argsz;
        if (ioctl(iommu->container_fd, VFIO_IOMMU_GET_INFO, info) < 0)
                return -errno;
        for (uint32_t off = info->cap_offset;
             off && off + sizeof(struct vfio_info_cap_header) <= probe.argsz;) {
                const struct vfio_info_cap_header *h = (const void *)(buf + off);
                if (h->id == VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE) {
                        const struct vfio_iommu_type1_info_cap_iova_range *cap = (const void *)h;
                        unsigned n = cap->nr_iovas;
                        if (n > VFIO_MAX_IOVA_RANGES ||
                            off + sizeof(*cap) + n * sizeof(cap->iova_ranges[0]) > probe.argsz)
                                return -EOVERFLOW;
                        memcpy(iommu->ranges, cap->iova_ranges, n * sizeof(cap->iova_ranges[0]));
                        iommu->n_ranges = n;
                }
                if (h->next <= off)
                        break; /* the chain only goes forward */
                off = h->next;
        }
        return 0;
}

/* Pinning faulted every page of the region into this process's page tables. The pins, not
 * the page table entries, keep the pages (a memfd's, MAP_SHARED: madvise(2) says later
 * accesses find the same page again), so drop the entries: what the guest does not touch
 * stays unmapped here, as without VFIO. A killed VMM unmaps its memory (exit_mmap) before
 * it releases any file, its VM-to-VM link ends too: in the lab (Linux 6.1 under TCG)
 * exit_mmap of a 224 MiB guest with every page mapped took 2.1 s at load 15, which its
 * link clients waited for before they saw the hang-up. Not fatal: only the exit is slower. */
static void iommu_unmap_ptes(const struct iov_memory_region *region)
{
        (void)madvise(region->host, region->size, MADV_DONTNEED);
}

static int iommu_map_ram(struct iov_vfio_iommu *iommu, char *error, size_t error_size)
{
        for (unsigned i = 0; i < iommu->mem->n_regions; i++) {
                const struct iov_memory_region *region = &iommu->mem->regions[i];
                if (!vfio_iova_usable(iommu->ranges, iommu->n_ranges, region->gpa, region->size)) {
                        snprintf(error, error_size,
                                 "vfio: guest RAM 0x%llx+0x%llx overlaps an IOMMU reserved region",
                                 (unsigned long long)region->gpa, (unsigned long long)region->size);
                        return -ERANGE;
                }
                struct vfio_iommu_type1_dma_map map = {
                        .argsz = sizeof(map),
                        .flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
                        .vaddr = (uint64_t)(uintptr_t)region->host,
                        .iova = region->gpa,
                        .size = region->size,
                };
                if (ioctl(iommu->container_fd, VFIO_IOMMU_MAP_DMA, &map) < 0) {
                        int r = -errno;
                        snprintf(error, error_size,
                                 "vfio: VFIO_IOMMU_MAP_DMA of guest RAM 0x%llx+0x%llx: %s%s",
                                 (unsigned long long)region->gpa, (unsigned long long)region->size,
                                 strerror(-r), r == -ENOMEM ? " (RLIMIT_MEMLOCK too low?)" : "");
                        return r;
                }
                iommu_unmap_ptes(region);
        }
        iommu->ram_mapped = true;
        return 0;
}

/* Open group, check it, put it in the container; the first one also sets the IOMMU type
 * (only possible once a group is in: vfio.rst) and maps guest RAM. */
static int iommu_add_group(struct iov_vfio_iommu *iommu, unsigned id, const char *node, int *ret_fd,
                           char *error, size_t error_size)
{
        for (unsigned i = 0; i < iommu->n_groups; i++)
                if (iommu->groups[i].id == id) {
                        *ret_fd = iommu->groups[i].fd;
                        return 0;
                }
        if (iommu->n_groups == VFIO_MAX_GROUPS)
                return -ENOSPC;
        char path[64];
        snprintf(path, sizeof(path), "/dev/vfio/%u", id);
        _cleanup_close_ int fd = -1;
        int r = util_open_inherited(node && *node ? node : path, O_RDWR, &fd);
        if (r < 0) {
                snprintf(error, error_size, "vfio: cannot open %s: %s%s",
                         node && *node ? node : path, strerror(-r),
                         r == -EBUSY ? " (another process holds the group)" : "");
                return r;
        }
        struct vfio_group_status status = {.argsz = sizeof(status)};
        if (ioctl(fd, VFIO_GROUP_GET_STATUS, &status) < 0)
                return -errno;
        if (!(status.flags & VFIO_GROUP_FLAGS_VIABLE)) {
                snprintf(error, error_size,
                         "vfio: IOMMU group %u is not viable: every device in it must be bound "
                         "to vfio-pci or have no driver",
                         id);
                return -EPERM;
        }
        if (ioctl(fd, VFIO_GROUP_SET_CONTAINER, &iommu->container_fd) < 0)
                return -errno;
        iommu->groups[iommu->n_groups++] = (struct iov_vfio_group){.id = id, .fd = fd};
        *ret_fd = TAKE_FD(fd);
        return 0;
}

static int iommu_setup(struct iov_vfio_iommu *iommu, char *error, size_t error_size)
{
        if (iommu->ram_mapped)
                return 0;
        if (ioctl(iommu->container_fd, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU) < 0) {
                int r = -errno;
                snprintf(error, error_size, "vfio: VFIO_SET_IOMMU type1v2: %s", strerror(-r));
                return r;
        }
        int r = iommu_read_ranges(iommu);
        if (r < 0) {
                snprintf(error, error_size, "vfio: VFIO_IOMMU_GET_INFO: %s", strerror(-r));
                return r;
        }
        return iommu_map_ram(iommu, error, error_size);
}

int vfio_iommu_open_device(struct iov_vfio_iommu *iommu, unsigned group, const char *node,
                           const char *bdf, int *ret_fd, char *error, size_t error_size)
{
        int group_fd = -1;
        int r = iommu_add_group(iommu, group, node, &group_fd, error, error_size);
        if (r >= 0)
                r = iommu_setup(iommu, error, error_size);
        if (r < 0) {
                if (!*error)
                        snprintf(error, error_size, "vfio: IOMMU group %u: %s", group,
                                 strerror(-r));
                return r;
        }
        int fd = ioctl(group_fd, VFIO_GROUP_GET_DEVICE_FD, bdf);
        if (fd < 0) {
                r = -errno;
                snprintf(error, error_size, "vfio: VFIO_GROUP_GET_DEVICE_FD %s: %s", bdf,
                         strerror(-r));
                return r;
        }
        *ret_fd = fd;
        return 0;
}

void vfio_iommu_free(struct iov_vfio_iommu *iommu)
{
        if (!iommu)
                return;
        for (unsigned i = 0; iommu->ram_mapped && i < iommu->mem->n_regions; i++) {
                struct vfio_iommu_type1_dma_unmap unmap = {
                        .argsz = sizeof(unmap),
                        .iova = iommu->mem->regions[i].gpa,
                        .size = iommu->mem->regions[i].size,
                };
                (void)ioctl(iommu->container_fd, VFIO_IOMMU_UNMAP_DMA, &unmap);
        }
        /* Closing a group's last fd takes it out of the container. */
        for (unsigned i = 0; i < iommu->n_groups; i++)
                close(iommu->groups[i].fd);
        close(iommu->container_fd);
        free(iommu);
}
