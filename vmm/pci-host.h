/* SPDX-License-Identifier: MIT */
/* The PCI host bridge's side of PCI (private to vmm/pci*.c). */
#pragma once

#include <pthread.h>
#include <stdint.h>

#include "vmm/pci.h"

#define IOV_PCI_IO_WINDOW_START 0xc000
#define IOV_PCI_IO_WINDOW_END   0x10000

struct iov_pci_host {
        struct iov_vm *vm;
        pthread_mutex_t lock;
        uint32_t config_address;                             /* the 0xCF8 register */
        struct iov_pci_device *devices[IOV_PCI_MAX_DEVICES]; /* function 0 of each slot */
        /* functions 1..7 of each slot, beside its function 0 */
        struct iov_pci_device *functions[IOV_PCI_MAX_DEVICES][IOV_PCI_MAX_FUNCTIONS - 1];
        uint64_t next_mmio;
        uint64_t next_mmio64, mmio64_end; /* the window above RAM */
        uint64_t next_io;
        struct iov_pci_device bridge; /* 00:00.0 */
};

/* Put dev at its requested slot and function, or in the first free slot. -ENOSPC when
 * the bus is full. */
int vmm_pci_host_attach(struct iov_pci_host *host, struct iov_pci_device *dev);
enum iov_pci_window {
        IOV_PCI_WINDOW_IO,     /* I/O ports from IOV_PCI_IO_WINDOW_START */
        IOV_PCI_WINDOW_MMIO32, /* IOV_MEM_PCI_MMIO_START..END, below 4 GiB */
        IOV_PCI_WINDOW_MMIO64, /* above RAM (vmm_memory_pci64_start) */
};

/* Allocate a naturally aligned range of size bytes for a BAR in window. */
int vmm_pci_host_allocate(struct iov_pci_host *host, enum iov_pci_window window, uint64_t size,
                          uint64_t *ret_addr);

/* The config-space core tells MSI-X about writes (message control), dev->lock held. */
void vmm_pci_msix_config_written(struct iov_pci_msix *msix, uint32_t offset, uint32_t len);
