/* SPDX-License-Identifier: MIT */
/*
 * vm-contract: what iovd (api/, vms/) and iovd-vmm agree on about one VM, written once.
 *
 *   - the limits of a VM definition;
 *   - the definition itself: the JSON of POST /v1/vms, of iovd-vmm --config and of the
 *     config.json iovd hands to iovd-vmm, read by one parser (vm_spec_parse_json) into
 *     a typed struct iov_vm_spec and written by one writer (vm_spec_to_json);
 *   - the run states and their names;
 *   - iovd-vmm's exit statuses;
 *   - the statistics line iovd-vmm ends its stderr with, and its parser.
 *
 * A small library of its own (vmm/contract/meson.build) so that iovd links it without the
 * VMM; it depends on util/ and the virtio configuration parser only.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/virtio/virtio.h"

struct json_object;

/* ---- limits ----------------------------------------------------------------------------- */

#define IOV_VM_NAME_MAX           64   /* characters of "name" */
#define IOV_VM_CMDLINE_MAX        4096 /* bytes of "cmdline" */
#define IOV_VM_PATH_MAX           4095 /* "kernel", "initrd": PATH_MAX less its NUL */
#define IOV_VM_MAX_VCPUS          32
#define IOV_VM_DEFAULT_VCPUS      1
#define IOV_VM_MEMORY_MIN_MIB     16
#define IOV_VM_MEMORY_MAX_MIB     (1024 * 1024) /* 1 TiB */
#define IOV_VM_DEFAULT_MEMORY_MIB 256
/* Each device is one function on PCI bus 0, whose slot 0 is the host bridge (a static
 * assertion in vmm/config.c holds this bound to vmm/pci.h's bus). */
#define IOV_VM_MAX_DEVICES 31

/* ---- iovd-vmm's exit statuses --------------------------------------------------------- */

enum iov_vmm_exit_status {
        /* The guest shut down (i8042 reset pulse, ACPI S5 power-off, also after a "stop"),
         * "kill" on the control socket, or SIGTERM / SIGINT / SIGHUP. */
        IOV_VMM_EXIT_STOPPED = 0,
        /* The VM could not be built (bad kernel image, no /dev/kvm, missing capability). */
        IOV_VMM_EXIT_BUILD_FAILED = 1,
        /* Bad command line or configuration. */
        IOV_VMM_EXIT_USAGE = 2,
        /* The guest crashed (triple fault, KVM internal error, failed VM entry). */
        IOV_VMM_EXIT_GUEST_CRASH = 3,
};

/* ---- run states ------------------------------------------------------------------------- */

enum iov_vm_state {
        IOV_VM_STATE_CREATED,
        IOV_VM_STATE_RUNNING,
        IOV_VM_STATE_PAUSED,
        IOV_VM_STATE_STOPPED, /* the guest shut down or was stopped */
        IOV_VM_STATE_CRASHED, /* triple fault, internal error, failed entry, VMM failure */
        IOV_VM_STATE_COUNT,
};

/* "created", "running", "paused", "stopped", "crashed" (the API's names). */
const char *vm_state_to_string(enum iov_vm_state state);
/* -EINVAL for a string that names no state. */
int vm_state_from_string(const char *s, enum iov_vm_state *ret);

/* ---- the final statistics line ---------------------------------------------------------- */

/* iovd-vmm ends its stderr with "iovd-vmm: STATE: REASON" and then this line, whose JSON is
 * the control socket's "stats" reply plus "state" and "reason" (vmm/vmm.h). */
#define IOV_VMM_STATS_LINE_PREFIX "iovd-vmm: stats "

/* The line for stats (one JSON object, newline-terminated), malloc'ed. */
int vm_stats_line_format(struct json_object *stats, char **ret_line);
/* Read one line (with or without its newline): -ENOMSG when it is not a stats line,
 * -EBADMSG when its JSON is not an object. */
int vm_stats_line_parse(const char *line, struct json_object **ret);
/* The last stats line in text (several lines, e.g. the tail of a log): -ENOMSG if none. */
int vm_stats_line_find(const char *text, struct json_object **ret);

/* ---- the VM definition ------------------------------------------------------------------ */

enum iov_vm_device_kind {
        IOV_VM_DEVICE_VIRTIO, /* a virtio-* entry, served by vmm/virtio/ */
        IOV_VM_DEVICE_VFIO,   /* a host PCI function passed through, served by vmm/vfio/ */
};

