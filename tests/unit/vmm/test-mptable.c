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
        cr_expect_eq(count, n_vcpus + 2 + 16 + 2, "entries %u for %u vCPUs", count, n_vcpus);

        const uint8_t *e = t + 44;
        unsigned cpus = 0, ioapics = 0, bsp = 0;
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
                        e += 8;
                }
        }
        cr_expect_eq(cpus, n_vcpus, "processors %u", cpus);
        cr_expect_eq(bsp, 1u, "bootstrap processors %u", bsp);
        cr_expect_eq(ioapics, 1u, "IOAPICs %u", ioapics);
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
