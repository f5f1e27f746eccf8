/* SPDX-License-Identifier: MIT */
/* Guest memory bounds checks and bus dispatch (no /dev/kvm needed). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "util/util.h"
#include "vmm/bus.h"
#include "vmm/memory.h"

Test(vmm_memory, ptr_checks_every_byte)
{
        struct iov_guest_memory *mem = NULL;
        int r = vmm_memory_new(16 << 20, &mem);
        cr_assert_eq(r, 0, "vmm_memory_new: %d", r);

        cr_expect_not_null(vmm_memory_ptr(mem, 0, 16 << 20), "whole RAM must be addressable");
        cr_expect_not_null(vmm_memory_ptr(mem, (16 << 20) - 1, 1), "last byte");
        cr_expect_null(vmm_memory_ptr(mem, (16 << 20) - 1, 2), "range crossing RAM end");
        cr_expect_null(vmm_memory_ptr(mem, 16 << 20, 1), "first byte after RAM");
        cr_expect_null(vmm_memory_ptr(mem, UINT64_MAX, 2), "wrapping range");
        cr_expect_null(vmm_memory_ptr(mem, 4096, UINT64_MAX), "huge length");
        cr_expect_null(vmm_memory_ptr(mem, IOV_MEM_HOLE_START, 4), "hole");

        uint32_t v = 0x12345678, back = 0;
        r = vmm_memory_write(mem, 0x1000, &v, 4);
        cr_expect_eq(r, 0, "write gave %d", r);
        r = vmm_memory_read(mem, 0x1000, &back, 4);
        cr_expect_eq(r, 0, "read gave %d", r);
        cr_expect_eq(back, v, "read back 0x%x", back);
        r = vmm_memory_write(mem, (16 << 20) - 2, &v, 4);
        cr_expect_eq(r, -EFAULT, "write across the end gave %d", r);
        vmm_memory_free(mem);
}

/* The VmFlags line of the /proc/self/smaps entry that starts at addr, or "" if none. */
static void smaps_flags_of(const void *addr, char *out, size_t size)
{
        char want[32], line[512];
        bool in = false;
        snprintf(want, sizeof(want), "%lx-", (unsigned long)addr);
        out[0] = '\0';
        FILE *f = fopen("/proc/self/smaps", "r");
        if (!f)
                return;
        while (fgets(line, sizeof(line), f)) {
                if (strchr(line, '-') && strchr(line, '-') < strchr(line, ' '))
                        in = strncmp(line, want, strlen(want)) == 0;
                else if (in && strncmp(line, "VmFlags:", 8) == 0)
                        snprintf(out, size, "%s", line);
        }
        fclose(f);
}

/* Guest RAM asks for transparent huge pages (VM_HUGEPAGE: "hg" in smaps, proc(5)), which
 * the kernel grants shared memory where shmem_enabled allows: 4 KiB pages cost a nested
 * page fault per page the guest touches first. */
Test(vmm_memory, ram_asks_for_huge_pages)
{
        struct iov_guest_memory *mem = NULL;
        int r = vmm_memory_new(16 << 20, &mem);
        cr_assert_eq(r, 0, "vmm_memory_new: %d", r);
        char flags[512];
        smaps_flags_of(mem->host, flags, sizeof(flags));
        cr_assert_neq(flags[0], '\0', "no smaps entry for guest RAM at %p", mem->host);
        cr_expect_not_null(strstr(flags, " hg"), "guest RAM without MADV_HUGEPAGE: %s", flags);
        vmm_memory_free(mem);
}

