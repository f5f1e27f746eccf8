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
 * Locking (alloc/hwlock.c): an IOMMU group's lock is held across its bind, reset or
 * restore, a PF's while its VFs change, so a slow one blocks only requests for the same
 * hardware; d->state_lock guards the pool table and is never held across hardware work;
 * the registry's rwlock guards the arrays and indexes for moments only, so readers
 * (device JSON, pool counts, lists) never wait for a bind. Nothing is handed out twice
 * because a pending record is claimed (registry_claim_allocation) before the bind.
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
#include "netdev/netdev.h"
#include "pci/pci.h"
#include "util/util.h"

/* ---- pools ---------------------------------------------------------------------------- */

#define IOV_POOL_NAME_MAX      63
#define IOV_POOL_DRIVER_MAX    63
#define IOV_POOL_ADDRESSES_MAX 4096
/* Pools iovd holds (409 too_many_pools beyond), and the addresses their selectors list
 * together (409 too_many_pool_addresses beyond). Each pool is its own state file (under
 * IOV_STATE_ITEM_MAX_SIZE, pools.c), so what bounds them is what a restart loads and
 * memory holds: 16,384 pools load in about a second (bench/alloc/scale.py), and the
 * address lists, 8 bytes each in memory, stay under 2 MiB together. */
#define IOV_POOLS_MAX                16384
#define IOV_POOL_ADDRESSES_TOTAL_MAX 262144

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
        struct iov_netdev_vf_change *net; /* network template for allocated VFs; NULL: none */
        uint64_t created_usec;            /* CLOCK_REALTIME */
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

/* The "net" template of a pool: vlan, qos, spoof_check, trust, link_state, min_tx_rate,
 * max_tx_rate (alloc/vf-net-record.c). Strict, like the rest of a pool. */
int pool_net_from_json(struct json_object *obj, struct iov_netdev_vf_change **ret,
                       struct iov_pool_parse_error *ret_error);
struct json_object *pool_net_to_json(const struct iov_netdev_vf_change *net);
/* Add a VF's settings to o as the API shows them and records keep them: mac, vlan, qos,
 * spoof_check, trust, link_state, min_tx_rate, max_tx_rate (null where unknown). */
void alloc_vf_settings_add(struct json_object *o, const struct iov_netdev_vf *vf);

void pool_free(struct iov_pool *pool);
DEFINE_CLEANUP_FUNC(struct iov_pool, pool_free)

/* Whether a device matches; driver is the one to compare (the original driver of an
 * allocated device, else its current one; NULL when none). */
bool pool_selector_match(const struct iov_pool_selector *selector,
                         const struct iov_pci_device *device, const char *driver);

/* ---- allocations ---------------------------------------------------------------------- */

#define IOV_ALLOCATION_ID_MAX    24 /* "a-" + 16 hex digits + NUL, with room */
#define IOV_ALLOCATION_OWNER_MAX 128
/* Allocation records iovd holds, lost ones included (409 too_many_allocations beyond).
 * Each takes a whole IOMMU group, so a host rarely has this many; the bound is for what
 * the hardware does not bound: lost records of devices that vanished and came back. */
#define IOV_ALLOCATIONS_MAX 16384
#define IOV_BIND_TIMEOUT_MS 5000

enum iov_allocation_state {
        IOV_ALLOCATION_PENDING,
        IOV_ALLOCATION_ACTIVE,
        IOV_ALLOCATION_RELEASING,
        IOV_ALLOCATION_LOST,
};

/* The network settings an allocation changed on its VF (alloc/vf-net.c): what the VF had,
 * saved in the pending record before anything changed, and what the kernel reported
 * after the change. */
