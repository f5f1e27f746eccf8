/* SPDX-License-Identifier: MIT */
/* The in-memory registry of allocations, pools and quarantined devices, and its three
 * durable collections. */
#include <stdio.h>

#include "alloc/alloc-internal.h"
#include "daemon/daemon.h"
#include "util/json.h"

#define KIND_ALLOCATIONS "allocations"
#define KIND_POOLS       "pools"
#define KIND_QUARANTINE  "quarantine"

static void quarantine_entry_clear(struct iov_quarantine_entry *q)
{
        free(q->reason);
        free(q->member.original_driver);
        free(q->member.original_override);
}

struct iov_registry *registry_get(struct iov_daemon *d)
{
        return d->alloc ? d->alloc->registry : NULL;
}

int registry_new(struct iov_registry **ret)
{
        struct iov_registry *reg = calloc(1, sizeof(*reg));
        if (!reg)
                return -ENOMEM;
        int r = pthread_rwlock_init(&reg->lock, NULL);
        if (r != 0) {
                free(reg);
                return -r;
        }
        *ret = reg;
        return 0;
}

void registry_free(struct iov_registry *reg)
{
        if (!reg)
                return;
        for (size_t i = 0; i < reg->n_allocations; i++)
                allocation_free(reg->allocations[i]);
        free(reg->allocations);
        for (size_t i = 0; i < reg->n_pools; i++)
                pool_free(reg->pools[i]);
        free(reg->pools);
        for (size_t i = 0; i < reg->n_quarantine; i++)
                quarantine_entry_clear(&reg->quarantine[i]);
        free(reg->quarantine);
        index_clear(&reg->allocation_by_id);
        index_clear(&reg->allocation_by_device);
        index_clear(&reg->allocation_by_group);
        index_clear(&reg->pool_by_name);
        index_clear(&reg->pool_use);
        pthread_rwlock_destroy(&reg->lock);
        free(reg);
}

/* Grow an array of pointers by one slot. */
static int grow(void *array_ptr, size_t n, size_t elem_size)
{
        void **array = array_ptr;
        void *bigger = realloc(*array, (n + 1) * elem_size);
        if (!bigger)
                return -ENOMEM;
        *array = bigger;
        return 0;
}

/* ---- the indexes (callers hold the write lock) ------------------------------------------ */

static const char *group_key(unsigned group, char buf[static 16])
{
        snprintf(buf, 16, "%u", group);
        return buf;
}

static void pool_use_add(struct iov_registry *reg, const char *pool, int delta)
{
        uintptr_t n = (uintptr_t)index_get(&reg->pool_use, pool);
        n += (uintptr_t)(intptr_t)delta;
        if (n == 0)
                index_del(&reg->pool_use, pool, NULL);
        else
                (void)index_put(&reg->pool_use, pool, (void *)n); /* grows only on add */
}

static void unindex_allocation(struct iov_registry *reg, struct iov_allocation *a)
{
        char buf[IOV_PCI_ADDRESS_MAX];
        index_del(&reg->allocation_by_id, a->id, a);
        for (size_t i = 0; i < a->n_members; i++)
                if (!a->members[i].is_bridge)
                        index_del(&reg->allocation_by_device,
                                  pci_address_format(&a->members[i].address, buf), a);
        index_del(&reg->allocation_by_group, group_key(a->iommu_group, buf), a);
}

static int index_members(struct iov_registry *reg, struct iov_allocation *a)
{
        char buf[IOV_PCI_ADDRESS_MAX];
        for (size_t i = 0; i < a->n_members; i++)
                if (!a->members[i].is_bridge &&
                    index_put(&reg->allocation_by_device,
                              pci_address_format(&a->members[i].address, buf), a) < 0)
                        return -ENOMEM;
        return 0;
}

