/* SPDX-License-Identifier: MIT */
/* vms: the module's requests (create, list, show, delete), its counts for /metrics and
 * GET /v1/host, and its start and stop (DAEMON_MODULE). */
#include <assert.h>
#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <sys/random.h>

#include "alloc/alloc.h"
#include "daemon/daemon.h"
#include "vms/vm-record.h"

static void closedir_ptr(DIR **p)
{
        if (*p)
                closedir(*p);
}

/* ---- requests ------------------------------------------------------------------------- */

static int vm_new_id(char ret[static IOV_VM_ID_MAX])
{
        uint8_t bytes[8];
        if (getrandom(bytes, sizeof(bytes), 0) != (ssize_t)sizeof(bytes))
                return errno ? -errno : -EIO;
        char *p = ret + sprintf(ret, "vm-");
        for (size_t i = 0; i < sizeof(bytes); i++)
                p += sprintf(p, "%02x", bytes[i]);
        return 0;
}

static int vm_record_new(struct iov_vm_spec *spec, struct iov_vm_record **ret)
{
        _cleanup_(vm_record_freep) struct iov_vm_record *rec = vm_record_alloc();
        if (!rec)
                return -ENOMEM;
        int r = vm_new_id(rec->id);
        if (r < 0)
                return r;
        vm_spec_move(&rec->spec, spec);
        rec->state = IOV_VM_STATE_CREATED;
        rec->created_usec = util_realtime_usec();
        *ret = TAKE_PTR(rec);
        return 0;
}

/* Undo a create whose save failed (lock held), unless someone started or is deleting the
 * VM meanwhile; returns the record taken out (its devices go back once the lock is
 * dropped, docs/architecture.md's lock order), or NULL. */
static struct iov_vm_record *vm_table_forget_new(struct iov_vm_table *t, const char *id)
{
        for (size_t i = 0; i < t->n_records; i++) {
                struct iov_vm_record *rec = t->records[i];
                if (!streq(rec->id, id))
                        continue;
                if (rec->state != IOV_VM_STATE_CREATED || rec->starting || rec->deleting)
                        return NULL;
                memmove(&t->records[i], &t->records[i + 1],
                        (t->n_records - i - 1) * sizeof(*t->records));
                t->n_records--;
                t->change_gen++;
                return rec;
        }
        return NULL;
}

/* Another VM of the table named like rec (lock held), or NULL. */
static const struct iov_vm_record *vm_table_find_name(struct iov_vm_table *t,
                                                      const struct iov_vm_record *rec)
{
        for (size_t i = 0; rec->spec.name && i < t->n_records; i++)
                if (streq_ptr(t->records[i]->spec.name, rec->spec.name))
                        return t->records[i];
        return NULL;
}

/* Whether rec may join the table (lock held): a free name, room in the table and vms.json,
 * and a host that could run it at all. */
static int vms_create_check(struct iov_vm_table *t, const struct iov_vm_record *rec,
                            struct iov_problem *p)
{
        const struct iov_vm_record *same = vm_table_find_name(t, rec);
        if (same)
                return daemon_problem_set(p, 409, "name_in_use", "VM %s is already named \"%s\"",
                                          same->id, rec->spec.name);
        int r = vm_links_check_new(t, rec, p);
        if (r >= 0)
                r = vm_admission_check_table(t, rec, p);
        if (r < 0)
                return r;
        return vm_admission_check(t, rec, false, p);
}

/* Whether rec may join the table, checked before any device is taken for it (lock not
 * held): a create the table would refuse anyway leaves the host untouched. */
static int vms_create_precheck(struct iov_vm_table *t, const struct iov_vm_record *rec,
                               struct iov_problem *p)
{
        pthread_mutex_lock(&t->lock);
        int r = vms_create_check(t, rec, p);
        pthread_mutex_unlock(&t->lock);
        return r;
}

/* Make the VM just added durable (lock held, dropped on return) and answer with it; one
 * whose save failed is forgotten again: it was never created. */
