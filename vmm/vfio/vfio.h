/* SPDX-License-Identifier: MIT */
/*
 * VFIO passthrough of a host PCI function bound to vfio-pci (Documentation/driver-api/
 * vfio.rst, include/uapi/linux/vfio.h). One device model, "vfio", for the VM's
 * {"type": "vfio", "host": "DDDD:BB:SS.F", "guest_address": SLOT} entries:
 *
 *   host.c        what the host must offer first: the function bound to vfio-pci, an
 *                 IOMMU group, RLIMIT_MEMLOCK for all guest RAM
 *   container.c   the IOMMU side (container, groups, type1v2, guest RAM DMA-mapped with
 *                 IOVA = guest physical address) behind the vfio_iommu_* interface, so
 *                 iommufd can be a second implementation of the same five functions
 *   config.c      the guest's view of config space: header, BARs, ROM and the MSI-X
 *                 capability emulated, the ids of "present_as" presented, capability
 *                 lists filtered, the rest forwarded
 *   bars.c        BARs: placed by the PCI core, mmapped into KVM memory slots where the
 *                 region allows it, the rest (and the MSI-X table and PBA pages) trapped
 *                 and forwarded with pread/pwrite
 *   msi.c         the MSI capability, emulated: what the guest programmed, decoded
 *   interrupts.c  MSI-X, MSI and INTx: VFIO_DEVICE_SET_IRQS eventfds wired to KVM irqfds
 *   device.c      the device model: open, reset, build, register, tear down
 */
#pragma once

#include <linux/vfio.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/contract/vm-contract.h"
#include "vmm/memory.h"
#include "vmm/pci.h"

struct json_object;

/* The device entry, struct iov_vfio_spec, is parsed with the rest of the definition
 * (vmm/contract/vfio-spec.c). */

/* ---- the host (host.c) ------------------------------------------------------------------ */

/* The function's IOMMU group, after checking that it exists under sysfs_root, has a
 * group (an IOMMU is on) and is bound to vfio-pci. The message says what to do. */
int vfio_host_check(const char *sysfs_root, const char *bdf, unsigned *ret_group, char *error,
                    size_t error_size);
/* VFIO pins every page it maps: RLIMIT_MEMLOCK must cover guest RAM, or the process
 * holds CAP_IPC_LOCK. Raises the soft limit when the hard one allows it. */
int vfio_host_check_memlock(uint64_t ram_bytes, char *error, size_t error_size);

/* ---- the IOMMU (container.c) ------------------------------------------------------------ */

struct iov_vfio_iommu;

/* The container node (a path or "fd:N"; NULL: /dev/vfio/vfio), API version, the type1v2
 * IOMMU. */
int vfio_iommu_open(const struct iov_guest_memory *mem, const char *node,
                    struct iov_vfio_iommu **ret, char *error, size_t error_size);
/* Attach the function's group (its node, a path or "fd:N"; NULL or "": /dev/vfio/GROUP;
 * viable, set container; the IOMMU type and the guest RAM mappings with the first group),
 * then return the device fd. */
int vfio_iommu_open_device(struct iov_vfio_iommu *iommu, unsigned group, const char *node,
                           const char *bdf, int *ret_fd, char *error, size_t error_size);
/* Unmap guest RAM, detach the groups, close the container. Accepts NULL. */
void vfio_iommu_free(struct iov_vfio_iommu *iommu);
/* Whether [iova, iova + size) lies inside one of the usable IOVA ranges (ranges as the
 * kernel reports them; n 0: the kernel reported none, everything is usable). */
bool vfio_iova_usable(const struct vfio_iova_range *ranges, unsigned n, uint64_t iova,
                      uint64_t size);

/* ---- the device ------------------------------------------------------------------------- */

#define IOV_VFIO_MAX_AREAS 8  /* mmappable areas of one region */
#define IOV_VFIO_MAX_MAPS  16 /* KVM memory slots of one device */
#define IOV_VFIO_REGIONS   (VFIO_PCI_CONFIG_REGION_INDEX + 1)

struct iov_vfio_area {
        uint64_t offset; /* inside the region */
        uint64_t size;
};

struct iov_vfio_region {
        uint64_t offset; /* of the region in the device fd */
        uint64_t size;
        uint32_t flags;                                 /* VFIO_REGION_INFO_FLAG_* */
        struct iov_vfio_area areas[IOV_VFIO_MAX_AREAS]; /* mmappable (sparse-mmap capability) */
        unsigned n_areas;
};

/* One mmapped piece of a BAR and the KVM memory slot that maps it into the guest. */
struct iov_vfio_map {
        unsigned bar;
        uint64_t bar_offset;
        uint64_t size;
        void *host;
        uint32_t kvm_slot;
        bool in_guest;
        uint64_t gpa;
};

struct iov_vfio_bar_ref {
        struct iov_vfio_device *device;
        unsigned index;
};

