/* SPDX-License-Identifier: MIT */
/*
 * Taking a group back: reset each device while vfio-pci still holds it (no host driver
 * sees it mid-reset), quarantine what cannot be reset, give the rest back to the drivers
 * they had. Also the start-up reconciliation and the check that marks allocations lost.
 */
#include <stdio.h>

#include "alloc/alloc-internal.h"
#include "daemon/daemon.h"
#include "util/json.h"

#define VFIO_PCI "vfio-pci"

/* What the device is bound to now; -ENOENT when it vanished. */
static int read_binding(struct iov_daemon *d, const struct iov_pci_address *address,
                        char **ret_driver, char **ret_override)
{
        return iommu_device_binding(d->config.sysfs_root, address, ret_driver, ret_override);
}

/* Only what iovd itself did is undone: a member on vfio-pci, or carrying the vfio-pci
 * override (a bind cut short). A member some host driver took meanwhile (after a reboot,
 * by hand) is left alone: unbinding it could pull a device from under the host. */
static bool needs_restore(struct iov_daemon *d, const struct iov_bind_record *m)
{
        _cleanup_free_ char *driver = NULL, *override = NULL;
        if (m->is_bridge || read_binding(d, &m->address, &driver, &override) < 0)
                return false;
        if (!streq_ptr(driver, VFIO_PCI) && !streq_ptr(override, VFIO_PCI))
                return false;
        return !streq_ptr(driver, m->original_driver) || !streq_ptr(override, m->original_override);
}

/* After a restore: the member is not (yet) back where it was. */
static bool restore_incomplete(struct iov_daemon *d, const struct iov_bind_record *m)
{
        _cleanup_free_ char *driver = NULL, *override = NULL;
        if (read_binding(d, &m->address, &driver, &override) < 0)
                return false; /* vanished: nothing left to hold back */
        return !streq_ptr(driver, m->original_driver) || !streq_ptr(override, m->original_override);
}

static int quarantine(struct iov_registry *reg, const struct iov_bind_record *member,
                      struct json_object *report, const char *what, int error)
{
        char buf[IOV_PCI_ADDRESS_MAX], reason[160];
        snprintf(reason, sizeof(reason), "%s (%s)", what, strerror(-error));
        pci_address_format(&member->address, buf);
        log_warning("%s quarantined: %s", buf, reason);
        struct json_object *o = json_object_new_object();
        json_object_object_add(o, "address", json_object_new_string(buf));
        json_object_object_add(o, "reason", json_object_new_string(reason));
        json_object_array_add(report, o);
        return registry_add_quarantine(reg, member, reason, util_realtime_usec());
}

/* Reset the members still on vfio-pci; move the ones that reset (or need none) into
 * restore[]. Devices that cannot be reset stay on vfio-pci, quarantined. */
static size_t reset_members(struct iov_daemon *d, struct iov_registry *reg,
                            const struct iov_allocation *a, bool reset,
                            struct iov_bind_record *restore, struct json_object *quarantined)
{
        size_t n = 0;
        for (size_t i = 0; i < a->n_members; i++) {
                const struct iov_bind_record *m = &a->members[i];
                _cleanup_free_ char *driver = NULL, *override = NULL;
                if (m->is_bridge || read_binding(d, &m->address, &driver, &override) < 0)
                        continue; /* bridges were never moved; vanished ones are gone */
                if (reset && streq_ptr(driver, VFIO_PCI)) {
                        uint64_t start = util_now_usec();
                        int r = pci_device_reset(d->config.sysfs_root, &m->address);
                        registry_time_step(reg, IOV_STEP_RESET, start);
                        if (r < 0) {
                                quarantine(reg, m, quarantined,
                                           r == -ENOTTY ? "no reset method" : "reset failed", r);
                                continue;
                        }
                }
                if (needs_restore(d, m))
                        restore[n++] = *m; /* shallow: strings stay owned by a */
        }
        return n;
}

/* Give members back; one whose driver did not come back is quarantined. */
static void restore_members(struct iov_daemon *d, struct iov_registry *reg,
                            const struct iov_bind_record *restore, size_t n,
                            struct json_object *quarantined)
{
        if (n == 0)
                return;
        uint64_t start = util_now_usec();
        int r = iommu_group_restore(d->config.sysfs_root, restore, n, IOV_BIND_TIMEOUT_MS);
        registry_time_step(reg, IOV_STEP_RESTORE, start);
        if (r == 0)
                return;
        for (size_t i = 0; i < n; i++)
                if (restore_incomplete(d, &restore[i]))
                        quarantine(reg, &restore[i], quarantined,
                                   "its original driver could not be restored", r);
}

