/* SPDX-License-Identifier: MIT */
/*
 * daemon: the core of iovd shared by the iovd binary and its tests: configuration, the
 * inventory snapshot, event publication, metrics, refusals, modules, the state store and
 * the start/stop sequence. The one public header of daemon/ (daemon/runtime.h is its
 * private half). The modules (alloc/, vms/) and the REST resources (api/) work on one
 * struct iov_daemon; the core never calls into them except through their module
 * callbacks.
 *
 * Threads: every HTTP connection has its own thread, the udev monitor has one. Anything
 * that changes durable state (allocations, pools, VF counts) holds state_lock.
 */
#pragma once

#include <json-c/json.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "iommu/iommu.h"
#include "pci/pci.h"
#include "util/util.h"

#define IOV_DAEMON_MAX_LISTEN 8
/* --image-dir: at most this many, and the default when none is given. */
#define IOV_DAEMON_MAX_IMAGE_DIRS    16
#define IOV_DAEMON_DEFAULT_IMAGE_DIR "/var/lib/iovd/images"
/* --vmm-uid-base: the first of the uids VMMs run as (no user of the host should have it). */
#define IOV_DAEMON_DEFAULT_VMM_UID_BASE 2000000000u

struct iov_daemon;

struct iov_daemon_config {
        char *listen[IOV_DAEMON_MAX_LISTEN]; /* "unix:PATH" or "tcp:HOST:PORT" */
        size_t n_listen;
        char *token_file; /* required for tcp listeners */
        char *state_dir;
        char *run_dir;
        char *sysfs_root;
        char *dev_root;
        char *vmm; /* --vmm: the iovd-vmm binary; NULL: found next to iovd */
        /* --image-dir: the only directories whose files a VM definition may name (kernel,
         * initrd, disks, console input; vms/vm-files.c), absolute, without a trailing
         * slash ("" is "/"). IOV_DAEMON_DEFAULT_IMAGE_DIR when none is given. */
        char *image_dirs[IOV_DAEMON_MAX_IMAGE_DIRS];
        size_t n_image_dirs;
        bool allow_block_devices; /* --allow-block-devices: disks may be block devices */
        /* Each iovd-vmm runs jailed (vmm/jail.c) as uid and gid vmm_uid_base + a slot
         * below IOV_VMS_MAX that no other running VMM has; --no-vmm-jail: as root. */
        uint32_t vmm_uid_base;
        bool vmm_jail;
        bool allow_unsafe_interrupts; /* the explicit, logged switch: passthrough without
                                       * an IOMMU or without interrupt remapping */
        int log_level;
        /* Seconds a silent connection is kept (60). Not in --help: tests lower it with
         * --connection-timeout-sec to check that streams outlive it. */
        unsigned connection_timeout_sec;
        /* Admission control (vms/): the memory and vCPUs all running VMs may have together,
         * as a multiple of the host's MemTotal and online CPUs (1.0: no overcommit). */
        double memory_overcommit;
        double vcpu_overcommit;
};

/* Fill config with the production defaults (docs/architecture.md). */
int daemon_config_init(struct iov_daemon_config *config);
void daemon_config_clear(struct iov_daemon_config *config);

/* Parse argv. Returns 0 to run, 1 when --help or --version printed and the process should
 * exit 0, -EINVAL after printing a usage error to stderr. */
int daemon_config_parse(struct iov_daemon_config *config, int argc, char **argv);

/* ---- refusals ------------------------------------------------------------------------ */

#define IOV_PROBLEM_CODE_MAX    48
#define IOV_PROBLEM_MESSAGE_MAX 320

/* Why a module refused a request the client made: the HTTP status, a stable snake_case
 * code clients may branch on, a message for people, and details (an object whose keys
 * join the error object, e.g. "blockers"; owned, may be NULL). The modules fill it; the
 * API turns it into its one error reply (api_reply_problem). */
struct iov_problem {
        unsigned status;
        char code[IOV_PROBLEM_CODE_MAX];
        char message[IOV_PROBLEM_MESSAGE_MAX];
        struct json_object *details;
};

/* Fill status, code and message; returns -EBADMSG so callers can
 * `return daemon_problem_set(...)`. */
int daemon_problem_set(struct iov_problem *p, unsigned status, const char *code, const char *fmt,
                       ...) _printf_(4, 5);
/* Drop the details; p may be reused afterwards. */
void daemon_problem_clear(struct iov_problem *p);

/* ---- inventory snapshots -------------------------------------------------------------- */

/* An immutable, reference-counted view of the hardware. Readers take one and keep it as
 * long as they need; a rescan builds a new one and swaps it in. */
