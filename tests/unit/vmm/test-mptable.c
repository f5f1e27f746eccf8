/* SPDX-License-Identifier: MIT */
/* MP table (MP spec 1.4): what Linux's scan of the BIOS area finds (no /dev/kvm needed). */
#include "fake-vm.h"
#include "vmm/kvm.h"

static uint8_t sum(const uint8_t *p, size_t len)
{
        uint8_t s = 0;
        for (size_t i = 0; i < len; i++)
                s += p[i];
        return s;
}

/* Bus 0 is PCI (Linux matches PCI entries by the bus number), bus 1 ISA. */
static void check_bus(const uint8_t *e)
{
        const char *want = e[1] == 0 ? "PCI   " : "ISA   ";
        cr_expect(e[1] <= 1, "bus id %u", e[1]);
        cr_expect_eq(memcmp(e + 2, want, 6), 0, "bus %u is %.6s", e[1], (const char *)e + 2);
}

/* An I/O interrupt entry from PCI bus 0 (MP spec 1.4 §4.3.4): IRQ = slot << 2 | pin,
 * level-triggered, active-low, to IOAPIC pin 16 + (slot + pin) % 4. */
static void check_pci_irq(const uint8_t *e, unsigned ioapic_id)
{
        unsigned slot = e[5] >> 2, pin = e[5] & 3;
        uint16_t flags = (uint16_t)(e[2] | e[3] << 8);
        cr_expect_eq(e[1], 0, "slot %u pin %u: type %u, not INT", slot, pin, e[1]);
        cr_expect_eq(flags, 0x000f, "slot %u pin %u: flags %04x, not level/low", slot, pin, flags);
        cr_expect_eq(e[6], ioapic_id, "slot %u pin %u: IOAPIC %u", slot, pin, e[6]);
        cr_expect_eq(e[7], 16 + (slot + pin) % 4, "slot %u pin %u: IOAPIC pin %u", slot, pin, e[7]);
}

static void check_table(unsigned n_vcpus)
{
        struct iov_vm *vm = fake_vm_new();
        vm->n_vcpus = n_vcpus;
        cr_assert_eq(vmm_memory_new(16 << 20, &vm->mem), 0);
        cr_assert_eq(vmm_mptable_write(vm), 0);

        const uint8_t *fp = vmm_memory_ptr(vm->mem, 0xf0000, 16);
        cr_assert_eq(memcmp(fp, "_MP_", 4), 0, "no floating pointer at 0xf0000");
        cr_expect_eq(sum(fp, 16), 0, "floating pointer checksum");
        uint32_t table_addr;
        memcpy(&table_addr, fp + 4, 4);
        const uint8_t *t = vmm_memory_ptr(vm->mem, table_addr, 44);
        cr_assert_eq(memcmp(t, "PCMP", 4), 0, "no PCMP at 0x%x", table_addr);
        uint16_t len, count;
        memcpy(&len, t + 4, 2);
        memcpy(&count, t + 34, 2);
        t = vmm_memory_ptr(vm->mem, table_addr, len);
        cr_assert_not_null(t);
        cr_expect_eq(sum(t, len), 0, "table checksum (%u bytes)", len);
        /* CPUs, two buses, the IOAPIC, 16 ISA IRQs, 32 slots x 4 PCI pins, LINT0/1. */
        cr_expect_eq(count, n_vcpus + 3 + 16 + 128 + 2, "entries %u for %u vCPUs", count, n_vcpus);

        const uint8_t *e = t + 44;
        unsigned cpus = 0, ioapics = 0, bsp = 0, pci_irqs = 0;
        for (unsigned i = 0; i < count; i++) {
                if (e[0] == 0) {
                        cr_expect_eq(e[1], cpus, "APIC id %u of processor %u", e[1], cpus);
                        bsp += (e[3] & 2) ? 1 : 0;
                        cpus++;
                        e += 20;
                } else {
                        if (e[0] == 2) {
                                ioapics++;
                                cr_expect_eq(e[1], n_vcpus, "IOAPIC id %u", e[1]);
                        }
                        if (e[0] == 1)
                                check_bus(e);
                        if (e[0] == 3 && e[4] == 0) {
                                check_pci_irq(e, n_vcpus);
                                pci_irqs++;
                        }
                        e += 8;
                }
        }
        cr_expect_eq(cpus, n_vcpus, "processors %u", cpus);
        cr_expect_eq(bsp, 1u, "bootstrap processors %u", bsp);
        cr_expect_eq(ioapics, 1u, "IOAPICs %u", ioapics);
        cr_expect_eq(pci_irqs, 128u, "PCI interrupt entries %u", pci_irqs);
        cr_expect_eq((size_t)(e - t), (size_t)len, "entries end at %zu, table is %u",
                     (size_t)(e - t), len);
        vmm_memory_free(vm->mem);
        fake_vm_free(vm);
}

Test(vmm_mptable, one_cpu)
{
        check_table(1);
}

Test(vmm_mptable, thirty_two_cpus_fit_below_1mib)
{
        check_table(32);
}
