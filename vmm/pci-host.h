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
        uint32_t config_address; /* the 0xCF8 register */
        struct iov_pci_device *devices[IOV_PCI_MAX_DEVICES];
        uint64_t next_mmio;
        uint64_t next_io;
        struct iov_pci_device bridge; /* 00:00.0 */
};

/* Put dev in the first free slot. -ENOSPC when the bus is full. */
int vmm_pci_host_attach(struct iov_pci_host *host, struct iov_pci_device *dev);
/* Allocate a naturally aligned window of size bytes for a BAR. */
int vmm_pci_host_allocate(struct iov_pci_host *host, bool io, uint64_t size, uint64_t *ret_addr);

/* The config-space core tells MSI-X about writes (message control), dev->lock held. */
void vmm_pci_msix_config_written(struct iov_pci_msix *msix, uint32_t offset, uint32_t len);
