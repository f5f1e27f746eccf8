/* SPDX-License-Identifier: MIT */
/*
 * vm-store: the VMs' durable form, STATE_DIR/vms.json in the state store (daemon/state.h):
 * each VM's definition, its last state and reason, and its last run's final stats.
 * Runtime facts (pid, pidfd) live under RUN_DIR instead (vms/supervisor.h), because
 * they do not survive a reboot and the definitions must.
 */
#include <stdio.h>

#include "daemon/daemon.h"
#include "vms/vm-record.h"

#define KIND_VMS "vms"

static struct json_object *string_or_null(const char *s)
{
        return s ? json_object_new_string(s) : NULL;
}

static struct json_object *usec_or_null(uint64_t usec)
{
        return usec ? json_object_new_int64((int64_t)usec) : NULL;
}

/* The durable form; the API form adds runtime fields to it. The definition's fields are
 * written by the contract's writer, so the load below reads them with its parser. */
struct json_object *vm_record_to_durable(const struct iov_vm_record *rec)
{
        _cleanup_json_ struct json_object *spec = NULL;
        struct json_object *o = json_object_new_object();
        if (!o || vm_spec_to_json(&rec->spec, &spec) < 0) {
                json_object_put(o);
                return NULL;
        }
        json_object_object_add(o, "id", json_object_new_string(rec->id));
        json_object_object_foreach (spec, key, value)
                json_object_object_add(o, key, json_object_get(value));
        json_object_object_add(o, "state", json_object_new_string(vm_state_to_string(rec->state)));
        json_object_object_add(o, "reason", string_or_null(rec->reason));
        json_object_object_add(o, "created_usec",
                               json_object_new_int64((int64_t)rec->created_usec));
        json_object_object_add(o, "started_usec", usec_or_null(rec->started_usec));
        json_object_object_add(o, "stopped_usec", usec_or_null(rec->stopped_usec));
        json_object_object_add(o, "stats", json_object_get(rec->stats));
        json_object_object_add(o, "passthrough", vm_passthrough_to_durable(rec));
        json_object_object_add(o, "unsafe_interrupts",
                               json_object_new_boolean(rec->unsafe_interrupts));
        /* A kill on its way: saved before the VMM's end is judged, so that a kill answers
         * without waiting for a second save (vm-lifecycle.c) and an iovd that dies in
         * between judges the end as the kill's all the same (vm_reattach). */
        if (rec->request == IOV_VM_REQUEST_KILL || rec->request == IOV_VM_REQUEST_STOP_TIMEOUT)
                json_object_object_add(o, "request",
                                       json_object_new_string(rec->request == IOV_VM_REQUEST_KILL
                                                                      ? "kill"
                                                                      : "stop_timeout"));
        return o;
}

static enum iov_vm_request request_from_durable(struct json_object *o)
{
        const char *s = json_object_get_string(json_object_object_get(o, "request"));
        if (s && streq(s, "kill"))
                return IOV_VM_REQUEST_KILL;
        if (s && streq(s, "stop_timeout"))
                return IOV_VM_REQUEST_STOP_TIMEOUT;
        return IOV_VM_REQUEST_NONE;
}

