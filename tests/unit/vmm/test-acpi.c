/* SPDX-License-Identifier: MIT */
/* ACPI tables and the PM1 registers (no /dev/kvm needed). */
#include "fake-vm.h"
#include "vmm/kvm.h"

static uint8_t sum(const uint8_t *p, size_t len)
{
        uint8_t s = 0;
        for (size_t i = 0; i < len; i++)
                s += p[i];
        return s;
}

static uint64_t get(const uint8_t *p, unsigned len)
{
        uint64_t v = 0;
        for (unsigned i = 0; i < len; i++)
                v |= (uint64_t)p[i] << (8 * i);
        return v;
}

/* The table at gpa, after checking its signature, length and checksum. */
static const uint8_t *table(struct iov_vm *vm, uint64_t gpa, const char *signature)
{
        const uint8_t *t = vmm_memory_ptr(vm->mem, gpa, 36);
        cr_assert_not_null(t, "%s at 0x%llx outside RAM", signature, (unsigned long long)gpa);
        cr_assert_eq(memcmp(t, signature, 4), 0, "expected %s at 0x%llx", signature,
                     (unsigned long long)gpa);
        uint32_t len = (uint32_t)get(t + 4, 4);
        t = vmm_memory_ptr(vm->mem, gpa, len);
        cr_assert_not_null(t);
        cr_expect_eq(sum(t, len), 0, "%s checksum", signature);
        return t;
}

/* Linux's search: "RSD PTR " on a 16-byte boundary in 0xe0000-0xfffff (ACPI 6.4 §5.2.5.1). */
static uint64_t find_rsdp(struct iov_vm *vm)
{
        for (uint64_t a = 0xe0000; a < 0x100000; a += 16) {
                const uint8_t *p = vmm_memory_ptr(vm->mem, a, 8);
                if (memcmp(p, "RSD PTR ", 8) == 0)
                        return a;
        }
        return 0;
}

Test(vmm_acpi, tables_chain_and_checksum)
{
        struct iov_vm *vm = fake_vm_new();
        vm->n_vcpus = 4;
        cr_assert_eq(vmm_memory_new(16 << 20, &vm->mem), 0);
        cr_assert_eq(vmm_acpi_write(vm), 0);

        uint64_t rsdp_addr = find_rsdp(vm);
        cr_assert_neq(rsdp_addr, 0u, "no RSDP in the BIOS area");
        const uint8_t *rsdp = vmm_memory_ptr(vm->mem, rsdp_addr, 36);
        cr_expect_eq(sum(rsdp, 20), 0, "RSDP checksum");
        cr_expect_eq(sum(rsdp, 36), 0, "RSDP extended checksum");
        cr_expect_eq(rsdp[15], 2, "RSDP revision %u", rsdp[15]);

        const uint8_t *xsdt = table(vm, get(rsdp + 24, 8), "XSDT");
        uint32_t n = ((uint32_t)get(xsdt + 4, 4) - 36) / 8;
        cr_assert_eq(n, 3u, "XSDT entries %u", n);
        const uint8_t *fadt = table(vm, get(xsdt + 36, 8), "FACP");
        const uint8_t *madt = table(vm, get(xsdt + 44, 8), "APIC");
        table(vm, get(xsdt + 52, 8), "MCFG");
        const uint8_t *dsdt = table(vm, get(fadt + 140, 8), "DSDT");
        uint32_t dlen = (uint32_t)get(dsdt + 4, 4);
        cr_expect_not_null(memmem(dsdt, dlen, "PCI0", 4), "no PCI root bridge in the DSDT");
        cr_expect_not_null(memmem(dsdt, dlen, "\x41\xd0\x0a\x03", 4), "no PNP0A03 _HID");
        cr_expect_not_null(memmem(dsdt, dlen, "_S5_", 4), "no _S5 in the DSDT");
        const uint8_t *facs = vmm_memory_ptr(vm->mem, get(fadt + 132, 8), 64);
        cr_expect_eq(memcmp(facs, "FACS", 4), 0, "no FACS");
        cr_expect_eq(get(fadt + 132, 8) % 64, 0u, "FACS not 64-byte aligned");
        cr_expect_eq(get(fadt + 36, 4), 0u, "FIRMWARE_CTRL set beside X_FIRMWARE_CTRL");
        cr_expect_eq(get(fadt + 109, 2) & 2, 2u, "8042 flag missing from IAPC_BOOT_ARCH");
        cr_expect_eq(get(fadt + 46, 2), 9u, "SCI_INT %llu", (unsigned long long)get(fadt + 46, 2));

        unsigned cpus = 0, ioapics = 0;
        uint32_t mlen = (uint32_t)get(madt + 4, 4);
        for (uint32_t o = 44; o < mlen; o += madt[o + 1]) {
                cr_assert_gt(madt[o + 1], 0, "zero-length MADT entry at %u", o);
                if (madt[o] == 0)
                        cr_expect_eq(madt[o + 3], cpus++, "APIC id of processor %u", cpus);
                if (madt[o] == 1) {
                        ioapics++;
                        cr_expect_eq(get(madt + o + 4, 4), 0xfec00000u, "IOAPIC address");
                }
        }
        cr_expect_eq(cpus, 4u, "processors %u", cpus);
        cr_expect_eq(ioapics, 1u, "IOAPICs %u", ioapics);
        vmm_memory_free(vm->mem);
        fake_vm_free(vm);
}

