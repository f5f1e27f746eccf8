/* SPDX-License-Identifier: MIT */
/* PCI host bridge and device core: config mechanism #1 and ECAM, BAR sizing and moves,
 * capabilities, MSI-X table (no /dev/kvm needed). */
#include "fake-vm.h"
#include "vmm/pci.h"

#define CF8 0xcf8
#define CFC 0xcfc

static uint32_t cfg_read(struct iov_vm *vm, unsigned slot, unsigned reg)
{
        pio_write(vm, CF8, 0x80000000u | slot << 11 | reg, 4);
        return pio_read(vm, CFC, 4);
}

static void cfg_write(struct iov_vm *vm, unsigned slot, unsigned reg, uint32_t v)
{
        pio_write(vm, CF8, 0x80000000u | slot << 11 | reg, 4);
        pio_write(vm, CFC, v, 4);
}

struct bar_hits {
        unsigned calls;
        uint64_t last_offset;
};

static void bar_access(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
        struct bar_hits *h = opaque;
        h->calls++;
        h->last_offset = offset;
        if (!is_write)
                memset(data, 0xab, len);
}

static uint32_t mmio_read32(struct iov_vm *vm, uint64_t addr)
{
        uint8_t d[4];
        vmm_bus_access(&vm->mmio, addr, d, 4, false);
        uint32_t v;
        memcpy(&v, d, 4);
        return v;
}

Test(vmm_pci, host_bridge_answers_both_mechanisms)
{
        struct iov_vm *vm = fake_vm_new();
        fake_vm_add_device(vm, "pci-host");
        uint32_t id = cfg_read(vm, 0, 0);
        cr_expect_eq(id, 0x00081b36u, "vendor/device via CF8: 0x%08x", id);
        uint32_t cls = cfg_read(vm, 0, 8) >> 8;
        cr_expect_eq(cls, 0x060000u, "class 0x%06x", cls);
        id = mmio_read32(vm, IOV_MEM_ECAM_START);
        cr_expect_eq(id, 0x00081b36u, "vendor/device via ECAM: 0x%08x", id);
        id = cfg_read(vm, 7, 0);
        cr_expect_eq(id, 0xffffffffu, "empty slot: 0x%08x", id);
        /* Function 1, bus 1, and a disabled CF8 read as no device. */
        pio_write(vm, CF8, 0x80000100u, 4);
        cr_expect_eq(pio_read(vm, CFC, 4), 0xffffffffu, "function 1");
        pio_write(vm, CF8, 0x80010000u, 4);
        cr_expect_eq(pio_read(vm, CFC, 4), 0xffffffffu, "bus 1");
        pio_write(vm, CF8, 0x00000000u, 4);
        cr_expect_eq(pio_read(vm, CFC, 4), 0xffffffffu, "enable bit clear");
        /* CF8 reads back what was written. */
        pio_write(vm, CF8, 0x80001234u & ~3u, 4);
        cr_expect_eq(pio_read(vm, CF8, 4), 0x80001234u & ~3u, "CF8 reads 0x%x",
                     pio_read(vm, CF8, 4));
        /* The ids are read-only. */
        cfg_write(vm, 0, 0, 0);
        cr_expect_eq(cfg_read(vm, 0, 0), 0x00081b36u, "vendor id was writable");
        fake_vm_free(vm);
}

static void mmio_write(struct iov_vm *vm, uint64_t addr, uint32_t v, uint32_t len)
{
        uint8_t d[4];
        memcpy(d, &v, 4);
        vmm_bus_access(&vm->mmio, addr, d, len, true);
}

/* ECAM address of bus 0, slot, register (PCIe r5 §7.2.2). */
static uint64_t ecam(unsigned slot, unsigned reg)
{
        return IOV_MEM_ECAM_START + ((uint64_t)slot << 15) + reg;
}

