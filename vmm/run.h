/* SPDX-License-Identifier: MIT */
/* Pieces of vmm_run() (private to vmm/). */
#pragma once

#include "vmm/vm.h"

struct json_object;

struct json_object *vmm_stats_json(struct iov_vm *vm);

/* Start-up steps stamped with IOVD_TRACE=1 (vmm/trace.c), each when it is done. */
enum iov_vmm_trace_point {
        IOV_VMM_TRACE_EXEC,      /* main() entered */
        IOV_VMM_TRACE_JAIL,      /* namespaces, mounts, identity (vmm/jail.c) */
        IOV_VMM_TRACE_KVM_OPEN,  /* /dev/kvm open, API checked */
        IOV_VMM_TRACE_MEMORY,    /* guest memory allocated (memfd) */
        IOV_VMM_TRACE_VM_CREATE, /* KVM_CREATE_VM, memory region, irqchip, PIT */
        IOV_VMM_TRACE_DEVICES,   /* the device models */
        IOV_VMM_TRACE_BOOT_LOAD, /* kernel, initrd, tables in guest memory */
        IOV_VMM_TRACE_VCPUS,     /* vCPUs made and their threads started */
        IOV_VMM_TRACE_SANDBOX,   /* fds closed, limits, seccomp */
        IOV_VMM_TRACE_RUNNING,   /* the VM runs, the control socket answers */
        IOV_VMM_TRACE_MARKER,    /* the guest's first boot marker */
        IOV_VMM_TRACE_COUNT,
};
void vmm_trace_init(void);
void vmm_trace_mark(enum iov_vmm_trace_point point);
/* {"exec": [CLOCK_MONOTONIC usec, CPU usec], ...}, or NULL without IOVD_TRACE. */
struct json_object *vmm_trace_json(void);
/* Open what the statistics read later (before the sandbox); returns the fd to keep. */
int vmm_stats_open(void);
/* Feed the UART from stdin on a thread of its own (serial stdio); the thread ends once
 * the VM stops: join *ret_thread before freeing the VM. */
int vmm_console_start_input(struct iov_vm *vm, pthread_t *ret_thread);

/* Change the run state from outside the vCPUs (control socket): pause, resume. */
int vmm_vm_set_paused(struct iov_vm *vm, bool paused);

/* RLIMIT_NOFILE in the sandbox: every descriptor of the running VMM is below it. */
#define VMM_FD_LIMIT 256

/* Give up what the running VM does not need (vmm/sandbox.c). keep_fds lists the fds
 * to keep open besides 0-2 (entries < 0 are ignored). */
int vmm_sandbox_enter(const int *keep_fds, size_t n_keep, bool seccomp, char *error,
                      size_t error_size);

/* Note the descriptors inherited at start (before any is opened), for the sandbox. */
void vmm_sandbox_note_inherited_fds(void);

/* Control socket (vmm/control.c). */
int vmm_control_open(const char *path, int *ret_fd);
/* The main thread's wait while the guest runs: serve the control socket (listen_fd, or
 * -1 for none) and take the stop signals from signal_fd (a signalfd: a clean stop) until
 * the VM stops (vm->stop_fd). Then answer what clients have already sent and close them
 * and listen_fd (taken), so nobody waits on a socket that will not answer. */
void vmm_control_serve(struct iov_vm *vm, int listen_fd, int signal_fd);
