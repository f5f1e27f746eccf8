/* SPDX-License-Identifier: MIT */
/*
 * allocations: who holds which IOMMU group, the pools, and the quarantine, kept in memory
 * and durable under --state-dir ("allocations.json", "pools.json", "quarantine.json").
 *
 * An allocation is a whole IOMMU group (DESIGN.md: a device is handed out only with its
 * group). Its life, each step saved before the hardware is touched or the client told:
 *
 *   pending    intent saved, binding to vfio-pci under way; found at start: a crash
 *              between bind and save, so the members are given back
 *   active     every member bound to vfio-pci, the 201 sent
 *   releasing  reset and driver restore under way; found at start: finished then
 *   lost       a member vanished or left vfio-pci behind iovd's back; kept and reported,
 *              its devices never handed out again until the allocation is deleted
 *
 * Locking: d->state_lock serializes every decision with its binding and save (so nothing
 * is handed out twice); the registry's rwlock guards the arrays so readers (device JSON,
 * pool counts) never wait for a bind.
 */
#pragma once

#include <json-c/json.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "util/util.h"

struct iov_daemon;
#include "daemon/daemon.h"
#include "alloc/pools.h"
#include "iommu/iommu.h"

#define IOV_ALLOCATION_ID_MAX    24 /* "a-" + 16 hex digits + NUL, with room */
#define IOV_ALLOCATION_OWNER_MAX 128
#define IOV_BIND_TIMEOUT_MS      5000

enum iov_allocation_state {
        IOV_ALLOCATION_PENDING,
        IOV_ALLOCATION_ACTIVE,
        IOV_ALLOCATION_RELEASING,
        IOV_ALLOCATION_LOST,
};

struct iov_allocation {
        char id[IOV_ALLOCATION_ID_MAX];
        char *owner;
        char *pool; /* NULL when allocated by address */
        unsigned iommu_group;
        struct iov_bind_record *members; /* every group member, bridges flagged */
        size_t n_members;
        uint64_t created_usec; /* CLOCK_REALTIME */
        enum iov_allocation_state state;
        char *lost_reason; /* set when lost */
};

/* A device held back on vfio-pci (it could not be reset or given back); member says what
 * it goes back to once an operator clears it. */
struct iov_quarantine_entry {
        struct iov_bind_record member;
        char *reason;
        uint64_t since_usec; /* CLOCK_REALTIME */
};

struct iov_registry {
        pthread_rwlock_t lock;
        struct iov_allocation **allocations;
        size_t n_allocations;
        struct iov_pool **pools;
        size_t n_pools;
        struct iov_quarantine_entry *quarantine;
        size_t n_quarantine;
};

const char *allocation_state_to_string(enum iov_allocation_state state);

/* Durable form, and the API form (adds "devices" without bridges and "vfio_group"). */
struct json_object *allocation_to_json(const struct iov_allocation *a);
struct json_object *allocation_to_api_json(const struct iov_allocation *a, const char *dev_root);
/* Parse the durable form; -EBADMSG when anything is missing or malformed. */
int allocation_from_json(struct json_object *obj, struct iov_allocation **ret);
/* One member: {"address", "original_driver", "original_override", "is_bridge"}; other
 * keys are ignored. */
struct json_object *allocation_member_to_json(const struct iov_bind_record *m);
int allocation_member_from_json(struct json_object *obj, struct iov_bind_record *m);
void allocation_free(struct iov_allocation *a);
DEFINE_CLEANUP_FUNC(struct iov_allocation, allocation_free)

/* A fresh random id, "a-" and 16 lowercase hex digits. */
int allocation_new_id(char ret[static IOV_ALLOCATION_ID_MAX]);

/* ---- the registry (callers hold d->state_lock to change it) --------------------------- */

int registry_new(struct iov_registry **ret);
void registry_free(struct iov_registry *reg);

