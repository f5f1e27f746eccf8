/* SPDX-License-Identifier: MIT */
/* Pieces of vmm_run() (private to vmm/). */
#pragma once

#include "vmm/vm.h"

struct json_object;

struct json_object *vmm_stats_json(struct iov_vm *vm);
/* Open what the statistics read later (before the sandbox); returns the fd to keep. */
int vmm_stats_open(void);
/* Feed the UART from stdin on a thread of its own (serial stdio). */
int vmm_console_start_input(struct iov_vm *vm);
const char *vmm_state_name(enum iov_vm_state state);

/* Take a pending SIGTERM/SIGINT/SIGHUP (waiting up to timeout_msec) as a clean stop;
 * returns whether the VM is stopping. */
bool vmm_vm_check_signals(struct iov_vm *vm, long timeout_msec);

/* Change the run state from outside the vCPUs (control socket): pause, resume. */
int vmm_vm_set_paused(struct iov_vm *vm, bool paused);

/* Give up what the running VM does not need (vmm/sandbox.c). keep_fds lists the fds
 * to keep open besides 0-2 (entries < 0 are ignored). */
int vmm_sandbox_enter(const int *keep_fds, size_t n_keep, bool seccomp, char *error,
                      size_t error_size);

/* Note the descriptors inherited at start (before any is opened), for the sandbox. */
void vmm_sandbox_note_inherited_fds(void);

/* Control socket (vmm/control.c). */
int vmm_control_open(const char *path, int *ret_fd);
/* Serve the control socket until the VM stops; returns when it has. */
void vmm_control_serve(struct iov_vm *vm, int listen_fd);