Test(vmm_memory, split_around_hole)
{
        struct iov_guest_memory *mem = NULL;
        uint64_t size = IOV_MEM_HOLE_START + (8 << 20);
        int r = vmm_memory_new(size, &mem);
        cr_assert_eq(r, 0, "vmm_memory_new: %d", r);
        cr_expect_eq(mem->n_regions, 2u, "regions: %u", mem->n_regions);
        cr_expect_eq(vmm_memory_low_end(mem), IOV_MEM_HOLE_START, "low end 0x%llx",
                     (unsigned long long)vmm_memory_low_end(mem));
        cr_expect_null(vmm_memory_ptr(mem, IOV_MEM_HOLE_START - 4, 8), "range into the hole");
        cr_expect_not_null(vmm_memory_ptr(mem, IOV_MEM_HOLE_END, 8 << 20), "high RAM");
        cr_expect_null(vmm_memory_ptr(mem, IOV_MEM_HOLE_END + (8 << 20), 1), "past high RAM");
        vmm_memory_free(mem);
}

Test(vmm_memory, rejects_bad_sizes)
{
        struct iov_guest_memory *mem = NULL;
        cr_expect_eq(vmm_memory_new(4096, &mem), -EINVAL, "4 KiB accepted");
        cr_expect_eq(vmm_memory_new((4 << 20) + 1, &mem), -EINVAL, "unaligned size accepted");
        cr_expect_null(mem, "ret written on failure");
}

struct recorder {
        uint64_t offset;
        uint32_t len;
        bool is_write;
        unsigned calls;
};

static void record_access(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
        struct recorder *rec = opaque;
        rec->offset = offset;
        rec->len = len;
        rec->is_write = is_write;
        rec->calls++;
        if (!is_write)
                memset(data, 0x5a, len);
}

Test(vmm_bus, dispatch_overlap_and_unhandled)
{
        struct iov_bus bus;
        struct recorder a = {0}, b = {0};
        cr_assert_eq(vmm_bus_init(&bus, "pio"), 0);
        cr_expect_eq(vmm_bus_register(&bus, 0x3f8, 8, record_access, &a, "uart"), 0);
        cr_expect_eq(vmm_bus_register(&bus, 0x3f0, 9, record_access, &b, "x"), -EEXIST,
                     "overlap below accepted");
        cr_expect_eq(vmm_bus_register(&bus, 0x3ff, 1, record_access, &b, "x"), -EEXIST,
                     "overlap at the end accepted");
        cr_expect_eq(vmm_bus_register(&bus, 0x400, 0, record_access, &b, "x"), -EINVAL);
        cr_expect_eq(vmm_bus_register(&bus, UINT64_MAX, 2, record_access, &b, "x"), -EINVAL);
        cr_expect_eq(vmm_bus_register(&bus, 0x60, 1, record_access, &b, "kbd"), 0);

        uint8_t data[4] = {1, 2, 3, 4};
        cr_expect(vmm_bus_access(&bus, 0x3fd, data, 1, false), "uart read not handled");
        cr_expect_eq(a.offset, 5u, "offset %llu", (unsigned long long)a.offset);
        cr_expect_eq(data[0], 0x5a, "read 0x%x", data[0]);

        cr_expect_not(vmm_bus_access(&bus, 0x3fe, data, 4, false), "straddling access handled");
        cr_expect_eq(data[3], 0xff, "unhandled read byte 0x%x", data[3]);
        cr_expect_not(vmm_bus_access(&bus, 0x80, data, 1, true), "write to nothing handled");
        cr_expect_eq(atomic_load(&bus.unhandled_reads), 1u, "unhandled reads %llu",
                     (unsigned long long)atomic_load(&bus.unhandled_reads));
        cr_expect_eq(atomic_load(&bus.unhandled_writes), 1u, "unhandled writes %llu",
                     (unsigned long long)atomic_load(&bus.unhandled_writes));

        cr_expect_eq(vmm_bus_unregister(&bus, 0x3f8, &b), -ENOENT, "wrong owner removed");
        int r = vmm_bus_unregister(&bus, 0x3f8, &a);
        cr_expect_eq(r, 0, "unregister gave %d", r);
        cr_expect_not(vmm_bus_access(&bus, 0x3f8, data, 1, true), "removed range still handled");
        cr_expect_eq(a.calls, 1u, "uart calls %u", a.calls);
        cr_expect_eq(atomic_load(&bus.counters[0].accesses), 1u, "uart counter");
        vmm_bus_done(&bus);
}
