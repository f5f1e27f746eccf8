/* SPDX-License-Identifier: MIT */
/*
 * virtio-net (virtio 1.2 §5.1): receiveq1 and transmitq1; with "queues": N > 1 (a TAP
 * only) N pairs and a control queue (§5.1.2: receiveq1, transmitq1, ..., receiveqN,
 * transmitqN, controlq), VIRTIO_NET_F_MQ with max_virtqueue_pairs N. Every frame
 * carries the 12-byte struct virtio_net_hdr_v1 in front (§5.1.6, modern header). Frames
 * go to one backend (net-backend.h): a host TAP (net-tap.c) or a VM-to-VM link
 * (net-link.c).
 *
 * Offloads come from the backend (its features): a TAP carries checksum and TSO both ways
 * and mergeable receive buffers, a link none of them (the plain path). With an offload
 * acked (§5.1.3: CSUM, HOST_TSO4/6 for transmit), the guest's transmit header is copied
 * out once and passed on to the backend, which checks it; without, the backend gets a
 * zeroed one and never sees guest values. Receive headers come from the backend, which
 * hands over only what the guest acked (GUEST_CSUM, GUEST_TSO4/6; set at DRIVER_OK).
 * With MRG_RXBUF (§5.1.6.4.2) a frame is read whole into the device's buffer and spread
 * over as many receive chains as it needs, num_buffers saying how many; without, each
 * frame takes one chain. On a TAP the kernel's vhost-net may serve both queues instead
 * ("vhost": true, false, "auto" by default): the device opens it here and the transport
 * hands it the rings at DRIVER_OK (vhost.c); the frame code (net-io.c) then stays idle.
 *
 * Multiqueue (§5.1.6.5.5): each pair has its own TAP queue (IFF_MULTI_QUEUE, one fd per
 * queue; the kernel spreads flows over the attached ones) and, under vhost-net, its own
 * vhost device and worker; the control queue stays with this process. The driver starts
 * with one pair and chooses how many it uses with VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET: the
 * TAP queues of the pairs beyond are detached (TUNSETQUEUE), so the kernel steers no
 * flow to a queue nobody reads, and reattached at reset. On the userspace path one I/O
 * thread serves every pair: the device has one lock, the vCPUs' kicks cost no exit
 * either way, and the path that scales over CPUs is vhost-net's, a worker per pair.
 * "poll_us" (0..IOV_VIRTIO_POLL_US_MAX, 0: off) is the adaptive poll of the transmit
 * queues (device.c).
 *
 *   {"type": "virtio-net", "tap": "tap0", "mac": "52:54:00:12:34:56", "queues": 2}
 *   {"type": "virtio-net", "port": "client-a", "mac": "52:54:00:00:00:0a"}
 *   {"type": "virtio-net", "mac": "52:54:00:00:00:01",
 *    "peer": {"vm": "netdom", "port": "client-a"}}
 *
 * Exactly one of tap (an interface name, opened or created with IFF_VNET_HDR, which
 * needs CAP_NET_ADMIN), port (this VM serves a client on a link: its name, unique in the
 * VM) or peer (this VM is a client of port `port` of VM `vm`; mac required, the port
 * accepts no other source). Without mac the device gets a random locally administered
 * address. Carrier (VIRTIO_NET_S_LINK_UP, §5.1.4) follows the backend: always on for a
 * TAP, on while a link holds a live end; each change raises a config interrupt.
 * A tap may also be "fd:N", a TAP iovd opened (virtio_net_tap_open) and passed, which is
 * how iovd always hands it over (the jailed VMM has no capability and no host network);
 * with queues > 1, ["fd:N", ...], one per pair, and "vhost" the same. A link has one pair.
 *
 * The files (net.h): this one, the device; net-io.c, its frames; net-ctrl.c, the control
 * queue; net-config.c, the options above.
 */
#include "vmm/virtio/net.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <unistd.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>
#include <linux/vhost.h>
#include <linux/virtio_net.h>

#include "util/util.h"

/* §5.1.4: status follows the backend's carrier; with VIRTIO_NET_F_STATUS negotiated and
 * the driver running, a change raises a configuration change interrupt (§4.1.4.5). */
static void net_sync_carrier(struct iov_virtio_dev *dev)
{
        struct net *n = dev->priv;
        uint16_t status = n->pairs[0].backend->carrier ? VIRTIO_NET_S_LINK_UP : 0;

        if (n->config.status == status)
                return;
        n->config.status = status;
        dev->config_generation++;
        if ((dev->status & VIRTIO_CONFIG_S_DRIVER_OK) &&
            virtio_dev_has_feature(dev, VIRTIO_NET_F_STATUS) && dev->transport.signal_config)
                dev->transport.signal_config(dev);
}
static int net_queue_notify(struct iov_virtio_dev *dev, unsigned q)
{
        int r;

        if (net_is_ctrl_queue(dev, q))
                r = virtio_dev_process_queue(dev, q, net_handle_ctrl);
        else if (q % 2 == 1)
                r = virtio_dev_process_queue(dev, q, net_handle_tx);
        else
                r = net_rx_serve(dev, q / 2);
        net_sync_carrier(dev);
        return r;
}

