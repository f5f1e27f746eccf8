/* SPDX-License-Identifier: MIT */
/*
 * connection: one request and its answer at a time over a NETLINK_ROUTE socket
 * (Documentation/userspace-api/netlink/intro.rst). Answers are sized before they are
 * read (MSG_PEEK | MSG_TRUNC) since a PF with many VFs answers with more than a page.
 */
#include <libmnl/libmnl.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "netdev/netdev.h"
#include "util/util.h"

#define REQUEST_MAX     4096
#define RECV_TIMEOUT_MS 5000

struct iov_netdev {
        int fd;
        uint32_t seq;
};

int netdev_open_fd(int fd, struct iov_netdev **ret)
{
        /* The kernel answers at once; a bound wait keeps a stuck peer from holding an API
         * thread forever. */
        struct timeval tv = {.tv_sec = RECV_TIMEOUT_MS / 1000};
        struct iov_netdev *nd = calloc(1, sizeof(*nd));
        if (!nd || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0) {
                int r = nd ? -errno : -ENOMEM;
                free(nd);
                close(fd);
                return r;
        }
        nd->fd = fd;
        nd->seq = (uint32_t)util_now_usec();
        *ret = nd;
        return 0;
}

int netdev_open(struct iov_netdev **ret)
{
        _cleanup_close_ int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
        struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
        int one = 1;
        if (fd < 0)
                return -errno;
        /* Extended acks carry the driver's reason for a refusal (logged at debug); capped
         * acks leave out the echoed request. Both are optional: older kernels lack them. */
        (void)setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
        (void)setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
                return -errno;
        return netdev_open_fd(TAKE_FD(fd), ret);
}

void netdev_close(struct iov_netdev *nd)
{
        if (!nd)
                return;
        close(nd->fd);
        free(nd);
}

/* One datagram, whatever its size. */
static int receive(struct iov_netdev *nd, void **ret, size_t *ret_len)
{
        char probe;
        ssize_t n = recv(nd->fd, &probe, 1, MSG_PEEK | MSG_TRUNC);
        if (n < 0)
                return errno == EAGAIN ? -ETIMEDOUT : -errno;
        void *buf = malloc(n > 0 ? (size_t)n : 1);
        if (!buf)
                return -ENOMEM;
        ssize_t got = recv(nd->fd, buf, (size_t)n, 0);
        if (got != n) {
                int r = got < 0 ? -errno : -EBADMSG;
                free(buf);
                return r;
        }
        *ret = buf;
        *ret_len = (size_t)got;
        return 0;
}

/* The driver's own words from an extended ack (NLMSGERR_ATTR_MSG), for the debug log. */
static void log_ext_ack(const struct nlmsghdr *nlh, int error)
{
        const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);
        size_t offset = sizeof(*e);
        if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS))
                return;
        if (!(nlh->nlmsg_flags & NLM_F_CAPPED))
                offset += e->msg.nlmsg_len - sizeof(e->msg);
        const struct nlattr *a;
        mnl_attr_for_each(a, nlh, offset)
        {
                if (mnl_attr_get_type(a) == NLMSGERR_ATTR_MSG &&
                    mnl_attr_validate(a, MNL_TYPE_NUL_STRING) == 0)
                        log_debug_errno(error, "netlink: %s", mnl_attr_get_str(a));
        }
}

/* 1 when nlh answers seq (0 or -errno in *ret), 0 when it is someone else's. */
static int answer_status(const struct nlmsghdr *nlh, uint32_t seq, struct iov_netdev_link *link,
                         int *ret)
{
        if (nlh->nlmsg_seq != seq)
                return 0;
        if (nlh->nlmsg_type == NLMSG_ERROR) {
                const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);
                if (mnl_nlmsg_get_payload_len(nlh) < sizeof(*e))
                        *ret = -EBADMSG;
                else
                        *ret = e->error > 0 ? -EBADMSG : e->error;
                if (*ret < 0)
                        log_ext_ack(nlh, *ret);
                return 1;
        }
        if (nlh->nlmsg_type == RTM_NEWLINK && link) {
                *ret = netdev_message_parse_link(nlh, nlh->nlmsg_len, link);
                return 1;
        }
        return 0;
}

