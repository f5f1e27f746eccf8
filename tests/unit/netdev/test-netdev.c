/* SPDX-License-Identifier: MIT */
/* netdev: messages built and parsed against canned kernel answers, set-and-read-back
 * against a fake kernel on a socketpair, VF location against a generated sysfs tree. */
#include <criterion/criterion.h>
#include <libmnl/libmnl.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "netdev/netdev.h"
#include "tests/fixtures/fixture.h"
#include "tests/unit/netdev/canned-newlink.h"
#include "util/util.h"

static const uint8_t mac_a[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
static const uint8_t mac_b[6] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x07};

Test(netdev, parses_canned_newlink)
{
        struct iov_netdev_link link;
        cr_assert_eq(netdev_message_parse_link(canned_newlink, sizeof(canned_newlink), &link), 0);
        cr_expect_str_eq(link.ifname, "enp1s0");
        cr_expect_eq(link.ifindex, 4, "ifindex %d", link.ifindex);
        cr_expect(link.admin_up && link.lower_up, "flags up %d lower_up %d", link.admin_up,
                  link.lower_up);
        cr_expect_str_eq(netdev_operstate_name(link.operstate), "up");
        cr_expect_eq(link.num_vfs, 2, "num_vfs %u", link.num_vfs);
        cr_assert_eq(link.n_vfs, 2, "n_vfs %zu", link.n_vfs);

        const struct iov_netdev_vf *v0 = netdev_link_find_vf(&link, 0);
        cr_assert(v0 && v0->has_mac && memcmp(v0->mac, mac_a, 6) == 0, "vf 0 mac");
        cr_expect(v0->has_vlan && v0->vlan == 42 && v0->qos == 3, "vf 0 vlan %u qos %u", v0->vlan,
                  v0->qos);
        cr_expect_eq(v0->spoof_check, 1, "vf 0 spoof_check %d", v0->spoof_check);
        cr_expect_eq(v0->trust, 0, "vf 0 trust %d", v0->trust);
        cr_expect_eq(v0->link_state, IOV_NETDEV_LINK_AUTO, "vf 0 link_state %d", v0->link_state);

        const struct iov_netdev_vf *v1 = netdev_link_find_vf(&link, 1);
        cr_assert(v1, "vf 1 missing");
        cr_expect_eq(v1->spoof_check, -1, "vf 1 spoof_check %d (not reported)", v1->spoof_check);
        cr_expect_eq(v1->trust, 1, "vf 1 trust %d", v1->trust);
        cr_expect_str_eq(netdev_link_state_name(v1->link_state), "disable");
        cr_expect(v1->has_rate && v1->min_tx_rate == 10 && v1->max_tx_rate == 100,
                  "vf 1 rate %u..%u", v1->min_tx_rate, v1->max_tx_rate);
        cr_expect_null(netdev_link_find_vf(&link, 2));
        netdev_link_clear(&link);
}

Test(netdev, refuses_malformed_messages)
{
        struct iov_netdev_link link;
        _Alignas(4) uint8_t copy[sizeof(canned_newlink)];
        memcpy(copy, canned_newlink, sizeof(copy));

        cr_expect_eq(netdev_message_parse_link(copy, sizeof(copy) - 8, &link), -EBADMSG,
                     "a truncated message");
        ((struct nlmsghdr *)copy)->nlmsg_type = RTM_DELLINK;
        cr_expect_eq(netdev_message_parse_link(copy, sizeof(copy), &link), -EBADMSG,
                     "not an RTM_NEWLINK");
        memcpy(copy, canned_newlink, sizeof(copy));
        /* The first VF's IFLA_VF_MAC sits 4 bytes into its IFLA_VF_INFO, 4 into the list,
         * after the header (16), ifinfomsg (16), IFNAME (12), OPERSTATE (8), NUM_VF (8). */
        struct nlattr *mac = (struct nlattr *)(copy + 16 + 16 + 12 + 8 + 8 + 4 + 4);
        cr_assert_eq(mac->nla_type, IFLA_VF_MAC, "layout: found attribute %u", mac->nla_type);
        mac->nla_type = 0x7ff; /* an attribute type no kernel sends */
        cr_expect_eq(netdev_message_parse_link(copy, sizeof(copy), &link), -EBADMSG,
                     "a VF without IFLA_VF_MAC");
}

