/* SPDX-License-Identifier: MIT */
/*
 * Handing out an IOMMU group. Each request holds its own hardware's locks (the group's
 * across the bind, the PF's until the claim; alloc/hwlock.c) and claims a pending
 * record before it touches anything, so two requests can never both take a group and a
 * slow bind delays only requests for the same group. The order of each step is chosen so that a
 * crash anywhere leaves a record that start-up reconciliation can finish (see alloc.h).
 */
#include <stdio.h>

#include "alloc/alloc-internal.h"
#include "daemon/daemon.h"

/* No IOMMU or no interrupt remapping: refuse unless the operator said otherwise;
 * ret_unsafe (may be NULL): allowed only by that switch. */
static int check_host(struct iov_daemon *d, bool *ret_unsafe, struct iov_problem *p)
{
        struct iov_iommu_status st;
        int r = iommu_status_probe(d->config.sysfs_root, &st);
        if (r < 0)
                return daemon_problem_set(p, 500, "iommu_status_failed",
                                          "cannot read the IOMMU status: %s", strerror(-r));
        bool unsafe = d->config.allow_unsafe_interrupts;
        if (!st.enabled && !unsafe)
                return daemon_problem_set(
                        p, 409, "iommu_unavailable",
                        "no IOMMU is enabled on this host: passthrough would let the "
                        "device DMA anywhere (start iovd with "
                        "--allow-unsafe-interrupts to override)");
        if (st.interrupt_remapping != IOV_YES && !unsafe)
                return daemon_problem_set(
                        p, 409, "interrupt_remapping_unavailable",
                        "interrupt remapping is %s: a passed-through device could "
                        "inject arbitrary interrupts (start iovd with "
                        "--allow-unsafe-interrupts to override)",
                        st.interrupt_remapping == IOV_NO ? "off" : "unknown");
        if (!st.enabled || st.interrupt_remapping != IOV_YES)
                log_warning("allocating without %s because --allow-unsafe-interrupts is set",
                            st.enabled ? "interrupt remapping" : "an IOMMU");
        if (!st.vfio_pci_loaded)
                return daemon_problem_set(p, 409, "vfio_pci_unavailable",
                                          "the vfio-pci driver is not loaded (modprobe vfio-pci)");
        if (ret_unsafe)
                *ret_unsafe = !st.enabled || st.interrupt_remapping != IOV_YES;
        return 0;
}

int allocations_check_host(struct iov_daemon *d, bool *ret_unsafe, struct iov_problem *p)
{
        return check_host(d, ret_unsafe, p);
}

static int check_member_free(struct iov_registry *reg, const struct iov_pci_address *address,
                             struct iov_problem *p)
{
        char buf[IOV_PCI_ADDRESS_MAX];
        int r = 0;
        pci_address_format(address, buf);
        pthread_rwlock_rdlock(&reg->lock);
        struct iov_allocation *a = registry_find_by_device(reg, address);
        struct iov_quarantine_entry *q = a ? NULL : registry_find_quarantined(reg, address);
        if (a)
                r = daemon_problem_set(p, 409, "device_allocated",
                                       "%s is held by allocation %s (%s)", buf, a->id,
                                       allocation_state_to_string(a->state));
        else if (q)
                r = daemon_problem_set(p, 409, "device_quarantined", "%s is quarantined: %s", buf,
                                       q->reason);
        pthread_rwlock_unlock(&reg->lock);
        return r;
}

static struct json_object *blockers_to_json(const struct iov_group_blocker *b, size_t n)
{
        char buf[IOV_PCI_ADDRESS_MAX];
        struct json_object *arr = json_object_new_array();
        for (size_t i = 0; arr && i < n; i++) {
                struct json_object *o = json_object_new_object();
                json_object_object_add(
                        o, "address",
                        json_object_new_string(pci_address_format(&b[i].address, buf)));
                json_object_object_add(o, "driver",
                                       b[i].driver ? json_object_new_string(b[i].driver) : NULL);
                json_object_array_add(arr, o);
        }
        return arr;
}

/* The group as read under its locks: each member read once (struct member_reads), so
 * the target's checks, the group's viability and the intent record come from the same
 * reads. Every pci_device_read is a round of sysfs opens; reading each member three
 * times was a tenth of an allocation's cost in the lab (bench/vf-net). */