/* The MCFG allocation (PCI Firmware Spec r3.2 §4.1.2) names the ECAM window and only bus
 * 0, and the host bridge's _CRS decodes the same bus range. */
/* _PRT (ACPI 6.4 §6.2.13): Package (4) { slot << 16 | 0xffff, pin, Zero, GSI } for every
 * slot and pin, the GSI being the one vmm/irq.c wires and the MP table names. */
Test(vmm_acpi, prt_routes_every_slot_and_pin_to_its_gsi)
{
        struct iov_vm *vm = fake_vm_new();
        cr_assert_eq(vmm_memory_new(16 << 20, &vm->mem), 0);
        cr_assert_eq(vmm_acpi_write(vm), 0);
        const uint8_t *rsdp = vmm_memory_ptr(vm->mem, find_rsdp(vm), 36);
        const uint8_t *xsdt = table(vm, get(rsdp + 24, 8), "XSDT");
        const uint8_t *fadt = table(vm, get(xsdt + 36, 8), "FACP");
        const uint8_t *dsdt = table(vm, get(fadt + 140, 8), "DSDT");
        size_t dlen = (size_t)get(dsdt + 4, 4);
        cr_assert_not_null(memmem(dsdt, dlen, "_PRT", 4), "no _PRT in the DSDT");
        for (unsigned slot = 0; slot < 32; slot++) {
                for (unsigned pin = 0; pin < 4; pin++) {
                        uint32_t address = slot << 16 | 0xffff;
                        const uint8_t entry[] = {0x12,
                                                 12,
                                                 0x04,
                                                 0x0c,
                                                 (uint8_t)address,
                                                 (uint8_t)(address >> 8),
                                                 (uint8_t)(address >> 16),
                                                 (uint8_t)(address >> 24),
                                                 0x0a,
                                                 (uint8_t)pin,
                                                 0x00,
                                                 0x0a,
                                                 (uint8_t)vmm_pci_intx_gsi(slot, pin + 1)};
                        cr_expect_not_null(memmem(dsdt, dlen, entry, sizeof(entry)),
                                           "no _PRT entry for slot %u pin %u", slot, pin);
                }
        }
        /* _CRS: the 64-bit window above RAM (a 16 MiB VM: it starts at 4 GiB) as a QWord
         * memory descriptor (§6.4.3.5.1), prefetchable. */
        uint64_t lo = 0x100000000ULL, hi = lo + IOV_MEM_PCI64_SIZE - 1;
        uint8_t qword[46] = {0x8a, 43, 0, 0, 0x0c, 0x07};
        for (unsigned b = 0; b < 8; b++) {
                qword[14 + b] = (uint8_t)(lo >> (8 * b));
                qword[22 + b] = (uint8_t)(hi >> (8 * b));
                qword[38 + b] = (uint8_t)(IOV_MEM_PCI64_SIZE >> (8 * b));
        }
        cr_expect_not_null(memmem(dsdt, dlen, qword, sizeof(qword)),
                           "no QWordMemory of the 64-bit window in PCI0's _CRS");
        cr_expect_eq(vmm_pci_intx_gsi(3, 1), 19u, "slot 3 INTA -> GSI %u", vmm_pci_intx_gsi(3, 1));
        cr_expect_eq(vmm_pci_intx_gsi(3, 2), 16u, "slot 3 INTB -> GSI %u", vmm_pci_intx_gsi(3, 2));
        cr_expect_eq(vmm_pci_intx_gsi(3, 0), 0u, "no pin -> GSI %u", vmm_pci_intx_gsi(3, 0));
        vmm_memory_free(vm->mem);
        fake_vm_free(vm);
}

