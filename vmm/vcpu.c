/* SPDX-License-Identifier: MIT */
/*
 * vCPUs: creation (CPUID, local APIC wiring), the 64-bit boot state, and the run loop:
 * one switch on the exit reason that hands port and MMIO exits to the buses; anything a
 * guest can do wrong stops this VM with a reason, never the process.
 */
#include <linux/kvm.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include "util/util.h"
#include "vmm/vcpu.h"

/* Local APIC register offsets and LVT delivery modes (Intel SDM vol. 3, §10.5.1). */
#define APIC_LVT_LINT0   0x350
#define APIC_LVT_LINT1   0x360
#define APIC_MODE_NMI    0x4
#define APIC_MODE_EXTINT 0x7

static void lapic_set_delivery_mode(struct kvm_lapic_state *lapic, unsigned reg, uint32_t mode)
{
        uint32_t v;
        memcpy(&v, &lapic->regs[reg], 4);
        v = (v & ~0x700u) | (mode << 8);
        memcpy(&lapic->regs[reg], &v, 4);
}

/* Virtual wire mode: LINT0 receives the PIC's ExtINT, LINT1 NMIs (MP spec 1.4 §3.6.2.2),
 * so a guest that never programs the IOAPIC still gets the timer. */
static int vcpu_setup_lapic(struct iov_vcpu *vcpu)
{
        struct kvm_lapic_state lapic;
        if (ioctl(vcpu->fd, KVM_GET_LAPIC, &lapic) < 0)
                return -errno;
        lapic_set_delivery_mode(&lapic, APIC_LVT_LINT0, APIC_MODE_EXTINT);
        lapic_set_delivery_mode(&lapic, APIC_LVT_LINT1, APIC_MODE_NMI);
        if (ioctl(vcpu->fd, KVM_SET_LAPIC, &lapic) < 0)
                return -errno;
        return 0;
}

/* ---- CPUID leaf 0xD (Intel SDM vol. 1 §13.2-13.4, vol. 2A "CPUID leaf 0DH") ---------- */

#define XSAVE_LEGACY_AND_HEADER 576 /* 512-byte legacy region + 64-byte XSAVE header */

static struct kvm_cpuid_entry2 *cpuid_find(struct kvm_cpuid2 *cpuid, uint32_t function,
                                           uint32_t index)
{
        for (unsigned i = 0; i < cpuid->nent; i++) {
                struct kvm_cpuid_entry2 *e = &cpuid->entries[i];
                if (e->function == function && e->index == index)
                        return e;
        }
        return NULL;
}

static bool cpuid_has(struct kvm_cpuid2 *cpuid, uint32_t function, unsigned reg, unsigned bit)
{
        const struct kvm_cpuid_entry2 *e = cpuid_find(cpuid, function, 0);
        if (!e)
                return false;
        uint32_t regs[4] = {e->eax, e->ebx, e->ecx, e->edx};
        return regs[reg] >> bit & 1;
}

enum { EAX, EBX, ECX, EDX };

/* The XCR0 bits a guest may enable: each user state component only when the feature
 * that uses it is in the CPUID the guest sees (SDM vol. 1 §13.3), since Linux drops a
 * component whose feature flag is missing and then sizes its buffer without it.
 * Components this VMM does not know are left out. */
static uint64_t cpuid_xcr0_allowed(struct kvm_cpuid2 *cpuid)
{
        uint64_t mask = 1u << 0; /* x87 */
        if (cpuid_has(cpuid, 1, EDX, 25))
                mask |= 1u << 1; /* SSE */
        if (cpuid_has(cpuid, 1, ECX, 28))
                mask |= 1u << 2; /* AVX */
        if (cpuid_has(cpuid, 7, EBX, 14))
                mask |= 3u << 3; /* MPX: BNDREGS, BNDCSR */
        if (cpuid_has(cpuid, 7, EBX, 16))
                mask |= 7u << 5; /* AVX-512: opmask, ZMM_Hi256, Hi16_ZMM */
        if (cpuid_has(cpuid, 7, ECX, 3))
                mask |= 1u << 9; /* PKRU */
        if (cpuid_has(cpuid, 7, EDX, 24))
                mask |= 3u << 17; /* AMX: TILECFG, TILEDATA */
        return mask;
}