struct iov_snapshot {
        unsigned refs; /* atomic */
        uint64_t generation;
        struct iov_pci_inventory *pci;
        struct iov_iommu_group *groups; /* sorted by id */
        size_t n_groups;
};

struct iov_snapshot *daemon_snapshot_get(struct iov_daemon *d);
void daemon_snapshot_unref(struct iov_snapshot *snapshot);
DEFINE_CLEANUP_FUNC(struct iov_snapshot, daemon_snapshot_unref)
#define _cleanup_snapshot_ _cleanup_(daemon_snapshot_unrefp)

/* Group by id in a snapshot; NULL when absent. */
const struct iov_iommu_group *daemon_snapshot_find_group(const struct iov_snapshot *snapshot,
                                                         unsigned id);

/* Read the hardware again, swap the snapshot in, and publish device_added /
 * device_removed / vfs_changed / driver_changed events for what differs. */
int daemon_rescan(struct iov_daemon *d);

/* Read just these functions again (a PF brings its VFs, before and after) and the IOMMU
 * groups they were or are in; copy the rest of the current snapshot; swap the result in
 * and publish the same events a rescan would. What an allocation, a release or a VF
 * change costs on a host with thousands of functions. */
int daemon_refresh_devices(struct iov_daemon *d, const struct iov_pci_address *addresses, size_t n);

/* ---- events --------------------------------------------------------------------------- */

/* Publish {"seq": N, "time_usec": T, "type": type, "data": data} to every events
 * subscriber. Takes ownership of data (may be NULL). Never blocks: a subscriber whose
 * queue is full is dropped. */
void daemon_event_publish(struct iov_daemon *d, const char *type, struct json_object *data);

struct iov_event_subscriber;
int daemon_event_subscribe(struct iov_daemon *d, struct iov_event_subscriber **ret);
/* Subscribe and queue first the kept events after last_seq (Last-Event-ID resume). 0 when
 * every later event is replayed; 1 when some are gone (older than the backlog, or
 * last_seq is from an earlier run of iovd): *ret_missed is then how many, 0 if unknown. */
int daemon_event_subscribe_after(struct iov_daemon *d, uint64_t last_seq,
                                 struct iov_event_subscriber **ret, uint64_t *ret_missed);

/* One published event: its seq, its type and its NDJSON line (newline-terminated). */
struct iov_event_record {
        uint64_t seq;
        char *type;
        char *line;
};
void daemon_event_record_clear(struct iov_event_record *e);
/* As daemon_event_next, the whole record; *ret is cleared by the caller. */
int daemon_event_next_record(struct iov_event_subscriber *s, unsigned timeout_ms,
                             struct iov_event_record *ret);
/* Wait at most timeout_ms for the next event line (newline-terminated). 0 with *ret set,
 * -EAGAIN on timeout, -EPIPE when the subscriber was dropped (its queue overflowed),
 * -ESHUTDOWN when the daemon is stopping. */
int daemon_event_next(struct iov_event_subscriber *s, unsigned timeout_ms, char **ret);
void daemon_event_unsubscribe(struct iov_event_subscriber *s);

/* ---- metrics -------------------------------------------------------------------------- */

/* One answered request: route is the pattern (bounded label set), duration from the
 * headers to the response being queued. */
void daemon_metrics_count_request(struct iov_daemon *d, const char *method, const char *route,
                                  unsigned status, uint64_t duration_usec);
/* Prometheus text exposition of every counter and gauge. */
int daemon_metrics_render(struct iov_daemon *d, char **ret);

/* ---- modules -------------------------------------------------------------------------- */

/* A part of the daemon (allocations, VMs, ...) that registers itself once with
 * DAEMON_MODULE(). start (state restore, reconcile) runs in order before the API is up and
 * READY=1; stop runs at shutdown in reverse order. The other callbacks are how a module
 * adds to what the core answers; each may be NULL and is called only between the
 * module's start and its stop. */
struct iov_daemon_module {
        const char *name;
        int order; /* lower starts first */
        int (*start)(struct iov_daemon *d);
        void (*stop)(struct iov_daemon *d);
        /* Prometheus lines appended to /metrics. */
        void (*metrics)(struct iov_daemon *d, FILE *out);
        /* Keys added to GET /v1/host "counts" (e.g. "allocations", "vms"). */
        void (*host_counts)(struct iov_daemon *d, struct json_object *counts);
        /* The allocation holding this device as JSON (new reference), or NULL. */
        struct json_object *(*device_allocation)(struct iov_daemon *d,
                                                 const struct iov_pci_address *address);
        /* The owner of an IOMMU group as JSON (new reference, usually a string), or NULL. */
        struct json_object *(*group_owner)(struct iov_daemon *d, unsigned group_id);
        struct iov_daemon_module *next;
};