/* Hardware part of a release; returns the quarantined devices as JSON. */
static struct json_object *release_members(struct iov_daemon *d, struct iov_registry *reg,
                                           const struct iov_allocation *a, bool reset)
{
        struct json_object *quarantined = json_object_new_array();
        _cleanup_free_ struct iov_bind_record *restore = calloc(a->n_members + 1, sizeof(*restore));
        if (!quarantined || !restore) {
                json_object_put(quarantined);
                return NULL;
        }
        size_t n = reset_members(d, reg, a, reset, restore, quarantined);
        restore_members(d, reg, restore, n, quarantined);
        return quarantined;
}

/* Write the quarantine entries a release just made (the report's addresses). */
static int save_quarantined(struct iov_daemon *d, struct iov_registry *reg,
                            struct json_object *quarantined)
{
        int result = 0;
        for (size_t i = 0; i < json_object_array_length(quarantined); i++) {
                struct json_object *q = json_object_array_get_idx(quarantined, i);
                struct iov_pci_address address;
                if (pci_address_parse(json_object_get_string(json_object_object_get(q, "address")),
                                      &address) < 0)
                        continue;
                int r = registry_save_quarantined(reg, d->state, &address);
                if (r < 0 && result == 0)
                        result = r;
        }
        return result;
}

static struct json_object *released_devices(const struct iov_allocation *a,
                                            struct json_object *quarantined)
{
        char buf[IOV_PCI_ADDRESS_MAX];
        struct json_object *arr = json_object_new_array();
        for (size_t i = 0; arr && i < a->n_members; i++) {
                if (a->members[i].is_bridge)
                        continue;
                pci_address_format(&a->members[i].address, buf);
                bool held = false;
                for (size_t j = 0; j < json_object_array_length(quarantined); j++) {
                        struct json_object *q = json_object_array_get_idx(quarantined, j);
                        held |= streq(buf,
                                      json_object_get_string(json_object_object_get(q, "address")));
                }
                if (!held)
                        json_object_array_add(arr, json_object_new_string(buf));
        }
        return arr;
}

/* The addresses of an allocation's members, to refresh the inventory once they moved. */
static struct iov_pci_address *member_addresses(const struct iov_allocation *a)
{
        struct iov_pci_address *list = calloc(a->n_members + 1, sizeof(*list));
        for (size_t i = 0; list && i < a->n_members; i++)
                list[i] = a->members[i].address;
        return list;
}

static int release_locked(struct iov_daemon *d, struct iov_registry *reg, struct iov_allocation *a,
                          struct json_object **ret, struct iov_problem *p)
{
        enum iov_allocation_state before = a->state;
        registry_set_state(reg, a, IOV_ALLOCATION_RELEASING, NULL);
        int r = registry_save_allocation(reg, d->state, a);
        if (r < 0) {
                registry_set_state(reg, a, before, NULL); /* nothing was touched */
                return daemon_problem_set(p, 500, "state_write_failed", "cannot save state: %s",
                                          strerror(-r));
        }
        daemon_test_crash_point("allocation-releasing-saved");
        struct json_object *quarantined = release_members(d, reg, a, true);
        if (!quarantined)
                return -ENOMEM;
        uint64_t start = util_now_usec();
        allocation_net_restore(a); /* the VF's network settings as they were before */
        if (a->net)
                registry_time_step(reg, IOV_STEP_NET_RESTORE, start);
        struct json_object *out = json_object_new_object();
        json_object_object_add(out, "id", json_object_new_string(a->id));
        json_object_object_add(out, "vm", a->vm ? json_object_new_string(a->vm) : NULL);
        json_object_object_add(out, "released", released_devices(a, quarantined));
        json_object_object_add(out, "quarantined", quarantined);
        if (json_object_array_length(quarantined) > 0) {
                /* The releasing record stays on disk until the quarantine is: a restart
                 * must never find such a device free without having reset it. */
                r = save_quarantined(d, reg, quarantined);
                if (r < 0) {
                        json_object_put(out);
                        return daemon_problem_set(
                                p, 500, "state_write_failed",
                                "devices were quarantined but the quarantine cannot "
                                "be saved (%s); allocation %s stays releasing",
                                strerror(-r), a->id);
                }
        }
        r = registry_drop_allocation(reg, d->state, a);
        if (r < 0)
                log_warning_errno(r, "cannot save state after a release: %m; the next start "
                                     "finishes it");
        *ret = out;
        return 0;
}

