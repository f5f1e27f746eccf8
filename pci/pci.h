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

/* "dddd:bb:ss.f" plus NUL. Linux names a function "%04x:%02x:%02x.%d" with the domain a
 * non-negative int (drivers/pci/probe.c, pci_setup_device), so a domain above 0xffff (VMD
 * starts at 0x10000) has as many digits as it needs, up to 8: "7fffffff:ff:1f.7". */
#define IOV_PCI_ADDRESS_MAX 17

struct iov_pci_address {
        uint32_t domain;
        uint8_t bus;
        uint8_t slot;     /* 0..31 */
        uint8_t function; /* 0..7 */
};

/* Parse exactly "DDDD:BB:SS.F" (4 to 8 hex digits of domain at most 0x7fffffff, 2 of bus,
 * 2 of slot at most 0x1f, one function digit 0-7; either letter case). Anything else, including
 * leading or trailing characters, is -EINVAL. */
int pci_address_parse(const char *s, struct iov_pci_address *ret);

/* Canonical lowercase form, "0000:01:00.0", the name sysfs gives the function: at least 4
 * domain digits, all of them above 0xffff. Returns buf. */
char *pci_address_format(const struct iov_pci_address *a, char buf[static IOV_PCI_ADDRESS_MAX]);

bool pci_address_equal(const struct iov_pci_address *a, const struct iov_pci_address *b);
int pci_address_compare(const struct iov_pci_address *a, const struct iov_pci_address *b);

/* ---- class codes ---------------------------------------------------------------------- */

/* Base class and subclass (class_code >> 8), PCI Code and ID Assignment Specification
 * r1.11: §1.7 base class 06h (bridge devices), §1.9 base class 08h (base system
 * peripherals). */
#define IOV_PCI_CLASS_BRIDGE_HOST       0x0600
#define IOV_PCI_CLASS_BRIDGE_ISA        0x0601
#define IOV_PCI_CLASS_BRIDGE_EISA       0x0602
#define IOV_PCI_CLASS_BRIDGE_MCA        0x0603
#define IOV_PCI_CLASS_BRIDGE_PCI        0x0604 /* PCI-to-PCI, also subtractive decode */
#define IOV_PCI_CLASS_BRIDGE_PCMCIA     0x0605
#define IOV_PCI_CLASS_BRIDGE_NUBUS      0x0606
#define IOV_PCI_CLASS_BRIDGE_CARDBUS    0x0607
#define IOV_PCI_CLASS_BRIDGE_RACEWAY    0x0608
#define IOV_PCI_CLASS_BRIDGE_PCI_SEMI   0x0609 /* semi-transparent PCI-to-PCI */
#define IOV_PCI_CLASS_BRIDGE_INFINIBAND 0x060a
#define IOV_PCI_CLASS_BRIDGE_AS         0x060b /* Advanced Switching to PCI host bridge */
#define IOV_PCI_CLASS_SYSTEM_PIC        0x0800 /* 8259, I/O APIC, I/O(x) APIC */
#define IOV_PCI_CLASS_SYSTEM_DMA        0x0801
#define IOV_PCI_CLASS_SYSTEM_TIMER      0x0802
#define IOV_PCI_CLASS_SYSTEM_RTC        0x0803
#define IOV_PCI_CLASS_SYSTEM_HOTPLUG    0x0804
#define IOV_PCI_CLASS_SYSTEM_IOMMU      0x0806
#define IOV_PCI_CLASS_SYSTEM_RCEC       0x0807 /* root complex event collector */

/* What the platform itself needs (the bridges and system peripherals above): never handed
 * to a guest. Returns a short name ("host bridge") for messages, NULL for other classes. */
const char *pci_class_infrastructure_name(uint32_t class_code);
/* A PCI-to-PCI bridge (header type 1): VFIO leaves these with the host (pcieport). */
bool pci_class_is_pci_bridge(uint32_t class_code);

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

/* The 24-bit class code from sysfs_root/bus/pci/devices/ADDRESS/class; -ENOENT when the
 * function is gone. */
int pci_device_read_class(const char *sysfs_root, const struct iov_pci_address *address,
                          uint32_t *ret);

/* Function level reset through the sysfs "reset" attribute. -ENOTTY when the device
 * offers no reset method (the caller quarantines it). */
int pci_device_reset(const char *sysfs_root, const struct iov_pci_address *address);