/* Writes through one mechanism are what the other reads, for every access size. */
Test(vmm_pci, ecam_and_cf8_see_the_same_config_space)
{
        struct iov_vm *vm = fake_vm_new();
        fake_vm_add_device(vm, "pci-host");
        mmio_write(vm, ecam(0, IOV_PCI_INTERRUPT_LINE), 0x5a, 1);
        uint32_t v = cfg_read(vm, 0, IOV_PCI_INTERRUPT_LINE) & 0xff;
        cr_expect_eq(v, 0x5au, "ECAM byte write, CF8 read: 0x%x", v);
        cfg_write(vm, 0, IOV_PCI_COMMAND, IOV_PCI_COMMAND_MEMORY | IOV_PCI_COMMAND_MASTER);
        uint8_t w[2];
        vmm_bus_access(&vm->mmio, ecam(0, IOV_PCI_COMMAND), w, 2, false);
        cr_expect_eq(w[0], IOV_PCI_COMMAND_MEMORY | IOV_PCI_COMMAND_MASTER,
                     "CF8 write, ECAM word read: 0x%x", w[0]);
        for (unsigned reg = 0; reg < 0x40; reg += 4) {
                uint32_t a = cfg_read(vm, 0, reg), b = mmio_read32(vm, ecam(0, reg));
                cr_expect_eq(a, b, "register 0x%02x: CF8 0x%08x, ECAM 0x%08x", reg, a, b);
        }
        /* Only ECAM reaches extended config space (0x100-0xfff); no capability there. */
        v = mmio_read32(vm, ecam(0, 0x100));
        cr_expect_eq(v, 0u, "extended capability header 0x%08x", v);
        /* Empty slot, function 1, bus 1, and an access crossing 4 KiB read all ones. */
        cr_expect_eq(mmio_read32(vm, ecam(7, 0)), 0xffffffffu, "empty slot");
        cr_expect_eq(mmio_read32(vm, ecam(0, 0) + (1u << 12)), 0xffffffffu, "function 1");
        cr_expect_eq(mmio_read32(vm, ecam(0, 0) + (1u << 20)), 0xffffffffu, "bus 1");
        cr_expect_eq(mmio_read32(vm, ecam(0, 0xffe)), 0xffffffffu, "access across 4 KiB");
        fake_vm_free(vm);
}

