/* SPDX-License-Identifier: MIT */
/*
 * The guest's view of a passed-through function's config space. Every byte is either the
 * VMM's (served from dev->pci.config by the PCI core, writes through its wmask) or the
 * device's (read and written through the VFIO config region with pread/pwrite):
 *   - the VMM's: the command register (its decode and bus-master bits are mirrored to the
 *     device), the capability-list bit, the header type (multifunction cleared: only this
 *     function is given), the BARs and the expansion ROM (virtual; the ROM is absent, so
 *     it sizes as 0: PCI r3.0 §6.2.5.2), the capability pointer and every capability's
 *     ID and next bytes (the list is filtered), the MSI and MSI-X capabilities
 *     (emulated by msi.c and vmm/pci-msix.c, mirrored into VFIO by interrupts.c), the
 *     interrupt line and pin (the device's pin when vfio-pci offers INTx, else 0; the
 *     line is the slot's GSI), and all of extended config space except the bodies of the
 *     extended capabilities that are kept;
 *     The ids "present_as" names (vendor, device, subsystem vendor, subsystem, revision)
 *     are the VMM's too, read-only like the device's own (PCI r3.0 §6.2.1);
 *   - the device's: everything else (ids, status errors, the power-management and PCI
 *     Express capabilities, ...). vfio-pci itself still guards what the device sees.
 */
#include <stdio.h>

#include "util/util.h"
#include "vmm/vfio/vfio.h"

#define CAP_ID_PM     0x01
#define CAP_ID_MSI    0x05
#define CAP_ID_VENDOR 0x09
#define CAP_ID_PCIE   0x10
#define CAP_ID_MSIX   0x11
#define CAP_LIST_MAX  48 /* (256 - 64) / 4: a longer walk is a loop */

/* Extended capabilities a guest may see (PCIe r5 §7.6), with their lengths. SR-IOV,
 * ARI, ATS, PASID, resizable BAR and the rest describe the host's function and bus,
 * not the one the guest gets, and are hidden. */
static const struct {
        uint16_t id;
        uint16_t len;
} ext_caps_kept[] = {
        {0x0001, 0x48}, /* AER, §7.8.4 */
        {0x0003, 0x0c}, /* device serial number, §7.9.3 */
        {0x0018, 0x08}, /* latency tolerance reporting, §7.8.2 */
};

static uint32_t get_le(const uint8_t *p, unsigned len)
{
        uint32_t v = 0;
        for (unsigned i = 0; i < len; i++)
                v |= (uint32_t)p[i] << (8 * i);
        return v;
}

static void put_le(uint8_t *p, uint32_t v, unsigned len)
{
        for (unsigned i = 0; i < len; i++)
                p[i] = (uint8_t)(v >> (8 * i));
}

static void emulate(struct iov_vfio_device *d, uint32_t offset, uint32_t len, bool on)
{
        memset(&d->emulated[offset], on ? 1 : 0, len);
}

static void config_emulate_header(struct iov_vfio_device *d)
{
        uint8_t *c = d->pci.config;
        emulate(d, IOV_PCI_COMMAND, 2, true);
        put_le(&c[IOV_PCI_COMMAND], 0, 2); /* decode off until the guest turns it on */
        emulate(d, IOV_PCI_STATUS, 1, true);
        c[IOV_PCI_STATUS] &= (uint8_t)~IOV_PCI_STATUS_CAP_LIST; /* set again with a cap */
        emulate(d, IOV_PCI_HEADER_TYPE, 1, true);
        c[IOV_PCI_HEADER_TYPE] &= 0x7f; /* PCI r3.0 §6.2.1: bit 7 multifunction */
        emulate(d, IOV_PCI_BAR0, 4 * IOV_PCI_NUM_BARS, true);
        memset(&c[IOV_PCI_BAR0], 0, 4 * IOV_PCI_NUM_BARS);
        emulate(d, 0x30, 4, true); /* expansion ROM */
        memset(&c[0x30], 0, 4);
        emulate(d, IOV_PCI_CAP_PTR, 1, true);
        c[IOV_PCI_CAP_PTR] = 0;
        /* The pin is the device's when INTx is offered (interrupts.c), else 0: no INTx.
         * The line is filled when the function gets its slot (vmm/pci.c). */
        emulate(d, IOV_PCI_INTERRUPT_LINE, 2, true);
        d->intx_pin = d->has_intx && c[IOV_PCI_INTERRUPT_PIN] <= 4 ? c[IOV_PCI_INTERRUPT_PIN] : 0;
        d->has_intx = d->intx_pin != 0;
        c[IOV_PCI_INTERRUPT_LINE] = 0;
        c[IOV_PCI_INTERRUPT_PIN] = d->intx_pin;
}

