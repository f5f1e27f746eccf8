/* SPDX-License-Identifier: MIT */
/*
 * Guest physical memory: RAM backed by one memfd, split around the 32-bit MMIO hole.
 *
 * Guest addresses are untrusted (STYLE.md habit 8): vmm_memory_ptr() is the only place that
 * turns a guest physical address into a host pointer; it checks that every byte of the
 * range is RAM. Nothing else in vmm/ does pointer arithmetic on guest addresses.
 *
 * Layout (x86):
 *   [0, low_size)                 RAM, low_size = min(size, IOV_MEM_HOLE_START)
 *   [IOV_MEM_HOLE_START, 4 GiB)   hole: PCI MMIO window, ECAM, IOAPIC, local APIC
 *   [4 GiB, 4 GiB + high_size)    the rest of RAM, if any
 *   above RAM, 1 GiB aligned      the 64-bit PCI window (IOV_MEM_PCI64_SIZE)
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IOV_MEM_HOLE_START 0xC0000000ULL
#define IOV_MEM_HOLE_END   0x100000000ULL
/* Inside the hole. */
#define IOV_MEM_PCI_MMIO_START 0xC0000000ULL /* BARs are assigned from here */
#define IOV_MEM_PCI_MMIO_END   0xE0000000ULL
#define IOV_MEM_ECAM_START     0xE0000000ULL /* PCIe r5 §7.2.2: 1 MiB per bus */
#define IOV_MEM_ECAM_SIZE      0x10000000ULL /* room for 256 buses */
#define IOV_MEM_ECAM_BUS_SIZE  0x00100000ULL /* one bus: 32 devices x 8 functions x 4 KiB */
#define IOV_MEM_IOAPIC_START   0xFEC00000ULL
#define IOV_MEM_LAPIC_START    0xFEE00000ULL

/* Above RAM (at least 4 GiB, aligned to 1 GiB): the window of the large 64-bit
 * prefetchable BARs (vmm/pci.c), announced in the host bridge's _CRS (vmm/acpi.c) and
 * left out of the e820 map, a gap like the hole below 4 GiB. */
#define IOV_MEM_PCI64_ALIGN (1ULL << 30)
#define IOV_MEM_PCI64_SIZE  (64ULL << 30)

#define IOV_MEM_MAX_REGIONS 2

struct iov_memory_region {
        uint64_t gpa;
        uint64_t size;
        uint8_t *host;
};

struct iov_guest_memory {
        int memfd;
        uint8_t *host; /* the whole mapping, size bytes */
        uint64_t size;
        struct iov_memory_region regions[IOV_MEM_MAX_REGIONS];
        unsigned n_regions;
};

/* Create guest RAM of size bytes (a multiple of 4 KiB, at least 2 MiB) from a memfd.
 * Pages are allocated when first touched. */
int vmm_memory_new(uint64_t size, struct iov_guest_memory **ret);
void vmm_memory_free(struct iov_guest_memory *mem);

/* Host pointer for [gpa, gpa + len), or NULL when any byte is outside RAM, in the hole,
 * or the range wraps. len 0 is treated as 1. */
void *vmm_memory_ptr(const struct iov_guest_memory *mem, uint64_t gpa, uint64_t len);

/* Copy to / from guest RAM; -EFAULT when the range is not entirely RAM. */
int vmm_memory_write(const struct iov_guest_memory *mem, uint64_t gpa, const void *src,
                     uint64_t len);
int vmm_memory_read(const struct iov_guest_memory *mem, uint64_t gpa, void *dst, uint64_t len);

/* Highest RAM address + 1 below the hole (where low RAM ends). */
uint64_t vmm_memory_low_end(const struct iov_guest_memory *mem);
/* Where the 64-bit PCI window starts: the end of RAM or 4 GiB, whichever is higher,
 * rounded up to IOV_MEM_PCI64_ALIGN. */
uint64_t vmm_memory_pci64_start(const struct iov_guest_memory *mem);
