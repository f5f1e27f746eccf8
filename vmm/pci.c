/* SPDX-License-Identifier: MIT */
/* PCI device core: type-0 config space, capabilities, BAR sizing and moves. */
#include <stdio.h>

#include "util/util.h"
#include "vmm/pci-host.h"
#include "vmm/pci.h"

static void config_put(struct iov_pci_device *dev, uint32_t offset, uint64_t value, unsigned len)
{
        for (unsigned i = 0; i < len; i++)
                dev->config[offset + i] = (uint8_t)(value >> (8 * i));
}

static uint64_t config_get(const struct iov_pci_device *dev, uint32_t offset, unsigned len)
{
        uint64_t v = 0;
        for (unsigned i = 0; i < len; i++)
                v |= (uint64_t)dev->config[offset + i] << (8 * i);
        return v;
}

static void wmask_put(struct iov_pci_device *dev, uint32_t offset, uint64_t mask, unsigned len)
{
        for (unsigned i = 0; i < len; i++)
                dev->wmask[offset + i] = (uint8_t)(mask >> (8 * i));
}

void vmm_pci_device_init(struct iov_pci_device *dev, const char *name, uint16_t vendor_id,
                         uint16_t device_id, uint32_t class_code, uint8_t revision)
{
        memset(dev->config, 0, sizeof(dev->config));
        memset(dev->wmask, 0, sizeof(dev->wmask));
        memset(dev->bars, 0, sizeof(dev->bars));
        dev->name = name;
        dev->msix = NULL;
        dev->config_forward = NULL;
        dev->requested_slot = 0;
        dev->requested_function = 0;
        dev->function = 0;
        dev->next_cap_offset = 0x40; /* first byte after the type-0 header */

        pthread_mutexattr_t attr;
        pthread_mutexattr_init(&attr);
        /* Recursive: an MSI-X change callback may read the table back. */
        pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
        pthread_mutex_init(&dev->lock, &attr);
        pthread_mutexattr_destroy(&attr);

        config_put(dev, IOV_PCI_VENDOR_ID, vendor_id, 2);
        config_put(dev, IOV_PCI_DEVICE_ID, device_id, 2);
        config_put(dev, IOV_PCI_REVISION, revision, 1);
        config_put(dev, IOV_PCI_CLASS_PROG, class_code, 3);
        /* Command: I/O, memory, bus master, INTx disable are what Linux writes. */
        wmask_put(dev, IOV_PCI_COMMAND,
                  IOV_PCI_COMMAND_IO | IOV_PCI_COMMAND_MEMORY | IOV_PCI_COMMAND_MASTER |
                          IOV_PCI_COMMAND_INTX_DISABLE,
                  2);
        wmask_put(dev, 0x0c, 0xff, 1); /* cache line size */
        wmask_put(dev, 0x0d, 0xff, 1); /* latency timer */
        wmask_put(dev, IOV_PCI_INTERRUPT_LINE, 0xff, 1);
}

void vmm_pci_device_set_subsystem(struct iov_pci_device *dev, uint16_t vendor_id,
                                  uint16_t device_id)
{
        config_put(dev, IOV_PCI_SUBSYS_VENDOR, vendor_id, 2);
        config_put(dev, IOV_PCI_SUBSYS_ID, device_id, 2);
}

int vmm_pci_device_add_capability(struct iov_pci_device *dev, const void *cap, uint8_t len,
                                  const void *wmask, uint8_t *ret_offset)
{
        uint8_t offset = dev->next_cap_offset;
        if (len < 2 || offset == 0 || (unsigned)offset + len > 0x100)
                return -ENOSPC;

        memcpy(&dev->config[offset], cap, len);
        if (wmask)
                memcpy(&dev->wmask[offset], wmask, len);
        dev->wmask[offset] = dev->wmask[offset + 1] = 0;

        /* Link it at the end of the list (PCI r3.0 §6.7). */
        dev->config[offset + 1] = 0;
        if (!(dev->config[IOV_PCI_STATUS] & IOV_PCI_STATUS_CAP_LIST)) {
                dev->config[IOV_PCI_STATUS] |= IOV_PCI_STATUS_CAP_LIST;
                dev->config[IOV_PCI_CAP_PTR] = offset;
        } else {
                uint8_t p = dev->config[IOV_PCI_CAP_PTR];
                while (dev->config[p + 1])
                        p = dev->config[p + 1];
                dev->config[p + 1] = offset;
        }
        unsigned next = ((unsigned)offset + len + 3) & ~3u;
        dev->next_cap_offset = next >= 0x100 ? 0 : (uint8_t)next;
        if (ret_offset)
                *ret_offset = offset;
        return 0;
}

