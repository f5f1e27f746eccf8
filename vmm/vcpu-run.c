/* SPDX-License-Identifier: MIT */
/* The vCPU threads and their run loop. */
#include <linux/kvm.h>
#include <signal.h>
#include <stdio.h>
#include <sys/ioctl.h>

#include "util/util.h"
#include "vmm/vcpu.h"

#define VCPU_KICK_SIGNAL SIGUSR1

static const char *const exit_names[] = {
        [KVM_EXIT_UNKNOWN] = "unknown",
        [KVM_EXIT_EXCEPTION] = "exception",
        [KVM_EXIT_IO] = "io",
        [KVM_EXIT_HYPERCALL] = "hypercall",
        [KVM_EXIT_DEBUG] = "debug",
        [KVM_EXIT_HLT] = "hlt",
        [KVM_EXIT_MMIO] = "mmio",
        [KVM_EXIT_IRQ_WINDOW_OPEN] = "irq_window_open",
        [KVM_EXIT_SHUTDOWN] = "shutdown",
        [KVM_EXIT_FAIL_ENTRY] = "fail_entry",
        [KVM_EXIT_INTR] = "intr",
        [KVM_EXIT_SET_TPR] = "set_tpr",
        [KVM_EXIT_TPR_ACCESS] = "tpr_access",
        [KVM_EXIT_NMI] = "nmi",
        [KVM_EXIT_INTERNAL_ERROR] = "internal_error",
        [KVM_EXIT_SYSTEM_EVENT] = "system_event",
};

const char *vmm_exit_reason_name(unsigned reason)
{
        if (reason < ARRAY_SIZE(exit_names) && exit_names[reason])
                return exit_names[reason];
        return "other";
}

/* Where the vCPU was when the guest crashed, for the VMM's log: what an operator (or a
 * kernel developer) needs to tell a guest bug from a VMM one. Read-only ioctls on the
 * vCPU's own fd; a failure just leaves the line out. */
static void vcpu_log_state(const struct iov_vcpu *vcpu)
{
        struct kvm_regs regs;
        struct kvm_sregs sregs;

        if (ioctl(vcpu->fd, KVM_GET_REGS, &regs) < 0 || ioctl(vcpu->fd, KVM_GET_SREGS, &sregs) < 0)
                return;
        log_error("vCPU %u: rip 0x%llx rsp 0x%llx rflags 0x%llx cs 0x%x (base 0x%llx, %s)",
                  vcpu->id, (unsigned long long)regs.rip, (unsigned long long)regs.rsp,
                  (unsigned long long)regs.rflags, sregs.cs.selector,
                  (unsigned long long)sregs.cs.base, sregs.cs.l ? "64-bit" : "not 64-bit");
        log_error("vCPU %u: cr0 0x%llx cr2 0x%llx cr3 0x%llx cr4 0x%llx efer 0x%llx idt 0x%llx/%u",
                  vcpu->id, (unsigned long long)sregs.cr0, (unsigned long long)sregs.cr2,
                  (unsigned long long)sregs.cr3, (unsigned long long)sregs.cr4,
                  (unsigned long long)sregs.efer, (unsigned long long)sregs.idt.base,
                  sregs.idt.limit);
}

static void vcpu_crash(struct iov_vcpu *vcpu, const char *what, uint64_t detail)
{
        char reason[160];
        snprintf(reason, sizeof(reason), "vCPU %u: %s (0x%llx)", vcpu->id, what,
                 (unsigned long long)detail);
        vmm_vm_request_stop(vcpu->vm, true, IOV_VMM_EXIT_GUEST_CRASH, reason);
}

/* Returns false when the exit is malformed (the VM then stops as crashed). */
static bool vcpu_handle_io(struct iov_vcpu *vcpu)
{
        struct kvm_run *run = vcpu->run;
        /* KVM puts the data in the vCPU's mapping at data_offset (the PIO page), size 1, 2
         * or 4 bytes, count of them back to back for a rep-prefixed string instruction.
         * The guest chooses size and count: check them against the mapping rather than
         * trust the kernel's bound, so no exit can make the VMM read outside it. */
        uint64_t bytes = (uint64_t)run->io.count * run->io.size;
        if ((run->io.size != 1 && run->io.size != 2 && run->io.size != 4) ||
            run->io.data_offset > (uint64_t)vcpu->vm->vcpu_mmap_size ||
            bytes > (uint64_t)vcpu->vm->vcpu_mmap_size - run->io.data_offset) {
                vcpu_crash(vcpu, "malformed I/O exit, count", run->io.count);
                return false;
        }
        uint8_t *data = (uint8_t *)run + run->io.data_offset;
        bool is_write = run->io.direction == KVM_EXIT_IO_OUT;
        for (uint32_t i = 0; i < run->io.count; i++)
                vmm_bus_access(&vcpu->vm->pio, run->io.port, data + i * run->io.size, run->io.size,
                               is_write);
        return true;
}

static bool vcpu_handle_mmio(struct iov_vcpu *vcpu)
{
        struct kvm_run *run = vcpu->run;
        /* At most 8 bytes, the size of mmio.data (linux/kvm.h). */
        if (run->mmio.len == 0 || run->mmio.len > sizeof(run->mmio.data)) {
                vcpu_crash(vcpu, "malformed MMIO exit, length", run->mmio.len);
                return false;
        }
        vmm_bus_access(&vcpu->vm->mmio, run->mmio.phys_addr, run->mmio.data, run->mmio.len,
                       run->mmio.is_write);
        return true;
}