Test(netdev, getlink_asks_for_vfs_without_stats)
{
        _Alignas(struct nlmsghdr) char buf[512];
        size_t len = netdev_message_getlink(buf, sizeof(buf), "enp1s0", 9);
        const struct nlmsghdr *nlh = (const void *)buf;
        cr_assert(len > 0 && len == nlh->nlmsg_len, "length %zu", len);
        cr_expect_eq(nlh->nlmsg_type, RTM_GETLINK);
        cr_expect_eq(nlh->nlmsg_flags, NLM_F_REQUEST, "flags %#x", nlh->nlmsg_flags);
        cr_expect_eq(nlh->nlmsg_seq, 9);
        const struct nlattr *a;
        bool name = false, mask = false;
        mnl_attr_for_each(a, nlh, sizeof(struct ifinfomsg))
        {
                if (mnl_attr_get_type(a) == IFLA_IFNAME)
                        name = streq(mnl_attr_get_str(a), "enp1s0");
                if (mnl_attr_get_type(a) == IFLA_EXT_MASK)
                        mask = mnl_attr_get_u32(a) == (RTEXT_FILTER_VF | RTEXT_FILTER_SKIP_STATS);
        }
        cr_expect(name && mask, "IFLA_IFNAME ok %d, IFLA_EXT_MASK ok %d", name, mask);
        cr_expect_eq(netdev_message_getlink(buf, 20, "enp1s0", 1), 0, "too small a buffer");
}

/* The IFLA_VF_INFO of an RTM_SETLINK, flattened: which attributes, with what. */
struct sent_vf {
        unsigned seen; /* bit per IFLA_VF_* type */
        uint32_t vf_of[IFLA_VF_MAX + 1];
        struct ifla_vf_mac mac;
        struct ifla_vf_vlan vlan;
        struct ifla_vf_rate rate;
        uint32_t spoof, trust, link;
};

static int sent_attr(const struct nlattr *a, void *data)
{
        struct sent_vf *s = data;
        unsigned t = mnl_attr_get_type(a);
        const uint32_t *p = mnl_attr_get_payload(a);
        s->seen |= 1u << t;
        s->vf_of[t] = p[0];
        if (t == IFLA_VF_MAC)
                memcpy(&s->mac, p, sizeof(s->mac));
        else if (t == IFLA_VF_VLAN)
                memcpy(&s->vlan, p, sizeof(s->vlan));
        else if (t == IFLA_VF_RATE)
                memcpy(&s->rate, p, sizeof(s->rate));
        else if (t == IFLA_VF_SPOOFCHK)
                s->spoof = p[1];
        else if (t == IFLA_VF_TRUST)
                s->trust = p[1];
        else if (t == IFLA_VF_LINK_STATE)
                s->link = p[1];
        return MNL_CB_OK;
}

/* 0 and s filled when nlh is an RTM_SETLINK with one VF list holding one VF_INFO. */
static int parse_setlink(const struct nlmsghdr *nlh, int *ret_ifindex, struct sent_vf *s)
{
        if (nlh->nlmsg_type != RTM_SETLINK)
                return -EBADMSG;
        const struct ifinfomsg *ifi = mnl_nlmsg_get_payload(nlh);
        const struct nlattr *list, *info;
        int n = 0;
        memset(s, 0, sizeof(*s));
        *ret_ifindex = ifi->ifi_index;
        mnl_attr_for_each(list, nlh, sizeof(*ifi))
        {
                if (mnl_attr_get_type(list) != IFLA_VFINFO_LIST)
                        return -EBADMSG;
                mnl_attr_for_each_nested(info, list)
                {
                        if (mnl_attr_get_type(info) != IFLA_VF_INFO || n++)
                                return -EBADMSG;
                        mnl_attr_parse_nested(info, sent_attr, s);
                }
        }
        return n == 1 ? 0 : -EBADMSG;
}