static int index_allocation(struct iov_registry *reg, struct iov_allocation *a)
{
        char buf[16];
        int r = index_put(&reg->allocation_by_id, a->id, a);
        if (r == 0)
                r = index_members(reg, a);
        if (r == 0 && a->state != IOV_ALLOCATION_LOST)
                r = index_put(&reg->allocation_by_group, group_key(a->iommu_group, buf), a);
        if (r < 0)
                unindex_allocation(reg, a);
        return r;
}

/* ---- mutations (they take the write lock) ------------------------------------------------ */

/* Append a to the list, its index and its pool's count; the write lock is held. */
static int insert_allocation_locked(struct iov_registry *reg, struct iov_allocation *a)
{
        int r = grow(&reg->allocations, reg->n_allocations, sizeof(*reg->allocations));
        if (r == 0)
                r = index_allocation(reg, a);
        if (r < 0)
                return r;
        reg->allocations[reg->n_allocations++] = a;
        if (a->pool)
                pool_use_add(reg, a->pool, 1);
        return 0;
}

int registry_add_allocation(struct iov_registry *reg, struct iov_allocation *a)
{
        pthread_rwlock_wrlock(&reg->lock);
        int r = insert_allocation_locked(reg, a);
        pthread_rwlock_unlock(&reg->lock);
        if (r < 0)
                allocation_free(a);
        return r;
}

void registry_remove_allocation(struct iov_registry *reg, struct iov_allocation *a)
{
        pthread_rwlock_wrlock(&reg->lock);
        for (size_t i = 0; i < reg->n_allocations; i++)
                if (reg->allocations[i] == a) {
                        memmove(&reg->allocations[i], &reg->allocations[i + 1],
                                (reg->n_allocations - i - 1) * sizeof(*reg->allocations));
                        reg->n_allocations--;
                        unindex_allocation(reg, a);
                        if (a->pool)
                                pool_use_add(reg, a->pool, -1);
                        break;
                }
        pthread_rwlock_unlock(&reg->lock);
        allocation_free(a);
}

int registry_set_bound(struct iov_registry *reg, struct iov_allocation *a,
                       struct iov_bind_record *records, size_t n)
{
        pthread_rwlock_wrlock(&reg->lock);
        unindex_allocation(reg, a);
        iommu_bind_records_free(a->members, a->n_members);
        a->members = records;
        a->n_members = n;
        a->state = IOV_ALLOCATION_ACTIVE;
        int r = index_allocation(reg, a);
        pthread_rwlock_unlock(&reg->lock);
        return r;
}

int registry_add_pool(struct iov_registry *reg, struct iov_pool *pool)
{
        pthread_rwlock_wrlock(&reg->lock);
        int r = grow(&reg->pools, reg->n_pools, sizeof(*reg->pools));
        if (r == 0)
                r = index_put(&reg->pool_by_name, pool->name, pool);
        if (r == 0) {
                reg->pools[reg->n_pools++] = pool;
                reg->n_pool_addresses += pool->selector.n_addresses;
        }
        pthread_rwlock_unlock(&reg->lock);
        if (r < 0)
                pool_free(pool);
        return r;
}

void registry_remove_pool(struct iov_registry *reg, struct iov_pool *pool)
{
        registry_take_pool(reg, pool);
        pool_free(pool);
}

void registry_take_pool(struct iov_registry *reg, struct iov_pool *pool)
{
        pthread_rwlock_wrlock(&reg->lock);
        for (size_t i = 0; i < reg->n_pools; i++)
                if (reg->pools[i] == pool) {
                        memmove(&reg->pools[i], &reg->pools[i + 1],
                                (reg->n_pools - i - 1) * sizeof(*reg->pools));
                        reg->n_pools--;
                        reg->n_pool_addresses -= pool->selector.n_addresses;
                        index_del(&reg->pool_by_name, pool->name, pool);
                        break;
                }
        pthread_rwlock_unlock(&reg->lock);
}

