/* SPDX-License-Identifier: MIT */
/*
 * /v1/pools: named device selectors. capacity counts the functions that match now;
 * free those of them that could be allocated now: not held by an allocation (active or
 * lost), not quarantined, in an IOMMU group no allocation holds whose members are all
 * driverless or on vfio-pci (as the current inventory shows).
 */
#include <stdio.h>

#include "api/api.h"
#include "alloc/alloc.h"
#include "daemon/daemon.h"

struct pool_counts {
        size_t capacity;
        size_t free;
};

/* Compare selectors on the driver a device had before iovd moved it to vfio-pci. */
static const char *effective_driver(const struct iov_allocation *a,
                                    const struct iov_pci_device *dev)
{
        for (size_t i = 0; a && i < a->n_members; i++)
                if (pci_address_equal(&a->members[i].address, &dev->address))
                        return a->members[i].original_driver;
        return dev->driver;
}

static void count_device(struct iov_registry *reg, const struct iov_pool *pool,
                         const struct iov_snapshot *snap, const struct iov_pci_device *dev,
                         struct pool_counts *c)
{
        struct iov_allocation *a = registry_find_by_device(reg, &dev->address);
        if (!pool_selector_match(&pool->selector, dev, effective_driver(a, dev)))
                return;
        c->capacity++;
        if (!a && dev->iommu_group >= 0 && !registry_find_quarantined(reg, &dev->address) &&
            !registry_find_by_group(reg, (unsigned)dev->iommu_group) &&
            allocations_snapshot_viable(snap, dev->iommu_group))
                c->free++;
}

/* Called with the registry's read lock held. A selector that lists addresses is counted
 * on those alone (looked up in the snapshot), so 10,000 such pools do not each walk
 * every function of the host. */
static struct pool_counts pool_count(struct iov_registry *reg, const struct iov_pool *pool,
                                     const struct iov_snapshot *snap)
{
        struct pool_counts c = {0};
        const struct iov_pool_selector *sel = &pool->selector;
        for (size_t i = 0; snap && sel->addresses && i < sel->n_addresses; i++) {
                const struct iov_pci_device *dev =
                        pci_inventory_find(snap->pci, &sel->addresses[i]);
                if (dev)
                        count_device(reg, pool, snap, dev, &c);
        }
        for (size_t i = 0; snap && !sel->addresses && i < snap->pci->n_devices; i++)
                count_device(reg, pool, snap, &snap->pci->devices[i], &c);
        return c;
}

static struct json_object *pool_api_json(struct iov_registry *reg, const struct iov_pool *pool,
                                         const struct iov_snapshot *snap)
{
        struct json_object *o = pool_to_json(pool);
        if (!o)
                return NULL;
        struct pool_counts c = pool_count(reg, pool, snap);
        size_t allocations = registry_pool_allocations(reg, pool->name);
        json_object_object_add(o, "capacity", json_object_new_int64((int64_t)c.capacity));
        json_object_object_add(o, "free", json_object_new_int64((int64_t)c.free));
        json_object_object_add(o, "allocations", json_object_new_int64((int64_t)allocations));
        return o;
}

/* Answer with the pool called name, looked up and rendered under the registry's read
 * lock (a concurrent DELETE frees pools only under its write lock). */
static int reply_pool(struct iov_daemon *d, struct iov_api_response *resp, unsigned status,
                      const char *name)
{
        struct iov_registry *reg = registry_get(d);
        _cleanup_snapshot_ struct iov_snapshot *snap = daemon_snapshot_get(d);
        pthread_rwlock_rdlock(&reg->lock);
        struct iov_pool *pool = registry_find_pool(reg, name);
        struct json_object *o = pool ? pool_api_json(reg, pool, snap) : NULL;
        pthread_rwlock_unlock(&reg->lock);
        if (!pool)
                return api_error(resp, 404, "pool_not_found", "no pool named %s", name);
        if (!o)
                return -ENOMEM;
        return api_reply_json(resp, status, o);
}

static int pools_list(struct iov_daemon *d, const struct iov_api_request *req,
                      struct iov_api_response *resp)
{
        (void)req;
        struct iov_registry *reg = registry_get(d);
        _cleanup_snapshot_ struct iov_snapshot *snap = daemon_snapshot_get(d);
        struct json_object *arr = json_object_new_array();
        pthread_rwlock_rdlock(&reg->lock);
        for (size_t i = 0; arr && i < reg->n_pools; i++)
                arr = api_array_append(arr, pool_api_json(reg, reg->pools[i], snap));
        pthread_rwlock_unlock(&reg->lock);
        return api_reply_list(resp, "pools", arr);
}

