/* SPDX-License-Identifier: MIT */
/*
 * iovd-vmm: one process per VM on raw KVM ioctls. This is the module's public header,
 * used by the iovd-vmm program and the tests. What iovd and iovd-vmm share (the VM
 * definition and its limits, states, exit statuses, the final stats line) is
 * vmm/contract/vm-contract.h.
 *
 * Exit status of iovd-vmm (and of vmm_run()): enum iov_vmm_exit_status (vm-contract.h).
 *
 * Control socket (--control-socket PATH, or fd:N: a listening socket iovd bound and passed):
 * a Unix stream socket, served once the VM runs (the first answer means "ready"); one
 * request per line, one JSON object per reply line:
 *   status  -> {"state":"running","vcpus":1,"uptime_usec":N}
 *   stats   -> {"exits":{"io":N,...},"devices":{"uart":N,...},"unhandled":{...},
 *               "markers":[{"value":N,"usec":N,"count":N}],"virtio":[...],
 *               "rss_kib":N,"rss_guest_kib":N}, with IOVD_TRACE=1 also
 *               "trace":{"exec":[MONOTONIC_USEC,CPU_USEC],...} (vmm/trace.c)
 *   pause / resume -> {"ok":true} (vCPUs leave / re-enter KVM_RUN)
 *   stop   -> {"ok":true}: asks the guest to shut down (Ctrl-Alt-Del through the i8042
 *             keyboard; Linux reboots, the VM stops with 0); a guest that ignores it is
 *             killed by the supervisor
 *   kill   -> {"ok":true}: stops the VM now, exit status 0
 *   input TEXT -> {"ok":true}: TEXT and a newline are queued as UART input
 *   link NAME [MAC] -> {"ok":true}: with one fd passed along (SCM_RIGHTS), the end of a
 *             VM-to-VM link's channel for link NAME ("PORT" or "VM/PORT"); MAC, for a
 *             port, is the only source address it accepts (vmm/virtio/net-link.c);
 *             "stats" lists the links under "links"
 *   errors -> {"error":{"code":"unknown_command","message":"..."}}
 * Once the VM has stopped, what clients have already sent is answered ("status" gives
 * "stopped" or "crashed" and the reason), then every connection closes and the socket
 * stops listening: nobody is left waiting on it while the process exits.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "vmm/contract/vm-contract.h"

enum iov_serial_mode {
        IOV_SERIAL_STDIO,
        IOV_SERIAL_FILE,
        IOV_SERIAL_NONE,
};

struct iov_vmm_config {
        /* The VM: name, vCPUs, memory, kernel, initrd, command line and its devices, already
         * parsed (device models read spec.devices). */
        struct iov_vm_spec spec;
        enum iov_serial_mode serial;
        char *serial_path;    /* IOV_SERIAL_FILE */
        char *control_socket; /* or NULL */
        /* The device nodes, each a path or "fd:N" (util_open_inherited): the --config file's
         * "kvm" and "vfio_container" (NULL: /dev/kvm, /dev/vfio/vfio). iovd opens them and
         * passes descriptors, since the jail has no /dev; a vfio entry's group node is
         * its "vfio_group" (vm-contract.h). */
        char *kvm;
        char *vfio_container;
        bool seccomp; /* default true */
        /* --jail UID:GID: namespaces, an empty root, that uid and gid, no capabilities
         * (vmm/jail.c), entered before the VM is built. */
        bool jail;
        uid_t jail_uid;
        gid_t jail_gid;
        /* --keeper-fd N: a Unix socket (SOCK_SEQPACKET) the VM's descriptor is handed to
         * once made (vmm/run.c), -1: none. */
        int keeper_fd;
};

void vmm_config_init(struct iov_vmm_config *config);
void vmm_config_done(struct iov_vmm_config *config);
/* Replace config->spec with the definition in json (the JSON of POST /v1/vms, read by
 * vm_spec_parse_json: what the API accepts and nothing else). -EINVAL with a message in
 * ret_error (malloc'ed; may be NULL). */
int vmm_config_parse_json(struct iov_vmm_config *config, const char *json, char **ret_error);
/* Check the whole configuration once the command line has overridden the file. */
int vmm_config_validate(const struct iov_vmm_config *config, char **ret_error);

/* Build the VM described by config, run it until it stops, tear it down. Returns the exit
 * status above (>= 0); writes a one-line reason (malloc'ed) to ret_reason if not NULL. */
int vmm_run(const struct iov_vmm_config *config, char **ret_reason);
/* Enter the jail config->jail asks for (nothing without it); -errno with a message in
 * error. Before vmm_run(), while the process is single-threaded. */
int vmm_jail_enter(const struct iov_vmm_config *config, char *error, size_t error_size);
