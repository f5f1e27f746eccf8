/* SPDX-License-Identifier: MIT */
/*
 * refresh: a new inventory snapshot that re-reads only the functions an operation touched
 * (an allocation's group, a PF and its VFs) and copies everything else from the current
 * one. On a large host a full scan walks every function (over a second for 16k); a bind
 * touches a handful, so allocate and release pay for what they changed, not for the host.
 */
#include <stdlib.h>
#include <string.h>

#include "daemon/runtime.h"

DEFINE_CLEANUP_FUNC(struct iov_pci_inventory, pci_inventory_free)

struct refresh_entry {
        struct iov_pci_address address;
        struct iov_pci_device device; /* valid when found */
        bool found;
};

struct refresh_set {
        struct refresh_entry *entries;
        size_t n, allocated;
};

static void refresh_set_clear(struct refresh_set *set)
{
        for (size_t i = 0; i < set->n; i++)
                pci_device_clear(&set->entries[i].device);
        free(set->entries);
        *set = (struct refresh_set){0};
}

/* Add an address once (a PF's VFs may be listed by the caller too). */
static int refresh_set_add(struct refresh_set *set, const struct iov_pci_address *address)
{
        for (size_t i = 0; i < set->n; i++)
                if (pci_address_equal(&set->entries[i].address, address))
                        return 0;
        if (set->n == set->allocated) {
                size_t want = set->allocated ? set->allocated * 2 : 16;
                struct refresh_entry *e = reallocarray(set->entries, want, sizeof(*e));
                if (!e)
                        return -ENOMEM;
                set->entries = e;
                set->allocated = want;
        }
        set->entries[set->n++] = (struct refresh_entry){.address = *address};
        return 0;
}

static int refresh_set_read(struct refresh_set *set, const char *sysfs_root, size_t i)
{
        struct refresh_entry *e = &set->entries[i];
        int r = pci_device_read(sysfs_root, &e->address, &e->device);
        if (r == -ENOENT)
                return 0; /* gone: the new snapshot drops it */
        if (r < 0)
                return r;
        e->found = true;
        return 0;
}