Test(netdev, setvf_carries_only_what_changes)
{
        _Alignas(struct nlmsghdr) char buf[1024];
        struct iov_netdev_vf_change c = {.set_mac = true,
                                         .set_vlan = true,
                                         .vlan = 100,
                                         .qos = 5,
                                         .set_trust = true,
                                         .trust = true};
        memcpy(c.mac, mac_b, 6);
        size_t len = netdev_message_setvf(buf, sizeof(buf), 4, 3, &c, 11);
        const struct nlmsghdr *nlh = (const void *)buf;
        cr_assert(len > 0 && len == nlh->nlmsg_len, "length %zu", len);
        cr_expect_eq(nlh->nlmsg_flags, NLM_F_REQUEST | NLM_F_ACK, "flags %#x", nlh->nlmsg_flags);
        struct sent_vf s;
        int ifindex;
        cr_assert_eq(parse_setlink(nlh, &ifindex, &s), 0, "not one VF_INFO in one VFINFO_LIST");
        cr_expect_eq(ifindex, 4);
        unsigned want = 1u << IFLA_VF_MAC | 1u << IFLA_VF_VLAN | 1u << IFLA_VF_TRUST;
        cr_expect_eq(s.seen, want, "attributes %#x, expected %#x", s.seen, want);
        cr_expect(s.vf_of[IFLA_VF_MAC] == 3 && s.vf_of[IFLA_VF_VLAN] == 3 &&
                          s.vf_of[IFLA_VF_TRUST] == 3,
                  "every structure names VF 3");
        cr_expect_eq(memcmp(s.mac.mac, mac_b, 6), 0, "mac");
        cr_expect(s.vlan.vlan == 100 && s.vlan.qos == 5, "vlan %u qos %u", s.vlan.vlan, s.vlan.qos);
        cr_expect_eq(s.trust, 1);
}

Test(netdev, change_check_refuses_what_the_kernel_cannot_carry)
{
        struct iov_netdev_vf_change ok = {.set_vlan = true, .vlan = 4094, .qos = 7};
        cr_expect_eq(netdev_vf_change_check(&ok), 0, "vlan 4094 qos 7");
        struct iov_netdev_vf_change bad[] = {
                {.set_vlan = true, .vlan = 4095},
                {.set_vlan = true, .vlan = 1, .qos = 8},
                {.set_mac = true, .mac = {0x01, 0, 0x5e, 0, 0, 1}},
                {.set_link_state = true, .link_state = 3},
                {.set_rate = true, .min_tx_rate = 200, .max_tx_rate = 100},
        };
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
                cr_expect_eq(netdev_vf_change_check(&bad[i]), -EINVAL, "case %zu accepted", i);
        struct iov_netdev_vf_change clear = {.set_mac = true};
        cr_expect_eq(netdev_vf_change_check(&clear), 0, "a zero MAC (clearing one) refused");
        cr_expect(!netdev_mac_assignable(clear.mac), "a zero MAC is not for clients");
}

Test(netdev, derived_macs_are_local_unicast_and_stable)
{
        uint8_t a[6], b[6], c[6];
        netdev_mac_derive("owner-1/0000:03:10.0", 20, 0, a);
        netdev_mac_derive("owner-1/0000:03:10.0", 20, 0, b);
        netdev_mac_derive("owner-1/0000:03:10.0", 20, 1, c);
        char buf[18];
        cr_expect_eq(a[0] & 3, 2, "%s: not locally administered unicast",
                     netdev_mac_format(a, buf));
        cr_expect(memcmp(a, b, 6) == 0, "same seed, different MACs");
        cr_expect(memcmp(a, c, 6) != 0, "another attempt gave the same MAC");
        cr_expect(netdev_mac_assignable(a) && netdev_mac_assignable(c));
}

