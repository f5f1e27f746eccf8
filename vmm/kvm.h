/* SPDX-License-Identifier: MIT */
/* KVM system and VM setup (private to vmm/). */
#pragma once

#include <stddef.h>

#include "vmm/vm.h"

struct kvm_cpuid2;

/* Open path (normally /dev/kvm), check the API version and every capability. */
int vmm_kvm_open(const char *path, int *ret_fd, char *error, size_t error_size);
/* KVM_GET_SUPPORTED_CPUID, sized as needed. */
int vmm_kvm_supported_cpuid(int kvm_fd, struct kvm_cpuid2 **ret);
/* Create the VM on vm->kvm_fd: TSS/identity map, irqchip, PIT, RAM slots, routes. */
int vmm_kvm_create_vm(struct iov_vm *vm, char *error, size_t error_size);

/* MP table (MP spec 1.4) for vm->n_vcpus CPUs and the IOAPIC, in the BIOS area. */
int vmm_mptable_write(struct iov_vm *vm);

/* ACPI tables (RSDP, XSDT, FADT, FACS, MADT, DSDT) in the BIOS area (vmm/acpi.c). */
int vmm_acpi_write(struct iov_vm *vm);
