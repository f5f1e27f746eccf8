/* SPDX-License-Identifier: MIT */
/*
 * settings: the values of VF settings, their names and their limits, shared by the
 * messages, the API and the CLI.
 */
#include <net/if.h> /* before linux/if.h, which then leaves out what glibc has */
#include <linux/if.h>
#include <stdio.h>

#include "netdev/netdev.h"
#include "util/util.h"

void netdev_link_clear(struct iov_netdev_link *link)
{
        if (!link)
                return;
        free(link->vfs);
        link->vfs = NULL;
        link->n_vfs = 0;
}

const struct iov_netdev_vf *netdev_link_find_vf(const struct iov_netdev_link *link, uint32_t index)
{
        for (size_t i = 0; i < link->n_vfs; i++)
                if (link->vfs[i].index == index)
                        return &link->vfs[i];
        return NULL;
}

/* RFC 2863 ifOperStatus, in the order of enum IF_OPER_* (Documentation/networking/
 * operstates.rst). */
const char *netdev_operstate_name(uint8_t operstate)
{
        static const char *const names[] = {
                [IF_OPER_UNKNOWN] = "unknown", [IF_OPER_NOTPRESENT] = "notpresent",
                [IF_OPER_DOWN] = "down",       [IF_OPER_LOWERLAYERDOWN] = "lowerlayerdown",
                [IF_OPER_TESTING] = "testing", [IF_OPER_DORMANT] = "dormant",
                [IF_OPER_UP] = "up",
        };
        return operstate < ARRAY_SIZE(names) ? names[operstate] : "unknown";
}

static const char *const link_state_names[] = {
        [IOV_NETDEV_LINK_AUTO] = "auto",
        [IOV_NETDEV_LINK_ENABLE] = "enable",
        [IOV_NETDEV_LINK_DISABLE] = "disable",
};

const char *netdev_link_state_name(int link_state)
{
        if (link_state < 0 || (size_t)link_state >= ARRAY_SIZE(link_state_names))
                return NULL;
        return link_state_names[link_state];
}

int netdev_link_state_parse(const char *s, int *ret)
{
        for (size_t i = 0; i < ARRAY_SIZE(link_state_names); i++)
                if (streq(s, link_state_names[i])) {
                        *ret = (int)i;
                        return 0;
                }
        return -EINVAL;
}

int netdev_mac_parse(const char *s, uint8_t ret[IOV_NETDEV_MAC_LEN])
{
        uint8_t mac[IOV_NETDEV_MAC_LEN];
        if (strlen(s) != 17)
                return -EINVAL;
        for (size_t i = 0; i < IOV_NETDEV_MAC_LEN; i++) {
                const char *p = s + i * 3;
                int hi = util_hex_digit(p[0]), lo = util_hex_digit(p[1]);
                if (hi < 0 || lo < 0 || (i < IOV_NETDEV_MAC_LEN - 1 && p[2] != ':'))
                        return -EINVAL;
                mac[i] = (uint8_t)(hi << 4 | lo);
        }
        memcpy(ret, mac, sizeof(mac));
        return 0;
}

char *netdev_mac_format(const uint8_t mac[IOV_NETDEV_MAC_LEN], char buf[static 18])
{
        snprintf(buf, 18, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4],
                 mac[5]);
        return buf;
}

/* IEEE 802-2014 §8.2: bit 0 of the first octet is the I/G (group) bit. */
bool netdev_mac_assignable(const uint8_t mac[IOV_NETDEV_MAC_LEN])
{
        static const uint8_t zero[IOV_NETDEV_MAC_LEN];
        return !(mac[0] & 1) && memcmp(mac, zero, sizeof(zero)) != 0;
}

void netdev_mac_derive(const void *seed, size_t size, uint32_t attempt,
                       uint8_t ret[IOV_NETDEV_MAC_LEN])
{
        uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a 64 offset basis and prime */
        const uint8_t *p = seed;
        for (size_t i = 0; i < size + sizeof(attempt); i++) {
                h ^= i < size ? p[i] : (uint8_t)(attempt >> (8 * (i - size)));
                h *= 0x100000001b3ull;
        }
        for (size_t i = 0; i < IOV_NETDEV_MAC_LEN; i++)
                ret[i] = (uint8_t)(h >> (8 * i));
        /* IEEE 802-2014 §8.2: U/L bit set (locally administered), I/G bit clear. */
        ret[0] = (uint8_t)((ret[0] & 0xfc) | 0x02);
}

/* VLAN IDs 0..4094 (IEEE 802.1Q-2018 §9.6: 4095 is reserved), PCP 0..7. */
int netdev_vf_change_check(const struct iov_netdev_vf_change *c)
{
        if (c->set_mac && (c->mac[0] & 1))
                return -EINVAL;
        if (c->set_vlan && (c->vlan > 4094 || c->qos > 7))
                return -EINVAL;
        if (c->set_link_state && c->link_state > IOV_NETDEV_LINK_DISABLE)
                return -EINVAL;
        /* A floor above the ceiling can never hold (0 means no ceiling). */
        if (c->set_rate && c->max_tx_rate && c->min_tx_rate > c->max_tx_rate)
                return -EINVAL;
        return 0;
}

static bool vlan_moved(const struct iov_netdev_vf *a, const struct iov_netdev_vf *b)
{
        return a->has_vlan && (a->vlan != b->vlan || a->qos != b->qos);
}

static bool rate_moved(const struct iov_netdev_vf *a, const struct iov_netdev_vf *b)
{
        return a->has_rate &&
               (a->min_tx_rate != b->min_tx_rate || a->max_tx_rate != b->max_tx_rate);
}

/* Only what moved goes back: putting an unchanged setting "back" can itself be refused
 * (igb refuses any rate while its link is down). */
void netdev_vf_change_undo(const struct iov_netdev_vf *before, const struct iov_netdev_vf *now,
                           const struct iov_netdev_vf_change *change,
                           struct iov_netdev_vf_change *ret)
{
        struct iov_netdev_vf_change u = {0};
        u.set_mac = change->set_mac && before->has_mac &&
                    memcmp(before->mac, now->mac, IOV_NETDEV_MAC_LEN) != 0;
        memcpy(u.mac, before->mac, IOV_NETDEV_MAC_LEN);
        u.set_vlan = change->set_vlan && vlan_moved(before, now);
        u.vlan = before->vlan;
        u.qos = before->qos;
        u.set_rate = change->set_rate && rate_moved(before, now);
        u.min_tx_rate = before->min_tx_rate;
        u.max_tx_rate = before->max_tx_rate;
        u.set_spoof_check = change->set_spoof_check && before->spoof_check >= 0 &&
                            before->spoof_check != now->spoof_check;
        u.spoof_check = before->spoof_check == 1;
        u.set_trust = change->set_trust && before->trust >= 0 && before->trust != now->trust;
        u.trust = before->trust == 1;
        u.set_link_state = change->set_link_state && before->link_state >= 0 &&
                           before->link_state != now->link_state;
        u.link_state = before->link_state >= 0 ? (uint32_t)before->link_state : 0;
        *ret = u;
}