static int vms_create_save(struct iov_vm_table *t, struct iov_vm_record *added,
                           struct json_object **ret)
{
        char id[IOV_VM_ID_MAX];
        memcpy(id, added->id, sizeof(id));
        /* Its own change only: a create does not wait for the saves of changes other
         * requests made after it (bench/vms: with 8 VMs starting at once, one more save). */
        uint64_t gen = ++t->change_gen;
        _cleanup_json_ struct json_object *json = vm_record_to_json(t, added);
        int r = json ? vm_table_sync_gen(t, gen) : -ENOMEM;
        if (r < 0) {
                struct iov_vm_record *gone = vm_table_forget_new(t, id);
                pthread_mutex_unlock(&t->lock);
                if (gone)
                        vm_passthrough_detach(t->daemon, gone->id, &gone->spec, gone->passthrough,
                                              gone->n_passthrough, true, NULL);
                vm_record_free(gone);
                return r;
        }
        struct iov_vm_record *now = vm_table_find(t, id);
        if (now)
                vm_publish(t, "vm_created", now);
        pthread_mutex_unlock(&t->lock);
        *ret = TAKE_PTR(json);
        return 0;
}

int vms_create(struct iov_daemon *d, struct iov_vm_spec *spec, struct json_object **ret,
               struct iov_problem *p)
{
        struct iov_vm_table *t = d->vms;
        uint64_t start = util_now_usec();
        _cleanup_(vm_record_freep) struct iov_vm_record *rec = NULL;
        int r = vm_record_new(spec, &rec);
        if (r >= 0)
                r = vms_create_precheck(t, rec, p);
        /* Each allocation is saved naming the VM before vms.json knows it: a crash in
         * between leaves allocations of no VM, released at the next start. */
        if (r >= 0)
                r = vm_passthrough_attach(d, rec, p);
        if (r < 0)
                return r;
        daemon_test_crash_point("vm-create-attached");
        pthread_mutex_lock(&t->lock);
        r = vms_create_check(t, rec, p);
        pthread_mutex_unlock(&t->lock);
        /* Every file it names opens now, confined (a start opens them again); outside the
         * lock, since it reads files. Then the table again: it may have changed meanwhile. */
        if (r >= 0)
                r = vm_files_open(t, &rec->spec, NULL, NULL, p);
        if (r < 0)
                return r;
        pthread_mutex_lock(&t->lock);
        r = vms_create_check(t, rec, p);
        if (r >= 0)
                r = vm_table_add(t, rec);
        if (r < 0) {
                pthread_mutex_unlock(&t->lock);
                vm_passthrough_detach(d, rec->id, &rec->spec, rec->passthrough, rec->n_passthrough,
                                      true, NULL);
                return r;
        }
        vm_time_step(t, IOV_VM_STEP_VALIDATE, start);
        return vms_create_save(t, TAKE_PTR(rec), ret);
}

int vms_list(struct iov_daemon *d, struct json_object **ret)
{
        struct iov_vm_table *t = d->vms;
        _cleanup_json_ struct json_object *vms = json_object_new_array();
        struct json_object *o = json_object_new_object();
        if (!vms || !o) {
                json_object_put(o);
                return -ENOMEM;
        }
        pthread_mutex_lock(&t->lock);
        for (size_t i = 0; i < t->n_records; i++)
                json_object_array_add(vms, vm_record_to_json(t, t->records[i]));
        pthread_mutex_unlock(&t->lock);
        json_object_object_add(o, "vms", TAKE_PTR(vms));
        *ret = o;
        return 0;
}

/* The first show of run `run` whose live stats hold a marker times the way from the start
 * to it (IOV_VM_STEP_MARKER_SEEN). */
static void vm_note_marker(struct iov_vm_table *t, const char *id, unsigned run,
                           struct json_object *stats)
{
        struct json_object *markers = json_object_object_get(stats, "markers");
        if (json_object_array_length(markers) == 0)
                return;
        pthread_mutex_lock(&t->lock);
        struct iov_vm_record *rec = vm_table_find(t, id);
        if (rec && rec->run == run && !rec->marker_seen) {
                rec->marker_seen = true;
                vm_time_step(t, IOV_VM_STEP_MARKER_SEEN, rec->started_mono_usec);
        }
        pthread_mutex_unlock(&t->lock);
}