/* "DDDD:BB:SS.F" plus NUL. */
#define IOV_VFIO_BDF_MAX 13
/* Guest slots on bus 0: 0 is the host bridge (PCI r3.0 §3.2.2.3.2: 32 devices a bus). */
#define IOV_VFIO_GUEST_SLOT_MAX 31

/* "present_as": the ids the guest sees in place of the device's own (a hardware change
 * stays invisible to it). Only the fields the entry gives are presented. */
enum {
        IOV_VFIO_PRESENT_VENDOR_ID = 1 << 0,
        IOV_VFIO_PRESENT_DEVICE_ID = 1 << 1,
        IOV_VFIO_PRESENT_SUBSYSTEM_VENDOR_ID = 1 << 2,
        IOV_VFIO_PRESENT_SUBSYSTEM_ID = 1 << 3,
        IOV_VFIO_PRESENT_REVISION = 1 << 4,
};

struct iov_vfio_present_as {
        unsigned fields; /* IOV_VFIO_PRESENT_*: which ids are presented; 0: none */
        uint16_t vendor_id, device_id, subsystem_vendor_id, subsystem_id;
        uint8_t revision;
};

/* Pool names and allocation ids as alloc/alloc.h bounds them (IOV_POOL_NAME_MAX,
 * IOV_ALLOCATION_ID_MAX; vms/ asserts they agree). */
#define IOV_VFIO_POOL_NAME_MAX     63
#define IOV_VFIO_ALLOCATION_ID_MAX 24
/* A vfio entry's "vfio_group": "fd:N" or a path, with its NUL. */
#define IOV_VFIO_GROUP_NODE_MAX 64

/* Where a vfio entry's function comes from: exactly one per entry. */
enum iov_vfio_source {
        IOV_VFIO_SOURCE_HOST,       /* "host": ADDRESS, iovd-vmm --config only */
        IOV_VFIO_SOURCE_POOL,       /* "pool": NAME, allocated by iovd at create */
        IOV_VFIO_SOURCE_DEVICE,     /* "device": ADDRESS, allocated by iovd at create */
        IOV_VFIO_SOURCE_ALLOCATION, /* "allocation": ID, an existing allocation adopted */
};

/* iovd-vmm --config: {"type": "vfio", "host": "0000:00:03.0", "guest_address": 5,
 * "vfio_group": "fd:7"}; the API: {"type": "vfio", "pool" | "device" | "allocation": ...,
 * "guest_address": 5}; both: "present_as": {"subsystem_id": "0001"} (vfio-spec.c). */
struct iov_vfio_spec {
        enum iov_vfio_source source;
        char host[IOV_VFIO_BDF_MAX]; /* HOST and DEVICE: canonical, lowercase */
        char pool[IOV_VFIO_POOL_NAME_MAX + 1];
        char allocation[IOV_VFIO_ALLOCATION_ID_MAX];
        uint8_t guest_slot; /* 1..IOV_VFIO_GUEST_SLOT_MAX, 0: the first free slot */
        /* iovd-vmm --config only: function 1..7 of guest_slot, beside the entry that is
         * function 0 there (an earlier entry); 0: function 0 */
        uint8_t guest_function;
        struct iov_vfio_present_as present_as;
        /* iovd-vmm --config only: the node of the function's IOMMU group, "fd:N" (iovd
         * opened it: the jailed VMM has no /dev) or a path; "": /dev/vfio/GROUP */
        char vfio_group[IOV_VFIO_GROUP_NODE_MAX];
};

/* The entry as iovd-vmm reads it ("host" required; pool, device and allocation refused).
 * 0: not a vfio entry; 1: parsed into ret; -EINVAL with a message in ret_error
 * (malloc'ed) for a malformed vfio entry or an unknown field. */
int vfio_spec_parse(struct json_object *entry, struct iov_vfio_spec *ret, char **ret_error);
/* The entry as the API reads it: exactly one of pool, device, allocation ("host"
 * refused: a socket user never names a host function directly). Same returns. */
int vfio_spec_parse_api(struct json_object *entry, struct iov_vfio_spec *ret, char **ret_error);
/* The entry iovd hands to iovd-vmm for an API entry: a copy of entry without pool,
 * device and allocation, with "host" set to host (every other field unchanged). */
int vfio_spec_to_host_entry(struct json_object *entry, const char *host, struct json_object **ret);

struct iov_vm_device {
        enum iov_vm_device_kind kind;
        union {
                struct iov_virtio_spec virtio; /* IOV_VM_DEVICE_VIRTIO */
                struct iov_vfio_spec vfio;     /* IOV_VM_DEVICE_VFIO */
        };
};

