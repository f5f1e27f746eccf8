/* SPDX-License-Identifier: MIT */
/*
 * vms: the VMs iovd owns. A VM is a durable definition (STATE_DIR/vms.json, the same store
 * as allocations) plus, while it runs, one iovd-vmm process supervised through
 * vms/supervisor.h. States:
 *
 *   created --start--> running <--pause/resume--> paused
 *   running/paused --stop/kill, or the guest shuts down--> stopped
 *   running/paused --the VMM dies or the guest crashes--> crashed (with a reason)
 *   stopped/crashed --start--> running (a new VMM on the same definition)
 *
 * Every request in the wrong state is refused with 409 "invalid_state" naming the current
 * state. Restarting iovd never stops a VM: at start the module re-attaches to each VMM
 * through its pid file and control socket, and a VMM that ended meanwhile is judged by
 * the exit file its monitor left.
 */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "vmm/contract/vm-contract.h"

struct iov_daemon;
struct iov_problem; /* daemon/daemon.h */

/* The limits of a definition (IOV_VM_MAX_VCPUS, ...) and the definition itself, struct
 * iov_vm_spec, are the VM contract's (vmm/contract/vm-contract.h). */
/* The table's bounds, so a full vms.json always loads again (vms/vm-admission.c): at most
 * IOV_VMS_MAX VMs, each at most IOV_VM_DURABLE_MAX bytes as stored. */
#define IOV_VMS_MAX             128
#define IOV_VM_DURABLE_MAX      (256 * 1024)
#define IOV_VM_STOP_TIMEOUT_SEC 10           /* graceful stop, then SIGKILL */
#define IOV_VM_CONSOLE_TAIL     (256 * 1024) /* GET .../console returns at most this */

enum iov_vm_action {
        IOV_VM_ACTION_START,
        IOV_VM_ACTION_STOP,
        IOV_VM_ACTION_KILL,
        IOV_VM_ACTION_PAUSE,
        IOV_VM_ACTION_RESUME,
};

/* Every function returns 0 with *ret a new JSON reference, or negative errno; -EBADMSG
 * with p filled for a refusal the client caused (404, 409, 422). */
/* spec: parsed and checked at the API edge (vm_spec_parse_json). The new VM takes its
 * contents (spec is left at the defaults); the caller frees spec in every case. */
int vms_create(struct iov_daemon *d, struct iov_vm_spec *spec, struct json_object **ret,
               struct iov_problem *p);
int vms_list(struct iov_daemon *d, struct json_object **ret);
int vms_show(struct iov_daemon *d, const char *id, struct json_object **ret, struct iov_problem *p);
/* stop_timeout_sec: how long a stop waits for the guest before SIGKILL (STOP only). */
int vms_act(struct iov_daemon *d, const char *id, enum iov_vm_action action,
            unsigned stop_timeout_sec, struct json_object **ret, struct iov_problem *p);
/* force: delete a driver VM even though clients' links name it (else 409 vm_has_clients). */
int vms_delete(struct iov_daemon *d, const char *id, bool force, struct json_object **ret,
               struct iov_problem *p);

/* The console: the last IOV_VM_CONSOLE_TAIL bytes the guest printed as
 * {"id", "output", "size", "truncated"}. */
int vms_console_read(struct iov_daemon *d, const char *id, struct json_object **ret,
                     struct iov_problem *p);

/* A follower of the console from its current tail. read returns the number of bytes
 * written to buf (at most max), 0 when nothing came within about a second (call again),
 * VMS_CONSOLE_END when the VM ended or iovd is stopping and everything was read, or
 * VMS_CONSOLE_ERROR when the console cannot be read. */
#define VMS_CONSOLE_END   ((ssize_t)-1)
#define VMS_CONSOLE_ERROR ((ssize_t)-2)
struct iov_vm_console_follower;
int vms_console_follow(struct iov_daemon *d, const char *id, struct iov_vm_console_follower **ret,
                       struct iov_problem *p);
ssize_t vms_console_follower_read(struct iov_vm_console_follower *f, char *buf, size_t max);
void vms_console_follower_free(struct iov_vm_console_follower *f);