/* A VM's allocation goes only with the VM (vm_id: the VM releasing it, NULL for a client). */
static int check_not_in_use(const struct iov_allocation *a, const char *vm_id,
                            struct iov_problem *p)
{
        if (!a->vm || streq_ptr(a->vm, vm_id))
                return 0;
        p->details = json_object_new_object();
        if (p->details)
                json_object_object_add(p->details, "vm", json_object_new_string(a->vm));
        return daemon_problem_set(p, 409, "allocation_in_use",
                                  "allocation %s belongs to VM %s (%s); it is released when the "
                                  "VM is deleted",
                                  a->id, a->vm, a->owner);
}

int alloc_lock_allocation_group(struct iov_daemon *d, struct iov_registry *reg, const char *id,
                                struct iov_hwlock **ret)
{
        char key[IOV_HWLOCK_KEY_MAX];
        pthread_rwlock_rdlock(&reg->lock);
        struct iov_allocation *a = registry_find_allocation(reg, id);
        if (a)
                hwlock_key_group(a->iommu_group, key);
        pthread_rwlock_unlock(&reg->lock);
        if (!a)
                return -ENOENT;
        return hwlock_take(&d->alloc->hwlocks, key, false, ret);
}

static int release_for(struct iov_daemon *d, const char *id, const char *vm_id,
                       struct json_object **ret, struct iov_problem *p)
{
        struct iov_registry *reg = registry_get(d);
        struct json_object *out = NULL;
        struct iov_hwlock *lock = NULL;
        int r = alloc_lock_allocation_group(d, reg, id, &lock);
        if (r < 0 && r != -ENOENT)
                return r;
        /* Under the group's lock nobody else changes or frees the record. */
        pthread_rwlock_rdlock(&reg->lock);
        struct iov_allocation *a = lock ? registry_find_allocation(reg, id) : NULL;
        pthread_rwlock_unlock(&reg->lock);
        /* Taken before the release forgets the allocation. */
        _cleanup_free_ struct iov_pci_address *moved = a ? member_addresses(a) : NULL;
        size_t n_moved = a ? a->n_members : 0;
        r = a ? check_not_in_use(a, vm_id, p)
              : daemon_problem_set(p, 404, "allocation_not_found", "no allocation %s", id);
        if (r == 0)
                r = release_locked(d, reg, a, &out, p);
        if (r == 0) {
                daemon_event_publish(d, "allocation_released", json_object_get(out));
                log_info("allocation %s released", id);
        }
        hwlock_release(&d->alloc->hwlocks, lock);
        if (r < 0)
                return r;
        uint64_t start = util_now_usec();
        if (moved)
                (void)daemon_refresh_devices(d, moved, n_moved);
        else
                (void)daemon_rescan(d); /* out of memory for the list: read everything */
        registry_time_step(reg, IOV_STEP_REFRESH, start);
        *ret = out;
        return 0;
}

int allocations_release(struct iov_daemon *d, const char *id, struct json_object **ret,
                        struct iov_problem *p)
{
        return release_for(d, id, NULL, ret, p);
}

int allocations_release_vm(struct iov_daemon *d, const char *id, const char *vm_id,
                           struct json_object **ret, struct iov_problem *p)
{
        return release_for(d, id, vm_id, ret, p);
}

/* ---- quarantine ----------------------------------------------------------------------- */

static int unquarantine_locked(struct iov_daemon *d, struct iov_registry *reg,
                               const struct iov_bind_record *member, struct json_object **ret,
                               struct iov_problem *p)
{
        char buf[IOV_PCI_ADDRESS_MAX];
        pci_address_format(&member->address, buf);
        /* The operator vouches for the device: hand it back as release would have. */
        if (needs_restore(d, member)) {
                int r = iommu_group_restore(d->config.sysfs_root, member, 1, IOV_BIND_TIMEOUT_MS);
                if (r < 0)
                        return daemon_problem_set(p, 500, "restore_failed",
                                                  "%s could not be given back to %s (%s); it stays "
                                                  "quarantined",
                                                  buf,
                                                  member->original_driver ? member->original_driver
                                                                          : "no driver",
                                                  strerror(-r));
        }
        _cleanup_free_ char *driver = NULL, *override = NULL;
        (void)read_binding(d, &member->address, &driver, &override);
        registry_remove_quarantine(reg, &member->address);
        int r = registry_save_quarantined(reg, d->state, &member->address);
        if (r < 0)
                log_warning_errno(r, "cannot save the quarantine after clearing %s: %m", buf);
        struct json_object *o = json_object_new_object();
        json_object_object_add(o, "address", json_object_new_string(buf));
        json_object_object_add(o, "driver", driver ? json_object_new_string(driver) : NULL);
        *ret = o;
        return 0;
}

