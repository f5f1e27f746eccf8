/* SPDX-License-Identifier: MIT */
/*
 * BARs of a passed-through function. The PCI core gives each one a naturally aligned
 * address in the guest's MMIO (or I/O) window and keeps the bus registration in step with
 * the guest's BAR writes and decode bits; every access that reaches the bus is forwarded
 * to the device with pread/pwrite at the BAR's region offset (vfio.rst: "VFIO device
 * regions"). The parts of memory BARs that vfio-pci lets us mmap (the whole region, or
 * the areas of its sparse-mmap capability) are also mapped into the guest as KVM memory
 * slots, so the guest reaches the device's registers without an exit; the pages holding
 * the MSI-X table and PBA are left out (PCI r3.0 §6.8.2: the table is the VMM's), so on
 * a function with doorbells in the same BAR (NVMe) only those pages trap.
 */
#include <linux/kvm.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include "util/util.h"
#include "vmm/vfio/vfio.h"

#define PAGE_SIZE_4K 4096ULL
/* KVM memory slots for BAR pieces start here; vmm/kvm.c uses 0..IOV_MEM_MAX_REGIONS-1. */
#define VFIO_FIRST_KVM_SLOT 16

static uint32_t next_kvm_slot = VFIO_FIRST_KVM_SLOT; /* one VM per process */

static void vfio_bar_access(void *opaque, uint64_t offset, uint8_t *data, uint32_t len,
                            bool is_write)
{
        struct iov_vfio_bar_ref *ref = opaque;
        struct iov_vfio_device *d = ref->device;
        if (d->has_msix && ref->index == d->msix_bar &&
            vmm_pci_msix_bar_access(&d->msix, offset, data, len, is_write))
                return;
        const struct iov_vfio_region *region = &d->regions[ref->index];
        ssize_t n = -1;
        /* The BAR the guest sees may be larger than the region (rounded up to a page). */
        if (offset < region->size && len <= region->size - offset) {
                off_t at = (off_t)(region->offset + offset);
                n = is_write ? pwrite(d->fd, data, len, at) : pread(d->fd, data, len, at);
        }
        if (n != (ssize_t)len && !is_write)
                memset(data, 0xff, len);
}

static uint64_t round_up_power_of_two(uint64_t v)
{
        uint64_t p = 1;
        while (p < v && p)
                p <<= 1;
        return p;
}

/* Type and flags from the device's own BAR register (PCI r3.0 §6.2.5.1). */
static enum iov_pci_bar_type bar_type(uint32_t reg, bool *ret_prefetchable)
{
        *ret_prefetchable = !(reg & 1) && (reg & 8);
        if (reg & 1)
                return IOV_PCI_BAR_IO;
        return (reg & 6) == 4 ? IOV_PCI_BAR_MEM64 : IOV_PCI_BAR_MEM32;
}

int vfio_bars_declare(struct iov_vfio_device *d, const uint8_t *phys)
{
        for (unsigned i = 0; i < IOV_PCI_NUM_BARS; i++) {
                const struct iov_vfio_region *region = &d->regions[i];
                if (region->size == 0)
                        continue;
                const uint8_t *r8 = &phys[IOV_PCI_BAR0 + 4 * i];
                uint32_t reg = (uint32_t)r8[0] | (uint32_t)r8[1] << 8 | (uint32_t)r8[2] << 16 |
                               (uint32_t)r8[3] << 24;
                bool prefetchable;
                enum iov_pci_bar_type type = bar_type(reg, &prefetchable);
                uint64_t size = round_up_power_of_two(region->size);
                if (type != IOV_PCI_BAR_IO && size < PAGE_SIZE_4K)
                        size = PAGE_SIZE_4K; /* KVM slots and traps work in pages */
                if (type == IOV_PCI_BAR_IO && size < 16)
                        size = 16;
                d->bar_refs[i] = (struct iov_vfio_bar_ref){.device = d, .index = i};
                int r = vmm_pci_device_set_bar(&d->pci, i, type, size, prefetchable,
                                               vfio_bar_access, &d->bar_refs[i]);
                if (r < 0) {
                        log_error("%s: BAR%u (%llu bytes) cannot be given to the guest", d->name, i,
                                  (unsigned long long)region->size);
                        return r;
                }
                if (type == IOV_PCI_BAR_MEM64)
                        i++;
        }
        return 0;
}