/* Sizes of the XSAVE area for the components in mask: standard format (sub-leaf i gives
 * size EAX at offset EBX) and compacted format (components in order, 64-byte aligned
 * when sub-leaf i ECX bit 1 says so; SDM vol. 1 §13.4.3). */
static void cpuid_xsave_sizes(struct kvm_cpuid2 *cpuid, uint64_t mask, uint32_t *ret_standard,
                              uint32_t *ret_compacted)
{
        uint32_t standard = XSAVE_LEGACY_AND_HEADER, compacted = XSAVE_LEGACY_AND_HEADER;
        for (unsigned i = 2; i < 64; i++) {
                const struct kvm_cpuid_entry2 *e = cpuid_find(cpuid, 0xd, i);
                if (!(mask >> i & 1) || !e)
                        continue;
                if (e->ebx + e->eax > standard)
                        standard = e->ebx + e->eax;
                if (e->ecx & 2)
                        compacted = (compacted + 63) & ~63u;
                compacted += e->eax;
        }
        *ret_standard = standard;
        *ret_compacted = compacted;
}

void vmm_vcpu_fit_xsave_cpuid(struct kvm_cpuid2 *cpuid)
{
        struct kvm_cpuid_entry2 *main = cpuid_find(cpuid, 0xd, 0);
        if (!main || !cpuid_has(cpuid, 1, ECX, 26)) /* no XSAVE */
                return;
        uint64_t mask = ((uint64_t)main->edx << 32 | main->eax) & cpuid_xcr0_allowed(cpuid);
        uint32_t standard, compacted;
        cpuid_xsave_sizes(cpuid, mask, &standard, &compacted);
        /* Sub-leaf 0: supported XCR0 bits in EDX:EAX; EBX the size for the XCR0 the guest
         * will enable (Linux enables every supported component and checks EBX against
         * its own sum), ECX the size for all supported components. */
        main->eax = (uint32_t)mask;
        main->edx = (uint32_t)(mask >> 32);
        main->ebx = standard;
        main->ecx = standard;
        /* Sub-leaf 1: EBX is the compacted size for XCR0 | IA32_XSS; no supervisor
         * component is offered (ECX:EDX = 0), so XSS stays 0. */
        struct kvm_cpuid_entry2 *ext = cpuid_find(cpuid, 0xd, 1);
        if (ext) {
                ext->ebx = compacted;
                ext->ecx = 0;
                ext->edx = 0;
        }
        /* A component outside both masks is not supported: its sub-leaf reads zero. */
        for (unsigned i = 2; i < 64; i++) {
                struct kvm_cpuid_entry2 *e = cpuid_find(cpuid, 0xd, i);
                if (e && !(mask >> i & 1))
                        e->eax = e->ebx = e->ecx = e->edx = 0;
        }
}

void vmm_vcpu_add_tsc_deadline_cpuid(struct kvm_cpuid2 *cpuid)
{
        for (unsigned i = 0; i < cpuid->nent; i++)
                if (cpuid->entries[i].function == 1)
                        cpuid->entries[i].ecx |= 1u << 24; /* SDM vol. 2A, CPUID leaf 01H */
}

static int vcpu_setup_cpuid(struct iov_vcpu *vcpu, const struct kvm_cpuid2 *supported)
{
        size_t size = sizeof(*supported) + supported->nent * sizeof(supported->entries[0]);
        _cleanup_free_ struct kvm_cpuid2 *cpuid = malloc(size);
        if (!cpuid)
                return -ENOMEM;
        memcpy(cpuid, supported, size);

        for (unsigned i = 0; i < cpuid->nent; i++) {
                struct kvm_cpuid_entry2 *e = &cpuid->entries[i];
                switch (e->function) {
                case 1:
                        /* EBX[31:24] initial APIC id, [23:16] logical processors. */
                        e->ebx = (e->ebx & 0x0000ffff) | vcpu->id << 24 |
                                 (vcpu->vm->n_vcpus & 0xff) << 16;
                        e->ecx |= 1u << 31; /* hypervisor present */
                        break;
                case 0xb:
                case 0x1f:
                        e->edx = vcpu->id; /* x2APIC id */
                        break;
                default:
                        break;
                }
        }
        vmm_vcpu_fit_xsave_cpuid(cpuid);
        if (ioctl(vcpu->fd, KVM_SET_CPUID2, cpuid) < 0)
                return -errno;
        return 0;
}