Test(netdev, mac_and_names)
{
        uint8_t mac[6];
        char buf[18];
        cr_assert_eq(netdev_mac_parse("52:54:00:AB:cd:0f", mac), 0);
        cr_expect_str_eq(netdev_mac_format(mac, buf), "52:54:00:ab:cd:0f");
        const char *bad[] = {"52:54:00:ab:cd", "52-54-00-ab-cd-0f", "52:54:00:ab:cd:0g",
                             "52:54:00:ab:cd:0f:", " 52:54:00:ab:cd:0"};
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
                cr_expect_eq(netdev_mac_parse(bad[i], mac), -EINVAL, "\"%s\" accepted", bad[i]);
        int v;
        cr_expect(netdev_link_state_parse("enable", &v) == 0 && v == IOV_NETDEV_LINK_ENABLE);
        cr_expect_eq(netdev_link_state_parse("on", &v), -EINVAL);
        cr_expect_null(netdev_link_state_name(-1));
}

/* ---- a fake kernel on the other end of a socketpair ---------------------------------- */

struct fake_kernel {
        int fd;
        pthread_t thread;
        struct iov_netdev_vf vfs[2];
        uint32_t max_rate_allowed; /* like a PF refusing rates above its line rate */
        bool gone;                 /* the interface vanished: -ENODEV */
        unsigned setlinks;
};

static void fake_reply_error(struct fake_kernel *k, const struct nlmsghdr *req, int error)
{
        _Alignas(struct nlmsghdr) char buf[256];
        struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
        nlh->nlmsg_type = NLMSG_ERROR;
        nlh->nlmsg_seq = req->nlmsg_seq;
        struct nlmsgerr *e = mnl_nlmsg_put_extra_header(nlh, sizeof(*e));
        e->error = error;
        e->msg = *req;
        cr_assert_eq(send(k->fd, buf, nlh->nlmsg_len, 0), (ssize_t)nlh->nlmsg_len);
}

static void fake_put_vf(struct nlmsghdr *nlh, const struct iov_netdev_vf *v)
{
        struct nlattr *info = mnl_attr_nest_start(nlh, IFLA_VF_INFO);
        struct ifla_vf_mac m = {.vf = v->index};
        memcpy(m.mac, v->mac, 6);
        mnl_attr_put(nlh, IFLA_VF_MAC, sizeof(m), &m);
        struct ifla_vf_vlan vl = {v->index, v->vlan, v->qos};
        mnl_attr_put(nlh, IFLA_VF_VLAN, sizeof(vl), &vl);
        struct ifla_vf_rate r = {v->index, v->min_tx_rate, v->max_tx_rate};
        mnl_attr_put(nlh, IFLA_VF_RATE, sizeof(r), &r);
        struct ifla_vf_spoofchk s = {v->index, (uint32_t)v->spoof_check};
        mnl_attr_put(nlh, IFLA_VF_SPOOFCHK, sizeof(s), &s);
        struct ifla_vf_link_state l = {v->index, (uint32_t)v->link_state};
        mnl_attr_put(nlh, IFLA_VF_LINK_STATE, sizeof(l), &l);
        struct ifla_vf_trust t = {v->index, (uint32_t)v->trust};
        mnl_attr_put(nlh, IFLA_VF_TRUST, sizeof(t), &t);
        mnl_attr_nest_end(nlh, info);
}