struct member_reads {
        struct iov_iommu_group group;
        struct iov_pci_device *devices; /* devices[i] of group.devices[i]; name "" if gone */
};

static void member_reads_clear(struct member_reads *m)
{
        for (size_t i = 0; m->devices && i < m->group.n_devices; i++)
                pci_device_clear(&m->devices[i]);
        free(m->devices);
        m->devices = NULL;
        iommu_group_clear(&m->group);
}

/* The members that keep the group from vfio-pci (iommu_member_blocks); one that left
 * the group meanwhile does not. */
static size_t find_blockers(const struct member_reads *m, struct iov_group_blocker *ret)
{
        size_t n = 0;
        for (size_t i = 0; i < m->group.n_devices; i++) {
                const struct iov_pci_device *dev = &m->devices[i];
                if (!dev->name[0] || !iommu_member_blocks(dev->class_code, dev->driver))
                        continue;
                ret[n].address = dev->address;
                ret[n++].driver = dev->driver ? strdup(dev->driver) : NULL;
        }
        return n;
}

static int check_viable(const struct member_reads *m, struct iov_problem *p)
{
        struct iov_group_blocker *blockers = calloc(m->group.n_devices + 1, sizeof(*blockers));
        if (!blockers)
                return -ENOMEM;
        size_t n = find_blockers(m, blockers);
        if (n == 0) {
                free(blockers);
                return 0;
        }
        char list[160] = "", buf[IOV_PCI_ADDRESS_MAX];
        for (size_t i = 0; i < n; i++) {
                size_t used = strlen(list);
                snprintf(list + used, sizeof(list) - used, "%s%s (%s)", i ? ", " : "",
                         pci_address_format(&blockers[i].address, buf),
                         blockers[i].driver ? blockers[i].driver : "no driver");
        }
        p->details = json_object_new_object();
        if (p->details)
                json_object_object_add(p->details, "blockers", blockers_to_json(blockers, n));
        iommu_group_blockers_free(blockers, n);
        return daemon_problem_set(p, 409, "group_not_viable",
                                  "IOMMU group %u has members bound to host drivers: %s",
                                  m->group.id, list);
}

/* The platform's own plumbing (host, ISA and PCI-to-PCI bridges, interrupt controllers, the
 * IOMMU: PCI Code and ID Assignment r1.11 §1.7, §1.9) is never the device handed out:
 * vfio-pci would take it, and the host would lose what sits behind it. */
static int check_target_class(const struct iov_pci_address *address, uint32_t class_code,
                              struct iov_problem *p)
{
        char buf[IOV_PCI_ADDRESS_MAX];
        const char *what = pci_class_infrastructure_name(class_code);
        if (!what)
                return 0;
        return daemon_problem_set(p, 409, "device_not_assignable",
                                  "%s is a %s (class %06x), part of the host platform; it is "
                                  "never handed out",
                                  pci_address_format(address, buf), what, class_code);
}

static int read_target(struct iov_daemon *d, const struct iov_pci_address *address,
                       struct iov_pci_device *ret, struct iov_problem *p)
{
        char buf[IOV_PCI_ADDRESS_MAX];
        int r = pci_device_read(d->config.sysfs_root, address, ret);
        if (r == -ENOENT)
                return daemon_problem_set(p, 404, "device_not_found", "no PCI function %s",
                                          pci_address_format(address, buf));
        if (r < 0)
                return daemon_problem_set(p, 500, "device_unreadable", "cannot read %s: %s",
                                          pci_address_format(address, buf), strerror(-r));
        return 0;
}

