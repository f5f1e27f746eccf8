/* SPDX-License-Identifier: MIT */
/*
 * alloc-internal: the private half of alloc/alloc.h, shared by the files of alloc/ (and
 * the unit tests of its records): durable forms, loading and saving, the mutations only
 * allocate.c and release.c make, and the module's own state.
 */
#pragma once

#include <stdatomic.h>

#include "alloc/alloc.h"

/* The allocations module's state, hung off the daemon (d->alloc) while it runs. */
struct iov_alloc {
        struct iov_registry *registry;
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

/* ---- the registry (alloc/registry.c) ---------------------------------------------------- */

int registry_new(struct iov_registry **ret);
void registry_free(struct iov_registry *reg);

/* Load the three collections; on a corrupt file log an error naming it and fail. */
int registry_load(struct iov_registry *reg, struct iov_state *state);
int registry_save_allocations(struct iov_registry *reg, struct iov_state *state);
int registry_save_quarantine(struct iov_registry *reg, struct iov_state *state);

/* Mutations made only by handing out and taking back; they take the write lock. */
int registry_add_allocation(struct iov_registry *reg, struct iov_allocation *a);
void registry_remove_allocation(struct iov_registry *reg, struct iov_allocation *a);
/* Copies member's strings. */
int registry_add_quarantine(struct iov_registry *reg, const struct iov_bind_record *member,
                            const char *reason, uint64_t since_usec);
void registry_remove_quarantine(struct iov_registry *reg, struct iov_quarantine_entry *q);
void registry_set_state(struct iov_registry *reg, struct iov_allocation *a,
                        enum iov_allocation_state state, const char *lost_reason);

/* ---- taking back (alloc/release.c) ---------------------------------------------------- */

/* Undo a pending or releasing allocation found at start; mark vanished ones lost. Called
 * with d->state_lock held. Returns how many records changed, or negative errno. */
int allocations_reconcile(struct iov_daemon *d, struct iov_registry *reg);
/* Mark active allocations whose members vanished or left vfio-pci as lost, publish
 * "allocation_lost" for each. Takes d->state_lock. */
int allocations_check_active(struct iov_daemon *d);