Test(vmm_acpi, mcfg_announces_ecam_for_bus_0)
{
        struct iov_vm *vm = fake_vm_new();
        vm->n_vcpus = 32; /* the largest MADT must not run into the MCFG */
        cr_assert_eq(vmm_memory_new(16 << 20, &vm->mem), 0);
        cr_assert_eq(vmm_acpi_write(vm), 0);
        const uint8_t *rsdp = vmm_memory_ptr(vm->mem, find_rsdp(vm), 36);
        const uint8_t *xsdt = table(vm, get(rsdp + 24, 8), "XSDT");
        const uint8_t *madt = table(vm, get(xsdt + 44, 8), "APIC");
        cr_expect_eq(get(madt + 4, 4), 44u + 32 * 8 + 12 + 10 + 6, "MADT length");
        const uint8_t *mcfg = table(vm, get(xsdt + 52, 8), "MCFG");
        cr_assert_eq(get(mcfg + 4, 4), 60u, "MCFG length %llu",
                     (unsigned long long)get(mcfg + 4, 4));
        cr_expect_eq(mcfg[8], 1, "MCFG revision %u", mcfg[8]);
        cr_expect_eq(get(mcfg + 36, 8), 0u, "MCFG reserved bytes");
        cr_expect_eq(get(mcfg + 44, 8), IOV_MEM_ECAM_START, "ECAM base 0x%llx",
                     (unsigned long long)get(mcfg + 44, 8));
        cr_expect_eq(get(mcfg + 52, 2), 0u, "segment %llu", (unsigned long long)get(mcfg + 52, 2));
        cr_expect_eq(mcfg[54], 0, "start bus %u", mcfg[54]);
        cr_expect_eq(mcfg[55], 0, "end bus %u", mcfg[55]);

        /* _CRS bus number descriptor: word address space, type 2, min 0, max 0, length 1. */
        const uint8_t *fadt = table(vm, get(xsdt + 36, 8), "FACP");
        const uint8_t *dsdt = table(vm, get(fadt + 140, 8), "DSDT");
        const uint8_t bus_range[] = {0x88, 13, 0, 2, 0x0c, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0};
        cr_expect_not_null(memmem(dsdt, (size_t)get(dsdt + 4, 4), bus_range, sizeof(bus_range)),
                           "_CRS does not decode exactly bus 0");
        /* A PNP0C02 motherboard resource reserves the window: Memory32Fixed, 1 MiB. */
        cr_expect_not_null(memmem(dsdt, (size_t)get(dsdt + 4, 4), "\x41\xd0\x0c\x02", 4),
                           "no PNP0C02 _HID");
        const uint8_t fixed[] = {0x86, 9, 0, 1, 0, 0, 0, 0xe0, 0, 0, 0x10, 0};
        cr_expect_not_null(memmem(dsdt, (size_t)get(dsdt + 4, 4), fixed, sizeof(fixed)),
                           "ECAM not reserved as a motherboard resource");
        vmm_memory_free(vm->mem);
        fake_vm_free(vm);
}

Test(vmm_acpi, pm1_control_s5_powers_off)
{
        struct iov_vm *vm = fake_vm_new();
        fake_vm_add_device(vm, "acpi-pm");
        cr_expect_eq(pio_read(vm, 0x604, 2) & 1, 1u, "SCI_EN clear: not in ACPI mode");
        pio_write(vm, 0x602, 0x0100, 2); /* PM1 enable */
        cr_expect_eq(pio_read(vm, 0x602, 2), 0x0100u, "PM1 enable did not stick");
        pio_write(vm, 0x604, 1u << 10 | 1u << 13, 2); /* S1: not offered, ignored */
        cr_expect_not(vmm_vm_stopping(vm), "SLP_TYP 1 stopped the VM");
        cr_expect_eq(pio_read(vm, 0x604, 2) & (1u << 13), 0u, "SLP_EN reads back");
        pio_write(vm, 0x604, 5u << 10 | 1u << 13, 2);
        cr_expect(vmm_vm_stopping(vm), "S5 did not stop the VM");
        cr_expect_eq(vm->exit_status, 0, "exit status %d", vm->exit_status);
        cr_expect(strstr(vm->exit_reason, "ACPI S5") != NULL, "reason %s", vm->exit_reason);
        fake_vm_free(vm);
}
