/* SPDX-License-Identifier: MIT */
/*
 * message: RTM_GETLINK and RTM_SETLINK for VF settings, built and parsed with libmnl and
 * no I/O. Layouts from include/uapi/linux/if_link.h: IFLA_VFINFO_LIST holds one nested
 * IFLA_VF_INFO per VF, each holding fixed structures (struct ifla_vf_mac, ifla_vf_vlan,
 * ifla_vf_spoofchk, ...) whose first member is the VF index.
 */
#include <libmnl/libmnl.h>
#include <net/if.h> /* before linux/if.h, which then leaves out what glibc has */
#include <linux/if.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include "netdev/netdev.h"
#include "util/util.h"

/* The kernel reports a setting its driver does not fill in as (u32)-1
 * (rtnl_fill_vfinfo initialises spoofchk, trusted and rss_query_en to -1). */
static int tri_state(uint32_t setting)
{
        return setting == UINT32_MAX ? -1 : setting != 0;
}

size_t netdev_message_getlink(void *buf, size_t size, const char *ifname, uint32_t seq)
{
        struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
        nlh->nlmsg_type = RTM_GETLINK;
        nlh->nlmsg_flags = NLM_F_REQUEST;
        nlh->nlmsg_seq = seq;
        struct ifinfomsg *ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
        ifi->ifi_family = AF_UNSPEC;
        /* RTEXT_FILTER_VF asks for IFLA_VFINFO_LIST; VF statistics are not wanted and
         * would cost about 100 bytes per VF. */
        if (!mnl_attr_put_strz_check(nlh, size, IFLA_IFNAME, ifname) ||
            !mnl_attr_put_u32_check(nlh, size, IFLA_EXT_MASK,
                                    RTEXT_FILTER_VF | RTEXT_FILTER_SKIP_STATS))
                return 0;
        return nlh->nlmsg_len;
}

static bool put_vf_attrs(struct nlmsghdr *nlh, size_t size, uint32_t vf,
                         const struct iov_netdev_vf_change *c)
{
        bool ok = true;
        if (c->set_mac) {
                struct ifla_vf_mac m = {.vf = vf};
                memcpy(m.mac, c->mac, IOV_NETDEV_MAC_LEN);
                ok = ok && mnl_attr_put_check(nlh, size, IFLA_VF_MAC, sizeof(m), &m);
        }
        if (c->set_vlan) {
                struct ifla_vf_vlan v = {.vf = vf, .vlan = c->vlan, .qos = c->qos};
                ok = ok && mnl_attr_put_check(nlh, size, IFLA_VF_VLAN, sizeof(v), &v);
        }
        if (c->set_rate) {
                struct ifla_vf_rate r = {vf, c->min_tx_rate, c->max_tx_rate};
                ok = ok && mnl_attr_put_check(nlh, size, IFLA_VF_RATE, sizeof(r), &r);
        }
        if (c->set_spoof_check) {
                struct ifla_vf_spoofchk s = {.vf = vf, .setting = c->spoof_check};
                ok = ok && mnl_attr_put_check(nlh, size, IFLA_VF_SPOOFCHK, sizeof(s), &s);
        }
        if (c->set_link_state) {
                struct ifla_vf_link_state l = {.vf = vf, .link_state = c->link_state};
                ok = ok && mnl_attr_put_check(nlh, size, IFLA_VF_LINK_STATE, sizeof(l), &l);
        }
        if (c->set_trust) {
                struct ifla_vf_trust t = {.vf = vf, .setting = c->trust};
                ok = ok && mnl_attr_put_check(nlh, size, IFLA_VF_TRUST, sizeof(t), &t);
        }
        return ok;
}

size_t netdev_message_setvf(void *buf, size_t size, int ifindex, uint32_t vf,
                            const struct iov_netdev_vf_change *change, uint32_t seq)
{
        struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
        nlh->nlmsg_type = RTM_SETLINK;
        nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
        nlh->nlmsg_seq = seq;
        struct ifinfomsg *ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
        ifi->ifi_family = AF_UNSPEC;
        ifi->ifi_index = ifindex;
        struct nlattr *list = mnl_attr_nest_start_check(nlh, size, IFLA_VFINFO_LIST);
        struct nlattr *info = list ? mnl_attr_nest_start_check(nlh, size, IFLA_VF_INFO) : NULL;
        if (!info || !put_vf_attrs(nlh, size, vf, change))
                return 0;
        mnl_attr_nest_end(nlh, info);
        mnl_attr_nest_end(nlh, list);
        return nlh->nlmsg_len;
}

/* A fixed structure attribute: at least as long as the structure (newer kernels may
 * append members, never shrink them). */
static const void *vf_struct(const struct nlattr *a, size_t len)
{
        return mnl_attr_get_payload_len(a) >= len ? mnl_attr_get_payload(a) : NULL;
}