static bool is_power_of_two(uint64_t v)
{
        return v && !(v & (v - 1));
}

int vmm_pci_device_set_bar(struct iov_pci_device *dev, unsigned idx, enum iov_pci_bar_type type,
                           uint64_t size, bool prefetchable, iov_bus_access_fn fn, void *opaque)
{
        if (idx >= IOV_PCI_NUM_BARS || !fn || !is_power_of_two(size))
                return -EINVAL;
        if (type == IOV_PCI_BAR_MEM64 && idx + 1 >= IOV_PCI_NUM_BARS)
                return -EINVAL;
        if ((type == IOV_PCI_BAR_IO && (size < 16 || size > 256)) ||
            (type != IOV_PCI_BAR_IO && size < 4096) ||
            (type == IOV_PCI_BAR_MEM32 && size > (1ULL << 30)))
                return -EINVAL;

        uint32_t reg = IOV_PCI_BAR0 + 4 * idx;
        /* Flag bits (PCI r3.0 §6.2.5.1): bit 0 I/O; bits 2:1 type (10b = 64-bit); bit 3
         * prefetchable. They are read-only; the size shows through the read-only low
         * address bits when software writes all ones. */
        uint32_t flags = type == IOV_PCI_BAR_IO ? 0x1 : (type == IOV_PCI_BAR_MEM64 ? 0x4 : 0);
        if (prefetchable && type != IOV_PCI_BAR_IO)
                flags |= 0x8;
        config_put(dev, reg, flags, 4);
        uint64_t mask = ~(size - 1) & (type == IOV_PCI_BAR_IO ? ~0x3ULL : ~0xfULL);
        wmask_put(dev, reg, mask, 4);
        if (type == IOV_PCI_BAR_MEM64)
                wmask_put(dev, reg + 4, mask >> 32, 4);

        dev->bars[idx] = (struct iov_pci_bar){
                .type = type,
                .size = size,
                .prefetchable = prefetchable,
                .fn = fn,
                .opaque = opaque,
        };
        return 0;
}

uint64_t vmm_pci_device_bar_address(struct iov_pci_device *dev, unsigned idx)
{
        const struct iov_pci_bar *bar = &dev->bars[idx];
        uint32_t reg = IOV_PCI_BAR0 + 4 * idx;
        switch (bar->type) {
        case IOV_PCI_BAR_IO:
                return config_get(dev, reg, 4) & ~0x3ULL;
        case IOV_PCI_BAR_MEM32:
                return config_get(dev, reg, 4) & ~0xfULL;
        case IOV_PCI_BAR_MEM64:
                return config_get(dev, reg, 8) & ~0xfULL;
        case IOV_PCI_BAR_NONE:
                break;
        }
        return 0;
}

/* Make the bus registration of each BAR match its address and the decode bits. Called
 * with dev->lock held after any write to the command register or a BAR. */
static void pci_update_bars(struct iov_pci_device *dev)
{
        uint16_t cmd = (uint16_t)config_get(dev, IOV_PCI_COMMAND, 2);

        for (unsigned i = 0; i < IOV_PCI_NUM_BARS; i++) {
                struct iov_pci_bar *bar = &dev->bars[i];
                if (bar->type == IOV_PCI_BAR_NONE)
                        continue;
                bool io = bar->type == IOV_PCI_BAR_IO;
                struct iov_bus *bus = io ? &dev->vm->pio : &dev->vm->mmio;
                uint64_t addr = vmm_pci_device_bar_address(dev, i);
                uint64_t limit = io ? 0x10000 : (bar->type == IOV_PCI_BAR_MEM32 ? 1ULL << 32 : 0);
                bool decode = cmd & (io ? IOV_PCI_COMMAND_IO : IOV_PCI_COMMAND_MEMORY);
                /* An address of 0 or one that does not fit (e.g. during sizing, when the
                 * register reads back the size mask) is not decoded. */
                bool valid = decode && addr != 0 && addr + bar->size > addr &&
                             (limit == 0 || addr + bar->size <= limit);

                if (bar->mapped && (!valid || addr != bar->mapped_addr)) {
                        vmm_bus_unregister(bus, bar->mapped_addr, bar->opaque);
                        bar->mapped = false;
                }
                if (valid && !bar->mapped &&
                    vmm_bus_register(bus, addr, bar->size, bar->fn, bar->opaque, dev->name) >= 0) {
                        bar->mapped = true;
                        bar->mapped_addr = addr;
                }
        }
}