static int add_vfs(struct refresh_set *set, const struct iov_pci_device *pf)
{
        for (size_t i = 0; pf && i < pf->n_vfs; i++) {
                int r = refresh_set_add(set, &pf->vfs[i]);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Field by field: an address has a padding byte memcmp would compare. */
static bool same_vfs(const struct iov_pci_device *a, const struct iov_pci_device *b)
{
        if (a->n_vfs != b->n_vfs || a->num_vfs != b->num_vfs)
                return false;
        for (size_t i = 0; i < a->n_vfs; i++)
                if (!pci_address_equal(&a->vfs[i], &b->vfs[i]))
                        return false;
        return true;
}

/* Whether the entry, read now, is there as it was, in the same place: a driver bound or
 * unbound, which changes nothing about its PF or its IOMMU group. */
static bool stayed(const struct iov_pci_device *was, const struct iov_pci_device *now)
{
        if (!was || was->iommu_group != now->iommu_group || was->is_vf != now->is_vf)
                return false;
        return !now->is_vf || pci_address_equal(&was->physfn, &now->physfn);
}

/* What reading entry i brings in: a VF that came or went its PF (whose VF list changed;
 * a VF that stayed leaves it as it was: an allocation's refresh reads one function, not
 * two); a PF its VFs, the ones it had and the ones it has, when it was asked for or its
 * list changed. */
static int refresh_set_expand(struct refresh_set *set, const struct iov_snapshot *old, size_t i,
                              bool asked)
{
        const struct iov_pci_device *was = pci_inventory_find(old->pci, &set->entries[i].address);
        /* A shallow copy: adding may move the entries, not the arrays they point to. */
        struct iov_pci_device fresh = set->entries[i].device;
        bool found = set->entries[i].found;
        const struct iov_pci_device *now = found ? &fresh : NULL;
        bool same = found && stayed(was, &fresh);
        int r = 0;
        if (!same && was && was->is_vf)
                r = refresh_set_add(set, &was->physfn);
        if (r == 0 && !same && found && fresh.is_vf)
                r = refresh_set_add(set, &fresh.physfn);
        bool changed = !was || !found || !same_vfs(was, &fresh);
        if (r == 0 && (asked || changed))
                r = add_vfs(set, was);
        if (r == 0 && (asked || changed))
                r = add_vfs(set, now);
        return r;
}

/* Read the listed functions and what they bring in (refresh_set_expand), each once. */
static int refresh_set_fill(struct refresh_set *set, const struct iov_snapshot *old,
                            const char *sysfs_root, const struct iov_pci_address *addresses,
                            size_t n)
{
        int r = 0;
        for (size_t i = 0; i < n && r == 0; i++)
                r = refresh_set_add(set, &addresses[i]);
        /* set->n grows as entries bring others in. */
        for (size_t i = 0; i < set->n && r == 0; i++) {
                r = refresh_set_read(set, sysfs_root, i);
                if (r == 0)
                        r = refresh_set_expand(set, old, i, i < n);
        }
        return r;
}

static int entry_compare(const void *a, const void *b)
{
        const struct refresh_entry *x = a, *y = b;
        return pci_address_compare(&x->address, &y->address);
}

static int device_copy(const struct iov_pci_device *src, struct iov_pci_device *ret)
{
        struct iov_pci_device c = *src;
        c.vendor_name = c.device_name = c.driver = c.driver_override = NULL;
        c.vfs = NULL;
        if ((src->vendor_name && !(c.vendor_name = strdup(src->vendor_name))) ||
            (src->device_name && !(c.device_name = strdup(src->device_name))) ||
            (src->driver && !(c.driver = strdup(src->driver))) ||
            (src->driver_override && !(c.driver_override = strdup(src->driver_override))) ||
            (src->n_vfs && !(c.vfs = calloc(src->n_vfs, sizeof(*c.vfs))))) {
                pci_device_clear(&c);
                return -ENOMEM;
        }
        if (src->n_vfs)
                memcpy(c.vfs, src->vfs, src->n_vfs * sizeof(*c.vfs));
        *ret = c;
        return 0;
}

/* Merge the old devices with the fresh reads (both sorted); fresh entries are moved out. */
static int merge_devices(const struct iov_pci_inventory *old, struct refresh_set *set,
                         struct iov_pci_inventory **ret)
{
        _cleanup_(pci_inventory_freep) struct iov_pci_inventory *inv = calloc(1, sizeof(*inv));
        if (!inv || !(inv->devices = calloc(old->n_devices + set->n + 1, sizeof(*inv->devices))))
                return -ENOMEM;
        size_t i = 0, j = 0;
        while (i < old->n_devices || j < set->n) {
                int c = i == old->n_devices ? 1
                        : j == set->n       ? -1
                                            : pci_address_compare(&old->devices[i].address,
                                                                  &set->entries[j].address);
                if (c < 0) {
                        int r = device_copy(&old->devices[i++], &inv->devices[inv->n_devices]);
                        if (r < 0)
                                return r;
                        inv->n_devices++;
                        continue;
                }
                if (c == 0)
                        i++;
                struct refresh_entry *e = &set->entries[j++];
                if (e->found) {
                        inv->devices[inv->n_devices++] = e->device;
                        e->device = (struct iov_pci_device){0};
                        e->found = false;
                }
        }
        inv->scanned_usec = util_now_usec();
        *ret = TAKE_PTR(inv);
        return 0;
}

static int id_compare(const void *a, const void *b)
{
        unsigned x = *(const unsigned *)a, y = *(const unsigned *)b;
        return x < y ? -1 : x > y;
}

/* The IOMMU groups a refresh may have changed: those the touched functions were in and
 * those they are in now, when they came, went or moved (a group's members are the
 * functions whose iommu_group names it; a function that stayed leaves its group as it
 * was, and reading it again was a directory walk per request). */
static int affected_groups(const struct iov_snapshot *old, const struct refresh_set *set,
                           unsigned **ret, size_t *ret_n)
{
        _cleanup_free_ unsigned *ids = calloc(2 * set->n + 1, sizeof(*ids));
        size_t n = 0;
        if (!ids)
                return -ENOMEM;
        for (size_t i = 0; i < set->n; i++) {
                const struct iov_pci_device *was =
                        pci_inventory_find(old->pci, &set->entries[i].address);
                if (set->entries[i].found && stayed(was, &set->entries[i].device))
                        continue;
                if (was && was->iommu_group >= 0)
                        ids[n++] = (unsigned)was->iommu_group;
                if (set->entries[i].found && set->entries[i].device.iommu_group >= 0)
                        ids[n++] = (unsigned)set->entries[i].device.iommu_group;
        }
        qsort(ids, n, sizeof(*ids), id_compare);
        *ret = TAKE_PTR(ids);
        *ret_n = n;
        return 0;
}

/* ids is sorted (affected_groups): a PF's 255 VFs against 16k groups stay cheap. */
static bool id_listed(const unsigned *ids, size_t n, unsigned id)
{
        return n && bsearch(&id, ids, n, sizeof(*ids), id_compare);
}

static int group_compare(const void *a, const void *b)
{
        const struct iov_iommu_group *x = a, *y = b;
        return x->id < y->id ? -1 : x->id > y->id;
}

static int group_copy(const struct iov_iommu_group *src, struct iov_iommu_group *ret)
{
        struct iov_iommu_group g = {.id = src->id, .n_devices = src->n_devices};
        if (src->n_devices) {
                g.devices = calloc(src->n_devices, sizeof(*g.devices));
                if (!g.devices)
                        return -ENOMEM;
                memcpy(g.devices, src->devices, src->n_devices * sizeof(*g.devices));
        }
        *ret = g;
        return 0;
}

/* Copy the untouched groups, read the affected ones again (a group gone is dropped). */
static int refresh_groups(const char *sysfs_root, const struct iov_snapshot *old,
                          const unsigned *ids, size_t n_ids, struct iov_snapshot *s)
{
        s->groups = calloc(old->n_groups + n_ids + 1, sizeof(*s->groups));
        if (!s->groups)
                return -ENOMEM;
        for (size_t i = 0; i < old->n_groups; i++) {
                if (id_listed(ids, n_ids, old->groups[i].id))
                        continue;
                int r = group_copy(&old->groups[i], &s->groups[s->n_groups]);
                if (r < 0)
                        return r;
                s->n_groups++;
        }
        for (size_t i = 0; i < n_ids; i++) {
                if (i > 0 && ids[i] == ids[i - 1])
                        continue; /* listed twice */
                int r = iommu_group_read(sysfs_root, ids[i], &s->groups[s->n_groups]);
                if (r == -ENOENT)
                        continue;
                if (r < 0)
                        return r;
                s->n_groups++;
        }
        qsort(s->groups, s->n_groups, sizeof(*s->groups), group_compare);
        return 0;
}

static int snapshot_refresh(struct iov_daemon *d, const struct iov_snapshot *old,
                            const struct iov_pci_address *addresses, size_t n,
                            struct iov_snapshot **ret)
{
        _cleanup_(refresh_set_clear) struct refresh_set set = {0};
        _cleanup_free_ unsigned *ids = NULL;
        size_t n_ids = 0;
        int r = refresh_set_fill(&set, old, d->config.sysfs_root, addresses, n);
        if (r == 0)
                r = affected_groups(old, &set, &ids, &n_ids);
        if (r < 0)
                return r;
        qsort(set.entries, set.n, sizeof(*set.entries), entry_compare);

        _cleanup_snapshot_ struct iov_snapshot *s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->refs = 1;
        s->generation = old->generation + 1;
        r = merge_devices(old->pci, &set, &s->pci);
        if (r == 0)
                r = refresh_groups(d->config.sysfs_root, old, ids, n_ids, s);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(s);
        return 0;
}

int daemon_refresh_devices(struct iov_daemon *d, const struct iov_pci_address *addresses, size_t n)
{
        uint64_t start = util_now_usec();
        pthread_mutex_lock(&d->rt->rescan_lock);
        _cleanup_snapshot_ struct iov_snapshot *old = daemon_snapshot_get(d);
        if (!old) {
                pthread_mutex_unlock(&d->rt->rescan_lock);
                return daemon_rescan(d);
        }
        struct iov_snapshot *new = NULL;
        int r = snapshot_refresh(d, old, addresses, n, &new);
        if (r < 0) {
                pthread_mutex_unlock(&d->rt->rescan_lock);
                return log_warning_errno(r, "Refreshing %zu devices failed: %m", n);
        }
        daemon_snapshot_replace(d, old, new);
        pthread_mutex_unlock(&d->rt->rescan_lock);
        daemon_metrics_count_refresh(d, util_now_usec() - start);
        return 0;
}
