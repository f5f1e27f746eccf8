/* SPDX-License-Identifier: MIT */
/* vm-record: the private half of vms/vms.h, shared by the files of vms/ (vm-table.c,
 * vm-store.c, vm-console.c, vm-lifecycle.c, vms.c) and nothing outside it. */
#pragma once

#include <pthread.h>

#include "util/json.h"
#include "util/util.h"

#include "vms/supervisor.h"
#include "vms/vms.h"

#define IOV_VM_ID_MAX 24 /* "vm-" and 16 hex digits */
/* What a VM gains in vms.json after its create, bounded so a full table still loads
 * (vm-admission.c): the reason of its last end, and its last run's final stats. */
#define IOV_VM_REASON_MAX 1024
#define IOV_VM_STATS_MAX  (24 * 1024)

/* What iovd itself asked of a running VM, so its end is judged right. */
enum iov_vm_request {
        IOV_VM_REQUEST_NONE,
        IOV_VM_REQUEST_STOP,
        IOV_VM_REQUEST_KILL,
        IOV_VM_REQUEST_STOP_TIMEOUT, /* a stop that ran out of time: SIGKILL sent */
};

/* One vfio entry of a VM's definition and the allocation the VM holds for it
 * (vms/vm-passthrough.c). */
struct iov_vm_passthrough {
        size_t index; /* in spec.devices */
        char allocation[IOV_VFIO_ALLOCATION_ID_MAX];
};

struct iov_vm_record {
        char id[IOV_VM_ID_MAX];
        struct iov_vm_spec spec;                /* the definition, parsed once (vm-contract.h) */
        struct iov_vm_passthrough *passthrough; /* one per vfio entry, in spec order */
        size_t n_passthrough;
        bool unsafe_interrupts; /* the last start passed devices through with
                                   --allow-unsafe-interrupts on a host lacking protection */

        enum iov_vm_state state;
        char *reason;                                      /* why it stopped or crashed */
        uint64_t created_usec, started_usec, stopped_usec; /* wall clock */
        struct json_object *stats;                         /* the last run's final stats, or NULL */

        /* Runtime only. */
        struct iov_vmm_process process;
        int pidfd;                  /* -1 when no VMM is followed */
        int monitor_fd;             /* the last run's monitor: hangs up once it wrote the
                                       exit file (supervisor_read_exit); -1: none known */
        bool starting;              /* a start is between spawn and the first state */
        bool finishing;             /* the VMM ended; its verdict is being read */
        bool deleting;              /* a delete takes its allocations over, lock dropped */
        bool exit_pending;          /* judged before the monitor's exit file came */
        unsigned run;               /* counts starts, so a late verdict never hits a newer run */
        int exit_status;            /* of the last run's VMM, -1 when unknown or killed */
        int vmm_slot;               /* the jailed VMM runs as --vmm-uid-base + this; -1: none yet */
        uint64_t started_mono_usec; /* util_now_usec of the last start */
        bool marker_seen;           /* a show saw a marker of this run (its step is timed) */
        enum iov_vm_request request;
};

/* Where a VM's way through iovd spends its time, summed per step (GET /metrics,
 * iovd_vm_step_seconds_total): what bench/vms profiles. */
enum iov_vm_step {
        IOV_VM_STEP_VALIDATE,     /* a create's checks and file opens, before it is saved */
        IOV_VM_STEP_STATE_WRITE,  /* each save of vms.json (its fsyncs) */
        IOV_VM_STEP_FILE_OPEN,    /* a start's file opens and device preparation */
        IOV_VM_STEP_CONFIG_WRITE, /* the VMM's --config in its run directory */
        IOV_VM_STEP_JAIL_SETUP,   /* the VMM's cgroup and its limits */
        IOV_VM_STEP_SPAWN,        /* run files, fork, until the monitor is on its own */
        IOV_VM_STEP_MONITOR_EXEC, /* from there until the monitor reports the VMM's pid */
        IOV_VM_STEP_VMM_READY,    /* from there until the VMM answers on its socket */
        IOV_VM_STEP_MARKER_SEEN,  /* from the start until a show first sees a marker */
        IOV_VM_STEP_LIVE_STATS,   /* each show's "stats" asked of the running VMM */
        IOV_VM_STEP_STOP,         /* a kill or stop, until the VM's end is judged */
        IOV_VM_STEP_EXIT_READ,    /* reading how the VMM ended (exit file, log) */
        IOV_VM_STEP_DELETE,       /* a delete, but its save */
        IOV_VM_STEP_COUNT,
};