Test(vmm_pci, bar_sizing_and_moves_follow_the_spec)
{
        struct iov_vm *vm = fake_vm_new();
        fake_vm_add_device(vm, "pci-host");
        static struct iov_pci_device dev;
        struct bar_hits hits = {0};
        vmm_pci_device_init(&dev, "testdev", 0x1af4, 0x1042, 0x010000, 1);
        cr_assert_eq(vmm_pci_device_set_bar(&dev, 0, IOV_PCI_BAR_MEM32, 0x4000, false, bar_access,
                                            &hits),
                     0);
        cr_assert_eq(vmm_pci_device_set_bar(&dev, 2, IOV_PCI_BAR_MEM64, 0x100000, true, bar_access,
                                            &hits),
                     0);
        cr_expect_eq(vmm_pci_device_set_bar(&dev, 5, IOV_PCI_BAR_MEM64, 0x1000, false, bar_access,
                                            &hits),
                     -EINVAL, "64-bit BAR in the last slot accepted");
        cr_expect_eq(vmm_pci_device_set_bar(&dev, 1, IOV_PCI_BAR_MEM32, 0x3000, false, bar_access,
                                            &hits),
                     -EINVAL, "size not a power of two accepted");
        cr_assert_eq(vmm_pci_register_device(vm, &dev), 0);
        unsigned slot = dev.slot;
        cr_expect_eq(slot, 1u, "slot %u", slot);

        uint32_t bar0 = cfg_read(vm, slot, 0x10);
        cr_expect_eq(bar0 & 0xf, 0u, "BAR0 flags 0x%x", bar0 & 0xf);
        cr_expect_eq(bar0 % 0x4000, 0u, "BAR0 not naturally aligned: 0x%x", bar0);
        /* Decoding is off until the command register enables memory. */
        uint64_t addr = bar0;
        cr_expect_eq(mmio_read32(vm, addr), 0xffffffffu, "BAR decoded with memory off");
        cfg_write(vm, slot, 0x04, IOV_PCI_COMMAND_MEMORY);
        cr_expect_eq(mmio_read32(vm, addr + 8), 0xababababu, "BAR not decoded");
        cr_expect_eq(hits.last_offset, 8u, "offset %llu", (unsigned long long)hits.last_offset);

        /* Sizing: all ones reads back the size mask with the flags. */
        cfg_write(vm, slot, 0x10, 0xffffffff);
        uint32_t mask = cfg_read(vm, slot, 0x10);
        cr_expect_eq(mask, 0xffffc000u, "BAR0 size mask 0x%08x", mask);
        uint32_t bar2 = cfg_read(vm, slot, 0x18);
        cr_expect_eq(bar2 & 0xf, 0xcu, "BAR2 flags (64-bit, prefetchable) 0x%x", bar2 & 0xf);
        cfg_write(vm, slot, 0x18, 0xffffffff);
        cfg_write(vm, slot, 0x1c, 0xffffffff);
        cr_expect_eq(cfg_read(vm, slot, 0x18), 0xfff0000cu, "BAR2 low mask 0x%08x",
                     cfg_read(vm, slot, 0x18));
        cr_expect_eq(cfg_read(vm, slot, 0x1c), 0xffffffffu, "BAR2 high mask");

        /* Move BAR0: the old range goes, the new one answers. */
        cfg_write(vm, slot, 0x10, 0xd0000000);
        cr_expect_eq(mmio_read32(vm, addr), 0xffffffffu, "old BAR address still decoded");
        cr_expect_eq(mmio_read32(vm, 0xd0000000), 0xababababu, "new BAR address not decoded");
        cr_expect_eq(vmm_pci_device_bar_address(&dev, 0), 0xd0000000u, "BAR0 at 0x%llx",
                     (unsigned long long)vmm_pci_device_bar_address(&dev, 0));
        /* 64-bit BAR above 4 GiB. */
        cfg_write(vm, slot, 0x18, 0x00000000);
        cfg_write(vm, slot, 0x1c, 0x00000001);
        cr_expect_eq(vmm_pci_device_bar_address(&dev, 2), 0x100000000u, "BAR2 0x%llx",
                     (unsigned long long)vmm_pci_device_bar_address(&dev, 2));
        cr_expect_eq(mmio_read32(vm, 0x100000000ULL + 16), 0xababababu, "BAR2 above 4 GiB");
        /* Memory decode off: nothing answers. */
        cfg_write(vm, slot, 0x04, 0);
        cr_expect_eq(mmio_read32(vm, 0xd0000000), 0xffffffffu, "BAR decoded after disable");
        fake_vm_free(vm);
}

/* Placement: a 64-bit prefetchable BAR of IOV_PCI_BAR_HIGH_MIN or more goes above RAM
 * (here 4 GiB: a VM without RAM above it), naturally aligned; a smaller one, or a large
 * non-prefetchable one, stays in the window below 4 GiB. */