/* A copy of the quarantine entry of address (the array moves as entries come and go);
 * false when there is none. */
static bool copy_quarantined(struct iov_registry *reg, const struct iov_pci_address *address,
                             struct iov_bind_record *ret)
{
        pthread_rwlock_rdlock(&reg->lock);
        struct iov_quarantine_entry *q = registry_find_quarantined(reg, address);
        if (q) {
                *ret = (struct iov_bind_record){.address = *address,
                                                .is_bridge = q->member.is_bridge};
                ret->original_driver =
                        q->member.original_driver ? strdup(q->member.original_driver) : NULL;
                ret->original_override =
                        q->member.original_override ? strdup(q->member.original_override) : NULL;
        }
        pthread_rwlock_unlock(&reg->lock);
        return q != NULL;
}

/* The device's group lock, when it still has a group. */
static int lock_device_group(struct iov_daemon *d, const struct iov_pci_address *address,
                             struct iov_hwlock **ret)
{
        struct iov_pci_device dev = {0};
        char key[IOV_HWLOCK_KEY_MAX];
        if (pci_device_read(d->config.sysfs_root, address, &dev) < 0)
                return 0; /* gone: nothing left to bind or reset */
        int group = dev.iommu_group;
        pci_device_clear(&dev);
        if (group < 0)
                return 0;
        hwlock_key_group((unsigned)group, key);
        return hwlock_take(&d->alloc->hwlocks, key, false, ret);
}

int allocations_unquarantine(struct iov_daemon *d, const struct iov_pci_address *address,
                             struct json_object **ret, struct iov_problem *p)
{
        struct iov_registry *reg = registry_get(d);
        struct json_object *out = NULL;
        struct iov_hwlock *lock = NULL;
        struct iov_bind_record member = {0};
        char buf[IOV_PCI_ADDRESS_MAX];
        int r = lock_device_group(d, address, &lock);
        if (r < 0)
                return r;
        bool found = copy_quarantined(reg, address, &member);
        r = found ? unquarantine_locked(d, reg, &member, &out, p)
                  : daemon_problem_set(p, 404, "not_quarantined", "%s is not quarantined",
                                       pci_address_format(address, buf));
        if (r == 0) {
                daemon_event_publish(d, "device_unquarantined", json_object_get(out));
                log_info("%s cleared from quarantine", pci_address_format(address, buf));
        }
        hwlock_release(&d->alloc->hwlocks, lock);
        free(member.original_driver);
        free(member.original_override);
        if (r < 0)
                return r;
        (void)daemon_refresh_devices(d, address, 1);
        *ret = out;
        return 0;
}

/* ---- reconciliation ------------------------------------------------------------------- */

/* Why an active allocation no longer holds its group, or NULL when it still does. */
static char *lost_reason(struct iov_daemon *d, const struct iov_allocation *a)
{
        char buf[IOV_PCI_ADDRESS_MAX];
        for (size_t i = 0; i < a->n_members; i++) {
                const struct iov_bind_record *m = &a->members[i];
                _cleanup_free_ char *driver = NULL, *override = NULL;
                if (m->is_bridge)
                        continue;
                pci_address_format(&m->address, buf);
                int r = read_binding(d, &m->address, &driver, &override);
                if (r == -ENOENT)
                        return util_strdup_printf("%s vanished", buf);
                if (r < 0)
                        return util_strdup_printf("%s cannot be read: %s", buf, strerror(-r));
                if (!streq_ptr(driver, VFIO_PCI))
                        return util_strdup_printf("%s is bound to %s, not vfio-pci", buf,
                                                  driver ? driver : "no driver");
        }
        return NULL;
}

static int mark_lost(struct iov_daemon *d, struct iov_registry *reg, struct iov_allocation *a,
                     const char *reason)
{
        log_warning("allocation %s (owner %s) is lost: %s", a->id, a->owner, reason);
        registry_set_state(reg, a, IOV_ALLOCATION_LOST, reason);
        daemon_event_publish(d, "allocation_lost", allocation_to_api_json(a, d->config.dev_root));
        return 1;
}

/* The snapshot was read before reconciliation gave these devices back: show where they
 * are now. */
static void refresh_members(struct iov_daemon *d, const struct iov_allocation *a)
{
        _cleanup_free_ struct iov_pci_address *moved = member_addresses(a);
        if (moved)
                (void)daemon_refresh_devices(d, moved, a->n_members);
}

