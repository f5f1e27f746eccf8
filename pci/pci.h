/* SPDX-License-Identifier: MIT */
/*
 * pci: the host's PCI functions as iovd sees them: strict address parsing (the only way
 * an address from outside becomes a sysfs path), and the inventory read with libpci and
 * sysfs below a configurable sysfs root.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* "dddd:bb:ss.f" plus NUL; domains above 0xffff (VMD) print with up to 8 digits. */
#define IOV_PCI_ADDRESS_MAX 16

struct iov_pci_address {
        uint32_t domain;
        uint8_t bus;
        uint8_t slot;     /* 0..31 */
        uint8_t function; /* 0..7 */
};

/* Parse exactly "DDDD:BB:SS.F" (4 to 8 hex digits of domain, 2 of bus, 2 of slot at most
 * 0x1f, one function digit 0-7; either letter case). Anything else, including leading or
 * trailing characters, is -EINVAL. */
int pci_address_parse(const char *s, struct iov_pci_address *ret);

/* Canonical lowercase form, "0000:01:00.0". Returns buf. */
char *pci_address_format(const struct iov_pci_address *a, char buf[static IOV_PCI_ADDRESS_MAX]);

bool pci_address_equal(const struct iov_pci_address *a, const struct iov_pci_address *b);
int pci_address_compare(const struct iov_pci_address *a, const struct iov_pci_address *b);

/* ---- inventory ------------------------------------------------------------------------ */

struct iov_pci_device {
        struct iov_pci_address address;
        char name[IOV_PCI_ADDRESS_MAX]; /* canonical address string */
        uint16_t vendor_id;
        uint16_t device_id;
        uint16_t subsystem_vendor_id;
        uint16_t subsystem_device_id;
        uint32_t class_code;   /* 24 bits: base class, subclass, programming interface */
        char *vendor_name;     /* from pci.ids; NULL when unknown */
        char *device_name;     /* from pci.ids; NULL when unknown */
        char *driver;          /* bound driver; NULL when none */
        char *driver_override; /* NULL when unset */
        int iommu_group;       /* -1 when the device is in no group (no IOMMU) */
        int numa_node;         /* -1 when the platform does not say */

        /* SR-IOV physical function (PCIe r5 §9.3.3): has an SR-IOV capability. */
        bool is_pf;
        unsigned total_vfs;
        unsigned num_vfs;
        unsigned vf_offset;
        unsigned vf_stride;
        uint16_t vf_device_id;
        bool drivers_autoprobe;
        struct iov_pci_address *vfs; /* n_vfs entries, from the virtfnN links */
        size_t n_vfs;

        /* SR-IOV virtual function: has a physfn link. */
        bool is_vf;
        struct iov_pci_address physfn;
};

/* An immutable snapshot of every PCI function, sorted by address. */
struct iov_pci_inventory {
        struct iov_pci_device *devices;
        size_t n_devices;
        uint64_t scanned_usec; /* CLOCK_MONOTONIC time the scan finished */
};

/* Enumerate every function below sysfs_root/bus/pci/devices with libpci (sysfs access
 * method pointed at that root; names from pci.ids, loaded once per process) and read each
 * function's sysfs attributes (uevent for ids, class and driver; override, iommu_group,
 * numa_node, sriov_*, physfn, virtfn*). Functions that vanish during the scan are left
 * out; an unreadable attribute is an error. Thread-safe. */
int pci_inventory_scan(const char *sysfs_root, struct iov_pci_inventory **ret);
void pci_inventory_free(struct iov_pci_inventory *inventory);

/* Binary search by address; NULL when absent. */
const struct iov_pci_device *pci_inventory_find(const struct iov_pci_inventory *inventory,
                                                const struct iov_pci_address *address);

/* Read one function afresh (after a bind or a VF change); -ENOENT when it is gone. */
int pci_device_read(const char *sysfs_root, const struct iov_pci_address *address,
                    struct iov_pci_device *ret);
void pci_device_clear(struct iov_pci_device *device);

/* sysfs_root/bus/pci/devices/ADDRESS[/attribute]; attribute may be NULL. The address is
 * typed, so the path cannot escape the devices directory. NULL on OOM. */
char *pci_device_sysfs_path(const char *sysfs_root, const struct iov_pci_address *address,
                            const char *attribute);

/* Function level reset through the sysfs "reset" attribute. -ENOTTY when the device
 * offers no reset method (the caller quarantines it). */
int pci_device_reset(const char *sysfs_root, const struct iov_pci_address *address);