/* The device as read may be handed out and has a group. */
static int check_target(const struct iov_pci_device *dev, struct iov_problem *p)
{
        char buf[IOV_PCI_ADDRESS_MAX];
        if (check_target_class(&dev->address, dev->class_code, p) < 0)
                return -EBADMSG;
        /* Whoever holds a PF can disable SR-IOV and pull every VF from under its users
         * (PCIe r5 §9.3.3.3.1, VF Enable): a PF is handed out only without VFs. */
        if (dev->is_pf && dev->num_vfs > 0)
                return daemon_problem_set(p, 409, "pf_has_vfs",
                                          "%s has %u VFs enabled; set num_vfs to 0 before handing "
                                          "the PF out",
                                          pci_address_format(&dev->address, buf), dev->num_vfs);
        if (dev->iommu_group < 0)
                return daemon_problem_set(p, 409, "no_iommu_group",
                                          "%s is in no IOMMU group; VFIO cannot hand it out",
                                          pci_address_format(&dev->address, buf));
        return 0;
}

/* The device exists, may be handed out, has a group, and no member of that group is held
 * or quarantined; ret_dev: the device as read. */
static int check_device(struct iov_daemon *d, struct iov_registry *reg,
                        const struct iov_pci_address *address, struct iov_pci_device *ret_dev,
                        struct iov_iommu_group *ret_group, struct iov_problem *p)
{
        struct iov_pci_device dev = {0};
        int r = read_target(d, address, &dev, p);
        if (r == 0)
                r = check_target(&dev, p);
        if (r == 0) {
                r = iommu_group_read(d->config.sysfs_root, (unsigned)dev.iommu_group, ret_group);
                if (r < 0)
                        daemon_problem_set(p, 500, "iommu_group_unreadable",
                                           "cannot read IOMMU group %d: %s", dev.iommu_group,
                                           strerror(-r));
        }
        for (size_t i = 0; r == 0 && i < ret_group->n_devices; i++)
                r = check_member_free(reg, &ret_group->devices[i], p);
        if (r < 0) {
                if (dev.iommu_group >= 0)
                        iommu_group_clear(ret_group);
                pci_device_clear(&dev);
                return r;
        }
        *ret_dev = dev;
        return 0;
}

/* Every member of the group read once, the target's own read (target) moved in. A member
 * that vanished meanwhile stays unread (name ""): the intent cannot be built for it. */
static int read_members(struct iov_daemon *d, struct iov_pci_device *target, struct member_reads *m)
{
        m->devices = calloc(m->group.n_devices + 1, sizeof(*m->devices));
        if (!m->devices)
                return -ENOMEM;
        for (size_t i = 0; i < m->group.n_devices; i++) {
                if (pci_address_equal(&m->group.devices[i], &target->address)) {
                        m->devices[i] = *target;
                        *target = (struct iov_pci_device){0};
                        continue;
                }
                int r = pci_device_read(d->config.sysfs_root, &m->group.devices[i], &m->devices[i]);
                if (r < 0 && r != -ENOENT)
                        return r;
        }
        return 0;
}

/* What each member is bound to now, saved before binding so a crash can be undone. */
static int build_intent(const struct member_reads *m, struct iov_allocation *a)
{
        a->members = calloc(m->group.n_devices, sizeof(*a->members));
        if (!a->members)
                return -ENOMEM;
        for (size_t i = 0; i < m->group.n_devices; i++) {
                struct iov_bind_record *rec = &a->members[a->n_members];
                const struct iov_pci_device *dev = &m->devices[i];
                if (!dev->name[0])
                        return -ENOENT;
                rec->address = m->group.devices[i];
                rec->is_bridge = pci_class_is_pci_bridge(dev->class_code);
                rec->original_driver = dev->driver ? strdup(dev->driver) : NULL;
                rec->original_override = dev->driver_override ? strdup(dev->driver_override) : NULL;
                a->n_members++;
                if ((dev->driver && !rec->original_driver) ||
                    (dev->driver_override && !rec->original_override))
                        return -ENOMEM;
        }
        a->iommu_group = m->group.id;
        return 0;
}

static int bind_problem(int r, unsigned group, struct iov_problem *p)
{
        if (r == -ENOENT || r == -ENODEV)
                return daemon_problem_set(p, 409, "device_vanished",
                                          "a member of IOMMU group %u vanished while it was being "
                                          "bound to vfio-pci; the others were given back",
                                          group);
        return daemon_problem_set(
                p, 500, "bind_failed",
                "binding IOMMU group %u to vfio-pci failed (%s); every member was "
                "given back to its driver",
                group, strerror(-r));
}

