/* SPDX-License-Identifier: MIT */
/*
 * The TAP backend of virtio-net: frames go to and come from a host TAP interface. The TAP
 * fd is set up with the same 12-byte header virtio-net uses (Documentation/networking/
 * tuntap.rst, IFF_VNET_HDR, TUNSETVNETHDRSZ), so a frame passes in one readv/writev.
 *
 * Offloads (virtio 1.2 §5.1.6.2, §5.1.6.4): the header passes through unchanged in both
 * directions once the guest acked them. Transmit: with CSUM or HOST_TSO4/6 the device
 * hands over the guest's header (copied out of guest memory once) and the kernel checks
 * it as it checks any vnet header (virtio_net_hdr_to_skb), finishing the checksum or
 * segmenting; otherwise a zeroed one. Receive: TUNSETOFFLOAD lets the TAP hand us
 * partially checksummed frames and TSO superframes only for what the guest acked
 * (GUEST_CSUM, GUEST_TSO4/6), so the kernel's header is exactly what the guest may get.
 */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <linux/if_tun.h>

#include "util/util.h"
#include "vmm/virtio/net-backend.h"

struct net_tap {
        struct iov_net_backend base;
        int fd;
        bool is_tap; /* false: a stand-in (tests, fuzzers) that takes no TUNSETOFFLOAD */
        bool multi_queue, attached; /* IFF_MULTI_QUEUE; in the TAP's set of queues */
};

static int tap_transmit(struct iov_net_backend *b, const struct iovec *frame, unsigned n,
                        size_t len)
{
        struct net_tap *t = (struct net_tap *)b;

        (void)len;
        /* TAP takes a frame whole or not at all; a full queue drops it like a wire. */
        return writev(t->fd, frame, (int)n) < 0 ? -ENOBUFS : 0;
}

static int tap_receive(struct iov_net_backend *b, const struct iovec *buf, unsigned n,
                       size_t *ret_len)
{
        struct net_tap *t = (struct net_tap *)b;

        ssize_t got = readv(t->fd, buf, (int)n);
        if (got < 0)
                return errno == EINTR ? -EAGAIN : -errno;
        *ret_len = (size_t)got;
        return 0;
}

/* TUN_F_* for the guest's features: TSO needs the checksum offload on both sides
 * (§5.1.3.1: GUEST_TSO4/6 require GUEST_CSUM; the TAP refuses TSO without TUN_F_CSUM). */
static unsigned tap_offload_flags(uint64_t guest_features)
{
        unsigned flags = 0;

        if (!(guest_features & (1ull << VIRTIO_NET_F_GUEST_CSUM)))
                return 0;
        flags |= TUN_F_CSUM;
        if (guest_features & (1ull << VIRTIO_NET_F_GUEST_TSO4))
                flags |= TUN_F_TSO4;
        if (guest_features & (1ull << VIRTIO_NET_F_GUEST_TSO6))
                flags |= TUN_F_TSO6;
        return flags;
}

static int tap_set_offload(struct iov_net_backend *b, uint64_t guest_features)
{
        struct net_tap *t = (struct net_tap *)b;

        if (!t->is_tap)
                return 0;
        if (ioctl(t->fd, TUNSETOFFLOAD, (unsigned long)tap_offload_flags(guest_features)) < 0)
                return -errno;
        return 0;
}

/* Only a queue of a multiqueue TAP can leave the set (tun_set_queue: EINVAL otherwise);
 * a detached queue's fd stays open and is attached again with the same call. */
static int tap_set_enabled(struct iov_net_backend *b, bool enabled)
{
        struct net_tap *t = (struct net_tap *)b;
        struct ifreq ifr = {.ifr_flags = enabled ? IFF_ATTACH_QUEUE : IFF_DETACH_QUEUE};

        if (!t->multi_queue || t->attached == enabled)
                return 0;
        if (ioctl(t->fd, TUNSETQUEUE, &ifr) < 0)
                return -errno;
        t->attached = enabled;
        return 0;
}

static void tap_free(struct iov_net_backend *b)
{
        struct net_tap *t = (struct net_tap *)b;
        if (!t)
                return;
        if (t->fd >= 0)
                close(t->fd);
        free(t);
}