static void parse_vf_vlan_rate(const struct nlattr *a, struct iov_netdev_vf *vf)
{
        const struct ifla_vf_vlan *v;
        const struct ifla_vf_rate *r;
        if (mnl_attr_get_type(a) == IFLA_VF_VLAN && (v = vf_struct(a, sizeof(*v)))) {
                vf->has_vlan = true;
                vf->vlan = (uint16_t)v->vlan;
                vf->qos = (uint8_t)v->qos;
        } else if (mnl_attr_get_type(a) == IFLA_VF_RATE && (r = vf_struct(a, sizeof(*r)))) {
                vf->has_rate = true;
                vf->min_tx_rate = r->min_tx_rate;
                vf->max_tx_rate = r->max_tx_rate;
        }
}

static int parse_vf_attr(const struct nlattr *a, void *data)
{
        struct iov_netdev_vf *vf = data;
        const struct ifla_vf_mac *m;
        const struct ifla_vf_spoofchk *s;
        const struct ifla_vf_trust *t;
        const struct ifla_vf_link_state *l;
        switch (mnl_attr_get_type(a)) {
        case IFLA_VF_MAC:
                if (!(m = vf_struct(a, sizeof(*m))))
                        return MNL_CB_ERROR;
                vf->index = m->vf;
                vf->has_mac = true;
                memcpy(vf->mac, m->mac, IOV_NETDEV_MAC_LEN);
                break;
        case IFLA_VF_SPOOFCHK:
                if ((s = vf_struct(a, sizeof(*s))))
                        vf->spoof_check = tri_state(s->setting);
                break;
        case IFLA_VF_TRUST:
                if ((t = vf_struct(a, sizeof(*t))))
                        vf->trust = tri_state(t->setting);
                break;
        case IFLA_VF_LINK_STATE:
                if ((l = vf_struct(a, sizeof(*l))) && l->link_state <= IOV_NETDEV_LINK_DISABLE)
                        vf->link_state = (int)l->link_state;
                break;
        default:
                parse_vf_vlan_rate(a, vf);
        }
        return MNL_CB_OK;
}

/* Every IFLA_VF_INFO carries IFLA_VF_MAC (rtnl_fill_vfinfo puts it first): it names
 * the VF. One without it is malformed. */
static int parse_vf_list(const struct nlattr *list, struct iov_netdev_link *link)
{
        const struct nlattr *info;
        mnl_attr_for_each_nested(info, list)
        {
                if (mnl_attr_get_type(info) != IFLA_VF_INFO)
                        continue;
                struct iov_netdev_vf vf = {.spoof_check = -1, .trust = -1, .link_state = -1};
                if (mnl_attr_parse_nested(info, parse_vf_attr, &vf) < 0 || !vf.has_mac)
                        return -EBADMSG;
                struct iov_netdev_vf *vfs = realloc(link->vfs, (link->n_vfs + 1) * sizeof(vf));
                if (!vfs)
                        return -ENOMEM;
                link->vfs = vfs;
                link->vfs[link->n_vfs++] = vf;
        }
        return 0;
}

static int parse_link_attr(const struct nlattr *a, void *data)
{
        struct iov_netdev_link *link = data;
        switch (mnl_attr_get_type(a)) {
        case IFLA_IFNAME:
                if (mnl_attr_validate(a, MNL_TYPE_NUL_STRING) < 0 ||
                    strlen(mnl_attr_get_str(a)) >= IFNAMSIZ)
                        return MNL_CB_ERROR;
                strcpy(link->ifname, mnl_attr_get_str(a));
                break;
        case IFLA_ADDRESS:
                if (mnl_attr_get_payload_len(a) == IOV_NETDEV_MAC_LEN) {
                        link->has_address = true;
                        memcpy(link->address, mnl_attr_get_payload(a), IOV_NETDEV_MAC_LEN);
                }
                break;
        case IFLA_OPERSTATE:
                if (mnl_attr_validate(a, MNL_TYPE_U8) < 0)
                        return MNL_CB_ERROR;
                link->operstate = mnl_attr_get_u8(a);
                break;
        case IFLA_NUM_VF:
                if (mnl_attr_validate(a, MNL_TYPE_U32) < 0)
                        return MNL_CB_ERROR;
                link->num_vfs = mnl_attr_get_u32(a);
                break;
        case IFLA_VFINFO_LIST:
                if (parse_vf_list(a, link) < 0)
                        return MNL_CB_ERROR;
                break;
        }
        return MNL_CB_OK;
}

int netdev_message_parse_link(const void *msg, size_t len, struct iov_netdev_link *ret)
{
        const struct nlmsghdr *nlh = msg;
        if (!mnl_nlmsg_ok(nlh, (int)len) || nlh->nlmsg_type != RTM_NEWLINK ||
            mnl_nlmsg_get_payload_len(nlh) < sizeof(struct ifinfomsg))
                return -EBADMSG;
        const struct ifinfomsg *ifi = mnl_nlmsg_get_payload(nlh);
        struct iov_netdev_link link = {
                .ifindex = ifi->ifi_index,
                .admin_up = ifi->ifi_flags & IFF_UP,
                .lower_up = ifi->ifi_flags & IFF_LOWER_UP,
        };
        if (mnl_attr_parse(nlh, sizeof(*ifi), parse_link_attr, &link) < 0 || !link.ifname[0]) {
                netdev_link_clear(&link);
                return -EBADMSG;
        }
        *ret = link;
        return 0;
}