/* present_as: each id it names replaces the device's. The subsystem ids sit at 0x2c only
 * in a type 0 header (PCI r3.0 §6.2.1, Figure 6-1). */
static int config_present_as(struct iov_vfio_device *d)
{
        static const struct {
                unsigned field;
                uint32_t offset, len;
        } ids[] = {
                {IOV_VFIO_PRESENT_VENDOR_ID, 0x00, 2},
                {IOV_VFIO_PRESENT_DEVICE_ID, 0x02, 2},
                {IOV_VFIO_PRESENT_REVISION, 0x08, 1},
                {IOV_VFIO_PRESENT_SUBSYSTEM_VENDOR_ID, 0x2c, 2},
                {IOV_VFIO_PRESENT_SUBSYSTEM_ID, 0x2e, 2},
        };
        const struct iov_vfio_present_as *p = &d->present_as;
        const uint16_t values[] = {p->vendor_id, p->device_id, p->revision, p->subsystem_vendor_id,
                                   p->subsystem_id};
        const unsigned subsystem =
                IOV_VFIO_PRESENT_SUBSYSTEM_VENDOR_ID | IOV_VFIO_PRESENT_SUBSYSTEM_ID;
        if ((p->fields & subsystem) && (d->pci.config[IOV_PCI_HEADER_TYPE] & 0x7f) != 0) {
                log_error("%s: present_as: a bridge has no subsystem ids to present", d->name);
                return -EINVAL;
        }
        for (size_t i = 0; i < ARRAY_SIZE(ids); i++) {
                if (!(p->fields & ids[i].field))
                        continue;
                emulate(d, ids[i].offset, ids[i].len, true);
                put_le(&d->pci.config[ids[i].offset], values[i], ids[i].len);
        }
        return 0;
}

static bool cap_kept(uint8_t id)
{
        return id == CAP_ID_PM || id == CAP_ID_PCIE || id == CAP_ID_VENDOR;
}

/* MSI-X as the device has it (PCI r3.0 §6.8.2.2-§6.8.2.4). The PCI core keeps table and
 * PBA in one BAR, which is where devices put them. */
static int config_read_msix(struct iov_vfio_device *d, const uint8_t *phys, uint8_t p)
{
        uint32_t table = get_le(&phys[p + 4], 4), pba = get_le(&phys[p + 8], 4);
        if ((table & 7) != (pba & 7)) {
                log_error("%s: MSI-X table and PBA in different BARs are not supported", d->name);
                return -EOPNOTSUPP;
        }
        d->has_msix = true;
        d->msix_vectors = (uint16_t)((get_le(&phys[p + 2], 2) & 0x7ff) + 1);
        d->msix_bar = (uint8_t)(table & 7);
        d->msix_table_offset = table & ~7u;
        d->msix_pba_offset = pba & ~7u;
        return 0;
}

/* Relink the standard list (PCI r3.0 §6.7) through the kept capabilities, in the
 * device's order; MSI-X is added back at its own offset by the PCI core. */