static int net_backend_ready(struct iov_virtio_dev *dev, unsigned i)
{
        struct net *n = dev->priv;
        int r = 0;

        if (i >= n->n_pairs)
                return 0;
        struct iov_net_backend *b = n->pairs[i].backend;
        if (b->ops->service)
                b->ops->service(b);
        if (i < n->active_pairs && virtio_dev_queue_ready(dev, net_rx_queue(i)))
                r = net_rx_serve(dev, i);
        net_sync_carrier(dev);
        return r;
}

/* A link's events; a link has one pair. */
static void net_backend_watch(struct iov_virtio_dev *dev)
{
        struct net *n = dev->priv;
        struct iov_net_backend *b = n->pairs[0].backend;

        if (b->ops->watch)
                b->ops->watch(b);
        net_sync_carrier(dev);
}

/* A frame waits for more receive chains than the ring holds: reading on would only take
 * more frames off the backend, so its fd rests until the driver adds buffers. A pair the
 * driver does not use rests too (§5.1.6.5.5: no frames on its receive queue). */
static bool net_backend_blocked(struct iov_virtio_dev *dev, unsigned i)
{
        const struct net *n = dev->priv;
        return i >= n->active_pairs || n->pairs[i].rx_len > 0;
}

/* Features are final: the backend hands over only the offloads the guest acked. The
 * driver starts on pair 1 alone (§5.1.6.5.5) until it sets more. */
static int net_activate(struct iov_virtio_dev *dev)
{
        struct net *n = dev->priv;

        net_attach_pairs(n);
        for (unsigned i = 0; i < n->n_pairs; i++) {
                struct iov_net_backend *b = n->pairs[i].backend;
                if (!b->features || !b->ops->set_offload)
                        continue;
                int r = b->ops->set_offload(b, dev->guest_features);
                if (r < 0)
                        return r;
        }
        return 0;
}

static void net_reset(struct iov_virtio_dev *dev)
{
        struct net *n = dev->priv;

        for (unsigned i = 0; i < n->n_pairs; i++) {
                struct iov_net_backend *b = n->pairs[i].backend;
                /* A frame read for the old driver is dropped with its rings (§2.4). */
                n->pairs[i].rx_len = 0;
                if (b->features && b->ops->set_offload)
                        (void)b->ops->set_offload(b, 0);
        }
        /* Every TAP queue back until the next driver's DRIVER_OK (net_activate). */
        n->active_pairs = n->n_pairs;
        net_attach_pairs(n);
        n->active_pairs = 1;
}

static void net_destroy(struct iov_virtio_dev *dev)
{
        struct net *n = dev->priv;
        if (!n)
                return;
        for (unsigned i = 0; i < n->n_pairs; i++) {
                if (n->pairs[i].backend)
                        n->pairs[i].backend->ops->free(n->pairs[i].backend);
                free(n->pairs[i].rx_buf);
        }
}
static int net_create(const void *options, const struct iov_virtio_host *host,
                      struct iov_virtio_dev **ret)
{
        struct iov_virtio_net_options o = *(const struct iov_virtio_net_options *)options;

        if (!o.has_mac) {
                if (getrandom(o.mac, sizeof(o.mac), 0) != (ssize_t)sizeof(o.mac))
                        return -EIO;
                /* locally administered, unicast (IEEE 802 §8.2) */
                o.mac[0] = (uint8_t)((o.mac[0] & 0xfc) | 0x02);
        }
        return virtio_net_new(host->mem, &o, ret);
}

/* iovd opens the TAP named by "tap" and /dev/vhost-net for iovd-vmm and passes them
 * (virtio.h, host_files): a jailed VMM can open neither. */
static const struct iov_virtio_host_file net_host_files[] = {
        {"tap", IOV_VIRTIO_HOST_TAP}, {"vhost", IOV_VIRTIO_HOST_VHOST_NET}, {NULL, 0}};

