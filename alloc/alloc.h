/* SPDX-License-Identifier: MIT */
/*
 * alloc: who holds which IOMMU group, the pools, and the quarantine, kept in memory and
 * durable under --state-dir ("allocations.json", "pools.json", "quarantine.json"). The
 * public header of alloc/; what its files share besides is in alloc/alloc-internal.h.
 *
 * An allocation is a whole IOMMU group (docs/architecture.md: a device is handed out only
 * with its group). Its life, each step saved before the hardware is touched or the client
 * told:
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
 *
 * Pools are named selectors over the host's PCI functions ("every VF of 0000:01:00.0 on
 * NUMA node 0"). A pool holds no devices of its own: its capacity is what matches in the
 * current inventory, its free count what of that is not allocated or quarantined. Every
 * criterion given must match (AND); a selector with none is refused, so no pool ever
 * covers host bridges or the boot disk by accident.
 */
#pragma once

#include <json-c/json.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "daemon/daemon.h"
#include "iommu/iommu.h"
#include "pci/pci.h"
#include "util/util.h"

/* ---- pools ---------------------------------------------------------------------------- */

#define IOV_POOL_NAME_MAX      63
#define IOV_POOL_DRIVER_MAX    63
#define IOV_POOL_ADDRESSES_MAX 4096

struct iov_pool_selector {
        int vendor_id;         /* -1: any */
        int device_id;         /* -1: any */
        uint32_t class_value;  /* compared on the top class_digits hex digits */
        unsigned class_digits; /* 0: any; 2 base class, 4 with subclass, 6 with prog-if */
        char *driver;          /* NULL: any; the driver before iovd took the device */
        bool has_physfn;
        struct iov_pci_address physfn;
        int numa_node;                     /* -1: any */
        struct iov_pci_address *addresses; /* NULL: any; else one of these */
        size_t n_addresses;
};

struct iov_pool {
        char name[IOV_POOL_NAME_MAX + 1];
        struct iov_pool_selector selector;
        uint64_t created_usec; /* CLOCK_REALTIME */
};

/* A parse failure: the field at fault ("selector.vendor_id") and why. */
struct iov_pool_parse_error {
        const char *code; /* "invalid_value" or "unknown_field" */
        char field[64];
        char message[160];
};

/* Bounded, [a-z0-9_-], starting with a letter or digit. */
bool pool_name_is_valid(const char *name);

/* Strict parse of {"name": ..., "selector": {...}} (a request body or a state item;
 * "created_usec" is accepted only when allow_created). Unknown fields, wrong types and bad
 * values fail with -EINVAL and ret_error filled. */
int pool_from_json(struct json_object *obj, bool allow_created, struct iov_pool **ret,
                   struct iov_pool_parse_error *ret_error);

/* {"name", "selector", "created_usec"}: the durable form. */
struct json_object *pool_to_json(const struct iov_pool *pool);

void pool_free(struct iov_pool *pool);
DEFINE_CLEANUP_FUNC(struct iov_pool, pool_free)

/* Whether a device matches; driver is the one to compare (the original driver of an
 * allocated device, else its current one; NULL when none). */
bool pool_selector_match(const struct iov_pool_selector *selector,
                         const struct iov_pci_device *device, const char *driver);

/* ---- allocations ---------------------------------------------------------------------- */

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
/* The API form: the durable one plus "devices" (without bridges) and "vfio_group". */
struct json_object *allocation_to_api_json(const struct iov_allocation *a, const char *dev_root);

void allocation_free(struct iov_allocation *a);
DEFINE_CLEANUP_FUNC(struct iov_allocation, allocation_free)

/* ---- the registry (callers hold d->state_lock to change it) --------------------------- */

int registry_save_pools(struct iov_registry *reg, struct iov_state *state);

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
int registry_add_pool(struct iov_registry *reg, struct iov_pool *pool);
void registry_remove_pool(struct iov_registry *reg, struct iov_pool *pool);
/* Unlink without freeing: the caller owns pool again (to put it back if a save fails). */
void registry_take_pool(struct iov_registry *reg, struct iov_pool *pool);

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

/* The registry of the running daemon (d->alloc, set by the allocations module's start);
 * NULL while the module is not running. */
struct iov_registry *registry_get(struct iov_daemon *d);
