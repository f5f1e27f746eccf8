/* SPDX-License-Identifier: MIT */
/*
 * vf-net: network settings applied when a VF is allocated. A pool may carry a template
 * (VLAN, QoS, spoof check, trust, link state, rates) and a request may add a MAC, or ask
 * for "auto": a locally administered one derived from the PF's own MAC, the VF's index
 * and the owner, so the same owner gets the same MAC on the same VF across restarts, and
 * bumped past any MAC another allocation or VF of that PF has.
 *
 * Order (allocate.c): what the VF has is read and recorded in the pending allocation,
 * which is saved; only then is the change applied, and only then is the group bound to
 * vfio-pci. Every way back (bind failure, failed save, release, a pending or releasing
 * record found at start) puts the recorded settings back. The PF's driver keeps them,
 * so they can be applied and restored whatever driver the VF has.
 */
#include <stdio.h>

#include "alloc/alloc-internal.h"

/* ---- prepare, apply, restore ---------------------------------------------------------- */

/* The member that is a VF of a network PF (a VF is normally alone in its group). */
static int find_network_vf(struct iov_daemon *d, const struct iov_allocation *a,
                           struct iov_netdev_vf_location *ret_loc, struct iov_pci_address *ret_vf)
{
        int r = -ENOTSUP;
        for (size_t i = 0; i < a->n_members && r < 0; i++) {
                r = netdev_vf_locate(d->config.sysfs_root, &a->members[i].address, ret_loc);
                if (r == 0)
                        *ret_vf = a->members[i].address;
                else if (r == -EINVAL)
                        r = -ENOTSUP; /* not a VF: look on */
        }
        return r;
}

/* Whether another allocation set mac, or another VF of the PF (not vf_index) has it. The
 * claim (registry_claim_allocation) checks allocations again, atomically. */
static bool mac_taken(struct iov_registry *reg, const struct iov_netdev_link *link,
                      uint32_t vf_index, const uint8_t mac[IOV_NETDEV_MAC_LEN])
{
        bool taken = false;
        pthread_rwlock_rdlock(&reg->lock);
        for (size_t i = 0; !taken && i < reg->n_allocations; i++) {
                const struct iov_allocation_net *n = reg->allocations[i]->net;
                taken = n && n->applied && memcmp(n->now.mac, mac, IOV_NETDEV_MAC_LEN) == 0;
        }
        pthread_rwlock_unlock(&reg->lock);
        for (size_t i = 0; !taken && i < link->n_vfs; i++)
                taken = link->vfs[i].index != vf_index &&
                        memcmp(link->vfs[i].mac, mac, IOV_NETDEV_MAC_LEN) == 0;
        return taken;
}

/* Seeded by the PF's own MAC (unique to the card), the VF's index and the owner. */
static void derive_mac(struct iov_registry *reg, const struct iov_netdev_link *link,
                       uint32_t vf_index, const char *owner, uint8_t ret[IOV_NETDEV_MAC_LEN])
{
        uint8_t seed[IOV_NETDEV_MAC_LEN + sizeof(uint32_t) + IOV_ALLOCATION_OWNER_MAX] = {0};
        size_t owner_len = strnlen(owner, IOV_ALLOCATION_OWNER_MAX);
        memcpy(seed, link->address, IOV_NETDEV_MAC_LEN);
        memcpy(seed + IOV_NETDEV_MAC_LEN, &vf_index, sizeof(vf_index));
        memcpy(seed + IOV_NETDEV_MAC_LEN + sizeof(vf_index), owner, owner_len);
        size_t size = IOV_NETDEV_MAC_LEN + sizeof(vf_index) + owner_len;
        for (uint32_t attempt = 0;; attempt++) {
                netdev_mac_derive(seed, size, attempt, ret);
                if (!mac_taken(reg, link, vf_index, ret))
                        return;
        }
}

