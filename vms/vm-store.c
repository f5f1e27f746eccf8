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

static int vm_state_from_string(const char *s, enum iov_vm_state *ret)
{
        for (enum iov_vm_state st = IOV_VM_STATE_CREATED; st <= IOV_VM_STATE_CRASHED; st++)
                if (s && streq(s, vm_state_to_string(st))) {
                        *ret = st;
                        return 0;
                }
        return -EBADMSG;
}

static struct json_object *usec_or_null(uint64_t usec)
{
        return usec ? json_object_new_int64((int64_t)usec) : NULL;
}

/* The durable form; the API form adds runtime fields to it. */
struct json_object *vm_record_to_durable(const struct iov_vm_record *rec)
{
        struct json_object *o = json_object_new_object();
        if (!o)
                return NULL;
        json_object_object_add(o, "id", json_object_new_string(rec->id));
        json_object_object_add(o, "name", string_or_null(rec->name));
        json_object_object_add(o, "state", json_object_new_string(vm_state_to_string(rec->state)));
        json_object_object_add(o, "reason", string_or_null(rec->reason));
        json_object_object_add(o, "vcpus", json_object_new_int((int)rec->vcpus));
        json_object_object_add(o, "memory_mib", json_object_new_int64((int64_t)rec->memory_mib));
        json_object_object_add(o, "kernel", json_object_new_string(rec->kernel));
        json_object_object_add(o, "initrd", string_or_null(rec->initrd));
        json_object_object_add(o, "cmdline", string_or_null(rec->cmdline));
        json_object_object_add(o, "devices", json_object_get(rec->devices));
        json_object_object_add(o, "created_usec",
                               json_object_new_int64((int64_t)rec->created_usec));
        json_object_object_add(o, "started_usec", usec_or_null(rec->started_usec));
        json_object_object_add(o, "stopped_usec", usec_or_null(rec->stopped_usec));
        json_object_object_add(o, "stats", json_object_get(rec->stats));
        return o;
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
        uint64_t target = t->change_gen;
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
                int r = state_save(t->daemon->state, KIND_VMS, items);
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

static int dup_string_field(struct json_object *o, const char *key, bool nullable, char **ret)
{
        struct json_object *v = NULL;
        if (!json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null)) {
                *ret = NULL;
                return nullable ? 0 : -EBADMSG;
        }
        if (!json_object_is_type(v, json_type_string))
                return -EBADMSG;
        *ret = strdup(json_object_get_string(v));
        return *ret ? 0 : -ENOMEM;
}

static int64_t int_field(struct json_object *o, const char *key)
{
        return json_object_get_int64(json_object_object_get(o, key));
}

static int vm_record_from_durable(struct json_object *o, struct iov_vm_record **ret)
{
        _cleanup_(vm_record_freep) struct iov_vm_record *rec = calloc(1, sizeof(*rec));
        if (!rec)
                return -ENOMEM;
        rec->pidfd = -1;
        rec->exit_status = -1;
        const char *id = json_object_get_string(json_object_object_get(o, "id"));
        if (!id || strlen(id) >= sizeof(rec->id) ||
            vm_state_from_string(json_object_get_string(json_object_object_get(o, "state")),
                                 &rec->state) < 0)
                return -EBADMSG;
        strcpy(rec->id, id);
        int r = dup_string_field(o, "name", true, &rec->name);
        if (r >= 0)
                r = dup_string_field(o, "kernel", false, &rec->kernel);
        if (r >= 0)
                r = dup_string_field(o, "initrd", true, &rec->initrd);
        if (r >= 0)
                r = dup_string_field(o, "cmdline", true, &rec->cmdline);
        if (r >= 0)
                r = dup_string_field(o, "reason", true, &rec->reason);
        if (r < 0)
                return r;
        rec->vcpus = (unsigned)int_field(o, "vcpus");
        rec->memory_mib = (uint64_t)int_field(o, "memory_mib");
        rec->created_usec = (uint64_t)int_field(o, "created_usec");
        rec->started_usec = (uint64_t)int_field(o, "started_usec");
        rec->stopped_usec = (uint64_t)int_field(o, "stopped_usec");
        rec->devices = json_object_get(json_object_object_get(o, "devices"));
        rec->stats = json_object_get(json_object_object_get(o, "stats"));
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
                r = vm_record_from_durable(json_object_array_get_idx(items, i), &rec);
                if (r < 0)
                        return log_error_errno(r, "VM %zu of %s/%s.json is malformed: %m", i,
                                               state_dir(t->daemon->state), KIND_VMS);
                r = vm_table_add(t, rec);
                if (r < 0) {
                        vm_record_free(rec);
                        return r;
                }
        }
        return 0;
}

struct json_object *vm_record_to_json(const struct iov_vm_record *rec)
{
        struct json_object *o = vm_record_to_durable(rec);
        if (!o)
                return NULL;
        bool alive = rec->pidfd >= 0;
        json_object_object_add(o, "pid", alive ? json_object_new_int(rec->process.pid) : NULL);
        return o;
}