/* Under the state lock: a new pool's name is free and the limits leave room for it. */
static int check_room_for(struct iov_registry *reg, const struct iov_pool *pool,
                          struct iov_api_response *resp)
{
        if (registry_find_pool(reg, pool->name))
                return api_error(resp, 409, "pool_exists", "a pool named %s already exists",
                                 pool->name);
        if (reg->n_pools >= IOV_POOLS_MAX)
                return api_error(resp, 409, "too_many_pools", "iovd holds at most %d pools",
                                 IOV_POOLS_MAX);
        if (reg->n_pool_addresses + pool->selector.n_addresses > IOV_POOL_ADDRESSES_TOTAL_MAX)
                return api_error(resp, 409, "too_many_pool_addresses",
                                 "the selectors of all pools list at most %d addresses "
                                 "together; %zu are listed",
                                 IOV_POOL_ADDRESSES_TOTAL_MAX, reg->n_pool_addresses);
        return 0;
}

static int pools_create(struct iov_daemon *d, const struct iov_api_request *req,
                        struct iov_api_response *resp)
{
        static const struct iov_api_field fields[] = {
                {"name", json_type_string, true, false},
                {"selector", json_type_object, true, false},
                {"net", json_type_object, false, false},
        };
        int r = api_body_check(req, resp, fields, ARRAY_SIZE(fields));
        if (r < 0)
                return r;
        struct iov_pool *pool = NULL;
        struct iov_pool_parse_error e = {0};
        r = pool_from_json(req->body, false, &pool, &e);
        if (r == -EINVAL)
                return api_error(resp, 400, e.code, "%s", e.message);
        if (r < 0)
                return r;

        struct iov_registry *reg = registry_get(d);
        char name[IOV_POOL_NAME_MAX + 1];
        snprintf(name, sizeof(name), "%s", pool->name);
        pthread_mutex_lock(&d->state_lock);
        r = check_room_for(reg, pool, resp);
        if (r < 0) {
                pthread_mutex_unlock(&d->state_lock);
                pool_free(pool);
                return r;
        }
        r = registry_add_pool(reg, pool);
        if (r == 0) {
                r = registry_save_pool(d->state, pool);
                if (r < 0)
                        registry_remove_pool(reg, pool);
        }
        if (r == 0) {
                daemon_event_publish(d, "pool_created", pool_to_json(pool));
                log_info("pool %s created", name);
                r = reply_pool(d, resp, 201, name);
        } else
                api_error(resp, 500, "state_write_failed", "cannot save the pool: %s",
                          strerror(-r));
        pthread_mutex_unlock(&d->state_lock);
        return r;
}

static int pools_get(struct iov_daemon *d, const struct iov_api_request *req,
                     struct iov_api_response *resp)
{
        return reply_pool(d, resp, 200, api_request_param(req, "name"));
}

static int pools_delete(struct iov_daemon *d, const struct iov_api_request *req,
                        struct iov_api_response *resp)
{
        const char *name = api_request_param(req, "name");
        struct iov_registry *reg = registry_get(d);
        int r;
        pthread_mutex_lock(&d->state_lock);
        pthread_rwlock_rdlock(&reg->lock);
        struct iov_pool *pool = registry_find_pool(reg, name);
        size_t in_use = registry_pool_allocations(reg, name);
        pthread_rwlock_unlock(&reg->lock);
        if (!pool)
                r = api_error(resp, 404, "pool_not_found", "no pool named %s", name);
        else if (in_use > 0)
                r = api_error(resp, 409, "pool_in_use",
                              "pool %s still has %zu allocation(s); release them first", name,
                              in_use);
        else {
                r = reply_pool(d, resp, 200, name);
                registry_take_pool(reg, pool);
                int w = registry_forget_pool(d->state, name);
                if (w < 0) {
                        /* Not saved: put it back so memory and disk agree. */
                        (void)registry_add_pool(reg, pool);
                        r = api_error(resp, 500, "state_write_failed",
                                      "cannot save the pools, %s is kept: %s", name, strerror(-w));
                } else {
                        daemon_event_publish(d, "pool_deleted", pool_to_json(pool));
                        pool_free(pool);
                }
        }
        pthread_mutex_unlock(&d->state_lock);
        return r;
}

API_ROUTE(pools_list, "GET", "/v1/pools", pools_list)
API_ROUTE(pools_create, "POST", "/v1/pools", pools_create)
API_ROUTE(pools_get, "GET", "/v1/pools/{name}", pools_get)
API_ROUTE(pools_delete, "DELETE", "/v1/pools/{name}", pools_delete)