static int net_problem(int r, const char *ifname, struct iov_problem *p)
{
        if (r == -ENODEV || r == -ENOENT)
                return daemon_problem_set(p, 409, "interface_not_found",
                                          "the PF's interface %s is gone or does not report the VF",
                                          ifname);
        if (r == -EINVAL || r == -EOPNOTSUPP || r == -ERANGE || r == -EPERM || r == -EBUSY)
                return daemon_problem_set(
                        p, 422, "setting_refused",
                        "the driver of %s refused the VF settings (%s); nothing was "
                        "allocated",
                        ifname, strerror(-r));
        return daemon_problem_set(p, 500, "netlink_failed", "talking to %s failed: %s", ifname,
                                  strerror(-r));
}

/* Record in a what the VF has now and what is to change; nothing is changed yet. */
static int net_record(struct iov_registry *reg, struct iov_allocation *a,
                      const struct iov_netdev_link *link, const struct iov_netdev_vf *vf,
                      const struct iov_netdev_vf_change *change, const char *mac)
{
        struct iov_allocation_net *n = a->net;
        n->original = *vf;
        n->change = change ? *change : (struct iov_netdev_vf_change){0};
        if (mac && streq(mac, "auto"))
                derive_mac(reg, link, n->vf_index, a->owner, n->change.mac);
        else if (mac && (netdev_mac_parse(mac, n->change.mac) < 0 ||
                         !netdev_mac_assignable(n->change.mac)))
                return -EINVAL;
        else if (mac && mac_taken(reg, link, n->vf_index, n->change.mac))
                return -EADDRINUSE; /* two VFs with one MAC: frames reach one at random */
        n->change.set_mac = mac != NULL;
        return 0;
}

int allocation_net_prepare(struct iov_daemon *d, struct iov_registry *reg, struct iov_allocation *a,
                           const struct iov_netdev_vf_change *change, const char *mac,
                           struct iov_problem *p)
{
        struct iov_netdev_vf_location loc;
        _cleanup_(netdev_closep) struct iov_netdev *nd = NULL;
        struct iov_netdev_link link = {0};
        if (!change && !mac)
                return 0;
        a->net = calloc(1, sizeof(*a->net));
        if (!a->net)
                return -ENOMEM;
        int r = find_network_vf(d, a, &loc, &a->net->vf);
        if (r == -ENOTSUP)
                return daemon_problem_set(
                        p, 409, "not_a_network_function",
                        "network settings were asked for, but IOMMU group %u holds "
                        "no VF of a network PF",
                        a->iommu_group);
        if (r < 0)
                return daemon_problem_set(p, 500, "device_unreadable",
                                          "cannot find the VF's PF: %s", strerror(-r));
        memcpy(a->net->ifname, loc.ifname, IFNAMSIZ);
        a->net->vf_index = loc.index;
        r = netdev_open(&nd);
        if (r >= 0)
                r = netdev_link_read(nd, loc.ifname, &link);
        const struct iov_netdev_vf *vf = r >= 0 ? netdev_link_find_vf(&link, loc.index) : NULL;
        if (r >= 0)
                r = vf ? net_record(reg, a, &link, vf, change, mac) : -ENOENT;
        netdev_link_clear(&link);
        if (r == -EINVAL)
                return daemon_problem_set(p, 400, "invalid_value",
                                          "mac must be \"auto\" or a unicast, "
                                          "non-zero address");
        if (r == -EADDRINUSE)
                return daemon_problem_set(p, 409, "mac_in_use",
                                          "%s is already the MAC of another VF of %s or of "
                                          "another allocation",
                                          mac, loc.ifname);
        return r < 0 ? net_problem(r, loc.ifname, p) : 0;
}