/* Forget a pending allocation whose hardware is as it was (VF settings put back). */
static int drop_pending(struct iov_daemon *d, struct iov_registry *reg, struct iov_allocation *a)
{
        allocation_net_restore(a);
        (void)registry_drop_allocation(reg, d->state, a); /* a stale intent is harmless */
        return -EBADMSG;
}

/* pending (saved, with the VF's network settings as they were) -> VF settings applied
 * -> bind -> active (saved). On failure the settings go back and the record goes away. */
static int bind_and_commit(struct iov_daemon *d, struct iov_registry *reg, struct iov_allocation *a,
                           struct iov_problem *p)
{
        int r = registry_save_allocation(reg, d->state, a);
        if (r < 0) {
                (void)registry_drop_allocation(reg, d->state, a);
                return daemon_problem_set(p, 500, "state_write_failed", "cannot save state: %s",
                                          strerror(-r));
        }
        daemon_test_crash_point("allocation-pending-saved");
        /* Before vfio-pci takes the VF; a refusal has changed nothing. */
        uint64_t start = util_now_usec();
        if (a->net && allocation_net_apply(d, a, p) < 0)
                return drop_pending(d, reg, a);
        if (a->net) {
                registry_time_step(reg, IOV_STEP_NET_APPLY, start);
                daemon_test_crash_point("allocation-net-applied");
        }
        struct iov_bind_record *records = NULL;
        size_t n = 0;
        start = util_now_usec();
        r = iommu_group_bind_vfio(d->config.sysfs_root, a->iommu_group, IOV_BIND_TIMEOUT_MS,
                                  &records, &n);
        registry_time_step(reg, IOV_STEP_BIND, start);
        if (r < 0) {
                bind_problem(r, a->iommu_group, p);
                allocation_net_restore(a);
                (void)registry_drop_allocation(reg, d->state, a); /* a stale intent is harmless */
                return -EBADMSG;
        }
        daemon_test_crash_point("allocation-bound");
        r = registry_set_bound(reg, a, records, n);
        if (r == 0)
                r = registry_save_allocation(reg, d->state, a);
        if (r < 0) {
                (void)iommu_group_restore(d->config.sysfs_root, a->members, a->n_members,
                                          IOV_BIND_TIMEOUT_MS);
                daemon_problem_set(p, 500, "state_write_failed",
                                   "cannot save the allocation (%s); the group was given back",
                                   strerror(-r));
                return drop_pending(d, reg, a);
        }
        return 0;
}

static int claim_problem(const char *why, unsigned group, struct iov_problem *p)
{
        if (streq(why, "mac_in_use"))
                return daemon_problem_set(p, 409, "mac_in_use",
                                          "the MAC asked for is set, or about to be set, on the VF "
                                          "of another allocation");
        if (streq(why, "device_quarantined"))
                return daemon_problem_set(p, 409, "device_quarantined",
                                          "a member of IOMMU group %u was quarantined meanwhile",
                                          group);
        if (streq(why, "too_many_allocations"))
                return daemon_problem_set(p, 409, "too_many_allocations",
                                          "iovd holds at most %d allocations", IOV_ALLOCATIONS_MAX);
        return daemon_problem_set(p, 409, "device_allocated",
                                  "a member of IOMMU group %u was taken by another request "
                                  "meanwhile",
                                  group);
}

/* The pending record: what each member has now (to undo a crash), the VF settings to
 * apply, claimed so no other request can take a member. Changes no hardware. */