/* Send request (seq already in it), then read until its answer: an RTM_NEWLINK into
 * link, or an NLMSG_ERROR (an ack is error 0). */
static int transact(struct iov_netdev *nd, const void *request, size_t len,
                    struct iov_netdev_link *link)
{
        uint32_t seq = ((const struct nlmsghdr *)request)->nlmsg_seq;
        ssize_t sent = send(nd->fd, request, len, 0);
        if (sent != (ssize_t)len)
                return sent < 0 ? -errno : -EIO;
        for (;;) {
                _cleanup_free_ void *buf = NULL;
                size_t size = 0;
                int r = receive(nd, &buf, &size), status = 0;
                if (r < 0)
                        return r;
                int n = (int)size;
                for (const struct nlmsghdr *nlh = buf; mnl_nlmsg_ok(nlh, n);
                     nlh = mnl_nlmsg_next(nlh, &n))
                        if (answer_status(nlh, seq, link, &status))
                                return status;
        }
}

int netdev_link_read(struct iov_netdev *nd, const char *ifname, struct iov_netdev_link *ret)
{
        _Alignas(struct nlmsghdr) char request[REQUEST_MAX];
        struct iov_netdev_link link = {0};
        if (strlen(ifname) >= IFNAMSIZ)
                return -EINVAL;
        size_t len = netdev_message_getlink(request, sizeof(request), ifname, ++nd->seq);
        if (len == 0)
                return -ENOBUFS;
        int r = transact(nd, request, len, &link);
        if (r < 0) {
                netdev_link_clear(&link);
                return r;
        }
        *ret = link;
        return 0;
}

static int send_change(struct iov_netdev *nd, int ifindex, uint32_t vf,
                       const struct iov_netdev_vf_change *change)
{
        _Alignas(struct nlmsghdr) char request[REQUEST_MAX];
        size_t len = netdev_message_setvf(request, sizeof(request), ifindex, vf, change, ++nd->seq);
        return len ? transact(nd, request, len, NULL) : -ENOBUFS;
}

/* The kernel applies a VF_INFO's attributes one after the other (do_setvfinfo) and stops
 * at the first the driver refuses, leaving the earlier ones applied. So after a refusal
 * the link is read again and what moved goes back to what was read before; the refusal
 * is what the caller hears, a failed undo only the debug log. */
static void undo_change(struct iov_netdev *nd, const struct iov_netdev_link *before, uint32_t vf,
                        const struct iov_netdev_vf_change *change)
{
        struct iov_netdev_link now = {0};
        struct iov_netdev_vf_change undo;
        int r = netdev_link_read(nd, before->ifname, &now);
        const struct iov_netdev_vf *old = netdev_link_find_vf(before, vf);
        const struct iov_netdev_vf *cur = r >= 0 ? netdev_link_find_vf(&now, vf) : NULL;
        if (cur) {
                netdev_vf_change_undo(old, cur, change, &undo);
                /* Nothing moved: the refusal came first. */
                if (undo.set_mac || undo.set_vlan || undo.set_rate || undo.set_spoof_check ||
                    undo.set_trust || undo.set_link_state)
                        r = send_change(nd, before->ifindex, vf, &undo);
        }
        if (r < 0 || !cur)
                log_debug_errno(r, "netdev: undoing a refused change on %s vf %u failed",
                                before->ifname, vf);
        netdev_link_clear(&now);
}

int netdev_vf_set(struct iov_netdev *nd, const char *ifname, uint32_t vf,
                  const struct iov_netdev_vf_change *change, struct iov_netdev_link *ret_after)
{
        struct iov_netdev_link before = {0};
        int r = netdev_vf_change_check(change);
        if (r >= 0)
                r = netdev_link_read(nd, ifname, &before);
        if (r < 0)
                return r;
        bool known = netdev_link_find_vf(&before, vf);
        r = known ? send_change(nd, before.ifindex, vf, change) : -ENOENT;
        if (r < 0 && known)
                undo_change(nd, &before, vf, change);
        netdev_link_clear(&before);
        return r < 0 ? r : netdev_link_read(nd, ifname, ret_after);
}