/* The table of VMs; one per daemon (d->vms), kept by vms/vm-table.c. */
struct iov_vm_table {
        pthread_mutex_t lock;
        pthread_cond_t changed; /* broadcast on every state change */
        /* Group commit of STATE_DIR/vms.json: every change bumps change_gen; a request
         * that changed something calls vm_table_sync() (or vm_table_sync_gen() for its own
         * change, not what others changed since) before it answers, and one save
         * (about 7 ms of fsyncs here) covers every change made before it began. */
        pthread_cond_t saved;
        uint64_t change_gen, saved_gen;
        bool saving;
        /* Changes no request waits for (a VMM that ended on its own) are saved by the saver
         * thread (vm_table_save_soon), so the watcher never waits for the disk. */
        pthread_cond_t save_wanted_cond;
        bool save_wanted, saver_stopping;
        pthread_t saver;
        bool saver_running;
        struct iov_daemon *daemon;
        struct iov_vm_record **records;
        size_t n_records;
        char *vmm_path;
        char *dir;        /* RUN_DIR/vms */
        char *cgroup_dir; /* where VMM cgroups are made (vm-cgroup.c), NULL: none */
        int wake_fd;      /* eventfd: the watcher re-reads the table */
        pthread_t watcher;
        bool watcher_running;
        bool stopping;
        unsigned restarts_running;              /* vm-restart.c threads; stopping waits for them */
        uint64_t step_usec[IOV_VM_STEP_COUNT];  /* atomic */
        uint64_t step_count[IOV_VM_STEP_COUNT]; /* atomic */
};

/* Add a step's duration (since start_usec, util_now_usec) to the table's sums. */
void vm_time_step(struct iov_vm_table *t, enum iov_vm_step step, uint64_t start_usec);
const char *vm_step_name(enum iov_vm_step step);

/* An empty record: default spec, no VMM followed (pidfd -1), no exit status yet. */
struct iov_vm_record *vm_record_alloc(void);
void vm_record_free(struct iov_vm_record *rec);
DEFINE_CLEANUP_FUNC(struct iov_vm_record, vm_record_free)

/* The table of d (d->vms), empty; the vms module's start fills it. */
int vm_table_new(struct iov_daemon *d, struct iov_vm_table **ret);
/* Free the records too; the watcher is stopped and nobody else holds t. */
void vm_table_free(struct iov_vm_table *t);
/* With the lock held. */
struct iov_vm_record *vm_table_find(struct iov_vm_table *t, const char *id);
int vm_table_add(struct iov_vm_table *t, struct iov_vm_record *rec);
/* vms/vm-store.c: the durable form (vms.json). */
struct json_object *vm_record_to_durable(const struct iov_vm_record *rec);
/* Keep stats (taking the reference; may be NULL) as rec's last run's final stats, unless
 * they would take more than IOV_VM_STATS_MAX bytes stored: then they are dropped. */
void vm_record_set_stats(struct iov_vm_record *rec, struct json_object *stats);
/* Load vms.json into the empty table at start; logs what is wrong with it. */
int vm_table_load(struct iov_vm_table *t);
/* Make every change so far durable. Drops the lock while writing: records found before
 * may be gone afterwards. Failures are logged. */