void daemon_module_register(struct iov_daemon_module *module);

/* DAEMON_MODULE(vms, .order = 60, .start = vms_start, .stop = vms_stop, ...): the module
 * is registered before main() runs. */
#define DAEMON_MODULE(id, ...)                                                                     \
        static struct iov_daemon_module daemon_module_##id = {.name = #id, __VA_ARGS__};           \
        __attribute__((constructor)) static void daemon_module_register_##id(void)                 \
        {                                                                                          \
                daemon_module_register(&daemon_module_##id);                                       \
        }

/* What the running modules add, in module order. */
void daemon_modules_metrics(struct iov_daemon *d, FILE *out);
void daemon_modules_host_counts(struct iov_daemon *d, struct json_object *counts);
/* The first answer a running module gives, or NULL. */
struct json_object *daemon_device_allocation(struct iov_daemon *d,
                                             const struct iov_pci_address *address);
struct json_object *daemon_group_owner(struct iov_daemon *d, unsigned group_id);

/* ---- the state store ------------------------------------------------------------------ */

/*
 * iovd's durable state under --state-dir.
 *
 * Each collection ("pools", "allocations", later "vms") is one JSON document,
 * STATE_DIR/KIND.json:
 *
 *   {"format": "iovd-state", "version": 1, "kind": "pools", "items": [ ... ]}
 *
 * A save replaces the whole document atomically (temporary file, fsync, rename, fsync of
 * the directory), so after a crash a reader finds the old or the new document, never a
 * mix; callers save before they answer the request that changed the state.
 *
 * A document that cannot be read, is not JSON, has the wrong shape or a version newer
 * than this daemon understands is reported with a message naming the file, and is never
 * rewritten: the daemon refuses to start and leaves the evidence to the administrator.
 */
#define IOV_STATE_FORMAT  "iovd-state"
#define IOV_STATE_VERSION 1
/* A state document is small (a few hundred bytes per item); anything bigger is not ours. */
#define IOV_STATE_MAX_SIZE (64u * 1024 * 1024)

struct iov_state;

/* Use dir (created with mode 0700 when missing) for the state documents; temporary files
 * an interrupted save left there are removed. */
int state_open(const char *dir, struct iov_state **ret);
void state_free(struct iov_state *state);

const char *state_dir(const struct iov_state *state);

/* STATE_DIR/KIND.json; NULL on OOM. kind is a program constant, never request input. */
char *state_path(const struct iov_state *state, const char *kind);

/* Load the items of a collection as a new JSON array (an empty one when the document does
 * not exist yet). -EBADMSG: not a state document of this kind (not JSON, trailing data,
 * wrong format, kind or shape); -EPROTONOSUPPORT: written by a newer version; other
 * negative errno: the file could not be read. On failure ret_error (may be NULL) gets a
 * message naming the file and what is wrong with it. */
int state_load(const struct iov_state *state, const char *kind, struct json_object **ret_items,
               char **ret_error);

/* Durably replace the collection with items (a JSON array, not consumed). */
int state_save(const struct iov_state *state, const char *kind, struct json_object *items);

/*
 * Collections of one file per item (pools, allocations, quarantine), so a change costs
 * one small write whatever the number of items:
 *
 *   STATE_DIR/KIND/KEY.json   {"format": "iovd-state", "version": 1, "kind": KIND,
 *                              "item": {...}}
 *   STATE_DIR/KIND.json       {"format": "iovd-state", "version": 2, "kind": KIND,
 *                              "items_in": "KIND/"}: the marker
 *
 * An item is saved atomically (temporary file, fsync, rename, fsync of the directory)
 * and removed with unlink and an fsync of the directory: after a crash each item is the
 * old or the new one, and items are independent (every multi-step change is ordered so
 * that each prefix of its writes is a state start-up reconciliation understands).
 * The marker is version 2 so an iovd from before this layout refuses to start on it
 * instead of seeing no state. A legacy KIND.json (version 1, every item in one document)
 * is loaded as it is; the caller then saves every item and calls state_items_commit,
 * which replaces the document with the marker: a crash before that leaves the legacy
 * document, which is loaded (and migrated) again.
 *
 * Loading checks each file like a request: the wrapper, then the item through fn; the
 * first file that fails is named in ret_error and nothing is changed. A file in KIND/
 * that is not KEY.json (other than an interrupted save's temporary, which is removed) is
 * refused too.
 */
#define IOV_STATE_ITEMS_VERSION 2
/* An item file: a pool of IOV_POOL_ADDRESSES_MAX addresses is under 100 KiB. */
#define IOV_STATE_ITEM_MAX_SIZE (1024u * 1024)
#define IOV_STATE_ITEM_KEY_MAX  128

/* Check item (its key, the file name without .json; NULL for an item of a legacy
 * document) as a request is checked and take it in; negative errno and *ret_why (may stay
 * NULL) when it is refused. */
typedef int (*state_item_fn)(struct json_object *item, const char *key, void *userdata,
                             char **ret_why);

/* Hand every item of KIND to fn in key order. *ret_commit is set when the caller must
 * save every item it took and call state_items_commit (a legacy document, or no marker
 * yet). -EBADMSG and friends with ret_error as state_load. */
int state_items_load(const struct iov_state *state, const char *kind, state_item_fn fn,
                     void *userdata, bool *ret_commit, char **ret_error);
/* Durably write item as STATE_DIR/KIND/KEY.json; -EINVAL for a key that is not a plain
 * file name, -EFBIG for an item the loader would refuse as too large. */
int state_item_save(const struct iov_state *state, const char *kind, const char *key,
                    struct json_object *item);
/* Durably remove STATE_DIR/KIND/KEY.json (absent is fine). */
int state_item_remove(const struct iov_state *state, const char *kind, const char *key);
/* fsync KIND/ and write the marker (after a migration or on a new state dir). */
int state_items_commit(const struct iov_state *state, const char *kind);

/* ---- the daemon ----------------------------------------------------------------------- */

struct iov_daemon_runtime; /* private to daemon/ */
struct iov_alloc;          /* alloc/alloc-internal.h */
struct iov_vm_table;       /* vms/vm-record.h */

struct iov_daemon {
        struct iov_daemon_config config;

        /* Serializes every change of durable state and of device bindings. */
        pthread_mutex_t state_lock;
        struct iov_state *state;

        struct iov_daemon_runtime *rt; /* snapshot, events, metrics, modules */

        /* The modules' own state, set by their start() and cleared by their stop(); the
         * core never looks inside. */
        struct iov_alloc *alloc;
        struct iov_vm_table *vms;
};

/* Allocate a daemon for config (taken over: config is left empty). Reads nothing yet. */
int daemon_new(struct iov_daemon_config *config, struct iov_daemon **ret);
void daemon_free(struct iov_daemon *d);
DEFINE_CLEANUP_FUNC(struct iov_daemon, daemon_free)

/* Lock the state dir, scan the hardware, start every module, start the udev monitor.
 * Logs what failed. The program starts its front end (the API) after it. */
int daemon_start(struct iov_daemon *d);
/* READY=1 to the service manager: the front end is up too. */
void daemon_ready(struct iov_daemon *d);
/* STOPPING=1, stop watching udev, wake every event stream and tell every other stream
 * (daemon_is_stopping) to end, so the front end can close its connections. Idempotent. */
void daemon_stop_begin(struct iov_daemon *d);
bool daemon_is_stopping(struct iov_daemon *d);
/* daemon_stop_begin, then stop the modules in reverse order; the front end is closed
 * by then. Idempotent. */
void daemon_stop(struct iov_daemon *d);
/* The main loop: block until SIGTERM or SIGINT (which must be blocked in every thread).
 * Meanwhile send STATUS= and, when $WATCHDOG_USEC asks for it, WATCHDOG=1 at half the
 * interval while a health check passes (daemon/watchdog.c). */
int daemon_wait_for_signal(struct iov_daemon *d);
/* 1 with *ret the interval when the service manager wants watchdog pings, 0 when not,
 * -EINVAL when $WATCHDOG_USEC is malformed (sd_watchdog_enabled(3) semantics). */
int daemon_watchdog_usec(uint64_t *ret);
/* Have the main loop send STATUS=ready: ... again within a second (after "rescanning").
 * Only sets a flag: callers may hold any lock. */
void daemon_status_stale(struct iov_daemon *d);
/* IOVD_TEST_HOOKS=1: SIGUSR2 wedges the state lock (tests of the watchdog only). */
bool daemon_test_hooks_enabled(void);
/* IOVD_TEST_HOOKS=1 and IOVD_TEST_CRASH_AT=step: iovd kills itself with SIGKILL here, as
 * a power cut or kill -9 at that point would (the durability tests of each step). */
void daemon_test_crash_point(const char *step);

/* Send a datagram to $NOTIFY_SOCKET ("READY=1", "STOPPING=1"); 0 when the variable is
 * unset (not run by systemd). */
int daemon_notify(const char *state);
