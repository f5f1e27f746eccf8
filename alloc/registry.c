/* SPDX-License-Identifier: MIT */
/* The in-memory registry of allocations, pools and quarantined devices, and its three
 * durable collections. */
#include <stdio.h>

#include "alloc/alloc-internal.h"
#include "daemon/daemon.h"

#define KIND_ALLOCATIONS "allocations"
#define KIND_POOLS       "pools"
#define KIND_QUARANTINE  "quarantine"

static void json_put_ptr(struct json_object **p)
{
        json_object_put(*p);
}

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

int registry_add_allocation(struct iov_registry *reg, struct iov_allocation *a)
{
        pthread_rwlock_wrlock(&reg->lock);
        int r = grow(&reg->allocations, reg->n_allocations, sizeof(*reg->allocations));
        if (r == 0)
                reg->allocations[reg->n_allocations++] = a;
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
                        break;
                }
        pthread_rwlock_unlock(&reg->lock);
        allocation_free(a);
}

int registry_add_pool(struct iov_registry *reg, struct iov_pool *pool)
{
        pthread_rwlock_wrlock(&reg->lock);
        int r = grow(&reg->pools, reg->n_pools, sizeof(*reg->pools));
        if (r == 0)
                reg->pools[reg->n_pools++] = pool;
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
                        break;
                }
        pthread_rwlock_unlock(&reg->lock);
}

int registry_add_quarantine(struct iov_registry *reg, const struct iov_bind_record *member,
                            const char *reason, uint64_t since_usec)
{
        if (registry_find_quarantined(reg, &member->address))
                return 0; /* a retried release: already held back */
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
        int r = grow(&reg->quarantine, reg->n_quarantine, sizeof(*reg->quarantine));
        if (r == 0)
                reg->quarantine[reg->n_quarantine++] = q;
        pthread_rwlock_unlock(&reg->lock);
        if (r < 0)
                quarantine_entry_clear(&q);
        return r;
}

void registry_remove_quarantine(struct iov_registry *reg, struct iov_quarantine_entry *q)
{
        pthread_rwlock_wrlock(&reg->lock);
        size_t i = (size_t)(q - reg->quarantine);
        struct iov_quarantine_entry gone = *q;
        memmove(&reg->quarantine[i], &reg->quarantine[i + 1],
                (reg->n_quarantine - i - 1) * sizeof(*reg->quarantine));
        reg->n_quarantine--;
        pthread_rwlock_unlock(&reg->lock);
        quarantine_entry_clear(&gone);
}

void registry_set_state(struct iov_registry *reg, struct iov_allocation *a,
                        enum iov_allocation_state state, const char *lost_reason)
{
        char *copy = lost_reason ? strdup(lost_reason) : NULL;
        pthread_rwlock_wrlock(&reg->lock);
        a->state = state;
        if (lost_reason) {
                free(a->lost_reason);
                a->lost_reason = copy;
        }
        pthread_rwlock_unlock(&reg->lock);
}

/* ---- lookups -------------------------------------------------------------------------- */

struct iov_allocation *registry_find_allocation(struct iov_registry *reg, const char *id)
{
        for (size_t i = 0; i < reg->n_allocations; i++)
                if (streq(reg->allocations[i]->id, id))
                        return reg->allocations[i];
        return NULL;
}

struct iov_allocation *registry_find_by_device(struct iov_registry *reg,
                                               const struct iov_pci_address *address)
{
        for (size_t i = 0; i < reg->n_allocations; i++) {
                struct iov_allocation *a = reg->allocations[i];
                for (size_t j = 0; j < a->n_members; j++)
                        if (!a->members[j].is_bridge &&
                            pci_address_equal(&a->members[j].address, address))
                                return a;
        }
        return NULL;
}

struct iov_allocation *registry_find_by_group(struct iov_registry *reg, unsigned group)
{
        for (size_t i = 0; i < reg->n_allocations; i++)
                if (reg->allocations[i]->iommu_group == group &&
                    reg->allocations[i]->state != IOV_ALLOCATION_LOST)
                        return reg->allocations[i];
        return NULL;
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
        for (size_t i = 0; i < reg->n_pools; i++)
                if (streq(reg->pools[i]->name, name))
                        return reg->pools[i];
        return NULL;
}

/* ---- durability ----------------------------------------------------------------------- */

int registry_save_allocations(struct iov_registry *reg, struct iov_state *state)
{
        _cleanup_(json_put_ptr) struct json_object *items = json_object_new_array();
        if (!items)
                return -ENOMEM;
        pthread_rwlock_rdlock(&reg->lock);
        for (size_t i = 0; i < reg->n_allocations; i++)
                json_object_array_add(items, allocation_to_json(reg->allocations[i]));
        pthread_rwlock_unlock(&reg->lock);
        return state_save(state, KIND_ALLOCATIONS, items);
}