int registry_add_quarantine(struct iov_registry *reg, const struct iov_bind_record *member,
                            const char *reason, uint64_t since_usec)
{
        struct iov_quarantine_entry q = {
                .member = {.address = member->address, .is_bridge = member->is_bridge},
                .reason = strdup(reason),
                .since_usec = since_usec,
        };
        if (member->original_driver)
                q.member.original_driver = strdup(member->original_driver);
        if (member->original_override)
                q.member.original_override = strdup(member->original_override);
        if (!q.reason || (member->original_driver && !q.member.original_driver) ||
            (member->original_override && !q.member.original_override)) {
                quarantine_entry_clear(&q);
                return -ENOMEM;
        }
        pthread_rwlock_wrlock(&reg->lock);
        /* A retried release finds the device already held back. */
        bool known = registry_find_quarantined(reg, &member->address) != NULL;
        int r = known ? 0 : grow(&reg->quarantine, reg->n_quarantine, sizeof(*reg->quarantine));
        if (r == 0 && !known)
                reg->quarantine[reg->n_quarantine++] = q;
        pthread_rwlock_unlock(&reg->lock);
        if (r < 0 || known)
                quarantine_entry_clear(&q);
        return r;
}

void registry_remove_quarantine(struct iov_registry *reg, const struct iov_pci_address *address)
{
        struct iov_quarantine_entry gone = {0};
        pthread_rwlock_wrlock(&reg->lock);
        struct iov_quarantine_entry *q = registry_find_quarantined(reg, address);
        if (q) {
                size_t i = (size_t)(q - reg->quarantine);
                gone = *q;
                memmove(&reg->quarantine[i], &reg->quarantine[i + 1],
                        (reg->n_quarantine - i - 1) * sizeof(*reg->quarantine));
                reg->n_quarantine--;
        }
        pthread_rwlock_unlock(&reg->lock);
        quarantine_entry_clear(&gone);
}

/* The MAC an allocation has set on its VF, or is about to set; NULL when none. */
static const uint8_t *allocation_mac(const struct iov_allocation *a)
{
        if (!a->net)
                return NULL;
        if (a->net->applied && a->net->now.has_mac)
                return a->net->now.mac;
        return a->net->change.set_mac ? a->net->change.mac : NULL;
}

static const char *claim_conflict(struct iov_registry *reg, const struct iov_allocation *a)
{
        if (reg->n_allocations >= IOV_ALLOCATIONS_MAX)
                return "too_many_allocations";
        for (size_t i = 0; i < a->n_members; i++) {
                const struct iov_pci_address *m = &a->members[i].address;
                if (a->members[i].is_bridge)
                        continue;
                if (registry_find_by_device(reg, m))
                        return "device_allocated";
                if (registry_find_quarantined(reg, m))
                        return "device_quarantined";
        }
        const uint8_t *mac = allocation_mac(a);
        for (size_t i = 0; mac && i < reg->n_allocations; i++) {
                const uint8_t *other = allocation_mac(reg->allocations[i]);
                if (other && memcmp(other, mac, IOV_NETDEV_MAC_LEN) == 0)
                        return "mac_in_use";
        }
        return NULL;
}

int registry_claim_allocation(struct iov_registry *reg, struct iov_allocation *a,
                              const char **ret_why)
{
        pthread_rwlock_wrlock(&reg->lock);
        const char *why = claim_conflict(reg, a);
        int r = why ? -EBUSY : insert_allocation_locked(reg, a);
        pthread_rwlock_unlock(&reg->lock);
        if (r < 0)
                allocation_free(a);
        if (why)
                *ret_why = why;
        return r;
}

void registry_set_state(struct iov_registry *reg, struct iov_allocation *a,
                        enum iov_allocation_state state, const char *lost_reason)
{
        char *copy = lost_reason ? strdup(lost_reason) : NULL;
        char buf[16];
        pthread_rwlock_wrlock(&reg->lock);
        a->state = state;
        if (lost_reason) {
                free(a->lost_reason);
                a->lost_reason = copy;
        }
        /* A lost allocation keeps its devices but no longer owns the group number. */
        if (state == IOV_ALLOCATION_LOST)
                index_del(&reg->allocation_by_group, group_key(a->iommu_group, buf), a);
        pthread_rwlock_unlock(&reg->lock);
}