Test(vmm_pci, large_prefetchable_64bit_bars_go_above_4gib)
{
        struct iov_vm *vm = fake_vm_new();
        fake_vm_add_device(vm, "pci-host");
        static struct iov_pci_device dev;
        struct bar_hits hits = {0};
        vmm_pci_device_init(&dev, "bigbar", 0x1b36, 0x0010, 0x010802, 2);
        cr_assert_eq(vmm_pci_device_set_bar(&dev, 0, IOV_PCI_BAR_MEM64, 0x4000, false, bar_access,
                                            &hits),
                     0);
        cr_assert_eq(vmm_pci_device_set_bar(&dev, 2, IOV_PCI_BAR_MEM64, IOV_PCI_BAR_HIGH_MIN, true,
                                            bar_access, &hits),
                     0);
        cr_assert_eq(vmm_pci_device_set_bar(&dev, 4, IOV_PCI_BAR_MEM64, 256ULL << 20, false,
                                            bar_access, &hits),
                     0);
        cr_assert_eq(vmm_pci_register_device(vm, &dev), 0);
        uint64_t bar0 = vmm_pci_device_bar_address(&dev, 0);
        uint64_t bar2 = vmm_pci_device_bar_address(&dev, 2);
        uint64_t bar4 = vmm_pci_device_bar_address(&dev, 4);
        cr_expect(bar0 >= 0xc0000000u && bar0 < 0xe0000000u, "small BAR0 at 0x%llx",
                  (unsigned long long)bar0);
        cr_expect(bar2 >= 0x100000000ULL, "large prefetchable BAR2 at 0x%llx, below 4 GiB",
                  (unsigned long long)bar2);
        cr_expect_eq(bar2 % IOV_PCI_BAR_HIGH_MIN, 0u, "BAR2 0x%llx not naturally aligned",
                     (unsigned long long)bar2);
        cr_expect(bar4 >= 0xc0000000u && bar4 + (256ULL << 20) <= 0xe0000000u,
                  "non-prefetchable BAR4 at 0x%llx", (unsigned long long)bar4);
        /* The guest reads the high half from BAR3. */
        cr_expect_eq(cfg_read(vm, dev.slot, 0x1c), (uint32_t)(bar2 >> 32), "BAR3 0x%08x",
                     cfg_read(vm, dev.slot, 0x1c));
        cfg_write(vm, dev.slot, 0x04, IOV_PCI_COMMAND_MEMORY);
        cr_expect_eq(mmio_read32(vm, bar2 + 0x100), 0xababababu, "BAR2 not decoded above 4 GiB");
        fake_vm_free(vm);
}

Test(vmm_pci, capabilities_form_a_list)
{
        struct iov_vm *vm = fake_vm_new();
        fake_vm_add_device(vm, "pci-host");
        static struct iov_pci_device dev;
        vmm_pci_device_init(&dev, "capdev", 0x1af4, 0x1041, 0x020000, 1);
        uint8_t vendor_cap[8] = {IOV_PCI_CAP_ID_VENDOR, 0, 8, 1, 2, 3, 4, 5};
        uint8_t off1, off2;
        cr_assert_eq(vmm_pci_device_add_capability(&dev, vendor_cap, 8, NULL, &off1), 0);
        cr_assert_eq(vmm_pci_device_add_capability(&dev, vendor_cap, 8, NULL, &off2), 0);
        cr_assert_eq(vmm_pci_register_device(vm, &dev), 0);
        uint32_t status = cfg_read(vm, dev.slot, 0x04) >> 16;
        cr_expect(status & IOV_PCI_STATUS_CAP_LIST, "status 0x%x without capability list", status);
        uint8_t first = (uint8_t)cfg_read(vm, dev.slot, 0x34);
        cr_expect_eq(first, off1, "capability pointer 0x%x", first);
        uint32_t c1 = cfg_read(vm, dev.slot, off1);
        cr_expect_eq(c1 & 0xff, IOV_PCI_CAP_ID_VENDOR, "first capability id 0x%x", c1 & 0xff);
        cr_expect_eq((c1 >> 8) & 0xff, off2, "next pointer 0x%x", (c1 >> 8) & 0xff);
        cr_expect_eq((cfg_read(vm, dev.slot, off2) >> 8) & 0xff, 0u, "list not terminated");
        fake_vm_free(vm);
}

struct msix_device {
        struct iov_pci_device pci;
        struct iov_pci_msix msix;
        unsigned changes;
        uint16_t last_vector;
};

static void msix_bar(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
        struct msix_device *d = opaque;
        if (!vmm_pci_msix_bar_access(&d->msix, offset, data, len, is_write) && !is_write)
                memset(data, 0, len);
}

static void msix_changed(struct iov_pci_msix *msix, uint16_t vector, void *opaque)
{
        struct msix_device *d = opaque;
        (void)msix;
        d->changes++;
        d->last_vector = vector;
}