static void fake_reply_link(struct fake_kernel *k, const struct nlmsghdr *req)
{
        _Alignas(struct nlmsghdr) char buf[2048];
        struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
        nlh->nlmsg_type = RTM_NEWLINK;
        nlh->nlmsg_seq = req->nlmsg_seq;
        struct ifinfomsg *ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
        ifi->ifi_index = 4;
        ifi->ifi_flags = IFF_UP;
        mnl_attr_put_strz(nlh, IFLA_IFNAME, "enp1s0");
        mnl_attr_put_u8(nlh, IFLA_OPERSTATE, 2 /* IF_OPER_DOWN */);
        mnl_attr_put_u32(nlh, IFLA_NUM_VF, 2);
        struct nlattr *list = mnl_attr_nest_start(nlh, IFLA_VFINFO_LIST);
        for (size_t i = 0; i < 2; i++)
                fake_put_vf(nlh, &k->vfs[i]);
        mnl_attr_nest_end(nlh, list);
        cr_assert_eq(send(k->fd, buf, nlh->nlmsg_len, 0), (ssize_t)nlh->nlmsg_len);
}

/* do_setvfinfo's order: MAC, VLAN, rate, spoof check, link state, trust; the first
 * refusal ends it with what came before applied. */
static int fake_apply(struct fake_kernel *k, const struct sent_vf *s)
{
        uint32_t vf = s->vf_of[__builtin_ctz(s->seen)];
        if (vf >= 2)
                return -EINVAL;
        struct iov_netdev_vf *v = &k->vfs[vf];
        if (s->seen & 1u << IFLA_VF_MAC)
                memcpy(v->mac, s->mac.mac, 6);
        if (s->seen & 1u << IFLA_VF_VLAN) {
                v->vlan = (uint16_t)s->vlan.vlan;
                v->qos = (uint8_t)s->vlan.qos;
        }
        if (s->seen & 1u << IFLA_VF_RATE) {
                if (s->rate.max_tx_rate > k->max_rate_allowed)
                        return -EINVAL;
                v->min_tx_rate = s->rate.min_tx_rate;
                v->max_tx_rate = s->rate.max_tx_rate;
        }
        if (s->seen & 1u << IFLA_VF_SPOOFCHK)
                v->spoof_check = (int)s->spoof;
        if (s->seen & 1u << IFLA_VF_LINK_STATE)
                v->link_state = (int)s->link;
        if (s->seen & 1u << IFLA_VF_TRUST)
                v->trust = (int)s->trust;
        return 0;
}

static void *fake_run(void *data)
{
        struct fake_kernel *k = data;
        _Alignas(struct nlmsghdr) char buf[4096];
        for (;;) {
                ssize_t n = recv(k->fd, buf, sizeof(buf), 0);
                if (n <= 0)
                        return NULL;
                const struct nlmsghdr *nlh = (const void *)buf;
                struct sent_vf s;
                int ifindex;
                if (k->gone)
                        fake_reply_error(k, nlh, -ENODEV);
                else if (nlh->nlmsg_type == RTM_GETLINK)
                        fake_reply_link(k, nlh);
                else if (parse_setlink(nlh, &ifindex, &s) == 0 && ifindex == 4 && s.seen) {
                        k->setlinks++;
                        fake_reply_error(k, nlh, fake_apply(k, &s));
                } else
                        fake_reply_error(k, nlh, -EINVAL);
        }
}

static struct fake_kernel kernel;
static struct iov_netdev *nd;

static void fake_start(void)
{
        int sv[2];
        cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
        memset(&kernel, 0, sizeof(kernel));
        kernel.fd = sv[1];
        kernel.max_rate_allowed = 1000;
        for (uint32_t i = 0; i < 2; i++)
                kernel.vfs[i] = (struct iov_netdev_vf){
                        .index = i, .spoof_check = 1, .trust = 0, .link_state = 0};
        memcpy(kernel.vfs[0].mac, mac_a, 6);
        cr_assert_eq(netdev_open_fd(sv[0], &nd), 0);
        cr_assert_eq(pthread_create(&kernel.thread, NULL, fake_run, &kernel), 0);
}

static void fake_stop(void)
{
        netdev_close(nd); /* the fake sees end of file and returns */
        pthread_join(kernel.thread, NULL);
        close(kernel.fd);
}

TestSuite(netdev_set, .init = fake_start, .fini = fake_stop);