static int prepare_claim(struct iov_daemon *d, struct iov_registry *reg,
                         const struct member_reads *group, const struct iov_pci_address *device,
                         const struct iov_allocation_request *req, struct iov_allocation **ret,
                         struct iov_problem *p)
{
        const char *owner = req->owner, *pool = req->pool;
        struct iov_pool *from = pool ? registry_find_pool(reg, pool) : NULL; /* state_lock */
        _cleanup_(allocation_freep) struct iov_allocation *a = calloc(1, sizeof(*a));
        if (!a)
                return -ENOMEM;
        a->owner = strdup(owner);
        a->pool = pool ? strdup(pool) : NULL;
        a->vm = req->vm ? strdup(req->vm) : NULL;
        a->device = *device;
        a->created_usec = util_realtime_usec();
        a->state = IOV_ALLOCATION_PENDING;
        if (!a->owner || (pool && !a->pool) || (req->vm && !a->vm))
                return -ENOMEM;
        int r = allocation_new_id(a->id);
        if (r < 0)
                return r;
        r = build_intent(group, a);
        if (r < 0)
                return daemon_problem_set(p, r == -ENOENT ? 409 : 500,
                                          r == -ENOENT ? "device_vanished" : "device_unreadable",
                                          "cannot read a member of IOMMU group %u: %s",
                                          group->group.id, strerror(-r));
        uint64_t start = util_now_usec();
        r = allocation_net_prepare(d, reg, a, from ? from->net : NULL, req->mac, p);
        if (a->net)
                registry_time_step(reg, IOV_STEP_NET_READ, start);
        if (r < 0)
                return r;
        struct iov_allocation *claimed = TAKE_PTR(a);
        const char *why = NULL;
        r = registry_claim_allocation(reg, claimed, &why);
        if (r == -EBUSY)
                return claim_problem(why, group->group.id, p);
        if (r < 0)
                return r;
        *ret = claimed;
        return 0;
}

bool allocations_snapshot_viable(const struct iov_snapshot *snap, int group)
{
        const struct iov_iommu_group *g =
                group >= 0 ? daemon_snapshot_find_group(snap, (unsigned)group) : NULL;
        return g && iommu_group_viable_in(g, snap->pci);
}

/* The hardware locks an allocation holds: its PF's, shared, until the claim (a VF change
 * of that PF waits meanwhile, then sees the pending record and refuses), and its
 * group's, exclusive, until the bind is committed or undone. */
struct hold {
        struct iov_hwlock *pf;
        struct iov_hwlock *group;
        int group_id;
        char pf_key[IOV_HWLOCK_KEY_MAX];
};

static void hold_release(struct iov_daemon *d, struct hold *h)
{
        hwlock_release(&d->alloc->hwlocks, TAKE_PTR(h->group));
        hwlock_release(&d->alloc->hwlocks, TAKE_PTR(h->pf));
}

/* The PF lock's name for a device: its PF's, or its own when it is not a VF. */
static void pf_key_of(const struct iov_pci_device *dev, char ret[static IOV_HWLOCK_KEY_MAX])
{
        hwlock_key_pf(dev->is_vf ? &dev->physfn : &dev->address, ret);
}

/* Take the locks of dev as last seen (a snapshot's or a read's), a PF before a group
 * (alloc/hwlock.c); try: only if free (the caller holds the pool table's lock and must
 * not wait). check_locked reads the device again under them. */
static int hold_take(struct iov_daemon *d, const struct iov_pci_device *dev, bool try,
                     struct hold *h)
{
        struct iov_hwlocks *t = &d->alloc->hwlocks;
        char key[IOV_HWLOCK_KEY_MAX];
        pf_key_of(dev, h->pf_key);
        h->group_id = dev->iommu_group;
        int r = try ? hwlock_try(t, h->pf_key, true, &h->pf)
                    : hwlock_take(t, h->pf_key, true, &h->pf);
        if (r == 0 && h->group_id >= 0) {
                hwlock_key_group((unsigned)h->group_id, key);
                r = try ? hwlock_try(t, key, false, &h->group)
                        : hwlock_take(t, key, false, &h->group);
        }
        if (r < 0)
                hold_release(d, h);
        return r;
}

/* Under the locks: the device as it is now may be handed out, in the group locked, under
 * the PF locked; each member read once into ret. */
static int check_locked(struct iov_daemon *d, struct iov_registry *reg,
                        const struct iov_pci_address *address, const struct hold *h,
                        struct member_reads *ret, struct iov_problem *p)
{
        struct iov_pci_device dev = {0};
        char key[IOV_HWLOCK_KEY_MAX];
        int r = check_device(d, reg, address, &dev, &ret->group, p);
        if (r < 0)
                return r;
        pf_key_of(&dev, key);
        if ((int)ret->group.id != h->group_id || !streq(key, h->pf_key))
                r = daemon_problem_set(p, 409, "device_vanished",
                                       "the device was replaced while the request waited");
        if (r == 0)
                r = read_members(d, &dev, ret);
        if (r == 0)
                r = check_viable(ret, p);
        pci_device_clear(&dev);
        if (r < 0)
                member_reads_clear(ret);
        return r;
}