Test(vmm_pci, msix_table_and_enable)
{
        struct iov_vm *vm = fake_vm_new();
        fake_vm_add_device(vm, "pci-host");
        static struct msix_device d;
        vmm_pci_device_init(&d.pci, "msixdev", 0x1af4, 0x1041, 0x020000, 1);
        cr_assert_eq(
                vmm_pci_device_set_bar(&d.pci, 1, IOV_PCI_BAR_MEM32, 0x1000, false, msix_bar, &d),
                0);
        d.msix.vector_changed = msix_changed;
        d.msix.opaque = &d;
        cr_assert_eq(vmm_pci_msix_init(&d.pci, &d.msix, 4, 1, 0x0, 0x800), 0);
        cr_assert_eq(vmm_pci_register_device(vm, &d.pci), 0);
        unsigned slot = d.pci.slot;
        uint8_t cap = (uint8_t)cfg_read(vm, slot, 0x34);
        uint32_t hdr = cfg_read(vm, slot, cap);
        cr_expect_eq(hdr & 0xff, IOV_PCI_CAP_ID_MSIX, "cap id 0x%x", hdr & 0xff);
        cr_expect_eq((hdr >> 16) & 0x7ff, 3u, "table size field %u", (hdr >> 16) & 0x7ff);
        cr_expect_eq(cfg_read(vm, slot, cap + 4), 0x1u, "table offset/BIR");
        cr_expect_eq(cfg_read(vm, slot, cap + 8), 0x801u, "PBA offset/BIR");

        cfg_write(vm, slot, 0x04, IOV_PCI_COMMAND_MEMORY);
        uint64_t bar = vmm_pci_device_bar_address(&d.pci, 1);
        uint8_t v[4];
        uint32_t ctrl = 0x1;
        vmm_bus_access(&vm->mmio, bar + 16 + 12, (uint8_t *)&ctrl, 4, false);
        /* Vectors start masked. */
        memcpy(&ctrl, (uint8_t[4]){0}, 4);
        vmm_bus_access(&vm->mmio, bar + 16 + 12, v, 4, false);
        cr_expect_eq(v[0] & 1, 1, "vector 1 not masked at reset");

        uint32_t addr = 0xfee00000, data = 0x4041;
        vmm_bus_access(&vm->mmio, bar + 16, (uint8_t *)&addr, 4, true);
        vmm_bus_access(&vm->mmio, bar + 16 + 8, (uint8_t *)&data, 4, true);
        cr_expect_eq(d.last_vector, 1, "change callback vector %u", d.last_vector);
        struct iov_msi_message msg;
        bool masked;
        cr_assert_eq(vmm_pci_msix_vector(&d.msix, 1, &msg, &masked), 0);
        cr_expect_eq(msg.address, 0xfee00000u, "MSI address 0x%llx",
                     (unsigned long long)msg.address);
        cr_expect_eq(msg.data, 0x4041u, "MSI data 0x%x", msg.data);
        cr_expect(masked, "vector usable while MSI-X disabled");
        cr_expect_eq(vmm_pci_msix_vector(&d.msix, 4, &msg, &masked), -EINVAL,
                     "vector 4 of 4 accepted");

        /* Enable MSI-X (message control bit 15) and unmask vector 1. */
        unsigned before = d.changes;
        cfg_write(vm, slot, cap, hdr | 0x80000000u);
        cr_expect_gt(d.changes, before, "no callback on MSI-X enable");
        cr_expect(vmm_pci_msix_enabled(&d.msix), "MSI-X not enabled");
        ctrl = 0;
        vmm_bus_access(&vm->mmio, bar + 16 + 12, (uint8_t *)&ctrl, 4, true);
        cr_assert_eq(vmm_pci_msix_vector(&d.msix, 1, &msg, &masked), 0);
        cr_expect_not(masked, "vector 1 still masked");
        /* Unaligned or odd-sized table accesses are ignored. */
        uint16_t junk = 0xffff;
        vmm_bus_access(&vm->mmio, bar + 16 + 2, (uint8_t *)&junk, 2, true);
        cr_assert_eq(vmm_pci_msix_vector(&d.msix, 1, &msg, NULL), 0);
        cr_expect_eq(msg.address, 0xfee00000u, "2-byte write changed the table: 0x%llx",
                     (unsigned long long)msg.address);
        vmm_pci_msix_done(&d.msix);
        fake_vm_free(vm);
}

