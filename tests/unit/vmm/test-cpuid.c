/* SPDX-License-Identifier: MIT */
/* CPUID leaf 0xD fitted to the features the other leaves expose (no /dev/kvm needed). */
#include <criterion/criterion.h>
#include <linux/kvm.h>
#include <stdlib.h>

#include "vmm/vcpu.h"

#define N_ENTRIES 10

/* A host like the lab's: XSAVE with AVX, AVX-512 and PKRU in leaf 0xD, standard offsets
 * (SDM vol. 1 table 13-1 layout as hardware reports it), XSAVES with CET_U in IA32_XSS. */
static struct kvm_cpuid2 *host_cpuid(bool avx512, bool pku)
{
        struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + N_ENTRIES * sizeof(c->entries[0]));
        cr_assert_not_null(c);
        struct kvm_cpuid_entry2 e[N_ENTRIES] = {
                {.function = 1, .ecx = 1u << 26 | 1u << 28, .edx = 1u << 25},
                {.function = 7, .ebx = avx512 ? 1u << 16 : 0, .ecx = pku ? 1u << 3 : 0},
                {.function = 0xd, .index = 0, .eax = 0x2e7, .ebx = 2696, .ecx = 2696},
                {.function = 0xd, .index = 1, .eax = 0xf, .ebx = 576, .ecx = 1u << 11},
                {.function = 0xd, .index = 2, .eax = 256, .ebx = 576},
                {.function = 0xd, .index = 5, .eax = 64, .ebx = 1088},
                {.function = 0xd, .index = 6, .eax = 512, .ebx = 1152},
                {.function = 0xd, .index = 7, .eax = 1024, .ebx = 1664},
                {.function = 0xd, .index = 9, .eax = 8, .ebx = 2688},
                {.function = 0xd, .index = 11, .eax = 16, .ecx = 1},
        };
        memcpy(c->entries, e, sizeof(e));
        c->nent = N_ENTRIES;
        return c;
}

static const struct kvm_cpuid_entry2 *leaf_d(const struct kvm_cpuid2 *c, unsigned index)
{
        for (unsigned i = 0; i < c->nent; i++)
                if (c->entries[i].function == 0xd && c->entries[i].index == index)
                        return &c->entries[i];
        cr_assert_fail("no leaf 0xd sub-leaf %u", index);
        return NULL;
}

Test(vmm_cpuid, all_features_exposed_sizes_match_components)
{
        struct kvm_cpuid2 *c = host_cpuid(true, true);
        vmm_vcpu_fit_xsave_cpuid(c);
        const struct kvm_cpuid_entry2 *d0 = leaf_d(c, 0), *d1 = leaf_d(c, 1);
        cr_expect_eq(d0->eax, 0x2e7u, "XCR0 mask 0x%x", d0->eax);
        cr_expect_eq(d0->ebx, 2696u, "standard size %u", d0->ebx);
        cr_expect_eq(d0->ecx, 2696u, "maximum size %u", d0->ecx);
        /* 576 + 256 + 64 + 512 + 1024 + 8, no component asks for 64-byte alignment. */
        cr_expect_eq(d1->ebx, 2440u, "compacted size %u (stale 576 left?)", d1->ebx);
        cr_expect_eq(d1->ecx, 0u, "IA32_XSS bits 0x%x offered", d1->ecx);
        cr_expect_eq(leaf_d(c, 11)->eax, 0u, "supervisor component 11 still described");
        free(c);
}

/* Leaf 7 without AVX-512 or PKU: Linux would drop those components and size its buffer
 * for x87, SSE and AVX only; CPUID must say the same. */
Test(vmm_cpuid, hidden_features_leave_xcr0_and_sizes)
{
        struct kvm_cpuid2 *c = host_cpuid(false, false);
        vmm_vcpu_fit_xsave_cpuid(c);
        const struct kvm_cpuid_entry2 *d0 = leaf_d(c, 0), *d1 = leaf_d(c, 1);
        cr_expect_eq(d0->eax, 0x7u, "XCR0 mask 0x%x", d0->eax);
        cr_expect_eq(d0->edx, 0u, "XCR0 mask high 0x%x", d0->edx);
        cr_expect_eq(d0->ebx, 832u, "standard size %u", d0->ebx);
        cr_expect_eq(d0->ecx, 832u, "maximum size %u", d0->ecx);
        cr_expect_eq(d1->ebx, 832u, "compacted size %u", d1->ebx);
        for (unsigned i = 5; i <= 9; i += (i == 7 ? 2 : 1))
                cr_expect_eq(leaf_d(c, i)->eax, 0u, "sub-leaf %u size %u", i, leaf_d(c, i)->eax);
        cr_expect_eq(leaf_d(c, 2)->eax, 256u, "AVX sub-leaf lost");
        free(c);
}

/* 64-byte alignment (sub-leaf ECX bit 1) applies in the compacted format only. */
Test(vmm_cpuid, compacted_size_honours_alignment)
{
        struct kvm_cpuid2 *c = host_cpuid(false, true);
        for (unsigned i = 0; i < c->nent; i++)
                if (c->entries[i].function == 0xd && c->entries[i].index == 9)
                        c->entries[i].ecx = 2;
        vmm_vcpu_fit_xsave_cpuid(c);
        const struct kvm_cpuid_entry2 *d0 = leaf_d(c, 0), *d1 = leaf_d(c, 1);
        cr_expect_eq(d0->eax, 0x207u, "XCR0 mask 0x%x", d0->eax);
        cr_expect_eq(d0->ebx, 2696u, "standard size %u", d0->ebx);
        cr_expect_eq(d1->ebx, 832u + 8, "compacted size %u", d1->ebx);
        free(c);
}

/* Without XSAVE in leaf 1 the table is left alone. */
Test(vmm_cpuid, no_xsave_no_change)
{
        struct kvm_cpuid2 *c = host_cpuid(true, true);
        c->entries[0].ecx = 0;
        vmm_vcpu_fit_xsave_cpuid(c);
        cr_expect_eq(leaf_d(c, 1)->ebx, 576u, "sub-leaf 1 changed without XSAVE");
        free(c);
}

/* The TSC-deadline bit is added to leaf 1 and nothing else changes there. */
Test(vmm_cpuid, tsc_deadline_added_to_leaf_1)
{
        struct kvm_cpuid2 *c = host_cpuid(true, true);
        uint32_t ecx = c->entries[0].ecx, edx = c->entries[0].edx;
        vmm_vcpu_add_tsc_deadline_cpuid(c);
        cr_expect_eq(c->entries[0].ecx, ecx | 1u << 24, "leaf 1 ECX 0x%x", c->entries[0].ecx);
        cr_expect_eq(c->entries[0].edx, edx, "leaf 1 EDX changed");
        cr_expect_eq(c->entries[1].ecx, 1u << 3, "leaf 7 changed");
        free(c);
}