int vm_table_sync(struct iov_vm_table *t);
/* The same for the changes up to generation gen (a change_gen read earlier): what a request
 * needs durable before it answers, not what others changed since. */
int vm_table_sync_gen(struct iov_vm_table *t, uint64_t gen);
/* Have the saver thread make every change so far durable soon (lock held); returns at once.
 * A request that answers on these changes still calls vm_table_sync(). */
void vm_table_save_soon(struct iov_vm_table *t);
/* The saver thread, started and stopped with the watcher; stop saves what is left. */
int vm_saver_start(struct iov_vm_table *t);
void vm_saver_stop(struct iov_vm_table *t);
char *vm_record_dir(struct iov_vm_table *t, const struct iov_vm_record *rec);
struct json_object *vm_record_to_json(struct iov_vm_table *t, const struct iov_vm_record *rec);
/* Publish an event of type about rec: {"id", "name", "state", "reason"}. */
void vm_publish(struct iov_vm_table *t, const char *type, const struct iov_vm_record *rec);
/* Change state (durable at the next vm_table_sync()), publish "vm_state_changed", wake waiters.
 * reason may be NULL. */
void vm_record_set_state(struct iov_vm_table *t, struct iov_vm_record *rec, enum iov_vm_state state,
                         const char *reason);

int vm_problem_not_found(struct iov_problem *p, const char *id);
int vm_problem_state(struct iov_problem *p, const struct iov_vm_record *rec, const char *what);

/* vms/vm-passthrough.c: the VM's vfio entries as allocations it holds. */
/* At create, before rec joins the table: allocate or adopt one allocation per vfio entry
 * of rec->spec (filling rec->passthrough), or, on the first refusal, give back what was
 * taken and fail with the allocation's own problem. */
int vm_passthrough_attach(struct iov_daemon *d, struct iov_vm_record *rec, struct iov_problem *p);
/* Give back a VM's allocations: release them (delete), or for a create that rolls back,
 * give adopted ones back to their owner. Failures are logged. Returns the release reports
 * ([{"id", "released", "quarantined"}]) when ret is not NULL. */
/* At delete, before rec leaves the table: the allocations it adopted become its own, so a
 * crash from then on releases them (allocations_take_over). */
int vm_passthrough_take_over(struct iov_daemon *d, const struct iov_vm_record *rec,
                             struct iov_problem *p);
void vm_passthrough_detach(struct iov_daemon *d, const char *vm_id, const struct iov_vm_spec *spec,
                           const struct iov_vm_passthrough *list, size_t n, bool rollback,
                           struct json_object **ret);
/* Before a start: the host check (IOMMU and interrupt remapping, or the unsafe switch),
 * every device reset, and config (the contract JSON of the definition) rewritten with
 * the VMM's entries ("host"), the VFIO container and each group's node opened into fds
 * ("vfio_container", each entry's "vfio_group"). -EBADMSG with p filled when the VM must
 * not start. */
int vm_passthrough_prepare(struct iov_daemon *d, const struct iov_vm_record *rec,
                           struct json_object *config, struct iov_vmm_fds *fds, bool *ret_unsafe,
                           struct iov_problem *p);
/* After a VMM ended: reset every device (a failure quarantines it, see allocations_reset). */
void vm_passthrough_reset(struct iov_daemon *d, const char *vm_id,
                          const struct iov_vm_passthrough *list, size_t n);
/* The API's "passthrough" list of rec. */
struct json_object *vm_passthrough_to_json(struct iov_daemon *d, const struct iov_vm_record *rec);
/* The durable "passthrough" list, and its reading back (-EBADMSG when malformed). */
struct json_object *vm_passthrough_to_durable(const struct iov_vm_record *rec);
int vm_passthrough_from_durable(struct json_object *o, struct iov_vm_record *rec);

