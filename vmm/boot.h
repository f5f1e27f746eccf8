/* SPDX-License-Identifier: MIT */
/*
 * Linux x86 boot protocol (Documentation/arch/x86/boot.rst, zero-page.rst), 64-bit entry:
 * the VMM loads a bzImage (protocol >= 2.12, XLF_KERNEL_64) or an ELF vmlinux, builds the
 * zero page (setup header, e820 map, command line, initrd), identity page tables and a
 * GDT, and the boot vCPU starts in long mode at the 64-bit entry with rsi = zero page.
 *
 * Guest physical layout used by the loader:
 *   0x00500  GDT (null, null, 0x10 code64, 0x18 data, 0x20 TSS)
 *   0x07000  zero page (struct boot_params)
 *   0x09000  page tables: PML4, PDPT, 4 page directories (identity map of 4 GiB, 2 MiB pages)
 *   0x20000  kernel command line
 *   0xf0000  MP table (vmm/mptable.c), inside the reserved 0x9fc00-0xfffff
 *   0x100000 kernel (or the bzImage's pref_address)
 *   initrd   as high as allowed below initrd_addr_max and the end of low RAM
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "vmm/memory.h"

#define IOV_BOOT_GDT_ADDR       0x500ULL
#define IOV_BOOT_ZERO_PAGE_ADDR 0x7000ULL
#define IOV_BOOT_PML4_ADDR      0x9000ULL
#define IOV_BOOT_CMDLINE_ADDR   0x20000ULL
#define IOV_BOOT_CMDLINE_MAX    0x10000ULL
#define IOV_BOOT_EBDA_START     0x9fc00ULL
#define IOV_BOOT_HIGH_START     0x100000ULL
#define IOV_BOOT_MIN_PROTOCOL   0x020c /* first with xloadflags / XLF_KERNEL_64 */
#define IOV_BOOT_MAX_KERNEL     (256ULL << 20)
#define IOV_BOOT_MAX_INITRD     (2ULL << 30)

struct iov_boot_info {
        uint64_t entry;       /* 64-bit entry point */
        uint64_t boot_params; /* zero page, for rsi */
        uint64_t page_table_root;
        uint64_t gdt_base;
        uint16_t gdt_limit;
        uint64_t kernel_start;
        uint64_t kernel_end; /* first byte after what the kernel needs (init_size) */
        uint64_t initrd_start;
        uint64_t initrd_size;
        uint16_t protocol; /* 0 for ELF */
};

/*
 * Load kernel (bzImage or ELF vmlinux, detected by content), initrd (may be NULL) and
 * cmdline (may be NULL) into mem. On failure returns a negative errno and writes a
 * one-line explanation to error (always NUL-terminated):
 *   -ENOEXEC  neither a bzImage ("HdrS" magic, 0xAA55) nor an x86-64 ELF
 *   -EPROTO   boot protocol older than 2.12 or no 64-bit entry (XLF_KERNEL_64)
 *   -EINVAL   truncated or inconsistent image (offsets outside the file)
 *   -E2BIG    kernel, initrd or command line does not fit in guest memory / limits
 */
int vmm_boot_load(struct iov_guest_memory *mem, const void *kernel, size_t kernel_size,
                  const void *initrd, size_t initrd_size, const char *cmdline,
                  struct iov_boot_info *ret, char *error, size_t error_size);

/* The same from files. */
int vmm_boot_load_files(struct iov_guest_memory *mem, const char *kernel_path,
                        const char *initrd_path, const char *cmdline, struct iov_boot_info *ret,
                        char *error, size_t error_size);