static const struct iov_virtio_dev_ops net_ops = {
        .name = "virtio-net",
        .device_id = VIRTIO_ID_NET,
        .features = (1ull << VIRTIO_NET_F_MAC) | (1ull << VIRTIO_NET_F_STATUS),
        .num_queues = 2,
        .queue_max_size = 256,
        .config_size = sizeof(struct virtio_net_config),
        .config_read = virtio_dev_read_config,
        .activate = net_activate,
        .queue_notify = net_queue_notify,
        .backend_ready = net_backend_ready,
        .backend_blocked = net_backend_blocked,
        .backend_watch = net_backend_watch,
        .backend_queue = 0,
        .backend_queue_stride = 2,
        .reset = net_reset,
        .destroy = net_destroy,
        .options_size = sizeof(struct iov_virtio_net_options),
        .parse_field = net_parse_field,
        .parse_done = net_parse_done,
        .host_files = net_host_files,
        .create = net_create,
};

IOV_VIRTIO_DEVICE(net_ops)
/* Pair i's backend: the TAP queue iovd passed, the one the name gave (n_pairs > 1:
 * opened by the caller into tap_fds), the TAP, or the link. */
static int net_backend_new(const struct iov_virtio_net_options *opts, unsigned i, int *tap_fds,
                           struct iov_net_backend **ret)
{
        char name[IOV_VIRTIO_NET_LINK_NAME_MAX];

        if (virtio_net_link_name(opts, name, sizeof(name)) == 0)
                return net_link_backend_new(name, opts->port[0] != 0, ret);
        if (opts->tap_queue_fds[i][0])
                return net_tap_backend_new(opts->tap_queue_fds[i], -1, opts->offload_stand_in, ret);
        if (opts->queues > 1) {
                int fd = TAKE_FD(tap_fds[i]);
                return net_tap_backend_new(NULL, fd, opts->offload_stand_in, ret);
        }
        return net_tap_backend_new(opts->tap_name, opts->tap_fd, opts->offload_stand_in, ret);
}

/* A multiqueue TAP by name (a VMM run by hand, with CAP_NET_ADMIN): its queues opened at
 * once, IFF_MULTI_QUEUE (iovd passes them as ["fd:N", ...] instead). */
static int net_open_tap_queues(const struct iov_virtio_net_options *opts, int *tap_fds)
{
        if (opts->queues < 2 || opts->tap_queue_fds[0][0] || !opts->tap_name[0] ||
            strncmp(opts->tap_name, UTIL_FD_PREFIX, strlen(UTIL_FD_PREFIX)) == 0)
                return 0;
        return virtio_net_tap_open_queues(opts->tap_name, opts->queues, tap_fds);
}

static void net_close_fds(int *fds, unsigned n)
{
        for (unsigned i = 0; i < n; i++)
                if (fds[i] >= 0)
                        close(fds[i]);
}

/* /dev/vhost-net (drivers/vhost/net.c), opened here before the sandbox or taken as the
 * "fd:N" iovd passed, and owned by this process (VHOST_SET_OWNER: its worker thread is
 * ours, in our cgroup); it must serve modern rings (VERSION_1). */
static int net_vhost_open(const char *passed, int *ret_fd, uint64_t *ret_features)
{
        _cleanup_close_ int fd = -1;
        uint64_t features = 0;

        int r = passed[0] ? util_open_inherited(passed, O_RDWR, &fd) : 0;
        if (r < 0)
                return r;
        if (fd < 0 && (fd = open("/dev/vhost-net", O_RDWR | O_CLOEXEC | O_NONBLOCK)) < 0)
                return -errno;
        if (ioctl(fd, VHOST_SET_OWNER) < 0 || ioctl(fd, VHOST_GET_FEATURES, &features) < 0)
                return -errno;
        if (!(features & (1ull << VIRTIO_F_VERSION_1)))
                return -EOPNOTSUPP;
        *ret_fd = TAKE_FD(fd);
        *ret_features = features;
        return 0;
}

/* One vhost device per pair, each with its TAP queue as backend; all or none. */
static int net_vhost_open_pairs(struct iov_virtio_dev *dev, const struct iov_virtio_net_options *o)
{
        const struct net *n = dev->priv;
        uint64_t features = ~0ull;

        for (unsigned i = 0; i < n->n_pairs; i++) {
                uint64_t f = 0;
                int backend_fd = n->pairs[i].backend->vhost_backend_fd;
                int r = backend_fd < 0 ? -EOPNOTSUPP
                                       : net_vhost_open(o->vhost_fd[i], &dev->vhost_fd[i], &f);
                if (r < 0) {
                        net_close_fds(dev->vhost_fd, i);
                        for (unsigned k = 0; k < i; k++)
                                dev->vhost_fd[k] = -1;
                        return r;
                }
                dev->vhost_backend_fd[i] = backend_fd;
                features &= f;
        }
        dev->vhost_features = features;
        dev->n_vhost = n->n_pairs;
        return 0;
}

/* The kernel's data path for a TAP where it can be had; otherwise this device serves the
 * queues itself (logged). Ring features vhost lacks are not offered. */