int vmm_vcpu_new(struct iov_vm *vm, unsigned id, const struct kvm_cpuid2 *supported,
                 struct iov_vcpu **ret)
{
        _cleanup_free_ struct iov_vcpu *vcpu = calloc(1, sizeof(*vcpu));
        if (!vcpu)
                return -ENOMEM;
        vcpu->vm = vm;
        vcpu->id = id;
        vcpu->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, (unsigned long)id);
        if (vcpu->fd < 0)
                return -errno;
        void *run = mmap(NULL, (size_t)vm->vcpu_mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED,
                         vcpu->fd, 0);
        if (run == MAP_FAILED) {
                int r = -errno;
                close(vcpu->fd);
                return r;
        }
        vcpu->run = run;

        int r = vcpu_setup_cpuid(vcpu, supported);
        if (r >= 0)
                r = vcpu_setup_lapic(vcpu);
        if (r < 0) {
                vmm_vcpu_free(TAKE_PTR(vcpu));
                return r;
        }
        *ret = TAKE_PTR(vcpu);
        return 0;
}

void vmm_vcpu_free(struct iov_vcpu *vcpu)
{
        if (!vcpu)
                return;
        if (vcpu->run)
                munmap(vcpu->run, (size_t)vcpu->vm->vcpu_mmap_size);
        if (vcpu->fd >= 0)
                close(vcpu->fd);
        free(vcpu);
}

static struct kvm_segment segment_flat(uint16_t selector, uint8_t type, bool code)
{
        return (struct kvm_segment){
                .base = 0,
                .limit = 0xffffffff,
                .selector = selector,
                .type = type,
                .present = 1,
                .dpl = 0,
                .db = code ? 0 : 1, /* a 64-bit code segment has D = 0, L = 1 */
                .s = 1,
                .l = code ? 1 : 0,
                .g = 1,
        };
}

int vmm_vcpu_setup_long_mode(struct iov_vcpu *vcpu, uint64_t entry, uint64_t boot_params,
                             uint64_t page_table_root, uint64_t gdt_base, uint16_t gdt_limit)
{
        struct kvm_sregs sregs;
        if (ioctl(vcpu->fd, KVM_GET_SREGS, &sregs) < 0)
                return -errno;

        sregs.cs = segment_flat(0x10, 0xb, true); /* execute/read, accessed */
        sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = segment_flat(0x18, 0x3, false);
        /* VM entry in IA-32e mode needs a busy 64-bit TSS in TR (Intel SDM vol. 3,
         * §26.3.1.2); the loader's GDT has it at 0x20. */
        sregs.tr = (struct kvm_segment){.selector = 0x20, .limit = 0x67, .type = 0xb, .present = 1};
        sregs.ldt = (struct kvm_segment){.type = 0x2, .present = 1, .unusable = 1};
        sregs.gdt.base = gdt_base;
        sregs.gdt.limit = gdt_limit;
        sregs.idt.base = 0;
        sregs.idt.limit = 0;

        sregs.cr3 = page_table_root;
        sregs.cr4 = 1u << 5;                      /* PAE */
        sregs.cr0 = 1u << 0 | 1u << 4 | 1u << 31; /* PE, ET, PG */
        sregs.efer = 1u << 8 | 1u << 10;          /* LME, LMA */
        if (ioctl(vcpu->fd, KVM_SET_SREGS, &sregs) < 0)
                return -errno;

        struct kvm_regs regs = {
                .rip = entry,
                .rsi = boot_params,
                .rsp = 0x7000, /* below the zero page; Linux sets its own at once */
                .rflags = 0x2,
        };
        if (ioctl(vcpu->fd, KVM_SET_REGS, &regs) < 0)
                return -errno;

        struct kvm_fpu fpu = {.fcw = 0x37f, .mxcsr = 0x1f80}; /* the power-on values */
        if (ioctl(vcpu->fd, KVM_SET_FPU, &fpu) < 0)
                return -errno;
        return 0;
}
