/* SPDX-License-Identifier: MIT */
/*
 * vf-net: the network settings of a VF of a network PF. PUT /v1/devices/{address}/net
 * changes any of MAC, VLAN and QoS, spoof check, trust, link state and min/max tx rate
 * through the PF's interface (netdev/); GET /v1/devices/{address} shows them as "net".
 * What is shown is always what the kernel reports after the change, never the request.
 * A refused request changes nothing: values are checked before anything is sent, and
 * what the driver refuses is undone by netdev_vf_set.
 */
#include <stdio.h>

#include "alloc/alloc.h"
#include "api/api.h"
#include "daemon/daemon.h"
#include "netdev/netdev.h"

/* The "net" object: where the settings live, the PF's link, the VF's settings; "error"
 * instead of the settings when the interface cannot be read. */
static struct json_object *net_json(const struct iov_netdev_vf_location *loc,
                                    const struct iov_netdev_link *link, int error)
{
        char buf[IOV_PCI_ADDRESS_MAX];
        struct json_object *o = json_object_new_object();
        json_object_object_add(o, "pf", json_object_new_string(pci_address_format(&loc->pf, buf)));
        json_object_object_add(o, "pf_interface", json_object_new_string(loc->ifname));
        json_object_object_add(o, "vf_index", json_object_new_int64(loc->index));
        const struct iov_netdev_vf *vf = link ? netdev_link_find_vf(link, loc->index) : NULL;
        if (link) {
                json_object_object_add(o, "pf_admin_up", json_object_new_boolean(link->admin_up));
                json_object_object_add(
                        o, "pf_link_state",
                        json_object_new_string(netdev_operstate_name(link->operstate)));
        }
        if (vf)
                alloc_vf_settings_add(o, vf);
        else
                json_object_object_add(
                        o, "error",
                        json_object_new_string(error == -ENODEV ? "the PF's interface is gone"
                                               : link           ? "the PF does not report this VF"
                                                                : strerror(-error)));
        return o;
}

struct json_object *api_vf_net_json(struct iov_daemon *d, const struct iov_pci_address *vf)
{
        struct iov_netdev_vf_location loc;
        _cleanup_(netdev_closep) struct iov_netdev *nd = NULL;
        struct iov_netdev_link link = {0};
        if (netdev_vf_locate(d->config.sysfs_root, vf, &loc) < 0)
                return NULL; /* not a VF of a network PF: "net" is null */
        int r = netdev_open(&nd);
        if (r >= 0)
                r = netdev_link_read(nd, loc.ifname, &link);
        struct json_object *o = net_json(&loc, r >= 0 ? &link : NULL, r);
        netdev_link_clear(&link);
        return o;
}

/* ---- PUT ------------------------------------------------------------------------------ */

static const struct iov_api_field net_fields[] = {
        {"mac", json_type_string, false, false},
        {"vlan", json_type_int, false, false},
        {"qos", json_type_int, false, false},
        {"spoof_check", json_type_boolean, false, false},
        {"trust", json_type_boolean, false, false},
        {"link_state", json_type_string, false, false},
        {"min_tx_rate", json_type_int, false, false},
        {"max_tx_rate", json_type_int, false, false},
};

/* An integer field in [0, max] into *ret; -1 when absent. */
static int body_int(const struct iov_api_request *req, struct iov_api_response *resp,
                    const char *name, int64_t max, int64_t *ret)
{
        struct json_object *v = json_object_object_get(req->body, name);
        int64_t n = v ? json_object_get_int64(v) : -1;
        if (v && (n < 0 || n > max))
                return api_error(resp, 400, "invalid_value", "%s must be an integer from 0 to %lld",
                                 name, (long long)max);
        *ret = n;
        return 0;
}

static int parse_mac(const struct iov_api_request *req, struct iov_api_response *resp,
                     struct iov_netdev_vf_change *c)
{
        struct json_object *v = json_object_object_get(req->body, "mac");
        if (!v)
                return 0;
        const char *s = json_object_get_string(v);
        if (netdev_mac_parse(s, c->mac) < 0 || !netdev_mac_assignable(c->mac))
                return api_error(resp, 400, "invalid_value",
                                 "mac must be a unicast, non-zero address like "
                                 "02:00:00:00:00:01, not \"%s\"",
                                 s);
        c->set_mac = true;
        return 0;
}

