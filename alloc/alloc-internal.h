/* SPDX-License-Identifier: MIT */
/*
 * alloc-internal: the private half of alloc/alloc.h, shared by the files of alloc/ (and
 * the unit tests of its records): durable forms, loading and saving, the mutations only
 * allocate.c and release.c make, and the module's own state.
 */
#pragma once

#include <stdatomic.h>

#include "alloc/alloc.h"

/* ---- locks named after hardware (alloc/hwlock.c) ------------------------------------- */

#define IOV_HWLOCK_KEY_MAX 32

struct iov_hwlocks {
        pthread_mutex_t lock; /* guards entries */
        struct iov_hwlock *entries;
};

/* Take the lock named key, shared or exclusive, waiting for it. */
int hwlock_take(struct iov_hwlocks *t, const char *key, bool shared, struct iov_hwlock **ret);
/* The same without waiting: -EBUSY while someone else holds it. */
int hwlock_try(struct iov_hwlocks *t, const char *key, bool shared, struct iov_hwlock **ret);
/* Accepts NULL. */
void hwlock_release(struct iov_hwlocks *t, struct iov_hwlock *l);
void hwlock_key_group(unsigned group, char ret[static IOV_HWLOCK_KEY_MAX]);
void hwlock_key_pf(const struct iov_pci_address *pf, char ret[static IOV_HWLOCK_KEY_MAX]);

/* The allocations module's state, hung off the daemon (d->alloc) while it runs. */
struct iov_alloc {
        struct iov_registry *registry;
        struct iov_hwlocks hwlocks;
        pthread_t watcher; /* follows the daemon's events for devices that went away */
        bool watcher_running;
        atomic_bool watcher_stop;
        bool owns_state; /* the module opened d->state and closes it at stop */
};

/* ---- records (alloc/allocations.c) ---------------------------------------------------- */

/* The durable form. */
struct json_object *allocation_to_json(const struct iov_allocation *a);
/* Parse the durable form; -EBADMSG when anything is missing or malformed. */
int allocation_from_json(struct json_object *obj, struct iov_allocation **ret);
/* One member: {"address", "original_driver", "original_override", "is_bridge"}; other
 * keys are ignored. */
struct json_object *allocation_member_to_json(const struct iov_bind_record *m);
int allocation_member_from_json(struct json_object *obj, struct iov_bind_record *m);

/* A fresh random id, "a-" and 16 lowercase hex digits. */
int allocation_new_id(char ret[static IOV_ALLOCATION_ID_MAX]);

/* ---- the index (alloc/index.c) ----------------------------------------------------------- */

/* The value under key, or NULL. */
void *index_get(const struct iov_index *ix, const char *key);
/* Map key to value (replacing what it had); -ENOMEM leaves the index as it was. */
int index_put(struct iov_index *ix, const char *key, void *value);
/* Forget key, only while it still maps to value (any value when value is NULL). */
void index_del(struct iov_index *ix, const char *key, const void *value);
void index_clear(struct iov_index *ix);

/* ---- the registry (alloc/registry.c) ---------------------------------------------------- */

int registry_new(struct iov_registry **ret);
void registry_free(struct iov_registry *reg);

/* Load the three collections, each item checked like a request (legacy single-document
 * collections are migrated to one file per item); on a bad file log an error naming it
 * and fail, leaving it untouched. */
int registry_load(struct iov_registry *reg, struct iov_state *state);
/* One allocation's file (STATE_DIR/allocations/ID.json), written or removed. */
int registry_save_allocation(struct iov_registry *reg, struct iov_state *state,
                             const struct iov_allocation *a);
int registry_forget_allocation(struct iov_state *state, const char *id);
/* registry_remove_allocation (a is freed), then its file removed. */
int registry_drop_allocation(struct iov_registry *reg, struct iov_state *state,
                             struct iov_allocation *a);
/* The quarantine entry of address as it is in the registry: written, or removed when
 * there is none. */
int registry_save_quarantined(struct iov_registry *reg, struct iov_state *state,
                              const struct iov_pci_address *address);

/* Mutations made only by handing out and taking back; they take the write lock. */
int registry_add_allocation(struct iov_registry *reg, struct iov_allocation *a);
void registry_remove_allocation(struct iov_registry *reg, struct iov_allocation *a);
/* Copies member's strings. */
int registry_add_quarantine(struct iov_registry *reg, const struct iov_bind_record *member,
                            const char *reason, uint64_t since_usec);
void registry_remove_quarantine(struct iov_registry *reg, const struct iov_pci_address *address);
/* Add a pending allocation if none of its members is held or quarantined and no other
 * allocation has (or is about to set) the MAC it asks for, all under the write lock, so
 * two requests can never both take a device. -EBUSY with *ret_why (static text) when it
 * is refused; a is freed then too. */
int registry_claim_allocation(struct iov_registry *reg, struct iov_allocation *a,
                              const char **ret_why);
void registry_set_state(struct iov_registry *reg, struct iov_allocation *a,
                        enum iov_allocation_state state, const char *lost_reason);
/* Replace a's members with what the bind recorded (taking records) and mark it active. */
int registry_set_bound(struct iov_registry *reg, struct iov_allocation *a,
                       struct iov_bind_record *records, size_t n);

/* ---- taking back (alloc/release.c) ---------------------------------------------------- */
/* Wait for the group lock of allocation id: whoever binds, resets, adopts or releases it
 * finishes first, and the record stays while the lock is held. -ENOENT: no such
 * allocation. */
int alloc_lock_allocation_group(struct iov_daemon *d, struct iov_registry *reg, const char *id,
                                struct iov_hwlock **ret);

/* Undo a pending or releasing allocation found at start; mark vanished ones lost. Called
 * with d->state_lock held. Returns how many records changed, or negative errno. */
int allocations_reconcile(struct iov_daemon *d, struct iov_registry *reg);
/* Mark active allocations whose members vanished or left vfio-pci as lost, publish
 * "allocation_lost" for each. Takes d->state_lock. */
int allocations_check_active(struct iov_daemon *d);
/* The same for the allocation holding address only (an event named it): what one
 * device's change costs, whatever the number of allocations. */
int allocations_check_device(struct iov_daemon *d, const struct iov_pci_address *address);