struct iov_vfio_device {
        struct iov_vm *vm;
        char name[32];  /* "vfio-DDDD:BB:SS.F" */
        int fd;         /* the VFIO device fd (a plain file in unit tests) */
        bool can_reset; /* VFIO_DEVICE_FLAGS_RESET */
        struct iov_vfio_region regions[IOV_VFIO_REGIONS];
        struct iov_pci_device pci;
        uint8_t emulated[IOV_PCI_CONFIG_SIZE]; /* 1: the byte is the VMM's, 0: the device's */
        uint32_t config_size;                  /* of the device's config region */
        struct iov_vfio_present_as present_as; /* the ids the guest sees instead (config.c) */
        struct iov_vfio_bar_ref bar_refs[IOV_PCI_NUM_BARS];

        /* MSI-X as the device has it (config.c) and as the guest programs it. */
        bool has_msix;
        uint16_t msix_vectors;
        uint8_t msix_bar;
        uint32_t msix_table_offset, msix_pba_offset;
        struct iov_pci_msix msix;
        /* MSI (PCI r3.0 §6.8.1), emulated in config space; 0: the device has none. */
        uint8_t msi_offset;
        bool msi_64bit, msi_per_vector_mask;
        uint8_t msi_vectors; /* what the device can do (multiple message capable) */
        /* What VFIO_DEVICE_SET_IRQS has now: VFIO_PCI_MSI_IRQ_INDEX, _MSIX_ or
         * VFIO_PCI_NUM_IRQS for nothing, with irq_count eventfds. */
        unsigned irq_index;
        unsigned irq_count;
        unsigned n_irqs; /* eventfds and GSIs: enough for MSI or MSI-X */
        int *irq_fds;
        unsigned *gsis;
        bool *irqfd_assigned;
        struct iov_msi_message *routed;
        /* INTx (VFIO_PCI_INTX_IRQ_INDEX), offered when vfio-pci reports it (the function
         * has an interrupt pin and is not a VF): its pin as the device has it, the
         * trigger eventfd (a KVM irqfd on the slot's GSI) and the resample eventfd KVM
         * signals at the guest's EOI, which vfio-pci takes as the unmask; -1 until
         * opened. intx_on: VFIO and KVM have them now (INTx is off while MSI or MSI-X
         * is on). */
        bool has_intx;
        uint8_t intx_pin;
        int intx_fd, intx_resample_fd;
        bool intx_on;

        struct iov_vfio_map maps[IOV_VFIO_MAX_MAPS];
        unsigned n_maps;
};

/* config.c: build the guest's config space from the device's (phys, config_size bytes)
 * into device->pci and device->emulated; the BARs are declared by bars.c after it. */
int vfio_config_build(struct iov_vfio_device *device, const uint8_t *phys);
/* Bus master and decode off on the device: no DMA (nor MSI write) from here on, even
 * from a device whose reset does nothing (PCI r3.0 §6.2.2). */
void vfio_config_quiesce(struct iov_vfio_device *device);
/* The pci core's config_forward hook. */
void vfio_config_forward(struct iov_pci_device *pci, uint32_t offset, uint8_t *data, uint32_t len,
                         bool is_write);

/* bars.c: declare every BAR the device has (regions[] and the config snapshot filled). */
int vfio_bars_declare(struct iov_vfio_device *device, const uint8_t *phys);
/* Cut the holes (rounded out to pages) out of area: up to max pieces in out. */
unsigned vfio_area_split(struct iov_vfio_area area, const struct iov_vfio_area *holes,
                         unsigned n_holes, struct iov_vfio_area *out, unsigned max);
/* mmap the mappable parts of the memory BARs, minus the MSI-X table and PBA pages. */
int vfio_bars_map(struct iov_vfio_device *device);
/* Keep the KVM memory slots where the guest decodes the BARs now. */
void vfio_bars_sync(struct iov_vfio_device *device);
void vfio_bars_unmap(struct iov_vfio_device *device);

/* msi.c: emulate the device's MSI capability at offset (device->pci.config holds the
 * device's copy); returns its length. */
unsigned vfio_msi_emulate(struct iov_vfio_device *device, uint8_t offset);
/* Vectors the guest has enabled: 0 while MSI is off, else multiple message enable, at
 * most what the device can do. */
unsigned vfio_msi_enabled(const struct iov_vfio_device *device);
/* Vector's message as the guest programmed it, and whether it must not be delivered now
 * (not enabled, masked, or no interrupt address). */
void vfio_msi_vector(const struct iov_vfio_device *device, unsigned vector,
                     struct iov_msi_message *ret_msg, bool *ret_masked);
/* Whether a config write at [offset, offset + len) touched the MSI capability. */
bool vfio_msi_written(const struct iov_vfio_device *device, uint32_t offset, uint32_t len);

/* interrupts.c */
int vfio_interrupts_init(struct iov_vfio_device *device);
/* The MSI-X core's vector_changed callback (PCI device lock held). */
void vfio_interrupts_vector_changed(struct iov_pci_msix *msix, uint16_t vector, void *opaque);
/* INTx on, once the function has its slot: eventfds, then the resample irqfd on the
 * slot's GSI, then VFIO's trigger and unmask. 0 without INTx. */
int vfio_interrupts_intx_start(struct iov_vfio_device *device);
/* The guest wrote the MSI capability (PCI device lock held). */
void vfio_interrupts_msi_written(struct iov_vfio_device *device);
void vfio_interrupts_done(struct iov_vfio_device *device);