static int parse_flags(const struct iov_api_request *req, struct iov_api_response *resp,
                       struct iov_netdev_vf_change *c)
{
        struct json_object *v;
        if ((v = json_object_object_get(req->body, "spoof_check"))) {
                c->set_spoof_check = true;
                c->spoof_check = json_object_get_boolean(v);
        }
        if ((v = json_object_object_get(req->body, "trust"))) {
                c->set_trust = true;
                c->trust = json_object_get_boolean(v);
        }
        if ((v = json_object_object_get(req->body, "link_state"))) {
                int state;
                if (netdev_link_state_parse(json_object_get_string(v), &state) < 0)
                        return api_error(resp, 400, "invalid_value",
                                         "link_state must be auto, enable or disable");
                c->set_link_state = true;
                c->link_state = (uint32_t)state;
        }
        return 0;
}

/* What the request asks, in typed form. vlan/qos and min/max travel in pairs in the
 * kernel's structures: *ret_partial says which halves the current settings complete
 * (bit 0: vlan, 1: qos, 2: min, 3: max given). */
static int parse_change(const struct iov_api_request *req, struct iov_api_response *resp,
                        struct iov_netdev_vf_change *ret, unsigned *ret_given)
{
        struct iov_netdev_vf_change c = {0};
        int64_t vlan = -1, qos = -1, min = -1, max = -1;
        int r = body_int(req, resp, "vlan", 4094, &vlan);
        if (r >= 0)
                r = body_int(req, resp, "qos", 7, &qos);
        if (r >= 0)
                r = body_int(req, resp, "min_tx_rate", UINT32_MAX, &min);
        if (r >= 0)
                r = body_int(req, resp, "max_tx_rate", UINT32_MAX, &max);
        if (r >= 0)
                r = parse_mac(req, resp, &c);
        if (r >= 0)
                r = parse_flags(req, resp, &c);
        if (r < 0)
                return r;
        c.set_vlan = vlan >= 0 || qos >= 0;
        c.vlan = vlan >= 0 ? (uint16_t)vlan : 0;
        c.qos = qos >= 0 ? (uint8_t)qos : 0;
        c.set_rate = min >= 0 || max >= 0;
        c.min_tx_rate = min >= 0 ? (uint32_t)min : 0;
        c.max_tx_rate = max >= 0 ? (uint32_t)max : 0;
        *ret_given = (vlan >= 0) | (qos >= 0) << 1 | (min >= 0) << 2 | (max >= 0) << 3;
        *ret = c;
        return 0;
}

/* A half of a pair not given keeps its current value; a QoS without a VLAN needs one. */
static int complete_change(const struct iov_netdev_vf *now, unsigned given,
                           struct iov_netdev_vf_change *c, struct iov_api_response *resp)
{
        if (c->set_vlan && !(given & 1))
                c->vlan = now->vlan;
        if (c->set_vlan && !(given & 2))
                c->qos = 0; /* a new VLAN starts at priority 0 unless told */
        if (c->set_vlan && c->vlan == 0 && c->qos)
                return api_error(resp, 400, "invalid_value",
                                 "qos needs a vlan: priority tagging without a VLAN is not "
                                 "something a VF setting can carry");
        if (c->set_rate && !(given & 4))
                c->min_tx_rate = now->min_tx_rate;
        if (c->set_rate && !(given & 8))
                c->max_tx_rate = now->max_tx_rate;
        if (c->set_rate && c->max_tx_rate && c->min_tx_rate > c->max_tx_rate)
                return api_error(resp, 400, "invalid_value",
                                 "min_tx_rate %u is above max_tx_rate %u", c->min_tx_rate,
                                 c->max_tx_rate);
        return 0;
}

