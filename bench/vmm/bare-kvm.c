/* SPDX-License-Identifier: MIT */
/*
 * The peer for the exit-cost benchmark: the smallest KVM_RUN loop that can run the same
 * payload. The VM is set up with the same code as iovd-vmm (memory, boot loader, irqchip,
 * vCPU state) so the guest does exactly the same; only the loop differs: no buses, no
 * counters, no device models, one switch that only knows the three ports the payload
 * uses. Prints the boot-progress marker times like iovd-vmm's stats.
 *
 * Usage: bare-kvm PAYLOAD.bzImage
 */
#include <linux/kvm.h>
#include <stdio.h>
#include <sys/ioctl.h>

#include "util/util.h"
#include "vmm/boot.h"
#include "vmm/kvm.h"
#include "vmm/vcpu.h"

static int bare_build(struct iov_vm *vm, const char *kernel, struct iov_vcpu **ret_vcpu)
{
        char error[256];
        struct iov_boot_info boot;
        _cleanup_free_ struct kvm_cpuid2 *cpuid = NULL;
        int r = vmm_kvm_open("/dev/kvm", &vm->kvm_fd, error, sizeof(error));
        if (r >= 0)
                r = vmm_memory_new(64ULL << 20, &vm->mem);
        if (r >= 0)
                r = vmm_kvm_create_vm(vm, error, sizeof(error));
        if (r >= 0)
                r = vmm_boot_load_files(vm->mem, kernel, NULL, NULL, &boot, error, sizeof(error));
        if (r >= 0)
                r = vmm_kvm_supported_cpuid(vm->kvm_fd, &cpuid);
        if (r >= 0)
                r = vmm_vcpu_new(vm, 0, cpuid, ret_vcpu);
        if (r >= 0)
                r = vmm_vcpu_setup_long_mode(*ret_vcpu, boot.entry, boot.boot_params,
                                             boot.page_table_root, boot.gdt_base, boot.gdt_limit);
        if (r < 0)
                fprintf(stderr, "bare-kvm: setup failed: %s (%s)\n", strerror(-r), error);
        return r;
}

int main(int argc, char **argv)
{
        if (argc != 2) {
                fprintf(stderr, "usage: bare-kvm PAYLOAD.bzImage\n");
                return 2;
        }
        static struct iov_vm vm = {.n_vcpus = 1, .kvm_fd = -1, .vm_fd = -1};
        pthread_mutex_init(&vm.gsi_lock, NULL);
        vm.start_usec = util_now_usec();
        struct iov_vcpu *vcpu = NULL;
        if (bare_build(&vm, argv[1], &vcpu) < 0)
                return 1;

        uint64_t marker_usec[4] = {0};
        struct kvm_run *run = vcpu->run;
        for (;;) {
                if (ioctl(vcpu->fd, KVM_RUN, 0) < 0) {
                        if (errno == EINTR)
                                continue;
                        perror("KVM_RUN");
                        return 1;
                }
                if (run->exit_reason != KVM_EXIT_IO) {
                        fprintf(stderr, "bare-kvm: exit reason %u\n", run->exit_reason);
                        return 1;
                }
                if (run->io.port == IOV_DEBUG_PORT && run->io.direction == KVM_EXIT_IO_OUT) {
                        uint8_t v = *((uint8_t *)run + run->io.data_offset);
                        if (v < ARRAY_SIZE(marker_usec))
                                marker_usec[v] = util_now_usec() - vm.start_usec;
                } else if (run->io.port == 0x64) {
                        break; /* the i8042 reset */
                }
        }
        printf("markers 1 %llu 2 %llu\n", (unsigned long long)marker_usec[1],
               (unsigned long long)marker_usec[2]);
        return 0;
}
