/* SPDX-License-Identifier: MIT */
/*
 * iommu: what the IOMMU guarantees on this host, IOMMU groups and their viability, and
 * moving a whole group to vfio-pci and back with rollback.
 *
 * The IOMMU is what keeps a passed-through device's DMA inside its VM, and interrupt
 * remapping keeps its MSIs there; both are read from the hardware description in sysfs,
 * never assumed.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "pci/pci.h"

enum iov_tristate {
        IOV_UNKNOWN = -1,
        IOV_NO = 0,
        IOV_YES = 1,
};

struct iov_iommu_status {
        bool enabled; /* at least one IOMMU in sysfs_root/class/iommu and groups exist */
        /* Intel: ECAP.IR (VT-d spec §11.4.3) of every DMAR unit; AMD: the IVHD's
         * interrupt remapping support; IOV_UNKNOWN when the registers are not readable. */
        enum iov_tristate interrupt_remapping;
        bool vfio_pci_loaded;         /* sysfs_root/bus/pci/drivers/vfio-pci exists */
        bool allow_unsafe_interrupts; /* vfio_iommu_type1 module parameter */
        unsigned n_groups;
};

int iommu_status_read(const char *sysfs_root, struct iov_iommu_status *ret);
/* The same without counting the groups past the first (n_groups is 0 or 1): for checks
 * that only ask whether the IOMMU is on, such as every allocation's. */
int iommu_status_probe(const char *sysfs_root, struct iov_iommu_status *ret);

struct iov_iommu_group {
        unsigned id;
        struct iov_pci_address *devices; /* sorted */
        size_t n_devices;
};

/* Every group below sysfs_root/kernel/iommu_groups, sorted by id. */
int iommu_groups_scan(const char *sysfs_root, struct iov_iommu_group **ret, size_t *ret_n);
int iommu_group_read(const char *sysfs_root, unsigned id, struct iov_iommu_group *ret);
/* The same list built from an inventory's iommu_group fields, without reading sysfs again
 * (a host with one group per VF has as many groups as functions). */
int iommu_groups_from_inventory(const struct iov_pci_inventory *inventory,
                                struct iov_iommu_group **ret, size_t *ret_n);
void iommu_group_clear(struct iov_iommu_group *group);
void iommu_groups_free(struct iov_iommu_group *groups, size_t n);

/* The one rule for "can this IOMMU group be handed out": VFIO gives a group to userspace
 * only when every member is driverless or bound to a VFIO driver, PCI-to-PCI bridges
 * bound to pcieport excepted (Documentation/driver-api/vfio.rst, "Groups, Devices, and
 * IOMMUs"). This is the per-member half: true when a member of class class_code bound to
 * driver (NULL: none) keeps its group from being handed out. */
bool iommu_member_blocks(uint32_t class_code, const char *driver);

/* The rule over an inventory snapshot, without reading sysfs: true when no member of the
 * group that the inventory knows blocks (a member missing from it has gone). A cheap
 * pre-check; the decision itself reads sysfs afresh (iommu_group_check_viable). */
bool iommu_group_viable_in(const struct iov_iommu_group *group,
                           const struct iov_pci_inventory *inventory);

/* A member that keeps a group from being handed out (iommu_member_blocks). */
struct iov_group_blocker {
        struct iov_pci_address address;
        char *driver;
};

/* The rule on sysfs as it is now: 1 when viable, 0 when not (ret_blockers lists why; may
 * be NULL), negative errno. */
int iommu_group_check_viable(const char *sysfs_root, unsigned id,
                             struct iov_group_blocker **ret_blockers, size_t *ret_n_blockers);
void iommu_group_blockers_free(struct iov_group_blocker *blockers, size_t n);

/* What a member was bound to before iovd took it, to give it back. */
struct iov_bind_record {
        struct iov_pci_address address;
        char *original_driver;   /* NULL: had no driver */
        char *original_override; /* NULL: had none */
        bool is_bridge;          /* left alone */
};

/* Bind every non-bridge member of the group to vfio-pci: write driver_override, unbind
 * from the current driver, write drivers_probe, verify the driver link (waiting at most
 * timeout_ms). On any failure every member already moved is restored and the error is
 * returned; nothing is left half-bound. */
int iommu_group_bind_vfio(const char *sysfs_root, unsigned id, unsigned timeout_ms,
                          struct iov_bind_record **ret, size_t *ret_n);

/* What a function is bound to now: its driver and driver_override (each NULL when none),
 * two sysfs reads instead of a whole pci_device_read; -ENOENT when it is gone. */
int iommu_device_binding(const char *sysfs_root, const struct iov_pci_address *a, char **ret_driver,
                         char **ret_override);

/* Give every member back: unbind from vfio-pci, restore the override, reprobe, verify. */
int iommu_group_restore(const char *sysfs_root, const struct iov_bind_record *records, size_t n,
                        unsigned timeout_ms);
void iommu_bind_records_free(struct iov_bind_record *records, size_t n);

/* dev_root/vfio/ID, the node VFIO users open. */
char *iommu_vfio_group_path(const char *dev_root, unsigned id);