static const struct iov_net_backend_ops tap_ops = {
        .transmit = tap_transmit,
        .receive = tap_receive,
        .set_offload = tap_set_offload,
        .set_enabled = tap_set_enabled,
        .free = tap_free,
};

/* Open (or create) TAP interface `name` with the modern virtio-net header in front of
 * every frame; flags adds IFF_MULTI_QUEUE for one queue of several. iovd opens TAPs this
 * way and passes them to iovd-vmm (virtio.h). */
static int tap_open(const char *name, short flags, int *ret_fd)
{
        _cleanup_close_ int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
        struct ifreq ifr = {.ifr_flags = (short)(IFF_TAP | IFF_NO_PI | IFF_VNET_HDR | flags)};
        int hdr_size = IOV_NET_HDR_SIZE;

        if (fd < 0)
                return -errno;
        if (strlen(name) >= sizeof(ifr.ifr_name))
                return -ENAMETOOLONG;
        strncpy(ifr.ifr_name, name, sizeof(ifr.ifr_name) - 1);
        if (ioctl(fd, TUNSETIFF, &ifr) < 0)
                return -errno;
        if (ioctl(fd, TUNSETVNETHDRSZ, &hdr_size) < 0)
                return -errno;
        /* No offloads until a guest acks some (tap_set_offload): frames arrive whole and
         * checksummed. */
        if (ioctl(fd, TUNSETOFFLOAD, 0) < 0)
                return -errno;
        *ret_fd = TAKE_FD(fd);
        return 0;
}

int virtio_net_tap_open(const char *name, int *ret_fd)
{
        return tap_open(name, 0, ret_fd);
}

/* Each TUNSETIFF with IFF_MULTI_QUEUE on a new fd adds a queue to the same TAP (created
 * by the first; an existing TAP made without the flag refuses it with EINVAL). */
int virtio_net_tap_open_queues(const char *name, unsigned n, int *ret_fds)
{
        int fds[IOV_VIRTIO_NET_MAX_PAIRS];
        int r = 0;

        if (n == 0 || n > IOV_VIRTIO_NET_MAX_PAIRS)
                return -EINVAL;
        if (n == 1)
                return virtio_net_tap_open(name, ret_fds);
        unsigned opened = 0;
        while (r >= 0 && opened < n) {
                r = tap_open(name, IFF_MULTI_QUEUE, &fds[opened]);
                if (r >= 0)
                        opened++;
        }
        if (r < 0) {
                while (opened > 0)
                        close(fds[--opened]);
                return r;
        }
        memcpy(ret_fds, fds, n * sizeof(int));
        return 0;
}

int net_tap_backend_new(const char *name, int fd_in, bool stand_in, struct iov_net_backend **ret)
{
        _cleanup_close_ int fd = -1;

        if (name && strncmp(name, UTIL_FD_PREFIX, strlen(UTIL_FD_PREFIX)) == 0) {
                /* A TAP iovd opened with virtio_net_tap_open and passed. */
                int r = util_open_inherited(name, 0, &fd);
                if (r < 0)
                        return r;
                int flags = fcntl(fd, F_GETFL);
                if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
                        return -errno;
        } else if (name && name[0]) {
                int r = virtio_net_tap_open(name, &fd);
                if (r < 0)
                        return r;
        } else {
                if (fd_in < 0)
                        return -EBADF;
                fd = fd_in;
                int flags = fcntl(fd, F_GETFL);
                if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
                        return -errno;
        }
        struct net_tap *t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        t->fd = TAKE_FD(fd);
        t->base = (struct iov_net_backend){
                .ops = &tap_ops, .poll_fd = t->fd, .watch_fd = -1, .carrier = true};
        /* An fd that is no TAP (a socket standing in for one in tests) takes no offload
         * unless asked to pretend. */
        t->is_tap = ioctl(t->fd, TUNSETOFFLOAD, 0UL) == 0;
        struct ifreq ifr = {0};
        t->multi_queue = t->is_tap && ioctl(t->fd, TUNGETIFF, &ifr) == 0 &&
                         (ifr.ifr_flags & IFF_MULTI_QUEUE);
        t->attached = true;
        t->base.vhost_backend_fd = t->is_tap ? t->fd : -1;
        if (t->is_tap || stand_in)
                t->base.features = IOV_NET_TAP_FEATURES;
        *ret = &t->base;
        return 0;
}