/* Exit counts and boot-progress markers of a running VM, straight from its VMM. */
void vm_add_live_stats(struct iov_vm_table *t, const char *id, struct json_object *o)
{
        _cleanup_free_ char *dir = NULL;
        pthread_mutex_lock(&t->lock);
        struct iov_vm_record *rec = vm_table_find(t, id);
        unsigned run = rec ? rec->run : 0;
        if (rec && rec->pidfd >= 0 && !rec->starting)
                dir = vm_record_dir(t, rec);
        pthread_mutex_unlock(&t->lock);
        if (!dir)
                return;
        struct json_object *stats = NULL;
        uint64_t start = util_now_usec();
        /* Short: a VMM whose guest just reset stops answering a moment before it exits. */
        int r = supervisor_command(dir, "stats", 250, &stats);
        vm_time_step(t, IOV_VM_STEP_LIVE_STATS, start);
        if (r < 0) {
                json_object_put(stats);
                return;
        }
        vm_note_marker(t, id, run, stats);
        json_object_object_add(o, "stats", stats);
}

int vms_show(struct iov_daemon *d, const char *id, struct json_object **ret, struct iov_problem *p)
{
        struct iov_vm_table *t = d->vms;
        pthread_mutex_lock(&t->lock);
        struct iov_vm_record *rec = vm_table_find(t, id);
        struct json_object *o = rec ? vm_record_to_json(t, rec) : NULL;
        pthread_mutex_unlock(&t->lock);
        if (!rec)
                return vm_problem_not_found(p, id);
        if (!o)
                return -ENOMEM;
        vm_add_live_stats(t, id, o);
        vm_links_add_json(t, id, o);
        *ret = o;
        return 0;
}

/* The run-time files of a VM that is gone for good. */
static void vm_remove_dir(const char *dir)
{
        _cleanup_(closedir_ptr) DIR *d = opendir(dir);
        if (!d)
                return;
        struct dirent *de;
        while ((de = readdir(d)))
                if (!streq(de->d_name, ".") && !streq(de->d_name, ".."))
                        (void)unlinkat(dirfd(d), de->d_name, 0);
        (void)rmdir(dir);
}

/* After the VM left vms.json (lock not held): its devices go back, rec is freed, and the
 * answer lists what was released. */
static int vm_delete_finish(struct iov_daemon *d, struct iov_vm_record *rec,
                            struct json_object **ret)
{
        /* A crash from here on leaves the VM's allocations to the next start, which
         * releases them (alloc/vm-owner.c). */
        struct json_object *released = NULL;
        daemon_test_crash_point("vm-delete-forgotten");
        vm_passthrough_detach(d, rec->id, &rec->spec, rec->passthrough, rec->n_passthrough, false,
                              &released);
        struct json_object *o = json_object_new_object();
        if (o) {
                json_object_object_add(o, "id", json_object_new_string(rec->id));
                json_object_object_add(o, "deleted", json_object_new_boolean(true));
                json_object_object_add(o, "released", released);
        } else {
                json_object_put(released);
        }
        vm_record_free(rec);
        if (!o)
                return -ENOMEM;
        *ret = o;
        return 0;
}

/* A VM that may be deleted (lock held), now marked deleting: no start and no other delete
 * takes it until vms_delete ends, so it stays in the table with the lock dropped. */
static int vm_delete_claim(struct iov_vm_table *t, const char *id, bool force,
                           struct iov_vm_record **ret, struct iov_problem *p)
{
        struct iov_vm_record *rec = vm_table_find(t, id);
        if (!rec)
                return vm_problem_not_found(p, id);
        if (rec->starting || rec->deleting || rec->pidfd >= 0 ||
            rec->state == IOV_VM_STATE_RUNNING || rec->state == IOV_VM_STATE_PAUSED)
                return vm_problem_state(p, rec, "delete");
        int r = vm_links_check_delete(t, rec, force, p);
        if (r < 0)
                return r;
        rec->deleting = true;
        *ret = rec;
        return 0;
}