static int config_filter_caps(struct iov_vfio_device *d, const uint8_t *phys, uint8_t *ret_msix)
{
        uint8_t *c = d->pci.config;
        uint32_t link = IOV_PCI_CAP_PTR;
        uint8_t p = (phys[IOV_PCI_STATUS] & IOV_PCI_STATUS_CAP_LIST) ? phys[IOV_PCI_CAP_PTR] : 0;
        *ret_msix = 0;
        for (unsigned n = 0; (p & ~3u) >= 0x40 && n < CAP_LIST_MAX; n++) {
                p &= (uint8_t)~3u;
                uint8_t id = phys[p], next = phys[p + 1];
                emulate(d, p, 2, true);
                if (id == CAP_ID_MSIX && *ret_msix == 0) {
                        int r = config_read_msix(d, phys, p);
                        if (r < 0)
                                return r;
                        *ret_msix = p;
                } else if (id == CAP_ID_MSI && !d->msi_offset) {
                        emulate(d, p, vfio_msi_emulate(d, p), true);
                        c[link] = p;
                        c[IOV_PCI_STATUS] |= IOV_PCI_STATUS_CAP_LIST;
                        link = p + 1u;
                } else if (cap_kept(id)) {
                        c[link] = p;
                        c[IOV_PCI_STATUS] |= IOV_PCI_STATUS_CAP_LIST;
                        link = p + 1u;
                } else {
                        c[p] = c[p + 1] = 0;
                }
                p = next;
        }
        c[link] = 0;
        return 0;
}

static int ext_cap_len(uint16_t id)
{
        for (size_t i = 0; i < ARRAY_SIZE(ext_caps_kept); i++)
                if (ext_caps_kept[i].id == id)
                        return ext_caps_kept[i].len;
        return -1;
}

/* Extended list (PCIe r5 §7.6.3): always starts at 0x100; a hidden first capability
 * leaves a header with ID 0 that only points on. Hidden bodies read as 0. */
static void config_filter_ext_caps(struct iov_vfio_device *d, const uint8_t *phys)
{
        uint8_t *c = d->pci.config;
        uint32_t end = d->config_size, link = 0x100, p = 0x100;
        emulate(d, 0x100, end - 0x100, true);
        memset(&c[0x100], 0, end - 0x100);
        for (unsigned n = 0; p >= 0x100 && p + 4 <= end && n < (end - 0x100) / 4; n++) {
                uint32_t header = get_le(&phys[p], 4);
                int len = ext_cap_len((uint16_t)(header & 0xffff));
                if (header != 0 && len > 0 && p + (uint32_t)len <= end) {
                        if (link != p) /* the previous header's next field, bits 31:20 */
                                put_le(&c[link], get_le(&c[link], 4) | p << 20, 4);
                        put_le(&c[p], header & 0xfffff, 4);
                        emulate(d, p + 4, (uint32_t)len - 4, false);
                        link = p;
                }
                p = (header >> 20) & 0xffc;
        }
}

int vfio_config_build(struct iov_vfio_device *d, const uint8_t *phys)
{
        if (d->config_size < 0x40 || d->config_size > IOV_PCI_CONFIG_SIZE)
                return -EINVAL;
        vmm_pci_device_init(&d->pci, d->name, (uint16_t)get_le(&phys[0], 2),
                            (uint16_t)get_le(&phys[2], 2), get_le(&phys[8], 4) >> 8, phys[8]);
        memcpy(d->pci.config, phys, d->config_size);
        memset(d->emulated, 1, sizeof(d->emulated));
        emulate(d, 0, d->config_size, false);
        config_emulate_header(d);
        int r = config_present_as(d);
        if (r < 0)
                return r;
        uint8_t msix_offset;
        r = config_filter_caps(d, phys, &msix_offset);
        if (r < 0)
                return r;
        if (d->config_size > 0x100)
                config_filter_ext_caps(d, phys);
        d->pci.opaque = d;
        d->pci.config_forward = vfio_config_forward;
        if (!msix_offset)
                return 0;
        /* The emulated capability goes where the device has its own. */
        d->pci.next_cap_offset = msix_offset;
        d->msix.vector_changed = vfio_interrupts_vector_changed;
        d->msix.opaque = d;
        r = vmm_pci_msix_init(&d->pci, &d->msix, d->msix_vectors, d->msix_bar, d->msix_table_offset,
                              d->msix_pba_offset);
        if (r >= 0)
                emulate(d, msix_offset, 12, true);
        return r;
}