/* A crash mid-bind or mid-release: no client holds the group. Give it back, write what
 * was quarantined, then forget the record (a crash in between finds it again). */
static int reconcile_interrupted(struct iov_daemon *d, struct iov_registry *reg,
                                 struct iov_allocation *a)
{
        log_notice("allocation %s was %s when iovd stopped; giving its devices back", a->id,
                   allocation_state_to_string(a->state));
        _cleanup_json_ struct json_object *quarantined =
                release_members(d, reg, a, a->state == IOV_ALLOCATION_RELEASING);
        if (!quarantined)
                return -ENOMEM;
        allocation_net_restore(a);
        refresh_members(d, a);
        int r = save_quarantined(d, reg, quarantined);
        if (r < 0)
                return r;
        return registry_drop_allocation(reg, d->state, a);
}

int allocations_reconcile(struct iov_daemon *d, struct iov_registry *reg)
{
        int changed = 0;
        for (size_t i = 0; i < reg->n_allocations;) {
                struct iov_allocation *a = reg->allocations[i];
                if (a->state == IOV_ALLOCATION_PENDING || a->state == IOV_ALLOCATION_RELEASING) {
                        int r = reconcile_interrupted(d, reg, a);
                        if (r < 0)
                                return r;
                        changed++;
                        continue;
                }
                _cleanup_free_ char *reason = NULL;
                if (a->state == IOV_ALLOCATION_ACTIVE && (reason = lost_reason(d, a))) {
                        changed += mark_lost(d, reg, a, reason);
                        int r = registry_save_allocation(reg, d->state, a);
                        if (r < 0)
                                return r;
                }
                i++;
        }
        return changed;
}

/* Whether allocation id (of group) still holds its group; lost when not. The group's
 * lock is only tried: whoever holds it is binding or releasing that group and leaves it
 * consistent itself. */
static int check_one(struct iov_daemon *d, struct iov_registry *reg, const char *id, unsigned group)
{
        char key[IOV_HWLOCK_KEY_MAX];
        struct iov_hwlock *lock = NULL;
        hwlock_key_group(group, key);
        if (hwlock_try(&d->alloc->hwlocks, key, false, &lock) < 0)
                return 0;
        pthread_rwlock_rdlock(&reg->lock);
        struct iov_allocation *a = registry_find_allocation(reg, id);
        bool active = a && a->state == IOV_ALLOCATION_ACTIVE;
        pthread_rwlock_unlock(&reg->lock);
        _cleanup_free_ char *reason = active ? lost_reason(d, a) : NULL;
        int r = 0;
        if (reason) {
                mark_lost(d, reg, a, reason);
                r = registry_save_allocation(reg, d->state, a);
        }
        hwlock_release(&d->alloc->hwlocks, lock);
        if (r < 0)
                return log_error_errno(r, "cannot save lost allocation %s: %m", id);
        return reason ? 1 : 0;
}

int allocations_check_device(struct iov_daemon *d, const struct iov_pci_address *address)
{
        struct iov_registry *reg = registry_get(d);
        char id[IOV_ALLOCATION_ID_MAX] = "";
        unsigned group = 0;
        pthread_rwlock_rdlock(&reg->lock);
        struct iov_allocation *a = registry_find_by_device(reg, address);
        if (a && a->state == IOV_ALLOCATION_ACTIVE) {
                snprintf(id, sizeof(id), "%s", a->id);
                group = a->iommu_group;
        }
        pthread_rwlock_unlock(&reg->lock);
        return id[0] ? check_one(d, reg, id, group) : 0;
}

struct active_ref {
        char id[IOV_ALLOCATION_ID_MAX];
        unsigned group;
};

int allocations_check_active(struct iov_daemon *d)
{
        struct iov_registry *reg = registry_get(d);
        if (!reg)
                return 0;
        pthread_rwlock_rdlock(&reg->lock);
        size_t n = 0;
        struct active_ref *refs = calloc(reg->n_allocations + 1, sizeof(*refs));
        for (size_t i = 0; refs && i < reg->n_allocations; i++)
                if (reg->allocations[i]->state == IOV_ALLOCATION_ACTIVE) {
                        snprintf(refs[n].id, sizeof(refs[n].id), "%s", reg->allocations[i]->id);
                        refs[n++].group = reg->allocations[i]->iommu_group;
                }
        pthread_rwlock_unlock(&reg->lock);
        if (!refs)
                return -ENOMEM;
        int changed = 0;
        for (size_t i = 0; i < n; i++) {
                int r = check_one(d, reg, refs[i].id, refs[i].group);
                changed += r > 0;
        }
        free(refs);
        return changed;
}
