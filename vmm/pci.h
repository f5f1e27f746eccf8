/* SPDX-License-Identifier: MIT */
/*
 * PCI for device models: one bus (bus 0) behind a host bridge reachable through
 * configuration mechanism #1 (ports 0xCF8/0xCFC, PCI r3.0 §3.2.2.3.2) and ECAM (PCIe r5
 * §7.2.2, at IOV_MEM_ECAM_START). A device model fills a struct iov_pci_device, adds
 * capabilities and BARs, and registers it; the core answers config reads and writes,
 * sizes and moves BARs the way the spec says, and keeps the MMIO/PIO buses in step with
 * the BAR addresses and the command register's decode bits.
 *
 * BARs are assigned addresses at registration (the guest has no firmware to do it): I/O
 * BARs from port 0xc000, memory BARs in the 512 MiB below 4 GiB, except 64-bit
 * prefetchable ones of IOV_PCI_BAR_HIGH_MIN or more, which go to the window above RAM;
 * the guest may move them, which re-registers the range on the bus.
 */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "vmm/bus.h"
#include "vmm/vm.h"

#define IOV_PCI_CONFIG_SIZE   4096 /* PCIe extended config space */
#define IOV_PCI_MAX_DEVICES   32   /* slots on bus 0 */
#define IOV_PCI_MAX_FUNCTIONS 8    /* functions of a slot (PCI r3.0 §3.2.2.3.2) */
#define IOV_PCI_NUM_BARS      6
/* 64-bit prefetchable BARs this large or larger are placed above RAM (vmm/pci.c). */
#define IOV_PCI_BAR_HIGH_MIN (64ULL << 20)

/* Standard header offsets (PCI r3.0 §6.1). */
#define IOV_PCI_VENDOR_ID      0x00
#define IOV_PCI_DEVICE_ID      0x02
#define IOV_PCI_COMMAND        0x04
#define IOV_PCI_STATUS         0x06
#define IOV_PCI_REVISION       0x08
#define IOV_PCI_CLASS_PROG     0x09
#define IOV_PCI_HEADER_TYPE    0x0e
#define IOV_PCI_BAR0           0x10
#define IOV_PCI_SUBSYS_VENDOR  0x2c
#define IOV_PCI_SUBSYS_ID      0x2e
#define IOV_PCI_CAP_PTR        0x34
#define IOV_PCI_INTERRUPT_LINE 0x3c
#define IOV_PCI_INTERRUPT_PIN  0x3d

#define IOV_PCI_COMMAND_IO           0x0001
#define IOV_PCI_COMMAND_MEMORY       0x0002
#define IOV_PCI_COMMAND_MASTER       0x0004
#define IOV_PCI_COMMAND_INTX_DISABLE 0x0400
#define IOV_PCI_STATUS_CAP_LIST      0x0010

#define IOV_PCI_CAP_ID_MSIX   0x11
#define IOV_PCI_CAP_ID_VENDOR 0x09

enum iov_pci_bar_type {
        IOV_PCI_BAR_NONE,
        IOV_PCI_BAR_IO,
        IOV_PCI_BAR_MEM32,
        IOV_PCI_BAR_MEM64, /* takes two BAR slots: idx and idx + 1 */
};

struct iov_pci_bar {
        enum iov_pci_bar_type type;
        uint64_t size; /* a power of two; >= 16 for I/O, >= 4096 for memory here */
        bool prefetchable;
        iov_bus_access_fn fn; /* offset is relative to the BAR's start */
        void *opaque;
        bool mapped; /* registered on a bus at mapped_addr */
        uint64_t mapped_addr;
};

struct iov_pci_device;

struct iov_pci_msix;

struct iov_pci_device {
        const char *name;
        struct iov_vm *vm;
        uint8_t slot;     /* device number on bus 0, set by registration */
        uint8_t function; /* function number in its slot, set by registration */
        pthread_mutex_t lock;
        uint8_t config[IOV_PCI_CONFIG_SIZE];
        uint8_t wmask[IOV_PCI_CONFIG_SIZE]; /* bits the guest may change */
        uint8_t next_cap_offset;
        struct iov_pci_bar bars[IOV_PCI_NUM_BARS];
        struct iov_pci_msix *msix;
        /* Called after a guest config write (lock not held), e.g. to notice a driver
         * status change; may be NULL. */
        void (*config_written)(struct iov_pci_device *dev, uint32_t offset, uint32_t len);
        /* Pass-through devices (vmm/vfio/): called with dev->lock held after the core has
         * served a config access from config[] and wmask, to put the device's own bytes
         * into a read or to forward a write to the device; NULL for emulated devices. */
        void (*config_forward)(struct iov_pci_device *dev, uint32_t offset, uint8_t *data,
                               uint32_t len, bool is_write);
        /* Slot the device asks for (1..31), set after vmm_pci_device_init() and before
         * registration; 0: the first free slot. */
        uint8_t requested_slot;
        /* Function the device asks for in requested_slot (0..7), set like it; one other
         * than 0 needs function 0 of that slot registered first, whose header type then
         * says multi-function (PCI r3.0 §6.2.1). 0: function 0 of its slot. */
        uint8_t requested_function;
        void *opaque;
};