/* Cut the page-aligned holes out of area; up to max pieces in out, returns how many. */
unsigned vfio_area_split(struct iov_vfio_area area, const struct iov_vfio_area *holes,
                         unsigned n_holes, struct iov_vfio_area *out, unsigned max)
{
        unsigned n = 0;
        if (max == 0 || area.size == 0)
                return 0;
        out[n++] = area;
        for (unsigned h = 0; h < n_holes; h++) {
                uint64_t start = holes[h].offset & ~(PAGE_SIZE_4K - 1);
                uint64_t end =
                        (holes[h].offset + holes[h].size + PAGE_SIZE_4K - 1) & ~(PAGE_SIZE_4K - 1);
                for (unsigned i = 0; i < n; i++) {
                        struct iov_vfio_area a = out[i];
                        uint64_t a_end = a.offset + a.size;
                        if (holes[h].size == 0 || end <= a.offset || start >= a_end)
                                continue;
                        struct iov_vfio_area lo = {a.offset,
                                                   start > a.offset ? start - a.offset : 0};
                        struct iov_vfio_area hi = {end, a_end > end ? a_end - end : 0};
                        out[i] = lo.size ? lo : hi;
                        if (lo.size && hi.size && n < max)
                                out[n++] = hi;
                        if (!lo.size && !hi.size)
                                out[i--] = out[--n];
                }
        }
        return n;
}

static int bars_map_piece(struct iov_vfio_device *d, unsigned bar, struct iov_vfio_area piece)
{
        const struct iov_vfio_region *region = &d->regions[bar];
        if (d->n_maps == IOV_VFIO_MAX_MAPS || piece.size == 0 || piece.offset % PAGE_SIZE_4K ||
            piece.size % PAGE_SIZE_4K)
                return 0; /* stays trapped: slower, still correct */
        void *p = mmap(NULL, piece.size, PROT_READ | PROT_WRITE, MAP_SHARED, d->fd,
                       (off_t)(region->offset + piece.offset));
        if (p == MAP_FAILED) {
                log_debug("%s: BAR%u +0x%llx not mmapped (%m): trapped", d->name, bar,
                          (unsigned long long)piece.offset);
                return 0;
        }
        d->maps[d->n_maps++] = (struct iov_vfio_map){
                .bar = bar,
                .bar_offset = piece.offset,
                .size = piece.size,
                .host = p,
                .kvm_slot = next_kvm_slot++,
        };
        return 0;
}

int vfio_bars_map(struct iov_vfio_device *d)
{
        for (unsigned i = 0; i < IOV_PCI_NUM_BARS; i++) {
                const struct iov_vfio_region *region = &d->regions[i];
                enum iov_pci_bar_type type = d->pci.bars[i].type;
                if ((type != IOV_PCI_BAR_MEM32 && type != IOV_PCI_BAR_MEM64) ||
                    !(region->flags & VFIO_REGION_INFO_FLAG_MMAP))
                        continue;
                struct iov_vfio_area holes[2] = {0};
                if (d->has_msix && d->msix_bar == i) {
                        holes[0] = (struct iov_vfio_area){d->msix_table_offset,
                                                          d->msix_vectors * 16ULL};
                        holes[1] = (struct iov_vfio_area){d->msix_pba_offset,
                                                          ((d->msix_vectors + 63) / 64) * 8ULL};
                }
                for (unsigned a = 0; a < region->n_areas; a++) {
                        struct iov_vfio_area pieces[8];
                        unsigned n = vfio_area_split(region->areas[a], holes, 2, pieces, 8);
                        for (unsigned k = 0; k < n; k++)
                                bars_map_piece(d, i, pieces[k]);
                }
        }
        return 0;
}

static int bars_set_slot(struct iov_vfio_device *d, const struct iov_vfio_map *m, uint64_t gpa,
                         bool present)
{
        struct kvm_userspace_memory_region slot = {
                .slot = m->kvm_slot,
                .guest_phys_addr = gpa,
                .memory_size = present ? m->size : 0, /* 0 deletes the slot (api.rst) */
                .userspace_addr = (uint64_t)(uintptr_t)m->host,
        };
        if (ioctl(vmm_vm_fd(d->vm), KVM_SET_USER_MEMORY_REGION, &slot) < 0)
                return -errno;
        return 0;
}

void vfio_bars_sync(struct iov_vfio_device *d)
{
        pthread_mutex_lock(&d->pci.lock);
        for (unsigned i = 0; i < d->n_maps; i++) {
                struct iov_vfio_map *m = &d->maps[i];
                const struct iov_pci_bar *bar = &d->pci.bars[m->bar];
                uint64_t gpa = bar->mapped_addr + m->bar_offset;
                if (m->in_guest && (!bar->mapped || gpa != m->gpa)) {
                        (void)bars_set_slot(d, m, m->gpa, false);
                        m->in_guest = false;
                }
                if (bar->mapped && !m->in_guest && bars_set_slot(d, m, gpa, true) >= 0) {
                        m->in_guest = true;
                        m->gpa = gpa;
                }
        }
        pthread_mutex_unlock(&d->pci.lock);
}

void vfio_bars_unmap(struct iov_vfio_device *d)
{
        for (unsigned i = 0; i < d->n_maps; i++) {
                struct iov_vfio_map *m = &d->maps[i];
                if (m->in_guest)
                        (void)bars_set_slot(d, m, m->gpa, false);
                munmap(m->host, m->size);
        }
        d->n_maps = 0;
}