static bool ranges_overlap(uint32_t a, uint32_t a_len, uint32_t b, uint32_t b_len)
{
        return a < b + b_len && b < a + a_len;
}

void vmm_pci_config_access(struct iov_pci_device *dev, uint32_t offset, uint8_t *data, uint32_t len,
                           bool is_write)
{
        if (offset >= IOV_PCI_CONFIG_SIZE || len > IOV_PCI_CONFIG_SIZE - offset) {
                if (!is_write)
                        memset(data, 0xff, len);
                return;
        }

        pthread_mutex_lock(&dev->lock);
        if (!is_write) {
                memcpy(data, &dev->config[offset], len);
                if (dev->config_forward)
                        dev->config_forward(dev, offset, data, len, false);
                pthread_mutex_unlock(&dev->lock);
                return;
        }
        for (uint32_t i = 0; i < len; i++) {
                uint8_t m = dev->wmask[offset + i];
                dev->config[offset + i] = (dev->config[offset + i] & ~m) | (data[i] & m);
        }
        if (ranges_overlap(offset, len, IOV_PCI_COMMAND, 2) ||
            ranges_overlap(offset, len, IOV_PCI_BAR0, 4 * IOV_PCI_NUM_BARS))
                pci_update_bars(dev);
        if (dev->msix)
                vmm_pci_msix_config_written(dev->msix, offset, len);
        if (dev->config_forward)
                dev->config_forward(dev, offset, data, len, true);
        pthread_mutex_unlock(&dev->lock);

        if (dev->config_written)
                dev->config_written(dev, offset, len);
}

/* Where a BAR goes. A large 64-bit prefetchable one above RAM, as firmware does (it would
 * crowd or not fit the 512 MiB below 4 GiB); a non-prefetchable one stays below 4 GiB,
 * where a PCI-to-PCI bridge's non-prefetchable window has to be (PCI-to-PCI Bridge
 * Architecture r1.2 §3.2.5.8: 32-bit only), so its driver works behind one too. */
static enum iov_pci_window bar_window(const struct iov_pci_bar *bar)
{
        if (bar->type == IOV_PCI_BAR_IO)
                return IOV_PCI_WINDOW_IO;
        if (bar->type == IOV_PCI_BAR_MEM64 && bar->prefetchable &&
            bar->size >= IOV_PCI_BAR_HIGH_MIN)
                return IOV_PCI_WINDOW_MMIO64;
        return IOV_PCI_WINDOW_MMIO32;
}

int vmm_pci_register_device(struct iov_vm *vm, struct iov_pci_device *dev)
{
        struct iov_pci_host *host = vm->pci;
        if (!host)
                return -ENODEV;

        dev->vm = vm;
        int r = vmm_pci_host_attach(host, dev);
        if (r < 0)
                return r;
        /* The interrupt line is what firmware writes after routing (PCI r3.0 §6.2.4): here
         * the GSI the slot's pin is wired to, so the guest reads what _PRT says. */
        unsigned pin = dev->config[IOV_PCI_INTERRUPT_PIN];
        config_put(dev, IOV_PCI_INTERRUPT_LINE, vmm_pci_intx_gsi(dev->slot, pin), 1);

        /* Assign each BAR a naturally aligned address (PCI r3.0 §6.2.5.1). */
        for (unsigned i = 0; i < IOV_PCI_NUM_BARS; i++) {
                struct iov_pci_bar *bar = &dev->bars[i];
                if (bar->type == IOV_PCI_BAR_NONE)
                        continue;
                uint64_t addr;
                r = vmm_pci_host_allocate(host, bar_window(bar), bar->size, &addr);
                if (r < 0)
                        return r;
                uint32_t reg = IOV_PCI_BAR0 + 4 * i;
                uint64_t low_flags =
                        config_get(dev, reg, 4) & (bar->type == IOV_PCI_BAR_IO ? 0x3 : 0xf);
                config_put(dev, reg, (addr & 0xffffffffULL) | low_flags, 4);
                if (bar->type == IOV_PCI_BAR_MEM64)
                        config_put(dev, reg + 4, addr >> 32, 4);
        }
        return 0;
}
