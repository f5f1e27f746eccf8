/* SPDX-License-Identifier: MIT */
/*
 * snapshot: the immutable, reference-counted view of the hardware that readers hold
 * (daemon.h). Taking one is a pointer read under a mutex; the last reference frees it.
 */
#include "daemon/runtime.h"

void daemon_snapshot_free(struct iov_snapshot *s)
{
        if (!s)
                return;
        pci_inventory_free(s->pci);
        iommu_groups_free(s->groups, s->n_groups);
        free(s);
}

struct iov_snapshot *daemon_snapshot_get(struct iov_daemon *d)
{
        pthread_mutex_lock(&d->rt->snapshot_lock);
        struct iov_snapshot *s = d->rt->snapshot;
        if (s)
                __atomic_add_fetch(&s->refs, 1, __ATOMIC_RELAXED);
        pthread_mutex_unlock(&d->rt->snapshot_lock);
        return s;
}

void daemon_snapshot_unref(struct iov_snapshot *s)
{
        if (s && __atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL) == 0)
                daemon_snapshot_free(s);
}

const struct iov_iommu_group *daemon_snapshot_find_group(const struct iov_snapshot *s, unsigned id)
{
        size_t lo = 0, hi = s->n_groups;
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (s->groups[mid].id == id)
                        return &s->groups[mid];
                if (s->groups[mid].id < id)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return NULL;
}