/* By address: refuse at once what is refused anyway, else wait for the device's
 * hardware (a bind of another group never delays this one) and decide again. */
static int pick_device(struct iov_daemon *d, struct iov_registry *reg,
                       const struct iov_pci_address *address, struct member_reads *ret,
                       struct hold *h, struct iov_problem *p)
{
        struct iov_pci_device dev = {0};
        struct iov_iommu_group group = {0};
        int r = check_device(d, reg, address, &dev, &group, p);
        if (r < 0)
                return r;
        iommu_group_clear(&group);
        r = hold_take(d, &dev, false, h);
        pci_device_clear(&dev);
        if (r < 0)
                return r;
        return check_locked(d, reg, address, h, ret, p);
}

static bool held_or_quarantined(struct iov_registry *reg, const struct iov_pci_address *address)
{
        pthread_rwlock_rdlock(&reg->lock);
        bool yes = registry_find_by_device(reg, address) || registry_find_quarantined(reg, address);
        pthread_rwlock_unlock(&reg->lock);
        return yes;
}

/* The first matching device, in address order, whose whole group can be handed out and
 * whose hardware no other request is working on. The caller holds d->state_lock. */
static int pick_from_pool(struct iov_daemon *d, struct iov_registry *reg, const char *name,
                          struct member_reads *ret_group, struct iov_pci_address *ret_device,
                          struct hold *h, struct iov_problem *p)
{
        struct iov_pool *pool = registry_find_pool(reg, name);
        if (!pool)
                return daemon_problem_set(p, 404, "pool_not_found", "no pool named %s", name);
        _cleanup_snapshot_ struct iov_snapshot *snap = daemon_snapshot_get(d);
        size_t matching = 0;
        for (size_t i = 0; snap && i < snap->pci->n_devices; i++) {
                const struct iov_pci_device *dev = &snap->pci->devices[i];
                if (dev->iommu_group < 0 ||
                    !pool_selector_match(&pool->selector, dev, dev->driver) ||
                    held_or_quarantined(reg, &dev->address))
                        continue;
                matching++;
                if (!allocations_snapshot_viable(snap, dev->iommu_group))
                        continue; /* a host driver holds a member: skip without sysfs reads */
                if (hold_take(d, dev, true, h) < 0)
                        continue; /* busy: a bind, reset or VF change is under way there */
                struct iov_problem ignored = {0};
                if (check_locked(d, reg, &dev->address, h, ret_group, &ignored) == 0) {
                        *ret_device = dev->address;
                        return 0;
                }
                daemon_problem_clear(&ignored);
                hold_release(d, h);
        }
        return daemon_problem_set(p, 409, "pool_exhausted",
                                  "pool %s has no free device whose IOMMU group can be handed out "
                                  "(%zu unallocated matching devices)",
                                  name, matching);
}

/* The device as a member of the pool named: the pool exists and its selector takes the
 * device as it is now (the same test pick_from_pool makes). The caller holds
 * d->state_lock. */
static int check_pool_member(struct iov_daemon *d, struct iov_registry *reg, const char *name,
                             const struct iov_pci_address *address, struct iov_problem *p)
{
        char buf[IOV_PCI_ADDRESS_MAX];
        struct iov_pool *pool = registry_find_pool(reg, name);
        if (!pool)
                return daemon_problem_set(p, 404, "pool_not_found", "no pool named %s", name);
        struct iov_pci_device dev = {0};
        int r = pci_device_read(d->config.sysfs_root, address, &dev);
        if (r == -ENOENT)
                return daemon_problem_set(p, 404, "device_not_found", "no PCI function %s",
                                          pci_address_format(address, buf));
        if (r < 0)
                return daemon_problem_set(p, 500, "device_unreadable", "cannot read %s: %s",
                                          pci_address_format(address, buf), strerror(-r));
        bool member = pool_selector_match(&pool->selector, &dev, dev.driver);
        pci_device_clear(&dev);
        if (member)
                return 0;
        return daemon_problem_set(p, 409, "device_not_in_pool",
                                  "%s does not match the selector of pool %s",
                                  pci_address_format(address, buf), name);
}