/* Fill the type-0 header: ids, class (base << 16 | sub << 8 | prog-if), revision. */
void vmm_pci_device_init(struct iov_pci_device *dev, const char *name, uint16_t vendor_id,
                         uint16_t device_id, uint32_t class_code, uint8_t revision);
void vmm_pci_device_set_subsystem(struct iov_pci_device *dev, uint16_t vendor_id,
                                  uint16_t device_id);

/* Append a capability (cap[0] = id; cap[1], the next pointer, is filled in). wmask may be
 * NULL (read-only). Returns the offset in config space through ret_offset. */
int vmm_pci_device_add_capability(struct iov_pci_device *dev, const void *cap, uint8_t len,
                                  const void *wmask, uint8_t *ret_offset);

/* Declare BAR idx; size must be a power of two. Must precede registration. */
int vmm_pci_device_set_bar(struct iov_pci_device *dev, unsigned idx, enum iov_pci_bar_type type,
                           uint64_t size, bool prefetchable, iov_bus_access_fn fn, void *opaque);

/* Put the device on bus 0 at its requested slot and function (-EADDRINUSE when taken;
 * -ENODEV for a function other than 0 of a slot without function 0) or the first free
 * slot, assign BAR addresses. */
int vmm_pci_register_device(struct iov_vm *vm, struct iov_pci_device *dev);

/* Current guest-programmed address of BAR idx (0 when unassigned). */
uint64_t vmm_pci_device_bar_address(struct iov_pci_device *dev, unsigned idx);

/* Config space access as the guest sees it (used by the host bridge for CF8/ECAM). */
void vmm_pci_config_access(struct iov_pci_device *dev, uint32_t offset, uint8_t *data, uint32_t len,
                           bool is_write);

/* Look a device up by slot (NULL when the slot is empty). */
struct iov_pci_device *vmm_pci_host_device(struct iov_pci_host *host, unsigned slot);

/* ---- MSI-X (PCI r3.0 §6.8.2) ---------------------------------------------------------------- */

struct iov_msix_entry {
        uint32_t address_lo;
        uint32_t address_hi;
        uint32_t data;
        uint32_t vector_control; /* bit 0: masked */
};

struct iov_pci_msix {
        struct iov_pci_device *dev;
        uint16_t n_vectors;
        uint8_t cap_offset;
        uint8_t bar;
        uint32_t table_offset; /* inside the BAR */
        uint32_t pba_offset;
        struct iov_msix_entry *table;
        uint64_t *pba;
        /* Called whenever a vector's message or mask, or the function's enable / mask
         * state, changes (vector = 0xffff for "all vectors"); the device model re-routes
         * its irqfds here (vmm_gsi_route_msi). May be NULL. */
        void (*vector_changed)(struct iov_pci_msix *msix, uint16_t vector, void *opaque);
        void *opaque;
};

/* Add the MSI-X capability with n_vectors vectors whose table and PBA live in BAR bar at
 * the given offsets; the device's BAR callback forwards accesses in those ranges to
 * vmm_pci_msix_bar_access(). */
int vmm_pci_msix_init(struct iov_pci_device *dev, struct iov_pci_msix *msix, uint16_t n_vectors,
                      uint8_t bar, uint32_t table_offset, uint32_t pba_offset);
void vmm_pci_msix_done(struct iov_pci_msix *msix);
/* Returns true when offset falls in the table or the PBA (and handles the access). */
bool vmm_pci_msix_bar_access(struct iov_pci_msix *msix, uint64_t offset, uint8_t *data,
                             uint32_t len, bool is_write);
bool vmm_pci_msix_enabled(const struct iov_pci_msix *msix);
/* The message of vector, and whether it is deliverable now (MSI-X enabled, neither the
 * function nor the vector masked). -EINVAL for a vector out of range. */
int vmm_pci_msix_vector(const struct iov_pci_msix *msix, uint16_t vector,
                        struct iov_msi_message *ret_msg, bool *ret_masked);
/* Deliver vector now (KVM_SIGNAL_MSI) or set its pending bit when masked. */
int vmm_pci_msix_notify(struct iov_pci_msix *msix, uint16_t vector);