static void vcpu_handle_system_event(struct iov_vcpu *vcpu)
{
        switch (vcpu->run->system_event.type) {
        case KVM_SYSTEM_EVENT_SHUTDOWN:
        case KVM_SYSTEM_EVENT_RESET:
                vmm_vm_request_stop(vcpu->vm, false, IOV_VMM_EXIT_STOPPED,
                                    "guest shut down (system event)");
                break;
        default:
                vcpu_crash(vcpu, "guest crash system event", vcpu->run->system_event.type);
                break;
        }
}

bool vmm_vcpu_handle_exit(struct iov_vcpu *vcpu)
{
        struct kvm_run *run = vcpu->run;
        if (run->exit_reason < IOV_VM_EXIT_REASONS)
                atomic_fetch_add_explicit(&vcpu->exits[run->exit_reason], 1, memory_order_relaxed);

        switch (run->exit_reason) {
        case KVM_EXIT_IO:
                return vcpu_handle_io(vcpu);
        case KVM_EXIT_MMIO:
                return vcpu_handle_mmio(vcpu);
        case KVM_EXIT_INTR:
                return true;
        case KVM_EXIT_HLT:
                /* Only without an in-kernel local APIC; we always have one. */
                vmm_vm_request_stop(vcpu->vm, false, IOV_VMM_EXIT_STOPPED, "guest halted");
                return false;
        case KVM_EXIT_SHUTDOWN:
                vcpu_log_state(vcpu);
                vcpu_crash(vcpu, "triple fault (KVM_EXIT_SHUTDOWN)", 0);
                return false;
        case KVM_EXIT_FAIL_ENTRY:
                vcpu_crash(vcpu, "VM entry failed, hardware reason",
                           run->fail_entry.hardware_entry_failure_reason);
                return false;
        case KVM_EXIT_INTERNAL_ERROR:
                vcpu_log_state(vcpu);
                vcpu_crash(vcpu, "KVM internal error, suberror", run->internal.suberror);
                return false;
        case KVM_EXIT_SYSTEM_EVENT:
                vcpu_handle_system_event(vcpu);
                return false;
        default:
                vcpu_crash(vcpu, "unexpected exit reason", run->exit_reason);
                return false;
        }
}

/* A state change is pending: wait while paused; false when the VM stops. */
static bool vcpu_attend(struct iov_vcpu *vcpu)
{
        struct iov_vm *vm = vcpu->vm;
        bool keep_running;

        pthread_mutex_lock(&vm->state_lock);
        while (vm->state == IOV_VM_STATE_PAUSED || vm->state == IOV_VM_STATE_CREATED)
                pthread_cond_wait(&vm->state_cond, &vm->state_lock);
        keep_running = vm->state == IOV_VM_STATE_RUNNING;
        pthread_mutex_unlock(&vm->state_lock);
        return keep_running;
}

static void *vcpu_thread(void *arg)
{
        struct iov_vcpu *vcpu = arg;

        for (;;) {
                vcpu->run->immediate_exit = 0;
                if (atomic_load_explicit(&vcpu->vm->attention, memory_order_acquire) &&
                    !vcpu_attend(vcpu))
                        break;
                if (ioctl(vcpu->fd, KVM_RUN, 0) < 0) {
                        if (errno == EINTR || errno == EAGAIN)
                                continue;
                        vcpu_crash(vcpu, "KVM_RUN failed, errno", (uint64_t)errno);
                        break;
                }
                if (!vmm_vcpu_handle_exit(vcpu))
                        break;
        }
        return NULL;
}

static void vcpu_kick_handler(int sig)
{
        (void)sig; /* Only there so the signal interrupts KVM_RUN with EINTR. */
}

int vmm_vcpus_start(struct iov_vm *vm)
{
        struct sigaction sa = {.sa_handler = vcpu_kick_handler};
        sigemptyset(&sa.sa_mask);
        if (sigaction(VCPU_KICK_SIGNAL, &sa, NULL) < 0)
                return -errno;

        for (unsigned i = 0; i < vm->n_vcpus; i++) {
                struct iov_vcpu *vcpu = vm->vcpus[i];
                int r = pthread_create(&vcpu->thread, NULL, vcpu_thread, vcpu);
                if (r > 0)
                        return -r;
                vcpu->thread_started = true;
                /* Named from here: the sandbox may already forbid prctl() in the thread. */
                char name[16];
                snprintf(name, sizeof(name), "vcpu%u", vcpu->id);
                pthread_setname_np(vcpu->thread, name);
        }
        return 0;
}

void vmm_vcpus_kick(struct iov_vm *vm)
{
        atomic_store_explicit(&vm->attention, true, memory_order_release);
        for (unsigned i = 0; i < vm->n_vcpus; i++) {
                struct iov_vcpu *vcpu = vm->vcpus[i];
                if (!vcpu || !vcpu->thread_started)
                        continue;
                /* immediate_exit covers a kick that lands just before KVM_RUN. */
                vcpu->run->immediate_exit = 1;
                pthread_kill(vcpu->thread, VCPU_KICK_SIGNAL);
        }
}

void vmm_vcpus_join(struct iov_vm *vm)
{
        for (unsigned i = 0; i < vm->n_vcpus; i++) {
                struct iov_vcpu *vcpu = vm->vcpus[i];
                if (!vcpu || !vcpu->thread_started)
                        continue;
                pthread_join(vcpu->thread, NULL);
                vcpu->thread_started = false;
        }
}
