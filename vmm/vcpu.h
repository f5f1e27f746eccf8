/* SPDX-License-Identifier: MIT */
/* vCPUs: creation, the 64-bit boot state, and the run loop (private to vmm/). */
#pragma once

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "vmm/vm.h"

struct kvm_run;
struct kvm_cpuid2;

struct iov_vcpu {
        struct iov_vm *vm;
        unsigned id;
        int fd;
        struct kvm_run *run;
        pthread_t thread;
        bool thread_started;
        _Atomic uint64_t exits[IOV_VM_EXIT_REASONS]; /* by KVM_EXIT_* */
};

/* Create vCPU id with CPUID (APIC id = id) and local APIC wiring. */
int vmm_vcpu_new(struct iov_vm *vm, unsigned id, const struct kvm_cpuid2 *supported,
                 struct iov_vcpu **ret);
void vmm_vcpu_free(struct iov_vcpu *vcpu);
/* Make CPUID leaf 0xD agree with the features the other leaves expose: the supported
 * XCR0 bits, and the XSAVE area sizes for them (sub-leaf 0 EBX/ECX, sub-leaf 1 EBX), so
 * a guest's own size computation matches CPUID. */
void vmm_vcpu_fit_xsave_cpuid(struct kvm_cpuid2 *cpuid);
/* Offer the TSC-deadline timer (CPUID.1:ECX[24]), which KVM's in-kernel local APIC
 * emulates; for a host whose KVM_CAP_TSC_DEADLINE_TIMER is present (vmm_kvm_supported_cpuid). */
void vmm_vcpu_add_tsc_deadline_cpuid(struct kvm_cpuid2 *cpuid);

/* Put the boot vCPU in 64-bit mode at the kernel entry (Linux x86 boot protocol,
 * "64-bit boot protocol"): paging on with the loader's identity map, CS = 0x10, data
 * segments 0x18, rsi = the zero page. */
int vmm_vcpu_setup_long_mode(struct iov_vcpu *vcpu, uint64_t entry, uint64_t boot_params,
                             uint64_t page_table_root, uint64_t gdt_base, uint16_t gdt_limit);

/* Start every vCPU thread; returns when they run. */
int vmm_vcpus_start(struct iov_vm *vm);
/* Wait for every vCPU thread to end (after a stop request). */
void vmm_vcpus_join(struct iov_vm *vm);
/* Make every vCPU leave KVM_RUN soon (state change). */
void vmm_vcpus_kick(struct iov_vm *vm);

/* Handle the exit in vcpu->run after KVM_RUN returned. Returns false when the vCPU must
 * stop (the VM stops; a malformed or unexpected exit marks it crashed). */
bool vmm_vcpu_handle_exit(struct iov_vcpu *vcpu);

/* Name of a KVM exit reason for statistics ("io", "mmio", "hlt", ...). */
const char *vmm_exit_reason_name(unsigned reason);