/* ---- lookups -------------------------------------------------------------------------- */

struct iov_allocation *registry_find_allocation(struct iov_registry *reg, const char *id)
{
        return index_get(&reg->allocation_by_id, id);
}

struct iov_allocation *registry_find_by_device(struct iov_registry *reg,
                                               const struct iov_pci_address *address)
{
        char buf[IOV_PCI_ADDRESS_MAX];
        return index_get(&reg->allocation_by_device, pci_address_format(address, buf));
}

struct iov_allocation *registry_find_by_group(struct iov_registry *reg, unsigned group)
{
        char buf[16];
        return index_get(&reg->allocation_by_group, group_key(group, buf));
}

struct iov_quarantine_entry *registry_find_quarantined(struct iov_registry *reg,
                                                       const struct iov_pci_address *address)
{
        for (size_t i = 0; i < reg->n_quarantine; i++)
                if (pci_address_equal(&reg->quarantine[i].member.address, address))
                        return &reg->quarantine[i];
        return NULL;
}

struct iov_pool *registry_find_pool(struct iov_registry *reg, const char *name)
{
        return index_get(&reg->pool_by_name, name);
}

size_t registry_pool_allocations(struct iov_registry *reg, const char *name)
{
        return (uintptr_t)index_get(&reg->pool_use, name);
}

/* ---- timing ------------------------------------------------------------------------------ */

void registry_time_step(struct iov_registry *reg, enum iov_alloc_step step, uint64_t start_usec)
{
        if (!reg)
                return;
        __atomic_add_fetch(&reg->step_usec[step], util_now_usec() - start_usec, __ATOMIC_RELAXED);
        __atomic_add_fetch(&reg->step_count[step], 1, __ATOMIC_RELAXED);
}

const char *registry_step_name(enum iov_alloc_step step)
{
        static const char *const names[IOV_STEP_COUNT] = {
                [IOV_STEP_DECIDE] = "decide",
                [IOV_STEP_NET_READ] = "net_read",
                [IOV_STEP_STATE_WRITE] = "state_write",
                [IOV_STEP_NET_APPLY] = "net_apply",
                [IOV_STEP_BIND] = "bind",
                [IOV_STEP_REFRESH] = "refresh",
                [IOV_STEP_RESET] = "reset",
                [IOV_STEP_RESTORE] = "restore",
                [IOV_STEP_NET_RESTORE] = "net_restore",
        };
        return names[step];
}

/* ---- durability: one file per item (daemon.h, "Collections of one file per item") ---- */

static struct json_object *quarantine_to_json(const struct iov_quarantine_entry *q)
{
        struct json_object *o = allocation_member_to_json(&q->member);
        if (!o)
                return NULL;
        json_object_object_add(o, "reason", json_object_new_string(q->reason));
        json_object_object_add(o, "since_usec", json_object_new_int64((int64_t)q->since_usec));
        return o;
}

static int save_item(struct iov_state *state, const char *kind, const char *key,
                     struct json_object *item)
{
        if (!item)
                return -ENOMEM;
        int r = state_item_save(state, kind, key, item);
        json_object_put(item);
        return r;
}

static int timed_save(struct iov_registry *reg, struct iov_state *state, const char *kind,
                      const char *key, struct json_object *item)
{
        uint64_t start = util_now_usec();
        int r = save_item(state, kind, key, item);
        registry_time_step(reg, IOV_STEP_STATE_WRITE, start);
        return r;
}

int registry_save_allocation(struct iov_registry *reg, struct iov_state *state,
                             const struct iov_allocation *a)
{
        pthread_rwlock_rdlock(&reg->lock); /* a consistent copy of state and members */
        struct json_object *item = allocation_to_json(a);
        pthread_rwlock_unlock(&reg->lock);
        return timed_save(reg, state, KIND_ALLOCATIONS, a->id, item);
}