Test(netdev_set, applies_and_reads_back)
{
        struct iov_netdev_vf_change c = {.set_mac = true,
                                         .set_vlan = true,
                                         .vlan = 42,
                                         .set_rate = true,
                                         .max_tx_rate = 500};
        memcpy(c.mac, mac_b, 6);
        struct iov_netdev_link after;
        cr_assert_eq(netdev_vf_set(nd, "enp1s0", 1, &c, &after), 0);
        const struct iov_netdev_vf *v = netdev_link_find_vf(&after, 1);
        cr_assert(v, "vf 1 not in the answer");
        cr_expect_eq(memcmp(v->mac, mac_b, 6), 0, "mac read back");
        cr_expect(v->vlan == 42 && v->max_tx_rate == 500, "vlan %u max rate %u", v->vlan,
                  v->max_tx_rate);
        cr_expect_eq(after.operstate, 2, "PF operstate %u", after.operstate);
        cr_expect_eq(memcmp(kernel.vfs[0].mac, mac_a, 6), 0, "vf 0 untouched");
        netdev_link_clear(&after);
}

Test(netdev_set, refused_rate_changes_nothing)
{
        struct iov_netdev_vf_change c = {.set_mac = true,
                                         .set_vlan = true,
                                         .vlan = 7,
                                         .set_rate = true,
                                         .max_tx_rate = 40000,
                                         .set_trust = true,
                                         .trust = true};
        memcpy(c.mac, mac_b, 6);
        struct iov_netdev_link after = {0};
        cr_expect_eq(netdev_vf_set(nd, "enp1s0", 0, &c, &after), -EINVAL);
        cr_expect_eq(kernel.setlinks, 2, "%u RTM_SETLINKs: the change and its undo",
                     kernel.setlinks);
        cr_expect_eq(memcmp(kernel.vfs[0].mac, mac_a, 6), 0, "mac put back");
        cr_expect(kernel.vfs[0].vlan == 0 && kernel.vfs[0].trust == 0, "vlan %u trust %d",
                  kernel.vfs[0].vlan, kernel.vfs[0].trust);
        cr_expect_eq(after.vfs, NULL, "ret_after written on failure");
}

Test(netdev_set, refusal_before_anything_applied_sends_no_undo)
{
        struct iov_netdev_vf_change c = {
                .set_rate = true, .max_tx_rate = 40000, .set_trust = true, .trust = true};
        struct iov_netdev_link after = {0};
        cr_expect_eq(netdev_vf_set(nd, "enp1s0", 0, &c, &after), -EINVAL);
        cr_expect_eq(kernel.setlinks, 1, "%u RTM_SETLINKs: nothing had moved", kernel.setlinks);
        cr_expect_eq(kernel.vfs[0].trust, 0, "trust %d", kernel.vfs[0].trust);
}

Test(netdev_set, invalid_values_send_nothing)
{
        struct iov_netdev_vf_change c = {.set_vlan = true, .vlan = 4095};
        struct iov_netdev_link after;
        cr_expect_eq(netdev_vf_set(nd, "enp1s0", 0, &c, &after), -EINVAL);
        c = (struct iov_netdev_vf_change){.set_mac = true,
                                          .mac = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff}};
        cr_expect_eq(netdev_vf_set(nd, "enp1s0", 0, &c, &after), -EINVAL);
        cr_expect_eq(kernel.setlinks, 0, "%u RTM_SETLINKs sent", kernel.setlinks);
}

Test(netdev_set, missing_vf_and_vanished_interface)
{
        struct iov_netdev_vf_change c = {.set_trust = true, .trust = true};
        struct iov_netdev_link after;
        cr_expect_eq(netdev_vf_set(nd, "enp1s0", 5, &c, &after), -ENOENT);
        kernel.gone = true;
        cr_expect_eq(netdev_vf_set(nd, "enp1s0", 0, &c, &after), -ENODEV);
        cr_expect_eq(netdev_link_read(nd, "enp1s0", &after), -ENODEV);
        cr_expect_eq(kernel.setlinks, 0, "%u RTM_SETLINKs sent", kernel.setlinks);
}

