/* SPDX-License-Identifier: MIT */
/*
 * hwlock: locks named after the hardware they guard, so a slow bind, reset or VF change
 * blocks only requests for the same hardware (issue 11, "Fine-grained locking"):
 *
 *   "group:N"    an IOMMU group: held exclusively by whoever binds, resets or gives back
 *                its members (allocate, release, unquarantine, the lost check)
 *   "pf:ADDRESS" a physical function: held exclusively while its VFs are created or
 *                destroyed (PUT .../sriov), shared while a decision depends on its VFs
 *                staying (an allocation's claim, PUT .../net)
 *
 * Order, so no two requests ever wait on each other in a circle: a PF before a group;
 * whoever holds d->state_lock (the pool table) only ever tries them (hwlock_try), so a
 * request holding them may wait for d->state_lock (a device allocated as a member of a
 * pool, alloc/allocate.c pick_pool_member). An entry
 * exists while someone holds or waits for it, so the table stays as small as the number
 * of requests in flight.
 */
#include <stdio.h>

#include "alloc/alloc-internal.h"

struct iov_hwlock {
        struct iov_hwlock *next;
        unsigned refs; /* holders and waiters; under the table's mutex */
        pthread_rwlock_t rw;
        char key[IOV_HWLOCK_KEY_MAX];
};

static struct iov_hwlock *entry_get(struct iov_hwlocks *t, const char *key)
{
        pthread_mutex_lock(&t->lock);
        struct iov_hwlock *l = t->entries;
        while (l && !streq(l->key, key))
                l = l->next;
        if (!l && (l = calloc(1, sizeof(*l)))) {
                snprintf(l->key, sizeof(l->key), "%s", key);
                pthread_rwlock_init(&l->rw, NULL);
                l->next = t->entries;
                t->entries = l;
        }
        if (l)
                l->refs++;
        pthread_mutex_unlock(&t->lock);
        return l;
}

static void entry_put(struct iov_hwlocks *t, struct iov_hwlock *l)
{
        pthread_mutex_lock(&t->lock);
        bool last = --l->refs == 0;
        if (last)
                for (struct iov_hwlock **p = &t->entries; *p; p = &(*p)->next)
                        if (*p == l) {
                                *p = l->next;
                                break;
                        }
        pthread_mutex_unlock(&t->lock);
        if (last) {
                pthread_rwlock_destroy(&l->rw);
                free(l);
        }
}

static int take(struct iov_hwlocks *t, const char *key, bool shared, bool try,
                struct iov_hwlock **ret)
{
        struct iov_hwlock *l = entry_get(t, key);
        if (!l)
                return -ENOMEM;
        int r;
        if (try)
                r = shared ? pthread_rwlock_tryrdlock(&l->rw) : pthread_rwlock_trywrlock(&l->rw);
        else
                r = shared ? pthread_rwlock_rdlock(&l->rw) : pthread_rwlock_wrlock(&l->rw);
        if (r != 0) {
                entry_put(t, l);
                return -EBUSY;
        }
        *ret = l;
        return 0;
}

int hwlock_take(struct iov_hwlocks *t, const char *key, bool shared, struct iov_hwlock **ret)
{
        return take(t, key, shared, false, ret);
}

int hwlock_try(struct iov_hwlocks *t, const char *key, bool shared, struct iov_hwlock **ret)
{
        return take(t, key, shared, true, ret);
}

void hwlock_release(struct iov_hwlocks *t, struct iov_hwlock *l)
{
        if (!l)
                return;
        pthread_rwlock_unlock(&l->rw);
        entry_put(t, l);
}

void hwlock_key_group(unsigned group, char ret[static IOV_HWLOCK_KEY_MAX])
{
        snprintf(ret, IOV_HWLOCK_KEY_MAX, "group:%u", group);
}

void hwlock_key_pf(const struct iov_pci_address *pf, char ret[static IOV_HWLOCK_KEY_MAX])
{
        char buf[IOV_PCI_ADDRESS_MAX];
        snprintf(ret, IOV_HWLOCK_KEY_MAX, "pf:%s", pci_address_format(pf, buf));
}