int registry_forget_allocation(struct iov_state *state, const char *id)
{
        return state_item_remove(state, KIND_ALLOCATIONS, id);
}

int registry_drop_allocation(struct iov_registry *reg, struct iov_state *state,
                             struct iov_allocation *a)
{
        char id[IOV_ALLOCATION_ID_MAX];
        snprintf(id, sizeof(id), "%s", a->id);
        registry_remove_allocation(reg, a);
        uint64_t start = util_now_usec();
        int r = registry_forget_allocation(state, id);
        registry_time_step(reg, IOV_STEP_STATE_WRITE, start);
        return r;
}

int registry_save_pool(struct iov_state *state, const struct iov_pool *pool)
{
        return save_item(state, KIND_POOLS, pool->name, pool_to_json(pool));
}

int registry_forget_pool(struct iov_state *state, const char *name)
{
        return state_item_remove(state, KIND_POOLS, name);
}

int registry_save_quarantined(struct iov_registry *reg, struct iov_state *state,
                              const struct iov_pci_address *address)
{
        char key[IOV_PCI_ADDRESS_MAX];
        pci_address_format(address, key);
        pthread_rwlock_rdlock(&reg->lock);
        struct iov_quarantine_entry *q = registry_find_quarantined(reg, address);
        struct json_object *item = q ? quarantine_to_json(q) : NULL;
        pthread_rwlock_unlock(&reg->lock);
        if (!q)
                return state_item_remove(state, KIND_QUARANTINE, key);
        return save_item(state, KIND_QUARANTINE, key, item);
}

/* ---- loading: every item checked like a request ---------------------------------------- */

_printf_(2, 3) static int refuse(char **ret_why, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        if (vasprintf(ret_why, fmt, ap) < 0)
                *ret_why = NULL;
        va_end(ap);
        return -EBADMSG;
}

static int take_pool(struct json_object *item, const char *key, void *userdata, char **ret_why)
{
        struct iov_registry *reg = userdata;
        struct iov_pool *pool = NULL;
        struct iov_pool_parse_error e = {0};
        int r = pool_from_json(item, true, &pool, &e);
        if (r == -EINVAL)
                return refuse(ret_why, "a malformed pool (%s)", e.message);
        if (r < 0)
                return r;
        _cleanup_(pool_freep) struct iov_pool *owned = pool;
        if (key && !streq(key, pool->name))
                return refuse(ret_why, "a pool named %s in another pool's file", pool->name);
        if (registry_find_pool(reg, pool->name))
                return refuse(ret_why, "a second pool named %s", pool->name);
        return registry_add_pool(reg, TAKE_PTR(owned));
}

/* What the API would have accepted: the id it makes, an owner it takes, a pool name. */
static const char *allocation_invalid(const struct iov_allocation *a)
{
        size_t n = strlen(a->id);
        bool id_ok = n == 18 && strncmp(a->id, "a-", 2) == 0;
        for (size_t i = 2; id_ok && i < n; i++)
                id_ok = strchr("0123456789abcdef", a->id[i]) != NULL;
        if (!id_ok)
                return "an allocation id that is not a- and 16 lowercase hex digits";
        n = strlen(a->owner);
        bool owner_ok = n > 0 && n <= IOV_ALLOCATION_OWNER_MAX;
        for (size_t i = 0; owner_ok && i < n; i++)
                owner_ok = a->owner[i] >= 0x20 && a->owner[i] < 0x7f;
        if (!owner_ok)
                return "an owner that is not 1 to 128 printable ASCII characters";
        if (a->pool && !pool_name_is_valid(a->pool))
                return "a pool that is not a valid pool name";
        return NULL;
}