/* Take rec out of the table and make that durable (lock held); on failure it stays. */
static int vm_delete_forget(struct iov_vm_table *t, struct iov_vm_record *rec)
{
        size_t i = 0;
        while (t->records[i] != rec)
                i++;
        memmove(&t->records[i], &t->records[i + 1], (t->n_records - i - 1) * sizeof(*t->records));
        t->n_records--;
        t->change_gen++;
        int r = vm_table_sync(t);
        if (r < 0 && vm_table_add(t, rec) >= 0) /* keep it: the delete did not happen */
                t->change_gen++;
        return r;
}

int vms_delete(struct iov_daemon *d, const char *id, bool force, struct json_object **ret,
               struct iov_problem *p)
{
        struct iov_vm_table *t = d->vms;
        uint64_t start = util_now_usec();
        struct iov_vm_record *rec = NULL;
        pthread_mutex_lock(&t->lock);
        int r = vm_delete_claim(t, id, force, &rec, p);
        pthread_mutex_unlock(&t->lock);
        if (!rec) {
                assert(r < 0);
                return r;
        }
        /* Lock order: a group's lock is never taken under the table's. A group's lock may
         * be held for seconds (a bind, a reset); under the table's lock that would stall
         * every VM request and the watcher's verdicts. */
        r = vm_passthrough_take_over(d, rec, p);
        pthread_mutex_lock(&t->lock);
        rec->deleting = false;
        uint64_t save_start = util_now_usec();
        if (r >= 0)
                r = vm_delete_forget(t, rec);
        start += util_now_usec() - save_start; /* the save is a step of its own */
        if (r < 0) {
                pthread_mutex_unlock(&t->lock);
                return r;
        }
        vm_publish(t, "vm_deleted", rec);
        _cleanup_free_ char *dir = vm_record_dir(t, rec);
        pthread_mutex_unlock(&t->lock);
        if (dir)
                vm_remove_dir(dir);
        r = vm_delete_finish(d, rec, ret);
        vm_time_step(t, IOV_VM_STEP_DELETE, start);
        return r;
}

/* ---- counts for /metrics and GET /v1/host --------------------------------------------- */

static void vm_count_by_state(struct iov_vm_table *t, size_t ret[static IOV_VM_STATE_COUNT],
                              size_t *ret_total)
{
        pthread_mutex_lock(&t->lock);
        for (size_t i = 0; i < t->n_records; i++)
                ret[t->records[i]->state]++;
        *ret_total = t->n_records;
        pthread_mutex_unlock(&t->lock);
}

/* Where VMs' creates, starts, shows, stops and deletes spent their time (enum
 * iov_vm_step). */
static void vm_step_metrics(struct iov_vm_table *t, FILE *out)
{
        fputs("# HELP iovd_vm_step_seconds_total Time VM requests spent per step.\n"
              "# TYPE iovd_vm_step_seconds_total counter\n"
              "# HELP iovd_vm_steps_total Steps taken by VM requests.\n"
              "# TYPE iovd_vm_steps_total counter\n",
              out);
        for (int s = 0; s < IOV_VM_STEP_COUNT; s++) {
                uint64_t usec = __atomic_load_n(&t->step_usec[s], __ATOMIC_RELAXED);
                uint64_t n = __atomic_load_n(&t->step_count[s], __ATOMIC_RELAXED);
                const char *name = vm_step_name((enum iov_vm_step)s);
                fprintf(out, "iovd_vm_step_seconds_total{step=\"%s\"} %.6f\n", name,
                        (double)usec / 1e6);
                fprintf(out, "iovd_vm_steps_total{step=\"%s\"} %" PRIu64 "\n", name, n);
        }
}

