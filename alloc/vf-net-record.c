/* SPDX-License-Identifier: MIT */
/*
 * vf-net-record: the JSON forms of VF network settings in pools and allocations: a pool's
 * "net" template (strict, like the rest of a pool) and an allocation's record of what its
 * VF had before and after (alloc/vf-net.c applies and restores them). No I/O.
 */
#include <stdio.h>

#include "alloc/alloc-internal.h"

/* ---- the pool template ---------------------------------------------------------------- */

static int template_fail(struct iov_pool_parse_error *e, const char *field, const char *what)
{
        e->code = "invalid_value";
        snprintf(e->field, sizeof(e->field), "net.%s", field);
        snprintf(e->message, sizeof(e->message), "net.%s must be %s", field, what);
        return -EINVAL;
}

static int template_int(struct json_object *v, const char *key, int64_t max, int64_t *ret,
                        struct iov_pool_parse_error *e)
{
        char what[48];
        snprintf(what, sizeof(what), "an integer from 0 to %lld", (long long)max);
        if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 0 ||
            json_object_get_int64(v) > max)
                return template_fail(e, key, what);
        *ret = json_object_get_int64(v);
        return 0;
}

static int template_flag(struct json_object *v, const char *key, bool *set, bool *value,
                         struct iov_pool_parse_error *e)
{
        if (!json_object_is_type(v, json_type_boolean))
                return template_fail(e, key, "true or false");
        *set = true;
        *value = json_object_get_boolean(v);
        return 0;
}

/* The integer settings: 0 when key is one and was stored, 1 when key is none of them. */
static int template_int_field(const char *key, struct json_object *v,
                              struct iov_netdev_vf_change *c, struct iov_pool_parse_error *e)
{
        static const struct {
                const char *name;
                int64_t max;
        } ints[] = {{"vlan", 4094},
                    {"qos", 7},
                    {"min_tx_rate", UINT32_MAX},
                    {"max_tx_rate", UINT32_MAX}};
        for (size_t i = 0; i < ARRAY_SIZE(ints); i++) {
                int64_t n;
                if (!streq(key, ints[i].name))
                        continue;
                int r = template_int(v, key, ints[i].max, &n, e);
                if (r < 0)
                        return r;
                if (i < 2)
                        c->set_vlan = true;
                else
                        c->set_rate = true;
                if (i == 0)
                        c->vlan = (uint16_t)n;
                else if (i == 1)
                        c->qos = (uint8_t)n;
                else if (i == 2)
                        c->min_tx_rate = (uint32_t)n;
                else
                        c->max_tx_rate = (uint32_t)n;
                return 0;
        }
        return 1;
}

static int template_field(const char *key, struct json_object *v, struct iov_netdev_vf_change *c,
                          struct iov_pool_parse_error *e)
{
        int state;
        if (streq(key, "spoof_check"))
                return template_flag(v, key, &c->set_spoof_check, &c->spoof_check, e);
        if (streq(key, "trust"))
                return template_flag(v, key, &c->set_trust, &c->trust, e);
        if (streq(key, "link_state")) {
                if (!json_object_is_type(v, json_type_string) ||
                    netdev_link_state_parse(json_object_get_string(v), &state) < 0)
                        return template_fail(e, key, "auto, enable or disable");
                c->set_link_state = true;
                c->link_state = (uint32_t)state;
                return 0;
        }
        int r = template_int_field(key, v, c, e);
        if (r <= 0)
                return r;
        template_fail(e, key,
                      "absent: net takes vlan, qos, spoof_check, trust, link_state, "
                      "min_tx_rate, max_tx_rate");
        e->code = "unknown_field";
        return -EINVAL;
}

/* A template sets whole pairs: a QoS without a VLAN would tag frames with VLAN 0, one
 * rate without the other sets the other to 0. */
int pool_net_from_json(struct json_object *obj, struct iov_netdev_vf_change **ret,
                       struct iov_pool_parse_error *e)
{
        struct iov_netdev_vf_change c = {0};
        if (!json_object_is_type(obj, json_type_object) || json_object_object_length(obj) == 0)
                return template_fail(e, "", "an object with at least one setting");
        json_object_object_foreach (obj, key, v) {
                int r = template_field(key, v, &c, e);
                if (r < 0)
                        return r;
        }
        if (c.qos && !json_object_object_get_ex(obj, "vlan", NULL))
                return template_fail(e, "qos", "given with a vlan");
        if (netdev_vf_change_check(&c) < 0)
                return template_fail(e, "min_tx_rate", "at most max_tx_rate");
        *ret = malloc(sizeof(c));
        if (!*ret)
                return -ENOMEM;
        **ret = c;
        return 0;
}

struct json_object *pool_net_to_json(const struct iov_netdev_vf_change *c)
{
        struct json_object *o = json_object_new_object();
        if (c->set_vlan) {
                json_object_object_add(o, "vlan", json_object_new_int(c->vlan));
                json_object_object_add(o, "qos", json_object_new_int(c->qos));
        }
        if (c->set_spoof_check)
                json_object_object_add(o, "spoof_check", json_object_new_boolean(c->spoof_check));
        if (c->set_trust)
                json_object_object_add(o, "trust", json_object_new_boolean(c->trust));
        if (c->set_link_state)
                json_object_object_add(
                        o, "link_state",
                        json_object_new_string(netdev_link_state_name((int)c->link_state)));
        if (c->set_rate) {
                json_object_object_add(o, "min_tx_rate", json_object_new_int64(c->min_tx_rate));
                json_object_object_add(o, "max_tx_rate", json_object_new_int64(c->max_tx_rate));
        }
        return o;
}