int registry_save_pools(struct iov_registry *reg, struct iov_state *state)
{
        _cleanup_(json_put_ptr) struct json_object *items = json_object_new_array();
        if (!items)
                return -ENOMEM;
        pthread_rwlock_rdlock(&reg->lock);
        for (size_t i = 0; i < reg->n_pools; i++)
                json_object_array_add(items, pool_to_json(reg->pools[i]));
        pthread_rwlock_unlock(&reg->lock);
        return state_save(state, KIND_POOLS, items);
}

int registry_save_quarantine(struct iov_registry *reg, struct iov_state *state)
{
        _cleanup_(json_put_ptr) struct json_object *items = json_object_new_array();
        if (!items)
                return -ENOMEM;
        pthread_rwlock_rdlock(&reg->lock);
        for (size_t i = 0; i < reg->n_quarantine; i++) {
                const struct iov_quarantine_entry *q = &reg->quarantine[i];
                struct json_object *o = allocation_member_to_json(&q->member);
                json_object_object_add(o, "reason", json_object_new_string(q->reason));
                json_object_object_add(o, "since_usec",
                                       json_object_new_int64((int64_t)q->since_usec));
                json_object_array_add(items, o);
        }
        pthread_rwlock_unlock(&reg->lock);
        return state_save(state, KIND_QUARANTINE, items);
}

static int load_collection(struct iov_state *state, const char *kind, struct json_object **ret)
{
        _cleanup_free_ char *error = NULL;
        int r = state_load(state, kind, ret, &error);
        if (r < 0)
                return log_error_errno(r, "%s; refusing to start, the file is left as it is",
                                       error ? error : kind);
        return 0;
}

static int item_error(struct iov_state *state, const char *kind, size_t index, int r,
                      const char *why)
{
        _cleanup_free_ char *path = state_path(state, kind);
        return log_error_errno(r,
                               "state file %s: item %zu is %s; refusing to start, the file "
                               "is left as it is",
                               path ? path : kind, index, why);
}

static int load_allocations(struct iov_registry *reg, struct iov_state *state)
{
        _cleanup_(json_put_ptr) struct json_object *items = NULL;
        int r = load_collection(state, KIND_ALLOCATIONS, &items);
        if (r < 0)
                return r;
        for (size_t i = 0; i < json_object_array_length(items); i++) {
                struct iov_allocation *a;
                r = allocation_from_json(json_object_array_get_idx(items, i), &a);
                if (r < 0)
                        return item_error(state, KIND_ALLOCATIONS, i, r, "malformed");
                if (registry_find_allocation(reg, a->id)) {
                        allocation_free(a);
                        return item_error(state, KIND_ALLOCATIONS, i, -EBADMSG,
                                          "a second allocation with the same id");
                }
                r = registry_add_allocation(reg, a);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int load_pools(struct iov_registry *reg, struct iov_state *state)
{
        _cleanup_(json_put_ptr) struct json_object *items = NULL;
        int r = load_collection(state, KIND_POOLS, &items);
        if (r < 0)
                return r;
        for (size_t i = 0; i < json_object_array_length(items); i++) {
                struct iov_pool *pool;
                struct iov_pool_parse_error e;
                r = pool_from_json(json_object_array_get_idx(items, i), true, &pool, &e);
                if (r == -EINVAL) {
                        _cleanup_free_ char *why = util_strdup_printf("malformed (%s)", e.message);
                        return item_error(state, KIND_POOLS, i, -EBADMSG, why ? why : "malformed");
                }
                if (r < 0)
                        return r;
                if (registry_find_pool(reg, pool->name)) {
                        pool_free(pool);
                        return item_error(state, KIND_POOLS, i, -EBADMSG,
                                          "a second pool with the same name");
                }
                r = registry_add_pool(reg, pool);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int load_quarantine(struct iov_registry *reg, struct iov_state *state)
{
        _cleanup_(json_put_ptr) struct json_object *items = NULL;
        int r = load_collection(state, KIND_QUARANTINE, &items);
        if (r < 0)
                return r;
        for (size_t i = 0; i < json_object_array_length(items); i++) {
                struct json_object *o = json_object_array_get_idx(items, i), *reason, *since;
                struct iov_bind_record m = {0};
                r = allocation_member_from_json(o, &m);
                bool ok = r == 0 && json_object_object_get_ex(o, "reason", &reason) &&
                          json_object_is_type(reason, json_type_string) &&
                          json_object_object_get_ex(o, "since_usec", &since) &&
                          json_object_is_type(since, json_type_int);
                if (ok)
                        r = registry_add_quarantine(reg, &m, json_object_get_string(reason),
                                                    (uint64_t)json_object_get_int64(since));
                free(m.original_driver);
                free(m.original_override);
                if (!ok)
                        return r == -ENOMEM ? r
                                            : item_error(state, KIND_QUARANTINE, i, -EBADMSG,
                                                         "malformed");
                if (r < 0)
                        return r;
        }
        return 0;
}

int registry_load(struct iov_registry *reg, struct iov_state *state)
{
        int r = load_pools(reg, state);
        if (r < 0)
                return r;
        r = load_allocations(reg, state);
        if (r < 0)
                return r;
        return load_quarantine(reg, state);
}
