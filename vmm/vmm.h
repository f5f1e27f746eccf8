/* SPDX-License-Identifier: MIT */
/*
 * iovd-vmm: one process per VM on raw KVM ioctls. This is the module's public header,
 * used by the iovd-vmm program, the daemon (configuration parsing) and the tests.
 *
 * Exit status of iovd-vmm (and of vmm_run()):
 *   0  the guest shut down (i8042 reset pulse, ACPI S5 power-off, also after a "stop"),
 *      "kill" on the control socket, or SIGTERM / SIGINT / SIGHUP
 *   1  the VM could not be built (bad kernel image, no /dev/kvm, missing capability, ...)
 *   2  bad command line or configuration
 *   3  the guest crashed (triple fault, KVM internal error, failed VM entry)
 *
 * Control socket (--control-socket PATH): a Unix stream socket, listening once the VM is
 * built (its appearance means "ready"); one request per line, one JSON object per reply
 * line:
 *   status  -> {"state":"running","vcpus":1,"uptime_usec":N}
 *   stats   -> {"exits":{"io":N,...},"devices":{"uart":N,...},"unhandled":{...},
 *               "markers":[{"value":N,"usec":N,"count":N}],"virtio":[...],
 *               "rss_kib":N,"rss_guest_kib":N}
 *   pause / resume -> {"ok":true} (vCPUs leave / re-enter KVM_RUN)
 *   stop   -> {"ok":true}: asks the guest to shut down (Ctrl-Alt-Del through the i8042
 *             keyboard; Linux reboots, the VM stops with 0); a guest that ignores it is
 *             killed by the supervisor
 *   kill   -> {"ok":true}: stops the VM now, exit status 0
 *   input TEXT -> {"ok":true}: TEXT and a newline are queued as UART input
 *   errors -> {"error":{"code":"unknown_command","message":"..."}}
 * Once the VM has stopped, what clients have already sent is answered ("status" gives
 * "stopped" or "crashed" and the reason), then every connection closes and the socket
 * stops listening: nobody is left waiting on it while the process exits.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

struct json_object;

enum iov_serial_mode {
        IOV_SERIAL_STDIO,
        IOV_SERIAL_FILE,
        IOV_SERIAL_NONE,
};

#define IOV_VMM_MAX_VCPUS      32
#define IOV_VMM_DEFAULT_MEMORY 256 /* MiB */

struct iov_vmm_config {
        char *name;
        unsigned vcpus;      /* 1..IOV_VMM_MAX_VCPUS */
        uint64_t memory_mib; /* 2..(1 TiB / 1 MiB) */
        char *kernel;
        char *initrd; /* or NULL */
        char *cmdline;
        enum iov_serial_mode serial;
        char *serial_path;    /* IOV_SERIAL_FILE */
        char *control_socket; /* or NULL */
        bool seccomp;         /* default true */
        /* The "devices" array of POST /v1/vms, as given (device models read their
         * entries), or NULL. Owned by the config. */
        struct json_object *devices;
};

void vmm_config_init(struct iov_vmm_config *config);
void vmm_config_done(struct iov_vmm_config *config);
/* Fill config from the JSON of POST /v1/vms: name, vcpus, memory_mib, kernel, initrd,
 * cmdline, devices. Unknown fields and wrong types are rejected (-EINVAL) with a
 * message in ret_error (malloc'ed; may be NULL). */
int vmm_config_parse_json(struct iov_vmm_config *config, const char *json, char **ret_error);
int vmm_config_validate(const struct iov_vmm_config *config, char **ret_error);

/* Build the VM described by config, run it until it stops, tear it down. Returns the exit
 * status above (>= 0); writes a one-line reason (malloc'ed) to ret_reason if not NULL. */
int vmm_run(const struct iov_vmm_config *config, char **ret_reason);