static int take_allocation(struct json_object *item, const char *key, void *userdata,
                           char **ret_why)
{
        struct iov_registry *reg = userdata;
        struct iov_allocation *a = NULL;
        int r = allocation_from_json(item, &a);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return refuse(ret_why, "a malformed allocation");
        _cleanup_(allocation_freep) struct iov_allocation *owned = a;
        const char *invalid = allocation_invalid(a);
        if (invalid)
                return refuse(ret_why, "%s", invalid);
        if (key && !streq(key, a->id))
                return refuse(ret_why, "allocation %s in another allocation's file", a->id);
        if (registry_find_allocation(reg, a->id))
                return refuse(ret_why, "a second allocation with id %s", a->id);
        return registry_add_allocation(reg, TAKE_PTR(owned));
}

static int take_quarantined(struct json_object *item, const char *key, void *userdata,
                            char **ret_why)
{
        struct iov_registry *reg = userdata;
        struct json_object *reason = NULL, *since = NULL;
        struct iov_bind_record m = {0};
        char buf[IOV_PCI_ADDRESS_MAX];
        int r = allocation_member_from_json(item, &m);
        bool ok = r == 0 && json_object_object_get_ex(item, "reason", &reason) &&
                  json_object_is_type(reason, json_type_string) &&
                  json_object_object_get_ex(item, "since_usec", &since) &&
                  json_object_is_type(since, json_type_int);
        if (ok && key && !streq(key, pci_address_format(&m.address, buf)))
                r = refuse(ret_why, "the entry of %s in another device's file", buf);
        else if (ok && registry_find_quarantined(reg, &m.address))
                r = refuse(ret_why, "a second entry for %s", pci_address_format(&m.address, buf));
        else if (ok)
                r = registry_add_quarantine(reg, &m, json_object_get_string(reason),
                                            (uint64_t)json_object_get_int64(since));
        else if (r != -ENOMEM)
                r = refuse(ret_why, "a malformed quarantine entry");
        free(m.original_driver);
        free(m.original_override);
        return r;
}

/* Items taken from a legacy document (or a new state dir) are written as item files,
 * then the marker replaces the document. */
static int commit_pools(struct iov_registry *reg, struct iov_state *state)
{
        for (size_t i = 0; i < reg->n_pools; i++) {
                int r = registry_save_pool(state, reg->pools[i]);
                if (r < 0)
                        return r;
        }
        return state_items_commit(state, KIND_POOLS);
}

static int commit_allocations(struct iov_registry *reg, struct iov_state *state)
{
        for (size_t i = 0; i < reg->n_allocations; i++) {
                int r = registry_save_allocation(reg, state, reg->allocations[i]);
                if (r < 0)
                        return r;
        }
        return state_items_commit(state, KIND_ALLOCATIONS);
}

static int commit_quarantine(struct iov_registry *reg, struct iov_state *state)
{
        for (size_t i = 0; i < reg->n_quarantine; i++) {
                int r = registry_save_quarantined(reg, state, &reg->quarantine[i].member.address);
                if (r < 0)
                        return r;
        }
        return state_items_commit(state, KIND_QUARANTINE);
}

static int load_kind(struct iov_registry *reg, struct iov_state *state, const char *kind,
                     state_item_fn fn, int (*commit)(struct iov_registry *, struct iov_state *))
{
        _cleanup_free_ char *error = NULL;
        bool need_commit = false;
        int r = state_items_load(state, kind, fn, reg, &need_commit, &error);
        if (r < 0)
                return log_error_errno(r, "%s; refusing to start, the file is left as it is",
                                       error ? error : kind);
        if (need_commit && (r = commit(reg, state)) < 0)
                return log_error_errno(r, "Cannot write the %s of %s as one file each: %m", kind,
                                       state_dir(state));
        return 0;
}

int registry_load(struct iov_registry *reg, struct iov_state *state)
{
        int r = load_kind(reg, state, KIND_POOLS, take_pool, commit_pools);
        if (r >= 0)
                r = load_kind(reg, state, KIND_ALLOCATIONS, take_allocation, commit_allocations);
        if (r >= 0)
                r = load_kind(reg, state, KIND_QUARANTINE, take_quarantined, commit_quarantine);
        return r;
}