/* The guest's decode and bus-master bits go to the device. Its INTx-disable bit too when
 * INTx is offered (vfio-pci emulates that bit by masking the interrupt, vfio_pci_config.c),
 * otherwise INTx stays disabled on the device. */
static void config_write_command(struct iov_vfio_device *d)
{
        const uint16_t guest_bits = IOV_PCI_COMMAND_IO | IOV_PCI_COMMAND_MEMORY |
                                    IOV_PCI_COMMAND_MASTER |
                                    (d->has_intx ? IOV_PCI_COMMAND_INTX_DISABLE : 0);
        uint64_t base = d->regions[VFIO_PCI_CONFIG_REGION_INDEX].offset;
        uint8_t raw[2];
        if (pread(d->fd, raw, 2, (off_t)(base + IOV_PCI_COMMAND)) != 2)
                return;
        uint16_t cmd = (uint16_t)get_le(raw, 2), guest = (uint16_t)get_le(&d->pci.config[4], 2);
        cmd = (uint16_t)((cmd & ~guest_bits) | (guest & guest_bits) |
                         (d->has_intx ? 0 : IOV_PCI_COMMAND_INTX_DISABLE));
        put_le(raw, cmd, 2);
        if (pwrite(d->fd, raw, 2, (off_t)(base + IOV_PCI_COMMAND)) != 2)
                log_debug("%s: writing the command register: %m", d->name);
}

void vfio_config_quiesce(struct iov_vfio_device *d)
{
        const uint16_t off = IOV_PCI_COMMAND_IO | IOV_PCI_COMMAND_MEMORY | IOV_PCI_COMMAND_MASTER;
        uint64_t base = d->regions[VFIO_PCI_CONFIG_REGION_INDEX].offset;
        uint8_t raw[2];
        if (d->fd < 0 || pread(d->fd, raw, 2, (off_t)(base + IOV_PCI_COMMAND)) != 2)
                return;
        put_le(raw, (get_le(raw, 2) & ~off) | IOV_PCI_COMMAND_INTX_DISABLE, 2);
        if (pwrite(d->fd, raw, 2, (off_t)(base + IOV_PCI_COMMAND)) != 2)
                log_debug("%s: clearing bus master: %m", d->name);
}

/* Forward the device's bytes of a write, in runs of consecutive bytes. */
static void config_forward_write(struct iov_vfio_device *d, uint32_t offset, const uint8_t *data,
                                 uint32_t len)
{
        uint64_t base = d->regions[VFIO_PCI_CONFIG_REGION_INDEX].offset;
        for (uint32_t i = 0; i < len;) {
                if (d->emulated[offset + i]) {
                        i++;
                        continue;
                }
                uint32_t run = 1;
                while (i + run < len && !d->emulated[offset + i + run])
                        run++;
                if (pwrite(d->fd, data + i, run, (off_t)(base + offset + i)) != (ssize_t)run)
                        log_debug("%s: config write at 0x%x: %m", d->name, offset + i);
                i += run;
        }
        if (offset < IOV_PCI_COMMAND + 2 && offset + len > IOV_PCI_COMMAND)
                config_write_command(d);
        if (vfio_msi_written(d, offset, len))
                vfio_interrupts_msi_written(d);
}

void vfio_config_forward(struct iov_pci_device *pci, uint32_t offset, uint8_t *data, uint32_t len,
                         bool is_write)
{
        struct iov_vfio_device *d = pci->opaque;
        /* The core checked offset + len against the config space size. */
        if (is_write) {
                config_forward_write(d, offset, data, len);
                return;
        }
        if (offset >= d->config_size || len > d->config_size - offset || len > 8)
                return;
        bool live = false;
        for (uint32_t i = 0; i < len; i++)
                live = live || !d->emulated[offset + i];
        if (!live)
                return;
        uint8_t bytes[8];
        uint64_t base = d->regions[VFIO_PCI_CONFIG_REGION_INDEX].offset;
        if (pread(d->fd, bytes, len, (off_t)(base + offset)) != (ssize_t)len)
                memset(bytes, 0xff, len);
        for (uint32_t i = 0; i < len; i++)
                if (!d->emulated[offset + i])
                        data[i] = bytes[i];
}