static void vms_metrics(struct iov_daemon *d, FILE *out)
{
        size_t by_state[IOV_VM_STATE_COUNT] = {0}, total;
        vm_count_by_state(d->vms, by_state, &total);
        fputs("# HELP iovd_vms VMs by state.\n# TYPE iovd_vms gauge\n", out);
        for (size_t s = 0; s < ARRAY_SIZE(by_state); s++)
                fprintf(out, "iovd_vms{state=\"%s\"} %zu\n",
                        vm_state_to_string((enum iov_vm_state)s), by_state[s]);
        vm_step_metrics(d->vms, out);
}

static void vms_host_counts(struct iov_daemon *d, struct json_object *counts)
{
        size_t by_state[IOV_VM_STATE_COUNT] = {0}, total;
        vm_count_by_state(d->vms, by_state, &total);
        struct json_object *o = json_object_new_object();
        for (size_t s = 0; o && s < ARRAY_SIZE(by_state); s++)
                json_object_object_add(o, vm_state_to_string((enum iov_vm_state)s),
                                       json_object_new_int64((int64_t)by_state[s]));
        json_object_object_add(counts, "vms", json_object_new_int64((int64_t)total));
        json_object_object_add(counts, "vms_by_state", o);
}

/* ---- module --------------------------------------------------------------------------- */

static void vms_stop(struct iov_daemon *d);

/* Before the watcher and the API start: nothing else touches the table. */
static bool vm_table_has_id(void *userdata, const char *id)
{
        struct iov_vm_table *t = userdata;
        for (size_t i = 0; i < t->n_records; i++)
                if (streq(t->records[i]->id, id))
                        return true;
        return false;
}

static int vms_start(struct iov_daemon *d)
{
        if (!d->state)
                return log_error_errno(-ENOENT, "The VMs need the state store, which is not open");
        int r = vm_table_new(d, &d->vms);
        if (r < 0)
                return r;
        struct iov_vm_table *t = d->vms;
        r = supervisor_find_vmm(d->config.vmm, &t->vmm_path);
        if (r < 0) {
                vms_stop(d);
                if (d->config.vmm)
                        return log_error_errno(r, "Cannot run --vmm %s: %m", d->config.vmm);
                return log_error_errno(r, "Cannot find iovd-vmm: %m");
        }
        vm_cgroup_setup(t);
        t->dir = util_path_join(d->config.run_dir, "vms", NULL);
        r = t->dir ? util_mkdir_p(t->dir, 0700) : -ENOMEM;
        if (r < 0)
                log_error_errno(r, "Cannot create %s/vms: %m", d->config.run_dir);
        else
                r = vm_table_load(t);
        if (r < 0) {
                vms_stop(d);
                return r;
        }
        size_t reattached = 0;
        for (size_t i = 0; i < t->n_records; i++) {
                vm_reattach(t, t->records[i]);
                reattached += t->records[i]->pidfd >= 0;
        }
        pthread_mutex_lock(&t->lock);
        (void)vm_table_sync(t); /* the verdicts on VMMs that ended while iovd was away */
        pthread_mutex_unlock(&t->lock);
        /* Allocations of VMs that a create or delete cut short left behind. */
        r = allocations_reconcile_vms(d, vm_table_has_id, t);
        if (r < 0) {
                vms_stop(d);
                return r;
        }
        r = vm_watcher_start(t);
        if (r < 0) {
                vms_stop(d);
                return log_error_errno(r, "Cannot start the VM watcher: %m");
        }
        log_info("VMs restored: %zu defined, %zu running (VMM %s)", t->n_records, reattached,
                 t->vmm_path);
        return 0;
}

/* VMMs keep running: a restarted iovd re-attaches to them. */
static void vms_stop(struct iov_daemon *d)
{
        struct iov_vm_table *t = d->vms;
        if (!t)
                return;
        vm_watcher_stop(t);
        pthread_mutex_lock(&t->lock);
        t->stopping = true;
        pthread_cond_broadcast(&t->changed);
        pthread_mutex_unlock(&t->lock);
        d->vms = NULL;
        vm_table_free(t);
}

/* After the allocations module (50), which opens the state store. */
DAEMON_MODULE(vms, .order = 60, .start = vms_start, .stop = vms_stop, .metrics = vms_metrics,
              .host_counts = vms_host_counts)