static uint32_t cfg_read_function(struct iov_vm *vm, unsigned slot, unsigned function, unsigned reg)
{
        pio_write(vm, CF8, 0x80000000u | slot << 11 | function << 8 | reg, 4);
        return pio_read(vm, CFC, 4);
}

/* A multi-function slot: functions 1..7 answer beside function 0 through both mechanisms,
 * function 0's header type says multi-function (PCI r3.0 §6.2.1: bit 7), and a function
 * whose slot has no function 0 is refused (software would never scan it). */
Test(vmm_pci, functions_share_a_slot_behind_function_0)
{
        struct iov_vm *vm = fake_vm_new();
        fake_vm_add_device(vm, "pci-host");
        static struct iov_pci_device f0, f1, orphan, twice;
        vmm_pci_device_init(&f0, "port0", 0x8086, 0x10c9, 0x020000, 1);
        vmm_pci_device_init(&f1, "port1", 0x8086, 0x10ca, 0x020000, 1);
        vmm_pci_device_init(&orphan, "orphan", 0x8086, 0x10cb, 0x020000, 1);
        vmm_pci_device_init(&twice, "twice", 0x8086, 0x10cc, 0x020000, 1);
        f0.requested_slot = 5;
        f1.requested_slot = 5;
        f1.requested_function = 1;
        orphan.requested_slot = 6;
        orphan.requested_function = 1;
        cr_expect_eq(vmm_pci_register_device(vm, &orphan), -ENODEV, "function 1 without 0");
        cr_assert_eq(vmm_pci_register_device(vm, &f0), 0);
        cr_expect_eq(cfg_read_function(vm, 5, 0, IOV_PCI_HEADER_TYPE & ~3u) >> 16 & 0xff, 0,
                     "single-function header type");
        cr_assert_eq(vmm_pci_register_device(vm, &f1), 0);
        cr_expect_eq(f1.slot, 5);
        cr_expect_eq(f1.function, 1);
        twice.requested_slot = 5;
        twice.requested_function = 1;
        cr_expect_eq(vmm_pci_register_device(vm, &twice), -EADDRINUSE, "function 1 twice");

        cr_expect_eq(cfg_read_function(vm, 5, 0, 0), 0x10c98086u, "05.0: 0x%08x",
                     cfg_read_function(vm, 5, 0, 0));
        cr_expect_eq(cfg_read_function(vm, 5, 1, 0), 0x10ca8086u, "05.1: 0x%08x",
                     cfg_read_function(vm, 5, 1, 0));
        cr_expect_eq(mmio_read32(vm, IOV_MEM_ECAM_START | 5u << 15 | 1u << 12), 0x10ca8086u,
                     "05.1 via ECAM");
        cr_expect_eq(cfg_read_function(vm, 5, 2, 0), 0xffffffffu, "05.2 is empty");
        cr_expect_eq(cfg_read_function(vm, 6, 1, 0), 0xffffffffu, "06.1 was refused");
        uint32_t header = cfg_read_function(vm, 5, 0, IOV_PCI_HEADER_TYPE & ~3u) >> 16 & 0xff;
        cr_expect_eq(header, 0x80, "05.0 header type 0x%02x: multi-function, type 0", header);
        /* Read-only: the guest cannot clear it. */
        cfg_write(vm, 5, IOV_PCI_HEADER_TYPE & ~3u, 0);
        header = cfg_read_function(vm, 5, 0, IOV_PCI_HEADER_TYPE & ~3u) >> 16 & 0xff;
        cr_expect_eq(header, 0x80, "header type after a write 0x%02x", header);
        fake_vm_free(vm);
}
