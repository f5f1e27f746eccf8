/* SPDX-License-Identifier: MIT */
/* vm-table: the table of VMs and its records: lookups, state changes and their events, and
 * the refusals every request shares. The table hangs off the daemon (d->vms). */
#include <stdio.h>

#include "daemon/daemon.h"
#include "vms/vm-record.h"

int vm_table_new(struct iov_daemon *d, struct iov_vm_table **ret)
{
        struct iov_vm_table *t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        pthread_mutex_init(&t->lock, NULL);
        pthread_cond_init(&t->changed, NULL);
        pthread_cond_init(&t->saved, NULL);
        pthread_cond_init(&t->save_wanted_cond, NULL);
        t->wake_fd = -1;
        t->daemon = d;
        *ret = t;
        return 0;
}

void vm_table_free(struct iov_vm_table *t)
{
        if (!t)
                return;
        for (size_t i = 0; i < t->n_records; i++)
                vm_record_free(t->records[i]);
        free(t->records);
        free(t->vmm_path);
        free(t->cgroup_dir);
        free(t->dir);
        pthread_cond_destroy(&t->save_wanted_cond);
        pthread_cond_destroy(&t->saved);
        pthread_cond_destroy(&t->changed);
        pthread_mutex_destroy(&t->lock);
        free(t);
}

/* Each step also at debug level with its CLOCK_MONOTONIC bounds: bench/vms --trace reads
 * them for the p50/p99 of each step (the metrics only hold sums). */
void vm_time_step(struct iov_vm_table *t, enum iov_vm_step step, uint64_t start_usec)
{
        uint64_t now = util_now_usec();

        __atomic_add_fetch(&t->step_usec[step], now - start_usec, __ATOMIC_RELAXED);
        __atomic_add_fetch(&t->step_count[step], 1, __ATOMIC_RELAXED);
        log_debug("vm step %s %llu %llu", vm_step_name(step), (unsigned long long)start_usec,
                  (unsigned long long)now);
}

const char *vm_step_name(enum iov_vm_step step)
{
        static const char *const names[IOV_VM_STEP_COUNT] = {
                [IOV_VM_STEP_VALIDATE] = "validate",
                [IOV_VM_STEP_STATE_WRITE] = "state_write",
                [IOV_VM_STEP_FILE_OPEN] = "file_open",
                [IOV_VM_STEP_CONFIG_WRITE] = "config_write",
                [IOV_VM_STEP_JAIL_SETUP] = "jail_setup",
                [IOV_VM_STEP_SPAWN] = "spawn",
                [IOV_VM_STEP_MONITOR_EXEC] = "monitor_exec",
                [IOV_VM_STEP_VMM_READY] = "vmm_ready",
                [IOV_VM_STEP_MARKER_SEEN] = "marker_seen",
                [IOV_VM_STEP_LIVE_STATS] = "live_stats",
                [IOV_VM_STEP_STOP] = "stop",
                [IOV_VM_STEP_EXIT_READ] = "exit_read",
                [IOV_VM_STEP_DELETE] = "delete",
        };
        return names[step];
}

int vm_problem_not_found(struct iov_problem *p, const char *id)
{
        return daemon_problem_set(p, 404, "not_found", "no VM with id \"%.64s\"", id);
}

int vm_problem_state(struct iov_problem *p, const struct iov_vm_record *rec, const char *what)
{
        return daemon_problem_set(p, 409, "invalid_state", "cannot %s VM %s: it is %s%s", what,
                                  rec->id,
                                  rec->starting ? "starting" : vm_state_to_string(rec->state),
                                  rec->request != IOV_VM_REQUEST_NONE ? " (being stopped)"
                                  : rec->deleting                     ? " (being deleted)"
                                                                      : "");
}

struct iov_vm_record *vm_record_alloc(void)
{
        struct iov_vm_record *rec = calloc(1, sizeof(*rec));
        if (!rec)
                return NULL;
        vm_spec_init(&rec->spec);
        rec->pidfd = -1;
        rec->monitor_fd = -1;
        rec->exit_status = -1;
        rec->vmm_slot = -1;
        return rec;
}

void vm_record_free(struct iov_vm_record *rec)
{
        if (!rec)
                return;
        vm_spec_done(&rec->spec);
        free(rec->passthrough);
        free(rec->reason);
        json_object_put(rec->stats);
        if (rec->pidfd >= 0)
                close(rec->pidfd);
        if (rec->monitor_fd >= 0)
                close(rec->monitor_fd);
        free(rec);
}

struct iov_vm_record *vm_table_find(struct iov_vm_table *t, const char *id)
{
        for (size_t i = 0; i < t->n_records; i++)
                if (streq(t->records[i]->id, id))
                        return t->records[i];
        /* Names are unique too, so people and scripts may use them in paths. */
        for (size_t i = 0; i < t->n_records; i++)
                if (streq_ptr(t->records[i]->spec.name, id))
                        return t->records[i];
        return NULL;
}

char *vm_record_dir(struct iov_vm_table *t, const struct iov_vm_record *rec)
{
        return util_path_join(t->dir, rec->id, NULL);
}

static struct json_object *string_or_null(const char *s)
{
        return s ? json_object_new_string(s) : NULL;
}

void vm_publish(struct iov_vm_table *t, const char *type, const struct iov_vm_record *rec)
{
        struct json_object *data = json_object_new_object();
        if (!data)
                return;
        json_object_object_add(data, "id", json_object_new_string(rec->id));
        json_object_object_add(data, "name", string_or_null(rec->spec.name));
        json_object_object_add(data, "state",
                               json_object_new_string(vm_state_to_string(rec->state)));
        json_object_object_add(data, "reason", string_or_null(rec->reason));
        daemon_event_publish(t->daemon, type, data);
}

/* A copy of reason cut to IOV_VM_REASON_MAX bytes at a UTF-8 boundary: it comes from the
 * VMM's last words and is stored in vms.json, whose size must stay bounded. */
static char *vm_reason_bounded(const char *reason)
{
        size_t n = strlen(reason);
        if (n <= IOV_VM_REASON_MAX)
                return strdup(reason);
        n = IOV_VM_REASON_MAX;
        while (n > 0 && ((unsigned char)reason[n] & 0xc0) == 0x80)
                n--; /* reason[n] continues a character: cut before it starts */
        return strndup(reason, n);
}

void vm_record_set_state(struct iov_vm_table *t, struct iov_vm_record *rec, enum iov_vm_state state,
                         const char *reason)
{
        rec->state = state;
        free(rec->reason);
        rec->reason = reason ? vm_reason_bounded(reason) : NULL;
        if (state == IOV_VM_STATE_STOPPED || state == IOV_VM_STATE_CRASHED)
                rec->stopped_usec = util_realtime_usec();
        t->change_gen++;
        vm_publish(t, "vm_state_changed", rec);
        pthread_cond_broadcast(&t->changed);
        log_info("VM %s: %s%s%s", rec->id, vm_state_to_string(state), reason ? ": " : "",
                 reason ? reason : "");
}

int vm_table_add(struct iov_vm_table *t, struct iov_vm_record *rec)
{
        struct iov_vm_record **records =
                realloc(t->records, (t->n_records + 1) * sizeof(*t->records));
        if (!records)
                return -ENOMEM;
        t->records = records;
        t->records[t->n_records++] = rec;
        return 0;
}