/* Load the three collections; on a corrupt file log an error naming it and fail. */
int registry_load(struct iov_registry *reg, struct iov_state *state);
int registry_save_allocations(struct iov_registry *reg, struct iov_state *state);
int registry_save_pools(struct iov_registry *reg, struct iov_state *state);
int registry_save_quarantine(struct iov_registry *reg, struct iov_state *state);

/* Lookups; the caller holds the rwlock (either side) or d->state_lock. */
struct iov_allocation *registry_find_allocation(struct iov_registry *reg, const char *id);
/* The allocation with address among its members (any state); NULL when none. */
struct iov_allocation *registry_find_by_device(struct iov_registry *reg,
                                               const struct iov_pci_address *address);
struct iov_allocation *registry_find_by_group(struct iov_registry *reg, unsigned group);
struct iov_quarantine_entry *registry_find_quarantined(struct iov_registry *reg,
                                                       const struct iov_pci_address *address);
struct iov_pool *registry_find_pool(struct iov_registry *reg, const char *name);

/* Mutations take the write lock themselves; add takes ownership (also on failure). */
int registry_add_allocation(struct iov_registry *reg, struct iov_allocation *a);
void registry_remove_allocation(struct iov_registry *reg, struct iov_allocation *a);
int registry_add_pool(struct iov_registry *reg, struct iov_pool *pool);
void registry_remove_pool(struct iov_registry *reg, struct iov_pool *pool);
/* Unlink without freeing: the caller owns pool again (to put it back if a save fails). */
void registry_take_pool(struct iov_registry *reg, struct iov_pool *pool);
/* Copies member's strings. */
int registry_add_quarantine(struct iov_registry *reg, const struct iov_bind_record *member,
                            const char *reason, uint64_t since_usec);
void registry_remove_quarantine(struct iov_registry *reg, struct iov_quarantine_entry *q);
void registry_set_state(struct iov_registry *reg, struct iov_allocation *a,
                        enum iov_allocation_state state, const char *lost_reason);

/* ---- handing out and taking back (alloc/allocate.c, alloc/release.c) ---------------- */

struct iov_allocation_request {
        const char *owner;
        const char *pool; /* NULL: by device */
        struct iov_pci_address device;
};

/* Decide, bind the whole group to vfio-pci, save, publish "allocation_created"; ret is
 * the API JSON. Negative errno; -EBADMSG with p filled for every refusal (group_not_viable: the
 * blocking members as details "blockers", [{"address", "driver"}]). */
int allocations_create(struct iov_daemon *d, const struct iov_allocation_request *req,
                       struct json_object **ret, struct iov_problem *p);

/* Reset every member (one that cannot be reset is quarantined and stays on vfio-pci),
 * give the others back to their original drivers, forget the allocation, publish
 * "allocation_released". ret: {"id", "released": [...], "quarantined": [...]}. */
int allocations_release(struct iov_daemon *d, const char *id, struct json_object **ret,
                        struct iov_problem *p);

/* Whether a group looks viable in an inventory snapshot: every member driverless or on
 * vfio-pci (bridges on pcieport allowed). A cheap pre-check; the decision itself reads
 * sysfs afresh (iommu_group_check_viable). */
bool allocations_snapshot_viable(const struct iov_snapshot *snap, int group);

/* Clear a quarantined device: give it back to the driver it had, forget the entry,
 * publish "device_unquarantined". ret: {"address", "driver"}. */
int allocations_unquarantine(struct iov_daemon *d, const struct iov_pci_address *address,
                             struct json_object **ret, struct iov_problem *p);

/* Undo a pending or releasing allocation found at start; mark vanished ones lost. Called
 * with d->state_lock held. Returns how many records changed, or negative errno. */
int allocations_reconcile(struct iov_daemon *d, struct iov_registry *reg);
/* Mark active allocations whose members vanished or left vfio-pci as lost, publish
 * "allocation_lost" for each. Takes d->state_lock. */
int allocations_check_active(struct iov_daemon *d);

/* The registry of the running daemon (set by the allocations daemon module's start). */
struct iov_registry *registry_get(struct iov_daemon *d);