static int locate_error(struct iov_api_response *resp, int r, const struct iov_pci_address *vf)
{
        char buf[IOV_PCI_ADDRESS_MAX];
        pci_address_format(vf, buf);
        switch (r) {
        case -ENOENT:
                return api_error(resp, 404, "device_not_found", "no PCI function %s", buf);
        case -EINVAL:
                return api_error(resp, 400, "not_a_vf", "%s is not an SR-IOV virtual function",
                                 buf);
        case -ENOTSUP:
                return api_error(resp, 409, "not_a_network_function",
                                 "the PF of %s has no network interface: its VFs have no "
                                 "network settings",
                                 buf);
        default:
                return api_error(resp, 500, "device_unreadable", "cannot find the PF of %s: %s",
                                 buf, strerror(-r));
        }
}

static int netlink_error(struct iov_api_response *resp, int r,
                         const struct iov_netdev_vf_location *loc)
{
        if (r == -ENODEV)
                return api_error(resp, 409, "interface_not_found", "the PF's interface %s is gone",
                                 loc->ifname);
        if (r == -ENOENT)
                return api_error(resp, 409, "interface_not_found", "%s does not report VF %u",
                                 loc->ifname, loc->index);
        if (r == -EINVAL || r == -EOPNOTSUPP || r == -ERANGE || r == -EPERM || r == -EBUSY)
                return api_error(resp, 422, "setting_refused",
                                 "the driver of %s refused the change of VF %u (%s); nothing "
                                 "was changed",
                                 loc->ifname, loc->index, strerror(-r));
        return api_error(resp, 500, "netlink_failed", "talking to %s failed: %s", loc->ifname,
                         strerror(-r));
}

/* With the PF's lock held shared, so VFs are not destroyed (PUT .../sriov) in between. */
static int net_put_locked(struct iov_daemon *d, const struct iov_pci_address *address,
                          struct iov_netdev_vf_change *c, unsigned given,
                          struct iov_api_response *resp, struct json_object **ret)
{
        struct iov_netdev_vf_location loc;
        _cleanup_(netdev_closep) struct iov_netdev *nd = NULL;
        struct iov_netdev_link now = {0}, after = {0};
        int r = netdev_vf_locate(d->config.sysfs_root, address, &loc);
        if (r < 0)
                return locate_error(resp, r, address);
        r = netdev_open(&nd);
        if (r >= 0)
                r = netdev_link_read(nd, loc.ifname, &now);
        const struct iov_netdev_vf *vf = r >= 0 ? netdev_link_find_vf(&now, loc.index) : NULL;
        if (r >= 0 && !vf)
                r = -ENOENT;
        if (r >= 0)
                r = complete_change(vf, given, c, resp);
        if (r >= 0)
                r = netdev_vf_set(nd, loc.ifname, loc.index, c, &after);
        netdev_link_clear(&now);
        if (r == -EBADMSG)
                return r; /* complete_change answered */
        if (r < 0)
                return netlink_error(resp, r, &loc);
        *ret = net_json(&loc, &after, 0);
        netdev_link_clear(&after);
        return 0;
}

static int net_put(struct iov_daemon *d, const struct iov_api_request *req,
                   struct iov_api_response *resp)
{
        struct iov_pci_address address;
        struct iov_netdev_vf_change c;
        unsigned given = 0;
        /* No query parameters: the route declares none, the server refuses any. */
        int r = api_body_check(req, resp, net_fields, ARRAY_SIZE(net_fields));
        if (r >= 0)
                r = api_param_address(req, resp, "address", &address);
        if (r >= 0)
                r = parse_change(req, resp, &c, &given);
        if (r < 0)
                return r;
        if (json_object_object_length(req->body) == 0)
                return api_error(resp, 400, "missing_field",
                                 "give at least one of mac, vlan, qos, spoof_check, trust, "
                                 "link_state, min_tx_rate, max_tx_rate");
        struct json_object *o = NULL;
        struct iov_hwlock *lock = NULL;
        r = alloc_lock_pf_of(d, &address, true, &lock); /* -ENOENT: located (and refused) below */
        if (r < 0 && r != -ENOENT)
                return r;
        r = net_put_locked(d, &address, &c, given, resp, &o);
        alloc_unlock(d, lock);
        if (r < 0)
                return r;
        daemon_event_publish(d, "vf_net_changed", json_object_get(o));
        return api_reply_json(resp, 200, o);
}

API_ROUTE(vf_net_put, "PUT", "/v1/devices/{address}/net", net_put)
