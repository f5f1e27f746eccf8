/* SPDX-License-Identifier: MIT */
/*
 * vm-owner: allocations held by VMs. A VM definition's vfio entries become allocations
 * whose typed owner is the VM (struct iov_allocation.vm, its id; "owner" keeps the VM's
 * name for people): created at the VM's create (allocate.c, with req->vm), adopted from an
 * existing allocation, reset before each start and after each end, released with the VM.
 * An allocation a VM holds is never released on its own (release.c: allocation_in_use),
 * and its owner stays the VM's; any other allocation's owner label may be changed
 * (allocations_set_owner: the Kubernetes device plugin names the pod's container once
 * kubelet says which one holds the device).
 *
 * Every change here is saved before the caller goes on, under the allocation's group lock
 * (alloc_lock_allocation_group) like the rest of alloc/, so a crash leaves either the old
 * or the new holder on disk, never both.
 */
#include <stdio.h>

#include "alloc/alloc-internal.h"
#include "daemon/daemon.h"

static int save_or_fail(struct iov_daemon *d, struct iov_registry *reg,
                        const struct iov_allocation *a, struct iov_problem *p)
{
        int r = registry_save_allocation(reg, d->state, a);
        if (r < 0)
                return daemon_problem_set(p, 500, "state_write_failed", "cannot save state: %s",
                                          strerror(-r));
        return 0;
}

/* Under the registry's write lock, so readers never see half a change. */
static int set_holder(struct iov_registry *reg, struct iov_allocation *a, const char *vm_id,
                      bool adopted)
{
        char *copy = vm_id ? strdup(vm_id) : NULL;
        if (vm_id && !copy)
                return -ENOMEM;
        pthread_rwlock_wrlock(&reg->lock);
        free(a->vm);
        a->vm = copy;
        a->adopted = adopted;
        pthread_rwlock_unlock(&reg->lock);
        return 0;
}

static int check_adoptable(const struct iov_allocation *a, const char *vm_name,
                           struct iov_problem *p)
{
        if (a->vm)
                return daemon_problem_set(p, 409, "allocation_in_use",
                                          "allocation %s belongs to VM %s already", a->id, a->vm);
        if (a->state != IOV_ALLOCATION_ACTIVE)
                return daemon_problem_set(p, 409, "allocation_not_active",
                                          "allocation %s is %s, not active", a->id,
                                          allocation_state_to_string(a->state));
        /* Only what was allocated for this VM by name: a VM cannot take another client's
         * device by guessing its allocation id. */
        if (!vm_name || !streq(a->owner, vm_name))
                return daemon_problem_set(p, 409, "allocation_owner_mismatch",
                                          "allocation %s is owned by \"%s\"; a VM adopts only an "
                                          "allocation whose owner is its name (\"%s\")",
                                          a->id, a->owner, vm_name ? vm_name : "(no name)");
        return 0;
}

/* The allocation id under its group lock (*ret_lock; release with hwlock_release), or
 * NULL when there is none. */
static struct iov_allocation *find_locked(struct iov_daemon *d, struct iov_registry *reg,
                                          const char *id, struct iov_hwlock **ret_lock)
{
        *ret_lock = NULL;
        if (alloc_lock_allocation_group(d, reg, id, ret_lock) < 0)
                return NULL;
        pthread_rwlock_rdlock(&reg->lock);
        struct iov_allocation *a = registry_find_allocation(reg, id);
        pthread_rwlock_unlock(&reg->lock);
        return a;
}

int allocations_adopt(struct iov_daemon *d, const char *id, const char *vm_id, const char *vm_name,
                      struct json_object **ret, struct iov_problem *p)
{
        struct iov_registry *reg = registry_get(d);
        struct json_object *json = NULL;
        struct iov_hwlock *lock = NULL;
        struct iov_allocation *a = find_locked(d, reg, id, &lock);
        int r = a ? check_adoptable(a, vm_name, p)
                  : daemon_problem_set(p, 404, "allocation_not_found", "no allocation %s", id);
        if (r == 0)
                r = set_holder(reg, a, vm_id, true);
        if (r == 0 && (r = save_or_fail(d, reg, a, p)) < 0)
                (void)set_holder(reg, a, NULL, false); /* not durable: not adopted */
        if (r == 0) {
                json = allocation_to_api_json(a, d->config.dev_root);
                daemon_event_publish(d, "allocation_attached",
                                     allocation_to_api_json(a, d->config.dev_root));
                log_info("allocation %s adopted by VM %s", id, vm_id);
        }
        hwlock_release(&d->alloc->hwlocks, lock);
        if (r < 0)
                return r;
        if (!json)
                return -ENOMEM;
        *ret = json;
        return 0;
}

static struct json_object *holder_event(const struct iov_allocation *a, const char *vm_id)
{
        struct json_object *o = json_object_new_object();
        if (!o)
                return NULL;
        json_object_object_add(o, "id", json_object_new_string(a->id));
        json_object_object_add(o, "vm", json_object_new_string(vm_id));
        return o;
}