/* ---- the record ----------------------------------------------------------------------- */

static struct json_object *tri_to_json(int v)
{
        return v < 0 ? NULL : json_object_new_boolean(v);
}

void alloc_vf_settings_add(struct json_object *o, const struct iov_netdev_vf *vf)
{
        char mac[18];
        const char *state = netdev_link_state_name(vf->link_state);
        json_object_object_add(o, "mac",
                               vf->has_mac ? json_object_new_string(netdev_mac_format(vf->mac, mac))
                                           : NULL);
        json_object_object_add(o, "vlan", vf->has_vlan ? json_object_new_int(vf->vlan) : NULL);
        json_object_object_add(o, "qos", vf->has_vlan ? json_object_new_int(vf->qos) : NULL);
        json_object_object_add(o, "spoof_check", tri_to_json(vf->spoof_check));
        json_object_object_add(o, "trust", tri_to_json(vf->trust));
        json_object_object_add(o, "link_state", state ? json_object_new_string(state) : NULL);
        json_object_object_add(o, "min_tx_rate",
                               vf->has_rate ? json_object_new_int64(vf->min_tx_rate) : NULL);
        json_object_object_add(o, "max_tx_rate",
                               vf->has_rate ? json_object_new_int64(vf->max_tx_rate) : NULL);
}

static struct json_object *settings_to_json(const struct iov_netdev_vf *vf)
{
        struct json_object *o = json_object_new_object();
        if (o)
                alloc_vf_settings_add(o, vf);
        return o;
}

static int tri_from_json(struct json_object *o, const char *key)
{
        struct json_object *v = json_object_object_get(o, key);
        return json_object_is_type(v, json_type_boolean) ? json_object_get_boolean(v) : -1;
}

static int settings_from_json(struct json_object *o, struct iov_netdev_vf *ret)
{
        struct iov_netdev_vf vf = {.spoof_check = tri_from_json(o, "spoof_check"),
                                   .trust = tri_from_json(o, "trust"),
                                   .link_state = -1};
        struct json_object *v;
        if (!json_object_is_type(o, json_type_object))
                return -EBADMSG;
        if ((v = json_object_object_get(o, "mac")))
                vf.has_mac = netdev_mac_parse(json_object_get_string(v), vf.mac) == 0;
        if ((v = json_object_object_get(o, "link_state")) &&
            netdev_link_state_parse(json_object_get_string(v), &vf.link_state) < 0)
                vf.link_state = -1;
        vf.has_vlan = json_object_is_type(json_object_object_get(o, "vlan"), json_type_int);
        vf.vlan = (uint16_t)json_object_get_int(json_object_object_get(o, "vlan"));
        vf.qos = (uint8_t)json_object_get_int(json_object_object_get(o, "qos"));
        vf.has_rate = json_object_is_type(json_object_object_get(o, "max_tx_rate"), json_type_int);
        vf.min_tx_rate = (uint32_t)json_object_get_int64(json_object_object_get(o, "min_tx_rate"));
        vf.max_tx_rate = (uint32_t)json_object_get_int64(json_object_object_get(o, "max_tx_rate"));
        *ret = vf;
        return 0;
}

struct json_object *allocation_net_to_json(const struct iov_allocation_net *n)
{
        char buf[IOV_PCI_ADDRESS_MAX];
        struct json_object *o = json_object_new_object();
        json_object_object_add(o, "vf", json_object_new_string(pci_address_format(&n->vf, buf)));
        json_object_object_add(o, "pf_interface", json_object_new_string(n->ifname));
        json_object_object_add(o, "vf_index", json_object_new_int64(n->vf_index));
        json_object_object_add(o, "original", settings_to_json(&n->original));
        json_object_object_add(o, "applied", n->applied ? settings_to_json(&n->now) : NULL);
        return o;
}

int allocation_net_from_json(struct json_object *o, struct iov_allocation_net **ret)
{
        struct json_object *vf = json_object_object_get(o, "vf");
        struct json_object *ifname = json_object_object_get(o, "pf_interface");
        struct json_object *index = json_object_object_get(o, "vf_index");
        struct json_object *applied = json_object_object_get(o, "applied");
        _cleanup_free_ struct iov_allocation_net *n = calloc(1, sizeof(*n));
        if (!n)
                return -ENOMEM;
        if (!json_object_is_type(vf, json_type_string) ||
            pci_address_parse(json_object_get_string(vf), &n->vf) < 0 ||
            !json_object_is_type(ifname, json_type_string) ||
            strlen(json_object_get_string(ifname)) >= IFNAMSIZ ||
            !json_object_is_type(index, json_type_int) ||
            settings_from_json(json_object_object_get(o, "original"), &n->original) < 0)
                return -EBADMSG;
        strcpy(n->ifname, json_object_get_string(ifname));
        n->vf_index = (uint32_t)json_object_get_int64(index);
        n->applied = applied && settings_from_json(applied, &n->now) == 0;
        *ret = TAKE_PTR(n);
        return 0;
}