/*
 * The JSON form (every field but "kernel" optional; null is the same as absent):
 *   {"name": "web1", "vcpus": 2, "memory_mib": 512, "kernel": "/abs/bzImage",
 *    "initrd": "/abs/initrd", "cmdline": "console=ttyS0", "devices": [{"type": ...}],
 *    "restart": "never" | "on-crash"}
 * name: 1..IOV_VM_NAME_MAX letters, digits, '.', '_', '-'; kernel, initrd: absolute paths;
 * devices: at most IOV_VM_MAX_DEVICES entries, each with a "type" a device model knows
 * (vmm/virtio/spec.c); an unknown type is refused.
 */
/* "restart": what the supervisor does when the VM crashes (not when it stops or is
 * killed on request). */
enum iov_vm_restart {
        IOV_VM_RESTART_NEVER,    /* "never", the default */
        IOV_VM_RESTART_ON_CRASH, /* "on-crash": start it again (a driver VM serving clients) */
};

struct iov_vm_spec {
        char *name; /* or NULL */
        unsigned vcpus;
        uint64_t memory_mib;
        char *kernel;
        char *initrd;  /* or NULL */
        char *cmdline; /* or NULL */
        struct iov_vm_device *devices;
        size_t n_devices;
        /* The "devices" array exactly as given (NULL when absent): devices[] describes
         * each of its entries. Answers show it, and the writer writes it, as given. */
        struct json_object *devices_json;
        enum iov_vm_restart restart;
};

/* Why a definition was refused; the API turns kind into its error code. */
enum iov_vm_spec_problem {
        IOV_VM_SPEC_NOT_OBJECT,     /* the definition is not a JSON object */
        IOV_VM_SPEC_UNKNOWN_FIELD,  /* a field the definition does not have */
        IOV_VM_SPEC_WRONG_TYPE,     /* a field of the wrong JSON type */
        IOV_VM_SPEC_MISSING_FIELD,  /* "kernel" */
        IOV_VM_SPEC_INVALID_VALUE,  /* out of the limits, or a device entry without a type */
        IOV_VM_SPEC_INVALID_PATH,   /* kernel or initrd not absolute */
        IOV_VM_SPEC_INVALID_DEVICE, /* a device entry its model refuses, or an unknown type */
};

struct iov_vm_spec_error {
        enum iov_vm_spec_problem problem;
        char message[320];
};

/* Flags of vm_spec_parse_json(). */
enum {
        /* Skip fields outside the definition (a durable record carries its state too). */
        IOV_VM_SPEC_OTHER_FIELDS = 1 << 0,
        /* "vfio" entries name a host function ("host"): iovd-vmm's --config only. Without
         * it they name a pool, a device or an allocation, which iovd turns into an
         * allocation the VM owns: the API never sets this (a socket user must not pick any
         * host function past the allocation rules). */
        IOV_VM_SPEC_HOST_DEVICES = 1 << 1,
        /* Accept "fd:N" for "kernel" and "initrd": a descriptor iovd opened beneath an image
         * directory and passed (vms/vm-files.c). iovd-vmm's --config only: a client naming
         * a descriptor would name one of iovd's. */
        IOV_VM_SPEC_INHERITED_FDS = 1 << 2,
};

/* The defaults: no name, IOV_VM_DEFAULT_VCPUS, IOV_VM_DEFAULT_MEMORY_MIB, no devices. */
void vm_spec_init(struct iov_vm_spec *spec);
/* Free what spec holds and reset it to the defaults; spec may be NULL. */
void vm_spec_done(struct iov_vm_spec *spec);
/* Move src into *dst (freed first); src is left at the defaults. */
void vm_spec_move(struct iov_vm_spec *dst, struct iov_vm_spec *src);

/* Parse and check a definition. 0 with *ret filled (the caller owns it: vm_spec_done);
 * -EINVAL with err filled; -ENOMEM. */
int vm_spec_parse_json(struct json_object *o, unsigned flags, struct iov_vm_spec *ret,
                       struct iov_vm_spec_error *err);
/* Check the values of a filled spec (limits, name), e.g. after command-line overrides.
 * The JSON-only rules (types, absolute paths, devices) are the parser's. */
int vm_spec_check(const struct iov_vm_spec *spec, struct iov_vm_spec_error *err);
/* The JSON form of spec: every field, null where unset; what vm_spec_parse_json reads. */
int vm_spec_to_json(const struct iov_vm_spec *spec, struct json_object **ret);