int allocations_disown(struct iov_daemon *d, const char *id, const char *vm_id)
{
        struct iov_registry *reg = registry_get(d);
        struct iov_hwlock *lock = NULL;
        struct iov_allocation *a = find_locked(d, reg, id, &lock);
        int r = a && streq_ptr(a->vm, vm_id) ? set_holder(reg, a, NULL, false) : -ENOENT;
        if (r == 0) {
                r = registry_save_allocation(reg, d->state, a);
                daemon_event_publish(d, "allocation_detached", holder_event(a, vm_id));
                log_info("allocation %s given back by VM %s", id, vm_id);
        }
        hwlock_release(&d->alloc->hwlocks, lock);
        return r;
}

int allocations_take_over(struct iov_daemon *d, const char *id, const char *vm_id,
                          struct iov_problem *p)
{
        struct iov_registry *reg = registry_get(d);
        struct iov_hwlock *lock = NULL;
        struct iov_allocation *a = find_locked(d, reg, id, &lock);
        int r = 0;
        if (a && a->adopted && streq_ptr(a->vm, vm_id)) {
                r = set_holder(reg, a, vm_id, false);
                if (r == 0 && (r = save_or_fail(d, reg, a, p)) < 0)
                        (void)set_holder(reg, a, vm_id, true); /* not durable: still adopted */
        }
        hwlock_release(&d->alloc->hwlocks, lock);
        return r;
}

/* ---- the owner label ------------------------------------------------------------------ */

/* An allocation's owner becomes the VM's (its name) while a VM holds it. */
static int check_owner_settable(const struct iov_allocation *a, struct iov_problem *p)
{
        if (!a->vm)
                return 0;
        p->details = json_object_new_object();
        if (p->details)
                json_object_object_add(p->details, "vm", json_object_new_string(a->vm));
        return daemon_problem_set(p, 409, "allocation_in_use",
                                  "allocation %s belongs to VM %s (%s); its owner is the VM", a->id,
                                  a->vm, a->owner);
}

/* Swap a's owner with *owner under the registry's write lock: readers see the old label
 * or the new one, and *owner holds the other afterwards (to put back, or to free). */
static void swap_owner(struct iov_registry *reg, struct iov_allocation *a, char **owner)
{
        pthread_rwlock_wrlock(&reg->lock);
        char *before = a->owner;
        a->owner = *owner;
        *owner = before;
        pthread_rwlock_unlock(&reg->lock);
}

/* The new label saved, or the old one back in memory; 0 when nothing changed (*changed
 * false: the same label again costs no write and no event). */
static int owner_change(struct iov_daemon *d, struct iov_registry *reg, struct iov_allocation *a,
                        char **owner, bool *changed, struct iov_problem *p)
{
        *changed = !streq(a->owner, *owner);
        if (!*changed)
                return 0;
        swap_owner(reg, a, owner);
        int r = save_or_fail(d, reg, a, p);
        if (r < 0)
                swap_owner(reg, a, owner); /* not durable: not changed */
        return r;
}

int allocations_set_owner(struct iov_daemon *d, const char *id, const char *owner,
                          struct json_object **ret, struct iov_problem *p)
{
        struct iov_registry *reg = registry_get(d);
        struct json_object *json = NULL;
        struct iov_hwlock *lock = NULL;
        _cleanup_free_ char *label = strdup(owner);
        bool changed = false;
        if (!label)
                return -ENOMEM;
        struct iov_allocation *a = find_locked(d, reg, id, &lock);
        int r = a ? check_owner_settable(a, p)
                  : daemon_problem_set(p, 404, "allocation_not_found", "no allocation %s", id);
        if (r == 0)
                r = owner_change(d, reg, a, &label, &changed, p);
        if (r == 0)
                json = allocation_to_api_json(a, d->config.dev_root);
        if (r == 0 && changed) {
                daemon_event_publish(d, "allocation_updated",
                                     allocation_to_api_json(a, d->config.dev_root));
                log_info("allocation %s: owner \"%s\" (was \"%s\")", id, a->owner, label);
        }
        hwlock_release(&d->alloc->hwlocks, lock);
        if (r < 0)
                return r;
        if (!json)
                return -ENOMEM;
        *ret = json;
        return 0;
}

/* ---- reset ----------------------------------------------------------------------------- */

/* Reset the members on vfio-pci (bridges were never moved; a member on another driver is
 * not ours to reset). NULL when all went well, else why the first one failed. */
static char *reset_members_now(struct iov_daemon *d, const struct iov_allocation *a)
{
        char buf[IOV_PCI_ADDRESS_MAX];
        for (size_t i = 0; i < a->n_members; i++) {
                const struct iov_bind_record *m = &a->members[i];
                struct iov_pci_device dev = {0};
                if (m->is_bridge || pci_device_read(d->config.sysfs_root, &m->address, &dev) < 0)
                        continue;
                bool ours = streq_ptr(dev.driver, "vfio-pci");
                pci_device_clear(&dev);
                int r = ours ? pci_device_reset(d->config.sysfs_root, &m->address) : 0;
                if (r < 0)
                        return util_strdup_printf(
                                "%s: %s (%s)", pci_address_format(&m->address, buf),
                                r == -ENOTTY ? "no reset method" : "reset failed", strerror(-r));
        }
        return NULL;
}

