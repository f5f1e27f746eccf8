/* SPDX-License-Identifier: MIT */
/*
 * PCI host bridge at 00:00.0 with configuration mechanism #1 (0xCF8 address, 0xCFC data;
 * PCI r3.0 §3.2.2.3.2) and ECAM for bus 0 (PCIe r5 §7.2.2: offset = bus << 20 |
 * device << 15 | function << 12 | register).
 */
#include "util/util.h"
#include "vmm/pci-host.h"
#include "vmm/pci.h"

#define PCI_CONFIG_ADDRESS_PORT 0xcf8
#define PCI_CONFIG_DATA_PORT    0xcfc
#define PCI_CONFIG_ENABLE       0x80000000u

/* Function 0 of a slot: the requested one or the first free. Host lock held. */
static int host_attach_slot(struct iov_pci_host *host, struct iov_pci_device *dev)
{
        unsigned slot = dev->requested_slot;
        if (slot >= IOV_PCI_MAX_DEVICES)
                return -EINVAL;
        if (slot == 0)
                while (slot < IOV_PCI_MAX_DEVICES && host->devices[slot])
                        slot++;
        if (slot >= IOV_PCI_MAX_DEVICES)
                return -ENOSPC;
        if (host->devices[slot])
                return -EADDRINUSE;
        dev->slot = (uint8_t)slot;
        dev->function = 0;
        host->devices[slot] = dev;
        return 0;
}

/* Function 1..7 of a slot, beside its function 0: software scans the other functions of
 * a slot only when function 0 is there (PCI r3.0 §6.2.1), so one without it is refused.
 * Host lock held; *ret_first is function 0, whose header the caller marks. */
static int host_attach_function(struct iov_pci_host *host, struct iov_pci_device *dev,
                                struct iov_pci_device **ret_first)
{
        unsigned slot = dev->requested_slot, function = dev->requested_function;
        if (slot == 0 || slot >= IOV_PCI_MAX_DEVICES || function >= IOV_PCI_MAX_FUNCTIONS)
                return -EINVAL;
        if (!host->devices[slot])
                return -ENODEV;
        if (host->functions[slot][function - 1])
                return -EADDRINUSE;
        dev->slot = (uint8_t)slot;
        dev->function = (uint8_t)function;
        host->functions[slot][function - 1] = dev;
        *ret_first = host->devices[slot];
        return 0;
}

int vmm_pci_host_attach(struct iov_pci_host *host, struct iov_pci_device *dev)
{
        struct iov_pci_device *first = NULL;
        pthread_mutex_lock(&host->lock);
        int r = dev->requested_function ? host_attach_function(host, dev, &first)
                                        : host_attach_slot(host, dev);
        pthread_mutex_unlock(&host->lock);
        /* Bit 7 of function 0's header type: the slot has other functions (PCI r3.0
         * §6.2.1). Read-only to the guest (no wmask bit); set outside the host lock, which
         * config accesses do not hold while they take a device's. */
        if (first) {
                pthread_mutex_lock(&first->lock);
                first->config[IOV_PCI_HEADER_TYPE] |= 0x80;
                pthread_mutex_unlock(&first->lock);
        }
        return r;
}

int vmm_pci_host_allocate(struct iov_pci_host *host, enum iov_pci_window window, uint64_t size,
                          uint64_t *ret_addr)
{
        int r = 0;
        pthread_mutex_lock(&host->lock);
        uint64_t *next = window == IOV_PCI_WINDOW_IO       ? &host->next_io
                         : window == IOV_PCI_WINDOW_MMIO64 ? &host->next_mmio64
                                                           : &host->next_mmio;
        uint64_t end = window == IOV_PCI_WINDOW_IO       ? IOV_PCI_IO_WINDOW_END
                       : window == IOV_PCI_WINDOW_MMIO64 ? host->mmio64_end
                                                         : IOV_MEM_PCI_MMIO_END;
        uint64_t addr = (*next + size - 1) & ~(size - 1);
        if (addr < *next || addr > end || size > end - addr)
                r = -ENOSPC;
        else
                *next = addr + size;
        pthread_mutex_unlock(&host->lock);
        if (r == 0)
                *ret_addr = addr;
        return r;
}

struct iov_pci_device *vmm_pci_host_device(struct iov_pci_host *host, unsigned slot)
{
        if (slot >= IOV_PCI_MAX_DEVICES)
                return NULL;
        pthread_mutex_lock(&host->lock);
        struct iov_pci_device *dev = host->devices[slot];
        pthread_mutex_unlock(&host->lock);
        return dev;
}

/* The device at slot and function of bus 0, or NULL. */
static struct iov_pci_device *host_function(struct iov_pci_host *host, unsigned slot,
                                            unsigned function)
{
        if (function == 0)
                return vmm_pci_host_device(host, slot);
        if (slot >= IOV_PCI_MAX_DEVICES || function >= IOV_PCI_MAX_FUNCTIONS)
                return NULL;
        pthread_mutex_lock(&host->lock);
        struct iov_pci_device *dev = host->functions[slot][function - 1];
        pthread_mutex_unlock(&host->lock);
        return dev;
}