struct iov_allocation_net {
        struct iov_pci_address vf;
        char ifname[IFNAMSIZ]; /* the PF's interface */
        uint32_t vf_index;
        struct iov_netdev_vf original;
        bool applied;
        struct iov_netdev_vf now;
        struct iov_netdev_vf_change change; /* to apply; not saved */
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
        char *lost_reason;              /* set when lost */
        struct iov_allocation_net *net; /* NULL: no network settings were asked for */
        /* The function asked for ("device") or picked from the pool: the one a VM gets.
         * Records older than VM ownership lack it: the first member that is no bridge. */
        struct iov_pci_address device;
        /* The VM holding the allocation (alloc/vm-owner.c), or NULL: its id. A VM's
         * allocation is released only with the VM. adopted: it existed before the VM took it
         * ("allocation": ID), so a VM create that never completed gives it back instead. */
        char *vm;
        bool adopted;
        /* Why the last reset of a member failed, or NULL: such a device stays held and
         * quarantined (never given to a guest) until a reset succeeds or it is released. */
        char *reset_failure;
};

/* A device held back on vfio-pci (it could not be reset or given back); member says what
 * it goes back to once an operator clears it. */
struct iov_quarantine_entry {
        struct iov_bind_record member;
        char *reason;
        uint64_t since_usec; /* CLOCK_REALTIME */
};

/* Where an allocation's time goes, summed per step (GET /metrics,
 * iovd_allocation_step_seconds_total): what bench/vf-net profiles. */
enum iov_alloc_step {
        IOV_STEP_DECIDE,      /* host check, picking, sysfs reads, the claim */
        IOV_STEP_NET_READ,    /* reading the VF's settings over rtnetlink */
        IOV_STEP_STATE_WRITE, /* each durable item write or removal (fsyncs) */
        IOV_STEP_NET_APPLY,   /* setting the VF's settings and reading them back */
        IOV_STEP_BIND,        /* moving the group to vfio-pci */
        IOV_STEP_REFRESH,     /* the inventory refresh after a change */
        IOV_STEP_RESET,       /* resetting members on release */
        IOV_STEP_RESTORE,     /* giving members back to their drivers */
        IOV_STEP_NET_RESTORE, /* putting the VF's settings back */
        IOV_STEP_COUNT,
};

/* A string-keyed hash map (alloc/index.c). */
struct iov_index_entry;
struct iov_index {
        struct iov_index_entry **buckets;
        size_t n_buckets; /* a power of two, or 0 */
        size_t n;
};

struct iov_registry {
        pthread_rwlock_t lock;
        struct iov_allocation **allocations;
        size_t n_allocations;
        struct iov_pool **pools;
        size_t n_pools;
        size_t n_pool_addresses; /* listed by every pool's selector together */
        struct iov_quarantine_entry *quarantine;
        size_t n_quarantine;
        /* The lookups below, kept with the arrays under the same lock. */
        struct iov_index allocation_by_id;
        struct iov_index allocation_by_device; /* members but bridges, any state */
        struct iov_index allocation_by_group;  /* allocations not lost */
        struct iov_index pool_by_name;
        struct iov_index pool_use;           /* pool name -> allocations made from it (uintptr_t) */
        uint64_t step_usec[IOV_STEP_COUNT];  /* atomic */
        uint64_t step_count[IOV_STEP_COUNT]; /* atomic */
};

/* Add a step's duration (since start_usec, util_now_usec) to the registry's sums. */
void registry_time_step(struct iov_registry *reg, enum iov_alloc_step step, uint64_t start_usec);
const char *registry_step_name(enum iov_alloc_step step);

const char *allocation_state_to_string(enum iov_allocation_state state);
/* The API form: the durable one plus "devices" (without bridges) and "vfio_group". */
struct json_object *allocation_to_api_json(const struct iov_allocation *a, const char *dev_root);

void allocation_free(struct iov_allocation *a);
DEFINE_CLEANUP_FUNC(struct iov_allocation, allocation_free)

/* ---- the registry (callers hold d->state_lock to change it) --------------------------- */

/* Durably write one pool as its own state file (STATE_DIR/pools/NAME.json), or remove
 * it: a change costs the same with 10 pools or 10,000. */
int registry_save_pool(struct iov_state *state, const struct iov_pool *pool);
int registry_forget_pool(struct iov_state *state, const char *name);