static int set_reset_failure(struct iov_registry *reg, struct iov_allocation *a, char *failure)
{
        pthread_rwlock_wrlock(&reg->lock);
        bool changed = !streq_ptr(a->reset_failure, failure);
        free(a->reset_failure);
        a->reset_failure = failure;
        pthread_rwlock_unlock(&reg->lock);
        return changed;
}

static struct json_object *reset_event(const struct iov_allocation *a)
{
        struct json_object *o = json_object_new_object();
        if (!o)
                return NULL;
        json_object_object_add(o, "id", json_object_new_string(a->id));
        json_object_object_add(o, "vm", a->vm ? json_object_new_string(a->vm) : NULL);
        json_object_object_add(o, "reset_failure",
                               a->reset_failure ? json_object_new_string(a->reset_failure) : NULL);
        return o;
}

static int reset_locked(struct iov_daemon *d, struct iov_registry *reg, struct iov_allocation *a,
                        struct iov_problem *p)
{
        if (a->state != IOV_ALLOCATION_ACTIVE)
                return daemon_problem_set(
                        p, 409, "allocation_not_active", "allocation %s is %s%s%s", a->id,
                        allocation_state_to_string(a->state), a->lost_reason ? ": " : "",
                        a->lost_reason ? a->lost_reason : "");
        char *failure = reset_members_now(d, a);
        if (set_reset_failure(reg, a, failure))
                (void)registry_save_allocation(reg, d->state, a); /* best effort: shown at once */
        daemon_event_publish(d, "allocation_reset", reset_event(a));
        if (!failure) {
                log_info("allocation %s (VM %s): devices reset", a->id, a->vm ? a->vm : "-");
                return 0;
        }
        log_warning("allocation %s (VM %s) quarantined: %s", a->id, a->vm ? a->vm : "-", failure);
        return daemon_problem_set(p, 409, "device_reset_failed",
                                  "allocation %s is quarantined: %s; it stays held", a->id,
                                  failure);
}

int allocations_reset(struct iov_daemon *d, const char *id, struct iov_problem *p)
{
        struct iov_registry *reg = registry_get(d);
        struct iov_hwlock *lock = NULL;
        struct iov_allocation *a = find_locked(d, reg, id, &lock);
        int r = a ? reset_locked(d, reg, a, p)
                  : daemon_problem_set(p, 409, "allocation_not_found",
                                       "allocation %s is gone (released or never saved)", id);
        hwlock_release(&d->alloc->hwlocks, lock);
        return r;
}

int allocations_show(struct iov_daemon *d, const char *id, struct json_object **ret)
{
        struct iov_registry *reg = registry_get(d);
        if (!reg)
                return -ENOENT;
        pthread_rwlock_rdlock(&reg->lock);
        struct iov_allocation *a = registry_find_allocation(reg, id);
        struct json_object *o = a ? allocation_to_api_json(a, d->config.dev_root) : NULL;
        pthread_rwlock_unlock(&reg->lock);
        if (!a)
                return -ENOENT;
        if (!o)
                return -ENOMEM;
        *ret = o;
        return 0;
}

/* ---- start-up ------------------------------------------------------------------------ */

/* The id of the first allocation held by a VM vm_exists() does not know; false if none. */
static bool find_orphan(struct iov_registry *reg, bool (*vm_exists)(void *, const char *),
                        void *userdata, char ret_id[static IOV_ALLOCATION_ID_MAX], char **ret_vm,
                        bool *ret_adopted)
{
        for (size_t i = 0; i < reg->n_allocations; i++) {
                struct iov_allocation *a = reg->allocations[i];
                if (!a->vm || vm_exists(userdata, a->vm))
                        continue;
                memcpy(ret_id, a->id, IOV_ALLOCATION_ID_MAX);
                *ret_vm = strdup(a->vm);
                *ret_adopted = a->adopted;
                return *ret_vm != NULL;
        }
        return false;
}

int allocations_reconcile_vms(struct iov_daemon *d,
                              bool (*vm_exists)(void *userdata, const char *vm_id), void *userdata)
{
        struct iov_registry *reg = registry_get(d);
        char id[IOV_ALLOCATION_ID_MAX];
        char *vm = NULL;
        bool adopted = false;
        int n = 0;
        for (;;) {
                pthread_rwlock_rdlock(&reg->lock);
                bool found = find_orphan(reg, vm_exists, userdata, id, &vm, &adopted);
                pthread_rwlock_unlock(&reg->lock);
                if (!found)
                        return n;
                log_notice("allocation %s belongs to VM %s, which does not exist (a create or "
                           "delete cut short): %s",
                           id, vm, adopted ? "giving it back" : "releasing it");
                struct iov_problem p = {0};
                struct json_object *out = NULL;
                int r = adopted ? allocations_disown(d, id, vm)
                                : allocations_release_vm(d, id, vm, &out, &p);
                json_object_put(out);
                daemon_problem_clear(&p);
                free(TAKE_PTR(vm));
                if (r < 0)
                        return log_error_errno(r, "Cannot give back allocation %s: %m", id);
                n++;
        }
}
