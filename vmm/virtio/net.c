/* SPDX-License-Identifier: MIT */
/*
 * virtio-net (virtio 1.2 §5.1) on a TAP device: receiveq0 and transmitq0, no control
 * queue, no offloads. Every frame carries the 12-byte struct virtio_net_hdr_v1 in front
 * (§5.1.6, modern header); the TAP fd is set up with the same header size so frames pass
 * in one readv/writev. The guest's transmit header is not passed on: we negotiated no
 * checksum or GSO offload, so the kernel gets a zeroed one and never parses guest values.
 */
#include "vmm/virtio/virtio.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <linux/if_tun.h>
#include <linux/virtio_net.h>

#include "util/util.h"

enum {
        NET_RX = 0,
        NET_TX = 1,
};

#define NET_HDR_SIZE sizeof(struct virtio_net_hdr_v1)
/* Largest frame without GSO: 64 KiB covers jumbo frames and anything TAP may hand us. */
#define NET_MAX_FRAME 65550u

struct net {
        int tap_fd;
        struct virtio_net_config config;
        struct iovec frame[IOV_VIRTQ_MAX_SEGS + 1];
};

static int net_handle_tx(struct iov_virtio_dev *dev, unsigned q, struct iov_virtq_req *req,
                         uint32_t *ret_written)
{
        static const struct virtio_net_hdr_v1 zero_hdr;
        struct net *n = dev->priv;
        size_t skip = NET_HDR_SIZE;
        unsigned k = 0;

        (void)q;
        *ret_written = 0;
        /* A transmit chain is device-readable only and holds a header and a frame. */
        if (req->n_in > 0 || req->out_len <= NET_HDR_SIZE ||
            req->out_len - NET_HDR_SIZE > NET_MAX_FRAME) {
                dev->stats.requests_failed++;
                return 0;
        }
        n->frame[k++] = (struct iovec){(void *)&zero_hdr, NET_HDR_SIZE};
        for (unsigned i = 0; i < req->n_out; i++) {
                struct iovec v = req->out[i];
                if (skip >= v.iov_len) {
                        skip -= v.iov_len;
                        continue;
                }
                v.iov_base = (uint8_t *)v.iov_base + skip;
                v.iov_len -= skip;
                skip = 0;
                n->frame[k++] = v;
        }
        /* TAP takes a frame whole or not at all; a full queue drops it like a wire. */
        if (writev(n->tap_fd, n->frame, (int)k) < 0) {
                dev->stats.requests_failed++;
                return 0;
        }
        dev->stats.requests_written++;
        dev->stats.bytes_written += req->out_len - NET_HDR_SIZE;
        return 0;
}

static int net_handle_rx(struct iov_virtio_dev *dev, unsigned q, struct iov_virtq_req *req,
                         uint32_t *ret_written)
{
        struct net *n = dev->priv;
        /* §5.1.6.3.2: without MRG_RXBUF each frame takes one buffer, num_buffers is 1. */
        uint16_t num_buffers = 1;

        (void)q;
        *ret_written = 0;
        if (req->n_out > 0 || req->in_len < NET_HDR_SIZE) {
                /* A receive buffer with nothing or too little to write into: fail it. */
                dev->stats.requests_failed++;
                return 0;
        }
        ssize_t got = readv(n->tap_fd, req->in, (int)req->n_in);
        if (got < 0 && (errno == EAGAIN || errno == EINTR))
                return -EAGAIN;
        if (got < (ssize_t)NET_HDR_SIZE) {
                dev->stats.requests_failed++;
                return got < 0 ? -EAGAIN : 0;
        }
        virtio_iov_from_buf(req->in, req->n_in, offsetof(struct virtio_net_hdr_v1, num_buffers),
                            &num_buffers, sizeof(num_buffers));
        dev->stats.requests_read++;
        dev->stats.bytes_read += (uint64_t)got - NET_HDR_SIZE;
        *ret_written = (uint32_t)got;
        return 0;
}

static int net_queue_notify(struct iov_virtio_dev *dev, unsigned q)
{
        return virtio_dev_process_queue(dev, q, q == NET_TX ? net_handle_tx : net_handle_rx);
}

static int net_backend_ready(struct iov_virtio_dev *dev)
{
        if (!virtio_dev_queue_ready(dev, NET_RX))
                return 0;
        return virtio_dev_process_queue(dev, NET_RX, net_handle_rx);
}

static void net_destroy(struct iov_virtio_dev *dev)
{
        struct net *n = dev->priv;
        if (!n)
                return;
        if (n->tap_fd >= 0)
                close(n->tap_fd);
}

static const struct iov_virtio_dev_ops net_ops = {
        .name = "virtio-net",
        .device_id = 1,
        .num_queues = 2,
        .queue_max_size = 256,
        .config_size = sizeof(struct virtio_net_config),
        .config_read = virtio_dev_read_config,
        .queue_notify = net_queue_notify,
        .backend_ready = net_backend_ready,
        .destroy = net_destroy,
};

/* Open (or create) TAP interface `name` with the modern virtio-net header in front of
 * every frame (Documentation/networking/tuntap.rst). */
static int net_tap_open(const char *name, int *ret_fd)
{
        _cleanup_close_ int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
        struct ifreq ifr = {.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR};
        int hdr_size = NET_HDR_SIZE;

        if (fd < 0)
                return -errno;
        if (strlen(name) >= sizeof(ifr.ifr_name))
                return -ENAMETOOLONG;
        strncpy(ifr.ifr_name, name, sizeof(ifr.ifr_name) - 1);
        if (ioctl(fd, TUNSETIFF, &ifr) < 0)
                return -errno;
        if (ioctl(fd, TUNSETVNETHDRSZ, &hdr_size) < 0)
                return -errno;
        /* No offloads: frames arrive whole and checksummed (we negotiate none). */
        if (ioctl(fd, TUNSETOFFLOAD, 0) < 0)
                return -errno;
        *ret_fd = TAKE_FD(fd);
        return 0;
}

int virtio_net_new(const struct iov_virtio_mem *mem, const struct iov_virtio_net_options *opts,
                   struct iov_virtio_dev **ret)
{
        _cleanup_close_ int fd = -1;
        struct iov_virtio_dev *dev;
        uint64_t features = (1ull << VIRTIO_NET_F_MAC) | (1ull << VIRTIO_NET_F_STATUS);
        int r;

        if (opts->tap_name) {
                r = net_tap_open(opts->tap_name, &fd);
                if (r < 0)
                        return r;
        } else {
                if (opts->tap_fd < 0)
                        return -EBADF;
                fd = opts->tap_fd;
                int flags = fcntl(fd, F_GETFL);
                if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
                        return -errno;
        }
        struct net *n = calloc(1, sizeof(*n));
        if (!n)
                return -ENOMEM;
        memcpy(n->config.mac, opts->mac, sizeof(n->config.mac));
        n->config.status = VIRTIO_NET_S_LINK_UP;
        n->config.max_virtqueue_pairs = 1;
        r = virtio_dev_new(&net_ops, features, mem, &dev);
        if (r < 0) {
                free(n);
                return r;
        }
        n->tap_fd = TAKE_FD(fd);
        dev->priv = n;
        dev->config = &n->config;
        dev->backend_fd = n->tap_fd;
        *ret = dev;
        return 0;
}