/* Lookups; the caller holds the rwlock (either side) or d->state_lock. */
struct iov_allocation *registry_find_allocation(struct iov_registry *reg, const char *id);
/* The allocation with address among its members (any state); NULL when none. */
struct iov_allocation *registry_find_by_device(struct iov_registry *reg,
                                               const struct iov_pci_address *address);
struct iov_allocation *registry_find_by_group(struct iov_registry *reg, unsigned group);
struct iov_quarantine_entry *registry_find_quarantined(struct iov_registry *reg,
                                                       const struct iov_pci_address *address);
struct iov_pool *registry_find_pool(struct iov_registry *reg, const char *name);
/* How many allocations (any state) name pool name. */
size_t registry_pool_allocations(struct iov_registry *reg, const char *name);

/* Mutations take the write lock themselves; add takes ownership (also on failure). */
int registry_add_pool(struct iov_registry *reg, struct iov_pool *pool);
void registry_remove_pool(struct iov_registry *reg, struct iov_pool *pool);
/* Unlink without freeing: the caller owns pool again (to put it back if a save fails). */
void registry_take_pool(struct iov_registry *reg, struct iov_pool *pool);

/* ---- handing out and taking back (alloc/allocate.c, alloc/release.c) ---------------- */

struct iov_allocation_request {
        const char *owner;
        const char *vm;   /* the VM id holding it (vms/), or NULL */
        const char *pool; /* NULL: by device */
        struct iov_pci_address device;
        bool pool_device; /* pool and device both: this device, as a member of that pool */
        const char *mac;  /* NULL, "auto" or a unicast MAC for the VF (alloc/vf-net.c) */
};

/* Decide, bind the whole group to vfio-pci, save, publish "allocation_created"; ret is
 * the API JSON. With pool_device, the device must match the pool's selector
 * (device_not_in_pool) and the allocation counts in the pool. Negative errno; -EBADMSG with p
 * filled for every refusal (group_not_viable: the blocking members as details "blockers",
 * [{"address", "driver"}]). */
int allocations_create(struct iov_daemon *d, const struct iov_allocation_request *req,
                       struct json_object **ret, struct iov_problem *p);

/* Reset every member (one that cannot be reset is quarantined and stays on vfio-pci),
 * give the others back to their original drivers, forget the allocation, publish
 * "allocation_released". ret: {"id", "released": [...], "quarantined": [...]}. An
 * allocation a VM holds is refused (409 allocation_in_use naming the VM). */
int allocations_release(struct iov_daemon *d, const char *id, struct json_object **ret,
                        struct iov_problem *p);

/* Give allocation id the owner label owner (checked by the caller, as at create), under
 * its group lock, so a release racing it either comes after (and releases the renamed
 * allocation) or before (404 allocation_not_found): never a record lost or brought back.
 * Saved before it returns; publishes "allocation_updated" when the label changed. 409
 * allocation_in_use for an allocation a VM holds (its owner is the VM). ret: the API JSON. */
int allocations_set_owner(struct iov_daemon *d, const char *id, const char *owner,
                          struct json_object **ret, struct iov_problem *p);

/* ---- allocations held by VMs (alloc/vm-owner.c; vms/ is the caller) ------------------- */

/* The host may give a VM a passed-through device: an IOMMU with interrupt remapping, or
 * --allow-unsafe-interrupts (*ret_unsafe then true when either is missing). 409
 * iommu_unavailable or interrupt_remapping_unavailable otherwise. */
int allocations_check_host(struct iov_daemon *d, bool *ret_unsafe, struct iov_problem *p);
/* Hand an existing allocation to VM vm_id: it must be active, held by no VM, and its
 * owner must be vm_name (409 allocation_in_use, allocation_owner_mismatch,
 * allocation_not_active; 404 allocation_not_found). Saved before it returns; publishes
 * "allocation_attached". ret: the API JSON. */
int allocations_adopt(struct iov_daemon *d, const char *id, const char *vm_id, const char *vm_name,
                      struct json_object **ret, struct iov_problem *p);
/* Give an adopted allocation back (it stays allocated to its owner, held by no VM);
 * publishes "allocation_detached". -ENOENT when vm_id does not hold it. */