/* A named device counted in a pool: the pool's refusals first, then the device's checks
 * and locks as by address. The locks are waited for without the pool table's lock (whoever
 * holds it only tries them, alloc/hwlock.c), so the pool is looked at again under it
 * before the claim: it may have gone meanwhile. */
static int pick_pool_member(struct iov_daemon *d, struct iov_registry *reg,
                            const struct iov_allocation_request *req, struct member_reads *group,
                            struct hold *h, struct iov_allocation **ret, struct iov_problem *p)
{
        pthread_mutex_lock(&d->state_lock);
        int r = check_pool_member(d, reg, req->pool, &req->device, p);
        pthread_mutex_unlock(&d->state_lock);
        if (r == 0)
                r = pick_device(d, reg, &req->device, group, h, p);
        if (r < 0)
                return r;
        pthread_mutex_lock(&d->state_lock);
        r = check_pool_member(d, reg, req->pool, &req->device, p);
        if (r == 0)
                r = prepare_claim(d, reg, group, &req->device, req, ret, p);
        pthread_mutex_unlock(&d->state_lock);
        return r;
}

/* Decide and claim: from a pool under the pool table's lock (so the pool and its
 * template stay while the claim is made), by address without it. */
static int decide(struct iov_daemon *d, struct iov_registry *reg,
                  const struct iov_allocation_request *req, struct member_reads *group,
                  struct hold *h, struct iov_allocation **ret, struct iov_problem *p)
{
        int r;
        struct iov_pci_address device = req->device; /* or the one picked from the pool */
        if (req->pool && req->pool_device)
                return pick_pool_member(d, reg, req, group, h, ret, p);
        if (req->pool) {
                pthread_mutex_lock(&d->state_lock);
                r = pick_from_pool(d, reg, req->pool, group, &device, h, p);
                if (r == 0)
                        r = prepare_claim(d, reg, group, &device, req, ret, p);
                pthread_mutex_unlock(&d->state_lock);
        } else {
                r = pick_device(d, reg, &req->device, group, h, p);
                if (r == 0)
                        r = prepare_claim(d, reg, group, &device, req, ret, p);
        }
        return r;
}

int allocations_create(struct iov_daemon *d, const struct iov_allocation_request *req,
                       struct json_object **ret, struct iov_problem *p)
{
        struct iov_registry *reg = registry_get(d);
        struct member_reads group = {0};
        struct iov_allocation *a = NULL;
        struct hold h = {.group_id = -1};

        uint64_t start = util_now_usec();
        int r = check_host(d, NULL, p);
        if (r == 0)
                r = decide(d, reg, req, &group, &h, &a, p);
        registry_time_step(reg, IOV_STEP_DECIDE, start);
        hwlock_release(&d->alloc->hwlocks, TAKE_PTR(h.pf)); /* claimed, or refused */
        if (r == 0)
                r = bind_and_commit(d, reg, a, p);
        struct json_object *json = NULL;
        if (r == 0) {
                json = allocation_to_api_json(a, d->config.dev_root);
                daemon_event_publish(d, "allocation_created",
                                     allocation_to_api_json(a, d->config.dev_root));
                if (a->vm) /* as when a VM adopts an allocation (vm-owner.c) */
                        daemon_event_publish(d, "allocation_attached",
                                             allocation_to_api_json(a, d->config.dev_root));
                log_info("allocation %s: IOMMU group %u to %s%s%s", a->id, a->iommu_group, a->owner,
                         a->vm ? ", VM " : "", a->vm ? a->vm : "");
        }
        hold_release(d, &h);
        start = util_now_usec();
        if (r == 0) { /* drivers changed; the inventory shows it at once */
                (void)daemon_refresh_devices(d, group.group.devices, group.group.n_devices);
                registry_time_step(reg, IOV_STEP_REFRESH, start);
        }
        member_reads_clear(&group);
        if (r < 0)
                return r;
        if (!json)
                return -ENOMEM;
        *ret = json;
        return 0;
}