int allocation_net_apply(struct iov_daemon *d, struct iov_allocation *a, struct iov_problem *p)
{
        struct iov_allocation_net *n = a->net;
        _cleanup_(netdev_closep) struct iov_netdev *nd = NULL;
        struct iov_netdev_link after = {0};
        int r = netdev_open(&nd);
        if (r >= 0)
                r = netdev_vf_set(nd, n->ifname, n->vf_index, &n->change, &after);
        const struct iov_netdev_vf *vf = r >= 0 ? netdev_link_find_vf(&after, n->vf_index) : NULL;
        if (vf) {
                pthread_rwlock_wrlock(&registry_get(d)->lock);
                n->now = *vf;
                n->applied = true;
                pthread_rwlock_unlock(&registry_get(d)->lock);
        }
        netdev_link_clear(&after);
        if (r >= 0 && !vf)
                r = -ENOENT;
        return r < 0 ? net_problem(r, n->ifname, p) : 0;
}

/* Setting i (0 MAC, 1 VLAN, 2 rate, 3 spoof check, 4 trust, 5 link state) of u alone;
 * false when u does not set it. */
static bool setting_alone(const struct iov_netdev_vf_change *u, unsigned i,
                          struct iov_netdev_vf_change *ret)
{
        struct iov_netdev_vf_change one = *u;
        one.set_mac = i == 0 && u->set_mac;
        one.set_vlan = i == 1 && u->set_vlan;
        one.set_rate = i == 2 && u->set_rate;
        one.set_spoof_check = i == 3 && u->set_spoof_check;
        one.set_trust = i == 4 && u->set_trust;
        one.set_link_state = i == 5 && u->set_link_state;
        *ret = one;
        return one.set_mac || one.set_vlan || one.set_rate || one.set_spoof_check ||
               one.set_trust || one.set_link_state;
}

/* All at once (three netlink round trips); when the driver refuses that, one setting at a
 * time, so one it refuses (igb refuses any rate while its link is down) does not keep
 * the others from going back. */
static void restore_settings(struct iov_netdev *nd, const struct iov_allocation *a,
                             const struct iov_netdev_vf_change *undo)
{
        const struct iov_allocation_net *n = a->net;
        struct iov_netdev_vf_change one;
        struct iov_netdev_link all = {0};
        if (!undo->set_mac && !undo->set_vlan && !undo->set_rate && !undo->set_spoof_check &&
            !undo->set_trust && !undo->set_link_state)
                return; /* as it was: an empty VF_INFO would be refused (do_setvfinfo) */
        int r = netdev_vf_set(nd, n->ifname, n->vf_index, undo, &all);
        netdev_link_clear(&all);
        if (r >= 0)
                return;
        for (unsigned i = 0; i < 6; i++) {
                struct iov_netdev_link after = {0};
                if (!setting_alone(undo, i, &one))
                        continue;
                r = netdev_vf_set(nd, n->ifname, n->vf_index, &one, &after);
                netdev_link_clear(&after);
                if (r < 0)
                        log_warning_errno(r,
                                          "allocation %s: VF %u of %s: setting %u could not "
                                          "be put back: %m",
                                          a->id, n->vf_index, n->ifname, i);
        }
}

void allocation_net_restore(struct iov_allocation *a)
{
        static const struct iov_netdev_vf_change all = {.set_mac = true,
                                                        .set_vlan = true,
                                                        .set_rate = true,
                                                        .set_spoof_check = true,
                                                        .set_trust = true,
                                                        .set_link_state = true};
        struct iov_allocation_net *n = a->net;
        _cleanup_(netdev_closep) struct iov_netdev *nd = NULL;
        struct iov_netdev_link now = {0};
        struct iov_netdev_vf_change undo;
        if (!n)
                return;
        int r = netdev_open(&nd);
        if (r >= 0)
                r = netdev_link_read(nd, n->ifname, &now);
        const struct iov_netdev_vf *vf = r >= 0 ? netdev_link_find_vf(&now, n->vf_index) : NULL;
        if (vf) {
                /* Only what differs from the record goes back (netdev_vf_change_undo). */
                netdev_vf_change_undo(&n->original, vf, &all, &undo);
                restore_settings(nd, a, &undo);
        } else
                log_warning_errno(r,
                                  "allocation %s: cannot put back the settings of VF %u of "
                                  "%s: it is gone",
                                  a->id, n->vf_index, n->ifname);
        netdev_link_clear(&now);
}