int allocations_disown(struct iov_daemon *d, const char *id, const char *vm_id);
/* The VM's delete makes an allocation it adopted its own, saved before the VM leaves the
 * table: a crash from then on releases it at the next start, as the delete would, where
 * an adopted one would be given back (right for a create cut short, not for a delete).
 * 0 when vm_id holds no such allocation; 500 state_write_failed when it cannot be saved. */
int allocations_take_over(struct iov_daemon *d, const char *id, const char *vm_id,
                          struct iov_problem *p);
/* Release an allocation VM vm_id holds (the VM is being deleted, or its create rolled
 * back): as allocations_release, without the allocation_in_use refusal. */
int allocations_release_vm(struct iov_daemon *d, const char *id, const char *vm_id,
                           struct json_object **ret, struct iov_problem *p);
/* Reset every member still on vfio-pci, before a VM's start and after its end. A member
 * whose reset fails marks the allocation quarantined (reset_failure, saved; the device
 * stays held) and gives 409 device_reset_failed; a reset that works clears the mark.
 * Publishes "allocation_reset". */
int allocations_reset(struct iov_daemon *d, const char *id, struct iov_problem *p);
/* The API JSON of allocation id; -ENOENT when there is none. */
int allocations_show(struct iov_daemon *d, const char *id, struct json_object **ret);
/* At start, once the VMs are loaded: an allocation held by a VM that vm_exists() does
 * not know (a create or delete cut short) is given back when adopted, else released. */
int allocations_reconcile_vms(struct iov_daemon *d,
                              bool (*vm_exists)(void *userdata, const char *vm_id), void *userdata);

/* Whether a group looks viable in an inventory snapshot (iommu_group_viable_in on the
 * snapshot's group); false for group -1 or one the snapshot does not know. */
bool allocations_snapshot_viable(const struct iov_snapshot *snap, int group);

/* Clear a quarantined device: give it back to the driver it had, forget the entry,
 * publish "device_unquarantined". ret: {"address", "driver"}. */
int allocations_unquarantine(struct iov_daemon *d, const struct iov_pci_address *address,
                             struct json_object **ret, struct iov_problem *p);

/* ---- network settings of allocated VFs (alloc/vf-net.c) -------------------------------- */

/* With a pool template (change) or a MAC ("auto" or an address), find the group's VF of a
 * network PF and record in a->net what it has now and what is to change. Changes nothing.
 * -EBADMSG with p filled: not_a_network_function, interface_not_found, invalid_value. */
int allocation_net_prepare(struct iov_daemon *d, struct iov_registry *reg, struct iov_allocation *a,
                           const struct iov_netdev_vf_change *change, const char *mac,
                           struct iov_problem *p);
/* Apply what prepare recorded (a->net set) and keep what the kernel reports after it; a
 * refusal changes nothing (setting_refused). */
int allocation_net_apply(struct iov_daemon *d, struct iov_allocation *a, struct iov_problem *p);
/* Put back what a->net recorded, setting by setting; failures are logged. No-op without. */
void allocation_net_restore(struct iov_allocation *a);
struct json_object *allocation_net_to_json(const struct iov_allocation_net *n);
int allocation_net_from_json(struct json_object *obj, struct iov_allocation_net **ret);

/* ---- locks named after hardware (alloc/hwlock.c) ---------------------------------------- */

struct iov_hwlock;
/* Hold the PF of address (its physfn when address is a VF, else address itself): shared
 * while a decision depends on its VFs staying, exclusive while they are created or
 * destroyed. Waits for it; -ENOENT when address is gone, -ESRCH while the module is not
 * running. */
int alloc_lock_pf_of(struct iov_daemon *d, const struct iov_pci_address *address, bool shared,
                     struct iov_hwlock **ret);
void alloc_unlock(struct iov_daemon *d, struct iov_hwlock *l);

/* The registry of the running daemon (d->alloc, set by the allocations module's start);
 * NULL while the module is not running. */
struct iov_registry *registry_get(struct iov_daemon *d);
