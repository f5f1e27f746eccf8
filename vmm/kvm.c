/* SPDX-License-Identifier: MIT */
/*
 * Opening KVM and creating the VM: API version, every capability iovd-vmm relies on
 * (checked up front with an actionable message), the in-kernel irqchip and PIT, and the
 * guest RAM slots. Documentation/virt/kvm/api.rst is the reference for each ioctl.
 */
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <sys/ioctl.h>

#include "util/util.h"
#include "vmm/kvm.h"
#include "vmm/vcpu.h"

/* Both live in the 32-bit hole, below the IOAPIC; Intel needs them for real mode. */
#define KVM_TSS_ADDR          0xfffbd000ULL
#define KVM_IDENTITY_MAP_ADDR 0xfffbc000ULL

static const struct {
        int cap;
        const char *name;
} required_caps[] = {
        {KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY"},
        {KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP"},
        {KVM_CAP_PIT2, "KVM_CAP_PIT2"},
        {KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR"},
        {KVM_CAP_SET_IDENTITY_MAP_ADDR, "KVM_CAP_SET_IDENTITY_MAP_ADDR"},
        {KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID"},
        {KVM_CAP_IRQ_ROUTING, "KVM_CAP_IRQ_ROUTING"},
        {KVM_CAP_SIGNAL_MSI, "KVM_CAP_SIGNAL_MSI"},
        {KVM_CAP_IRQFD, "KVM_CAP_IRQFD"},
        {KVM_CAP_IOEVENTFD, "KVM_CAP_IOEVENTFD"},
        {KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT"},
};

int vmm_kvm_open(const char *path, int *ret_fd, char *error, size_t error_size)
{
        _cleanup_close_ int fd = -1;
        int r = util_open_inherited(path, O_RDWR, &fd);
        if (r < 0) {
                if (r == -ENOENT || r == -ENXIO || r == -ENODEV)
                        snprintf(error, error_size,
                                 "%s not found: KVM is not available (enable virtualization, "
                                 "load kvm_intel or kvm_amd)",
                                 path);
                else if (r == -EACCES || r == -EPERM)
                        snprintf(error, error_size,
                                 "no permission to open %s (run as root or join group kvm)", path);
                else
                        snprintf(error, error_size, "cannot open %s: %s", path, strerror(-r));
                return r;
        }
        int version = ioctl(fd, KVM_GET_API_VERSION, 0);
        if (version != KVM_API_VERSION) {
                snprintf(error, error_size, "KVM API version %d, iovd-vmm needs %d", version,
                         KVM_API_VERSION);
                return -EPROTO;
        }
        for (size_t i = 0; i < ARRAY_SIZE(required_caps); i++) {
                if (ioctl(fd, KVM_CHECK_EXTENSION, required_caps[i].cap) <= 0) {
                        snprintf(error, error_size,
                                 "KVM lacks %s (kernel too old or module option off)",
                                 required_caps[i].name);
                        return -EOPNOTSUPP;
                }
        }
        *ret_fd = TAKE_FD(fd);
        return 0;
}

int vmm_kvm_supported_cpuid(int kvm_fd, struct kvm_cpuid2 **ret)
{
        /* Grow until the kernel stops answering E2BIG. */
        for (unsigned n = 64; n <= 4096; n *= 2) {
                _cleanup_free_ struct kvm_cpuid2 *cpuid =
                        calloc(1, sizeof(*cpuid) + n * sizeof(cpuid->entries[0]));
                if (!cpuid)
                        return -ENOMEM;
                cpuid->nent = n;
                if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, cpuid) == 0) {
                        /* KVM emulates the TSC-deadline timer in its local APIC (ours is
                         * always in the kernel: KVM_CREATE_IRQCHIP), but kernels older than
                         * KVM commit 9be4ec35d668 (December 2024), the lab's 6.1 among
                         * them, leave it out of this table:
                         * userspace adds it when KVM_CAP_TSC_DEADLINE_TIMER is present
                         * (api.rst, "Known KVM API problems", local APIC features).
                         * Without it Linux has to calibrate its APIC timer and, where
                         * that fails (the nested lab), keeps the PIT as its clock event
                         * device: port exits each time it arms a timer. */
                        if (ioctl(kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_TSC_DEADLINE_TIMER) > 0)
                                vmm_vcpu_add_tsc_deadline_cpuid(cpuid);
                        *ret = TAKE_PTR(cpuid);
                        return 0;
                }
                if (errno != E2BIG)
                        return -errno;
        }
        return -E2BIG;
}

static int kvm_add_memory(struct iov_vm *vm)
{
        for (unsigned i = 0; i < vm->mem->n_regions; i++) {
                const struct iov_memory_region *region = &vm->mem->regions[i];
                struct kvm_userspace_memory_region slot = {
                        .slot = i,
                        .guest_phys_addr = region->gpa,
                        .memory_size = region->size,
                        .userspace_addr = (uint64_t)(uintptr_t)region->host,
                };
                if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &slot) < 0)
                        return -errno;
        }
        return 0;
}

int vmm_kvm_create_vm(struct iov_vm *vm, char *error, size_t error_size)
{
        int fd;
        do
                fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
        while (fd < 0 && errno == EINTR);
        if (fd < 0) {
                int r = -errno;
                snprintf(error, error_size, "KVM_CREATE_VM failed: %s", strerror(-r));
                return r;
        }
        vm->vm_fd = fd;

        uint64_t identity = KVM_IDENTITY_MAP_ADDR;
        const char *step = "KVM_SET_TSS_ADDR";
        int r = ioctl(fd, KVM_SET_TSS_ADDR, KVM_TSS_ADDR);
        if (r >= 0 && (step = "KVM_SET_IDENTITY_MAP_ADDR"))
                r = ioctl(fd, KVM_SET_IDENTITY_MAP_ADDR, &identity);
        if (r >= 0 && (step = "KVM_CREATE_IRQCHIP"))
                r = ioctl(fd, KVM_CREATE_IRQCHIP, 0);
        /* The dummy speaker makes the in-kernel PIT answer port 0x61 as well. */
        struct kvm_pit_config pit = {.flags = KVM_PIT_SPEAKER_DUMMY};
        if (r >= 0 && (step = "KVM_CREATE_PIT2"))
                r = ioctl(fd, KVM_CREATE_PIT2, &pit);
        if (r < 0) {
                r = -errno;
                snprintf(error, error_size, "%s failed: %s", step, strerror(-r));
                return r;
        }

        int gsis = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_IRQ_ROUTING);
        vm->gsi_max = gsis > IOV_VM_MAX_GSI ? IOV_VM_MAX_GSI : (unsigned)gsis;
        vm->vcpu_mmap_size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
        if (vm->vcpu_mmap_size <= 0) {
                snprintf(error, error_size, "KVM_GET_VCPU_MMAP_SIZE failed");
                return -EIO;
        }
        r = kvm_add_memory(vm);
        if (r >= 0)
                r = vmm_irq_init(vm);
        if (r < 0)
                snprintf(error, error_size, "setting up guest memory / interrupt routing: %s",
                         strerror(-r));
        return r;
}
