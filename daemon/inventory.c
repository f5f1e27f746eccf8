/* SPDX-License-Identifier: MIT */
/*
 * inventory: reading the hardware into a snapshot (snapshot.c), and rescans. Request
 * threads read the current snapshot without locks while a rescan (udev, POST /v1/rescan,
 * after a VF change) builds the next one; the swap is a pointer under a mutex. A rescan
 * compares the two and publishes what changed.
 */
#include <stdio.h>

#include "daemon/runtime.h"

/* The IOMMU groups are built from the functions' iommu_group links the scan already read,
 * rather than by walking kernel/iommu_groups again: iovd only hands out PCI functions, and
 * on a host with one group per VF that second walk cost a quarter of the scan. */
static int snapshot_scan(struct iov_daemon *d, uint64_t generation, struct iov_snapshot **ret)
{
        uint64_t start = util_now_usec();

        struct iov_snapshot *s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->refs = 1;
        s->generation = generation;
        int r = pci_inventory_scan(d->config.sysfs_root, &s->pci);
        if (r >= 0)
                r = iommu_groups_from_inventory(s->pci, &s->groups, &s->n_groups);
        if (r < 0) {
                daemon_snapshot_free(s);
                return r;
        }
        daemon_metrics_count_rescan(d, util_now_usec() - start);
        *ret = s;
        return 0;
}

int daemon_inventory_init(struct iov_daemon *d)
{
        struct iov_snapshot *s;
        int r = snapshot_scan(d, 1, &s);
        if (r < 0)
                return r;
        pthread_mutex_lock(&d->rt->snapshot_lock);
        d->rt->snapshot = s;
        pthread_mutex_unlock(&d->rt->snapshot_lock);
        return 0;
}

void daemon_inventory_clear(struct iov_daemon *d)
{
        pthread_mutex_lock(&d->rt->snapshot_lock);
        struct iov_snapshot *s = TAKE_PTR(d->rt->snapshot);
        pthread_mutex_unlock(&d->rt->snapshot_lock);
        daemon_snapshot_unref(s);
}

static struct json_object *event_device(const struct iov_pci_device *dev)
{
        char hex[8];
        struct json_object *o = json_object_new_object();
        if (!o)
                return NULL;
        json_object_object_add(o, "address", json_object_new_string(dev->name));
        snprintf(hex, sizeof(hex), "%04x", dev->vendor_id);
        json_object_object_add(o, "vendor_id", json_object_new_string(hex));
        snprintf(hex, sizeof(hex), "%04x", dev->device_id);
        json_object_object_add(o, "device_id", json_object_new_string(hex));
        json_object_object_add(o, "driver",
                               dev->driver ? json_object_new_string(dev->driver) : NULL);
        if (dev->is_vf) {
                char pf[IOV_PCI_ADDRESS_MAX];
                json_object_object_add(
                        o, "physfn", json_object_new_string(pci_address_format(&dev->physfn, pf)));
        }
        return o;
}

static void diff_changed(struct iov_daemon *d, const struct iov_pci_device *a,
                         const struct iov_pci_device *b)
{
        if (!streq_ptr(a->driver, b->driver)) {
                struct json_object *o = event_device(b);
                if (o)
                        json_object_object_add(o, "previous_driver",
                                               a->driver ? json_object_new_string(a->driver)
                                                         : NULL);
                daemon_event_publish(d, "driver_changed", o);
        }
        if (b->is_pf && a->num_vfs != b->num_vfs) {
                struct json_object *o = json_object_new_object();
                if (o) {
                        json_object_object_add(o, "address", json_object_new_string(b->name));
                        json_object_object_add(o, "num_vfs", json_object_new_int(b->num_vfs));
                        json_object_object_add(o, "previous_num_vfs",
                                               json_object_new_int(a->num_vfs));
                }
                daemon_event_publish(d, "vfs_changed", o);
        }
}

/* Both lists are sorted by address: one merge walk finds what came, went and changed. */
static void inventory_diff(struct iov_daemon *d, const struct iov_pci_inventory *old,
                           const struct iov_pci_inventory *new)
{
        size_t i = 0, j = 0;
        while (i < old->n_devices || j < new->n_devices) {
                int c;
                if (i == old->n_devices)
                        c = 1;
                else if (j == new->n_devices)
                        c = -1;
                else
                        c = pci_address_compare(&old->devices[i].address, &new->devices[j].address);
                if (c < 0)
                        daemon_event_publish(d, "device_removed", event_device(&old->devices[i++]));
                else if (c > 0)
                        daemon_event_publish(d, "device_added", event_device(&new->devices[j++]));
                else
                        diff_changed(d, &old->devices[i++], &new->devices[j++]);
        }
}

void daemon_snapshot_replace(struct iov_daemon *d, const struct iov_snapshot *old,
                             struct iov_snapshot *new)
{
        pthread_mutex_lock(&d->rt->snapshot_lock);
        struct iov_snapshot *replaced = d->rt->snapshot;
        d->rt->snapshot = new;
        pthread_mutex_unlock(&d->rt->snapshot_lock);
        if (old)
                inventory_diff(d, old->pci, new->pci);
        daemon_snapshot_unref(replaced);
        log_debug("inventory generation %llu: %zu devices", (unsigned long long)new->generation,
                  new->pci->n_devices);
}

int daemon_rescan(struct iov_daemon *d)
{
        pthread_mutex_lock(&d->rt->rescan_lock);
        daemon_notify("STATUS=rescanning");
        _cleanup_snapshot_ struct iov_snapshot *old = daemon_snapshot_get(d);
        struct iov_snapshot *new = NULL;
        int r = snapshot_scan(d, old ? old->generation + 1 : 1, &new);
        if (r < 0) {
                pthread_mutex_unlock(&d->rt->rescan_lock);
                return log_warning_errno(r, "Inventory rescan failed: %m");
        }
        daemon_snapshot_replace(d, old, new);
        pthread_mutex_unlock(&d->rt->rescan_lock);
        daemon_status_stale(d);
        return 0;
}
