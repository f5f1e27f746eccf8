/* SPDX-License-Identifier: MIT */
/*
 * The vCPU exit handler on a hand-made kvm_run page (no /dev/kvm): good I/O and MMIO
 * exits reach the buses; exits whose size, count or length would make the VMM read
 * outside the vCPU's mapping stop the VM as crashed and touch no device.
 */
#include <linux/kvm.h>

#include "fake-vm.h"
#include "vmm/run.h"
#include "vmm/vcpu.h"

#define RUN_SIZE 8192 /* kvm_run, then the PIO data page */

static struct iov_vm *vm;
static struct iov_vcpu vcpu;
static struct kvm_run *run;

static void setup(void)
{
        vm = fake_vm_new();
        vm->vcpu_mmap_size = RUN_SIZE;
        fake_vm_add_device(vm, "debug-port");
        run = calloc(1, RUN_SIZE);
        cr_assert_not_null(run);
        vcpu = (struct iov_vcpu){.vm = vm, .run = run};
}

static void teardown(void)
{
        free(run);
        fake_vm_free(vm);
}

TestSuite(vmm_exits, .init = setup, .fini = teardown);

static void io_exit(uint8_t size, uint32_t count, uint64_t data_offset)
{
        run->exit_reason = KVM_EXIT_IO;
        run->io.direction = KVM_EXIT_IO_OUT;
        run->io.port = IOV_DEBUG_PORT;
        run->io.size = size;
        run->io.count = count;
        run->io.data_offset = data_offset;
}

static uint64_t markers_written(void)
{
        uint64_t n = 0;
        for (unsigned i = 0; i < vm->n_markers; i++)
                n += vm->markers[i].count;
        return n;
}

Test(vmm_exits, io_exit_reaches_the_port_count_times)
{
        uint32_t values[3] = {7, 8, 9};
        memcpy((uint8_t *)run + 4096, values, sizeof(values));
        io_exit(4, 3, 4096);
        cr_expect(vmm_vcpu_handle_exit(&vcpu), "a good rep outsl stopped the vCPU");
        cr_expect_eq(markers_written(), 3u, "%llu markers for count 3",
                     (unsigned long long)markers_written());
        cr_expect_not(vmm_vm_stopping(vm), "a good exit stopped the VM: %s", vm->exit_reason);
}

Test(vmm_exits, malformed_io_exits_stop_the_vm_as_crashed)
{
        static const struct {
                const char *what;
                uint8_t size;
                uint32_t count;
                uint64_t data_offset;
        } cases[] = {
                {"count past the mapping", 4, 2048, 4096},
                {"offset past the mapping", 1, 1, RUN_SIZE + 1},
                {"count * size overflowing 32 bits", 4, 0x40000001u, 4096},
                {"size 3", 3, 1, 4096},
        };
        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                teardown();
                setup();
                io_exit(cases[i].size, cases[i].count, cases[i].data_offset);
                cr_expect_not(vmm_vcpu_handle_exit(&vcpu), "%s: the vCPU goes on", cases[i].what);
                cr_expect_eq(vm->state, IOV_VM_STATE_CRASHED, "%s: state %s", cases[i].what,
                             vm_state_to_string(vm->state));
                cr_expect_eq(markers_written(), 0u, "%s: %llu markers written", cases[i].what,
                             (unsigned long long)markers_written());
        }
}

Test(vmm_exits, mmio_exit_longer_than_its_data_stops_the_vm)
{
        run->exit_reason = KVM_EXIT_MMIO;
        run->mmio.phys_addr = 0xfed00000;
        run->mmio.len = 8;
        cr_expect(vmm_vcpu_handle_exit(&vcpu), "an 8-byte MMIO read stopped the vCPU");
        cr_expect_eq(vm->mmio.unhandled_reads, 1u, "unhandled reads %llu",
                     (unsigned long long)vm->mmio.unhandled_reads);
        run->mmio.len = 200;
        cr_expect_not(vmm_vcpu_handle_exit(&vcpu), "a 200-byte MMIO exit went on");
        cr_expect_eq(vm->state, IOV_VM_STATE_CRASHED, "state %s", vm_state_to_string(vm->state));
        cr_expect_eq(vm->mmio.unhandled_reads, 1u, "the 200-byte exit reached the bus");
}

Test(vmm_exits, unexpected_exit_reason_is_a_crash)
{
        run->exit_reason = 63;
        cr_expect_not(vmm_vcpu_handle_exit(&vcpu), "exit reason 63 went on");
        cr_expect_eq(vm->state, IOV_VM_STATE_CRASHED, "state %s", vm_state_to_string(vm->state));
        cr_expect(strstr(vm->exit_reason, "unexpected exit reason") != NULL, "reason: %s",
                  vm->exit_reason);
}