static int net_vhost_setup(struct iov_virtio_dev *dev, const struct iov_virtio_net_options *o)
{
        const uint64_t ring = (1ull << VIRTIO_NET_F_MRG_RXBUF) | (1ull << VIRTIO_RING_F_EVENT_IDX) |
                              (1ull << VIRTIO_RING_F_INDIRECT_DESC);
        const struct net *n = dev->priv;

        if (o->vhost == IOV_VIRTIO_NET_VHOST_OFF || n->pairs[0].backend->vhost_backend_fd < 0)
                return 0;
        int r = net_vhost_open_pairs(dev, o);
        if (r < 0 && o->vhost == IOV_VIRTIO_NET_VHOST_ON)
                return log_error_errno(r, "virtio-net: vhost-net required, unavailable: %m");
        if (r < 0) {
                log_info("virtio-net: vhost-net unavailable (%s): userspace data path",
                         strerror(-r));
                return 0;
        }
        dev->host_features &= ~(ring & ~dev->vhost_features);
        return 0;
}

/* The pairs' backends and receive buffers; tap_fds (n_pairs > 1, by name) taken over. */
static int net_pairs_new(struct net *n, const struct iov_virtio_net_options *opts, int *tap_fds)
{
        for (unsigned i = 0; i < n->n_pairs; i++) {
                struct net_pair *pair = &n->pairs[i];
                int r = net_backend_new(opts, i, tap_fds, &pair->backend);
                if (r < 0)
                        return r;
                if (!(pair->backend->features & (1ull << VIRTIO_NET_F_MRG_RXBUF)))
                        continue;
                pair->rx_buf = malloc(NET_RX_BUF_SIZE);
                if (!pair->rx_buf)
                        return -ENOMEM;
        }
        return 0;
}

static void net_pairs_free(struct net *n)
{
        for (unsigned i = 0; i < n->n_pairs; i++) {
                if (n->pairs[i].backend)
                        n->pairs[i].backend->ops->free(n->pairs[i].backend);
                free(n->pairs[i].rx_buf);
        }
        free(n);
}

/* Device features besides the backend's: the control queue and MQ with several pairs. */
static uint64_t net_mq_features(unsigned pairs)
{
        return pairs > 1 ? (1ull << VIRTIO_NET_F_CTRL_VQ) | (1ull << VIRTIO_NET_F_MQ) : 0;
}

static int net_priv_new(const struct iov_virtio_net_options *opts, struct net **ret)
{
        int tap_fds[IOV_VIRTIO_NET_MAX_PAIRS] = {-1, -1, -1, -1};
        struct net *n = calloc(1, sizeof(*n));

        if (!n)
                return -ENOMEM;
        n->n_pairs = opts->queues ? opts->queues : 1;
        n->active_pairs = 1;
        int r = n->n_pairs <= IOV_VIRTIO_NET_MAX_PAIRS ? net_open_tap_queues(opts, tap_fds)
                                                       : -EINVAL;
        if (r >= 0)
                r = net_pairs_new(n, opts, tap_fds);
        net_close_fds(tap_fds, IOV_VIRTIO_NET_MAX_PAIRS);
        if (r < 0) {
                net_pairs_free(n);
                return r;
        }
        *ret = n;
        return 0;
}

int virtio_net_new(const struct iov_virtio_mem *mem, const struct iov_virtio_net_options *opts,
                   struct iov_virtio_dev **ret)
{
        struct iov_virtio_dev *dev;
        struct net *n;

        int r = net_priv_new(opts, &n);
        if (r < 0)
                return r;
        struct iov_net_backend *backend = n->pairs[0].backend;
        memcpy(n->config.mac, opts->mac, sizeof(n->config.mac));
        n->config.status = backend->carrier ? VIRTIO_NET_S_LINK_UP : 0;
        n->config.max_virtqueue_pairs = (uint16_t)n->n_pairs;
        /* §5.1.2: 2N queues and the control queue with MQ; 2 without. */
        r = virtio_dev_new_mq(&net_ops, backend->features | net_mq_features(n->n_pairs),
                              n->n_pairs > 1 ? 2 * n->n_pairs + 1 : 2, mem, &dev);
        if (r < 0) {
                net_pairs_free(n);
                return r;
        }
        dev->priv = n;
        dev->config = &n->config;
        dev->poll_us = opts->poll_us;
        for (unsigned i = 0; i < n->n_pairs; i++)
                dev->backend_fd[i] = n->pairs[i].backend->poll_fd;
        dev->watch_fd = backend->watch_fd;
        r = net_vhost_setup(dev, opts);
        if (r < 0) {
                virtio_dev_free(dev);
                return r;
        }
        *ret = dev;
        return 0;
}