/* One config access to bus 0: slot and function from the address; nothing answers for
 * other buses or absent functions (reads all ones: "no device", PCI r3.0 §6.1). */
static void host_config_access(struct iov_pci_host *host, unsigned bus, unsigned slot,
                               unsigned function, uint32_t offset, uint8_t *data, uint32_t len,
                               bool is_write)
{
        struct iov_pci_device *dev = NULL;
        if (bus == 0)
                dev = host_function(host, slot, function);
        if (!dev) {
                if (!is_write)
                        memset(data, 0xff, len);
                return;
        }
        vmm_pci_config_access(dev, offset, data, len, is_write);
}

static void host_address_port(void *opaque, uint64_t offset, uint8_t *data, uint32_t len,
                              bool is_write)
{
        struct iov_pci_host *host = opaque;
        /* Only a 32-bit access at 0xCF8 is the address register; byte accesses to
         * 0xCF8..0xCFB belong to other chipset registers we do not model. */
        if (offset != 0 || len != 4) {
                if (!is_write)
                        memset(data, 0xff, len);
                return;
        }
        pthread_mutex_lock(&host->lock);
        if (is_write)
                memcpy(&host->config_address, data, 4);
        else
                memcpy(data, &host->config_address, 4);
        pthread_mutex_unlock(&host->lock);
}

static void host_data_port(void *opaque, uint64_t offset, uint8_t *data, uint32_t len,
                           bool is_write)
{
        struct iov_pci_host *host = opaque;
        pthread_mutex_lock(&host->lock);
        uint32_t address = host->config_address;
        pthread_mutex_unlock(&host->lock);

        if (!(address & PCI_CONFIG_ENABLE) || offset + len > 4) {
                if (!is_write)
                        memset(data, 0xff, len);
                return;
        }
        unsigned bus = (address >> 16) & 0xff, slot = (address >> 11) & 0x1f,
                 function = (address >> 8) & 0x7;
        uint32_t reg = (address & 0xfc) + (uint32_t)offset;
        host_config_access(host, bus, slot, function, reg, data, len, is_write);
}

static void host_ecam(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
        struct iov_pci_host *host = opaque;
        unsigned bus = (unsigned)(offset >> 20) & 0xff, slot = (unsigned)(offset >> 15) & 0x1f,
                 function = (unsigned)(offset >> 12) & 0x7;
        uint32_t reg = (uint32_t)(offset & 0xfff);
        /* An access must not cross a function's 4 KiB (PCIe r5 §7.2.2.2). */
        if (reg + len > IOV_PCI_CONFIG_SIZE) {
                if (!is_write)
                        memset(data, 0xff, len);
                return;
        }
        host_config_access(host, bus, slot, function, reg, data, len, is_write);
}

static void host_free(void *data)
{
        struct iov_pci_host *host = data;
        pthread_mutex_destroy(&host->lock);
        free(host);
}

static int pci_host_init(struct iov_vm *vm)
{
        struct iov_pci_host *host = calloc(1, sizeof(*host));
        if (!host)
                return -ENOMEM;
        host->vm = vm;
        pthread_mutex_init(&host->lock, NULL);
        host->next_mmio = IOV_MEM_PCI_MMIO_START;
        /* A VM without RAM (unit tests) still gets a window above 4 GiB. */
        host->next_mmio64 = vm->mem ? vmm_memory_pci64_start(vm->mem) : IOV_MEM_HOLE_END;
        host->mmio64_end = host->next_mmio64 + IOV_MEM_PCI64_SIZE;
        host->next_io = IOV_PCI_IO_WINDOW_START;
        int r = vmm_vm_add_cleanup(vm, host_free, host);
        if (r < 0) {
                host_free(host);
                return r;
        }

        r = vmm_bus_register(&vm->pio, PCI_CONFIG_ADDRESS_PORT, 4, host_address_port, host,
                             "pci-config");
        if (r >= 0)
                r = vmm_bus_register(&vm->pio, PCI_CONFIG_DATA_PORT, 4, host_data_port, host,
                                     "pci-config");
        if (r >= 0)
                r = vmm_bus_register(&vm->mmio, IOV_MEM_ECAM_START, IOV_MEM_ECAM_SIZE, host_ecam,
                                     host, "pci-ecam");
        if (r < 0)
                return r;
        vm->pci = host;

        /* 00:00.0, class 06.00.00 "host bridge", with the generic PCIe host bridge id
         * 1b36:0008 that Linux binds no driver to. */
        vmm_pci_device_init(&host->bridge, "pci-host", 0x1b36, 0x0008, 0x060000, 0);
        host->bridge.vm = vm;
        return vmm_pci_host_attach(host, &host->bridge);
}

IOV_VMM_DEVICE("pci-host", IOV_DEVICE_ORDER_CORE, pci_host_init)