/* vms/vm-files.c: the definition as iovd-vmm's config, every host file it names (kernel,
 * initrd, the device models' host_files) opened beneath an image directory and added to
 * fds, named "fd:N" in *ret in its place. fds and ret NULL: only check that each file
 * opens (a create). -EBADMSG with p filled (403 path_not_allowed, 400 file_not_readable
 * or 500 internal_error). */
int vm_files_open(struct iov_vm_table *t, const struct iov_vm_spec *spec, struct iov_vmm_fds *fds,
                  struct json_object **ret, struct iov_problem *p);

/* vms/vm-cgroup.c: find (and set up) where VMMs get cgroups, at start; logs. */
void vm_cgroup_setup(struct iov_vm_table *t);
/* The cgroup of rec's next VMM, its limits written; *ret_dir NULL where there are none. */
int vm_cgroup_create(struct iov_vm_table *t, const struct iov_vm_record *rec, char **ret_dir);
/* vms/vm-cgroup.c: the limits of a re-attached VM's existing cgroup written again (they are
 * gone once its controllers were turned off while no iovd ran: iovd.service's ExecStopPost). */
void vm_cgroup_restore(struct iov_vm_table *t, const struct iov_vm_record *rec);

/* vms/vm-console.c: bound the console file of dir; 1 when it was trimmed. */
int vm_console_trim(const char *dir);

/* vms/vm-lifecycle.c: actions and exits. */
void vm_watcher_wake(struct iov_vm_table *t);
int vm_watcher_start(struct iov_vm_table *t);
void vm_watcher_stop(struct iov_vm_table *t);
/* At start, for each VM: follow its VMM again when one still runs (whatever state was
 * saved), or judge the end of one that was running. */
void vm_reattach(struct iov_vm_table *t, struct iov_vm_record *rec);

/* vms/vm-admission.c (lock held): 0 when the host has room for rec, with the VMs holding it
 * counted when others (a start) or rec alone (a create); else -EBADMSG with p filled (409
 * insufficient_memory or insufficient_cpus). */
int vm_admission_check(struct iov_vm_table *t, const struct iov_vm_record *rec, bool others,
                       struct iov_problem *p);
/* 0 when the table can take rec (a new VM); else -EBADMSG with p filled (409 too_many_vms,
 * 422 definition_too_large). */
int vm_admission_check_table(struct iov_vm_table *t, const struct iov_vm_record *rec,
                             struct iov_problem *p);

/* vms/vm-links.c: VM-to-VM links (docs/architecture.md). Lock held for the checks: 0, or
 * -EBADMSG with p filled (409 link_invalid: a peer VM or port that does not exist, a port
 * declared twice or used by another client; 409 vm_has_clients unless force). */
int vm_links_check_new(struct iov_vm_table *t, const struct iov_vm_record *rec,
                       struct iov_problem *p);
int vm_links_check_delete(struct iov_vm_table *t, const struct iov_vm_record *rec, bool force,
                          struct iov_problem *p);
/* VM id runs now (lock not held): join each of its links whose other VM runs too. */
void vm_links_up(struct iov_vm_table *t, const char *id);
/* rec ended (lock held): link_down for each of its links whose other VM still runs. */
void vm_links_down(struct iov_vm_table *t, const struct iov_vm_record *rec);
/* "links" of GET /v1/vms/{id} into o, with the counters of o's live "stats". */
void vm_links_add_json(struct iov_vm_table *t, const char *id, struct json_object *o);
/* vms.c: o's "stats" from the VMM of VM id while it runs (as GET /v1/vms/{id} shows them). */
void vm_add_live_stats(struct iov_vm_table *t, const char *id, struct json_object *o);
/* vms/vm-restart.c: rec crashed (lock held); start it again when its definition asks. */
void vm_restart_consider(struct iov_vm_table *t, const struct iov_vm_record *rec);
/* With stopping set: wait until every restart thread has ended (lock not held). */
void vm_restart_wait_all(struct iov_vm_table *t);