/* ---- where a VF lives: a generated sysfs tree ----------------------------------------- */

static struct fixture *fx;

static void tree_setup(void)
{
        struct fixture_device pf = {.address = "0000:03:00.0",
                                    .vendor_id = 0x8086,
                                    .device_id = 0x10c9,
                                    .class_code = 0x020000,
                                    .driver = "igb",
                                    .iommu_group = 5,
                                    .numa_node = -1};
        struct fixture_device nvme = {.address = "0000:04:00.0",
                                      .vendor_id = 0x1b36,
                                      .device_id = 0x0010,
                                      .class_code = 0x010802,
                                      .driver = "nvme",
                                      .iommu_group = 6,
                                      .numa_node = -1};
        cr_assert_eq(fixture_new(&fx), 0);
        cr_assert_eq(fixture_add_pf(fx, &pf, 7, 0x10ca, 0x80, 2), 0);
        cr_assert_eq(fixture_set_num_vfs(fx, "0000:03:00.0", 3), 0);
        cr_assert_eq(fixture_add_pf(fx, &nvme, 4, 0x0010, 1, 1), 0);
        cr_assert_eq(fixture_set_num_vfs(fx, "0000:04:00.0", 1), 0);
        char *net = util_strdup_printf("%s/bus/pci/devices/0000:03:00.0/net/enp3s0",
                                       fixture_sysfs_root(fx));
        cr_assert_eq(util_mkdir_p(net, 0755), 0, "mkdir %s", net);
        free(net);
}

static void tree_teardown(void)
{
        fixture_free(fx);
}

TestSuite(netdev_locate, .init = tree_setup, .fini = tree_teardown);

static int locate(const char *address, struct iov_netdev_vf_location *ret)
{
        struct iov_pci_address a;
        cr_assert_eq(pci_address_parse(address, &a), 0);
        return netdev_vf_locate(fixture_sysfs_root(fx), &a, ret);
}

Test(netdev_locate, vf_index_and_interface)
{
        struct iov_netdev_vf_location loc;
        /* Offset 0x80, stride 2 (QEMU's igb): VF 2 is routing ID 0x384, 0000:03:10.4. */
        cr_assert_eq(locate("0000:03:10.4", &loc), 0);
        cr_expect_str_eq(loc.ifname, "enp3s0");
        cr_expect_eq(loc.index, 2, "index %u", loc.index);
        char buf[IOV_PCI_ADDRESS_MAX];
        cr_expect_str_eq(pci_address_format(&loc.pf, buf), "0000:03:00.0");
}

Test(netdev_locate, refusals)
{
        struct iov_netdev_vf_location loc;
        cr_expect_eq(locate("0000:03:00.0", &loc), -EINVAL, "the PF itself");
        cr_expect_eq(locate("0000:09:00.0", &loc), -ENOENT, "no such function");
        cr_expect_eq(locate("0000:04:00.1", &loc), -ENOTSUP, "a VF of an NVMe PF");
}

/* The read path against this machine's own kernel: loopback has no VFs, but its answer
 * goes through the same request and parser. */
Test(netdev_kernel, reads_loopback_and_misses_unknown)
{
        struct iov_netdev *k = NULL;
        int r = netdev_open(&k);
        if (r < 0)
                cr_skip_test("no NETLINK_ROUTE socket here: %s", strerror(-r));
        struct iov_netdev_link link;
        cr_assert_eq(netdev_link_read(k, "lo", &link), 0);
        cr_expect_str_eq(link.ifname, "lo");
        cr_expect_eq(link.ifindex, 1, "lo has ifindex %d", link.ifindex);
        cr_expect_eq(link.n_vfs, 0, "lo has %zu VFs", link.n_vfs);
        netdev_link_clear(&link);
        r = netdev_link_read(k, "iovd-none0", &link);
        cr_expect_eq(r, -ENODEV, "missing interface: %d", r);
        netdev_close(k);
}
