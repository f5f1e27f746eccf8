/* SPDX-License-Identifier: MIT */
/* VM lifecycle requests and boot-progress markers, shared by every thread. */
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include "util/util.h"
#include "vmm/run.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"

void vmm_vm_request_stop(struct iov_vm *vm, bool crashed, int status, const char *reason)
{
        pthread_mutex_lock(&vm->state_lock);
        if (vm->state != IOV_VM_STATE_STOPPED && vm->state != IOV_VM_STATE_CRASHED) {
                vm->state = crashed ? IOV_VM_STATE_CRASHED : IOV_VM_STATE_STOPPED;
                vm->exit_status = status;
                snprintf(vm->exit_reason, sizeof(vm->exit_reason), "%s", reason);
                if (vm->stop_fd >= 0) {
                        uint64_t one = 1; /* an eventfd counter never overflows on one write */
                        (void)!write(vm->stop_fd, &one, sizeof(one));
                }
        }
        pthread_cond_broadcast(&vm->state_cond);
        pthread_mutex_unlock(&vm->state_lock);
        /* Kick every vCPU out of KVM_RUN. */
        vmm_vcpus_kick(vm);
}

bool vmm_vm_stopping(struct iov_vm *vm)
{
        pthread_mutex_lock(&vm->state_lock);
        bool stopping = vm->state == IOV_VM_STATE_STOPPED || vm->state == IOV_VM_STATE_CRASHED;
        pthread_mutex_unlock(&vm->state_lock);
        return stopping;
}

/* All vCPUs' exits so far, every reason: the boot benchmark's cost figure. */
static uint64_t vm_count_exits(struct iov_vm *vm)
{
        uint64_t sum = 0;
        for (unsigned i = 0; i < vm->n_vcpus; i++)
                for (unsigned reason = 0; vm->vcpus[i] && reason < IOV_VM_EXIT_REASONS; reason++)
                        sum += atomic_load(&vm->vcpus[i]->exits[reason]);
        return sum;
}

void vmm_vm_record_marker(struct iov_vm *vm, uint32_t value)
{
        uint64_t usec = util_now_usec() - vm->start_usec;

        vmm_trace_mark(IOV_VMM_TRACE_MARKER);

        pthread_mutex_lock(&vm->marker_lock);
        struct iov_boot_marker *m = NULL;
        for (unsigned i = 0; i < vm->n_markers; i++)
                if (vm->markers[i].value == value)
                        m = &vm->markers[i];
        if (!m && vm->n_markers < IOV_VM_MAX_MARKERS) {
                m = &vm->markers[vm->n_markers++];
                *m = (struct iov_boot_marker){.value = value, .exits = vm_count_exits(vm)};
        }
        /* Keep the last time a marker was written, and how often. */
        if (m) {
                m->usec = usec;
                m->count++;
        }
        pthread_mutex_unlock(&vm->marker_lock);
}