void vm_record_set_stats(struct iov_vm_record *rec, struct json_object *stats)
{
        json_object_put(rec->stats);
        rec->stats = NULL;
        if (!stats)
                return;
        size_t size = strlen(json_object_to_json_string_ext(
                stats, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
        if (size > IOV_VM_STATS_MAX) {
                log_warning("VM %s: final stats of %zu bytes dropped (at most %d are kept)",
                            rec->id, size, IOV_VM_STATS_MAX);
                json_object_put(stats);
                return;
        }
        rec->stats = stats;
}

static struct json_object *vm_table_to_durable(struct iov_vm_table *t)
{
        struct json_object *items = json_object_new_array();
        for (size_t i = 0; items && i < t->n_records; i++)
                if (json_object_array_add(items, vm_record_to_durable(t->records[i])) < 0) {
                        json_object_put(items);
                        return NULL;
                }
        return items;
}

int vm_table_sync(struct iov_vm_table *t)
{
        return vm_table_sync_gen(t, t->change_gen);
}

int vm_table_sync_gen(struct iov_vm_table *t, uint64_t target)
{
        while (t->saved_gen < target) {
                if (t->saving) {
                        pthread_cond_wait(&t->saved, &t->lock);
                        continue;
                }
                uint64_t gen = t->change_gen;
                _cleanup_json_ struct json_object *items = vm_table_to_durable(t);
                if (!items)
                        return log_error_errno(-ENOMEM, "Cannot save the VM definitions: %m");
                t->saving = true;
                pthread_mutex_unlock(&t->lock);
                uint64_t start = util_now_usec();
                int r = state_save(t->daemon->state, KIND_VMS, items);
                vm_time_step(t, IOV_VM_STEP_STATE_WRITE, start);
                pthread_mutex_lock(&t->lock);
                t->saving = false;
                if (r >= 0 && gen > t->saved_gen)
                        t->saved_gen = gen;
                pthread_cond_broadcast(&t->saved);
                if (r < 0)
                        return log_error_errno(r, "Cannot save the VM definitions: %m");
        }
        return 0;
}

void vm_table_save_soon(struct iov_vm_table *t)
{
        t->save_wanted = true;
        pthread_cond_signal(&t->save_wanted_cond);
}

static void *saver_main(void *userdata)
{
        struct iov_vm_table *t = userdata;
        pthread_mutex_lock(&t->lock);
        while (t->save_wanted || !t->saver_stopping) {
                if (!t->save_wanted) {
                        pthread_cond_wait(&t->save_wanted_cond, &t->lock);
                        continue;
                }
                t->save_wanted = false;
                (void)vm_table_sync(t); /* logs; the next change tries again */
        }
        pthread_mutex_unlock(&t->lock);
        return NULL;
}

int vm_saver_start(struct iov_vm_table *t)
{
        int r = pthread_create(&t->saver, NULL, saver_main, t);
        if (r != 0)
                return -r;
        t->saver_running = true;
        return 0;
}

void vm_saver_stop(struct iov_vm_table *t)
{
        if (!t->saver_running)
                return;
        pthread_mutex_lock(&t->lock);
        t->saver_stopping = true;
        pthread_cond_signal(&t->save_wanted_cond);
        pthread_mutex_unlock(&t->lock);
        pthread_join(t->saver, NULL);
        t->saver_running = false;
}

static int64_t int_field(struct json_object *o, const char *key)
{
        return json_object_get_int64(json_object_object_get(o, key));
}

static int vm_record_from_durable(struct json_object *o, struct iov_vm_record **ret,
                                  struct iov_vm_spec_error *err)
{
        _cleanup_(vm_record_freep) struct iov_vm_record *rec = vm_record_alloc();
        if (!rec)
                return -ENOMEM;
        const char *id = json_object_get_string(json_object_object_get(o, "id"));
        const char *state = json_object_get_string(json_object_object_get(o, "state"));
        if (!id || strlen(id) >= sizeof(rec->id) || vm_state_from_string(state, &rec->state) < 0)
                return -EBADMSG;
        strcpy(rec->id, id);
        int r = vm_spec_parse_json(o, IOV_VM_SPEC_OTHER_FIELDS, &rec->spec, err);
        if (r < 0)
                return r == -EINVAL ? -EBADMSG : r;
        struct json_object *reason = json_object_object_get(o, "reason");
        if (json_object_is_type(reason, json_type_string) &&
            !(rec->reason = strdup(json_object_get_string(reason))))
                return -ENOMEM;
        rec->created_usec = (uint64_t)int_field(o, "created_usec");
        rec->started_usec = (uint64_t)int_field(o, "started_usec");
        rec->stopped_usec = (uint64_t)int_field(o, "stopped_usec");
        rec->stats = json_object_get(json_object_object_get(o, "stats"));
        rec->unsafe_interrupts =
                json_object_get_boolean(json_object_object_get(o, "unsafe_interrupts"));
        rec->request = request_from_durable(o);
        r = vm_passthrough_from_durable(o, rec);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(rec);
        return 0;
}

int vm_table_load(struct iov_vm_table *t)
{
        _cleanup_json_ struct json_object *items = NULL;
        _cleanup_free_ char *error = NULL;
        int r = state_load(t->daemon->state, KIND_VMS, &items, &error);
        if (r < 0)
                return log_error_errno(r, "%s", error ? error : "Cannot load the VMs: %m");
        for (size_t i = 0; i < json_object_array_length(items); i++) {
                struct iov_vm_record *rec = NULL;
                struct iov_vm_spec_error err = {.message = ""};
                r = vm_record_from_durable(json_object_array_get_idx(items, i), &rec, &err);
                if (r < 0)
                        return log_error_errno(r, "VM %zu of %s/%s.json is malformed: %s", i,
                                               state_dir(t->daemon->state), KIND_VMS,
                                               err.message[0] ? err.message : strerror(-r));
                r = vm_table_add(t, rec);
                if (r < 0) {
                        vm_record_free(rec);
                        return r;
                }
        }
        return 0;
}

struct json_object *vm_record_to_json(struct iov_vm_table *t, const struct iov_vm_record *rec)
{
        struct json_object *o = vm_record_to_durable(rec);
        if (!o)
                return NULL;
        bool alive = rec->pidfd >= 0;
        json_object_object_del(o, "request"); /* iovd's own business */
        json_object_object_add(o, "pid", alive ? json_object_new_int(rec->process.pid) : NULL);
        /* Each device as the allocation shows it now: host function, group, quarantine. */
        json_object_object_add(o, "passthrough", vm_passthrough_to_json(t->daemon, rec));
        return o;
}
