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
 * hands it the rings at DRIVER_OK (vhost.c); the frame code below then stays idle.
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
 */
#include "vmm/virtio/virtio.h"

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
#include "vmm/virtio/net-backend.h"

_Static_assert(IOV_VIRTIO_NET_TAP_NAME_MAX == IFNAMSIZ, "a TAP name is an interface name");

/* Guest features that make the transmit header meaningful to the backend (§5.1.6.2). */
#define NET_TX_OFFLOADS                                                                            \
        ((1ull << VIRTIO_NET_F_CSUM) | (1ull << VIRTIO_NET_F_HOST_TSO4) |                          \
         (1ull << VIRTIO_NET_F_HOST_TSO6))

#define NET_RX_BUF_SIZE (IOV_NET_HDR_SIZE + IOV_NET_MAX_FRAME)

/* One queue pair: receiveq at 2 * i, transmitq at 2 * i + 1 (§5.1.2). */
struct net_pair {
        struct iov_net_backend *backend;
        /* MRG_RXBUF: the frame read from the backend (rx_len bytes, header included; 0:
         * none) waiting for enough receive chains. */
        uint8_t *rx_buf;
        size_t rx_len;
        uint16_t rx_wait_idx; /* avail index when the ring held too little for it */
};

struct net {
        struct net_pair pairs[IOV_VIRTIO_NET_MAX_PAIRS];
        unsigned n_pairs;      /* max_virtqueue_pairs */
        unsigned active_pairs; /* the driver's VQ_PAIRS_SET; 1 after reset (§5.1.6.5.5) */
        struct virtio_net_config config;
        struct iovec frame[IOV_VIRTQ_MAX_SEGS + 1];
        struct virtio_net_hdr_v1 tx_hdr;
        /* MRG_RXBUF: the chains a frame is spread over (one pair at a time). */
        uint16_t rx_heads[IOV_VIRTQ_MAX_SIZE];
        uint32_t rx_lens[IOV_VIRTQ_MAX_SIZE];
};

static unsigned net_rx_queue(unsigned pair)
{
        return 2 * pair;
}

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

static int net_handle_tx(struct iov_virtio_dev *dev, unsigned q, struct iov_virtq_req *req,
                         uint32_t *ret_written)
{
        struct net *n = dev->priv;
        struct iov_net_backend *backend = n->pairs[q / 2].backend;
        size_t skip = IOV_NET_HDR_SIZE;
        unsigned k = 0;

        *ret_written = 0;
        /* A transmit chain is device-readable only and holds a header and a frame. */
        if (req->n_in > 0 || req->out_len <= IOV_NET_HDR_SIZE ||
            req->out_len - IOV_NET_HDR_SIZE > IOV_NET_MAX_FRAME) {
                dev->stats.requests_failed++;
                return 0;
        }
        /* Copied once: the guest may rewrite its header while the backend reads ours. */
        n->tx_hdr = (struct virtio_net_hdr_v1){0};
        if (dev->guest_features & NET_TX_OFFLOADS)
                virtio_iov_to_buf(req->out, req->n_out, 0, &n->tx_hdr, IOV_NET_HDR_SIZE);
        n->tx_hdr.num_buffers = 0; /* §5.1.6.2: unused on transmit */
        n->frame[k++] = (struct iovec){&n->tx_hdr, IOV_NET_HDR_SIZE};
        k += virtq_iov_skip(req->out, req->n_out, skip, n->frame + k, ARRAY_SIZE(n->frame) - k);
        /* A backend that cannot take the frame now drops it, like a wire. */
        if (backend->ops->transmit(backend, n->frame, k, req->out_len - IOV_NET_HDR_SIZE) < 0) {
                dev->stats.requests_failed++;
                return 0;
        }
        dev->stats.requests_written++;
        dev->stats.bytes_written += req->out_len - IOV_NET_HDR_SIZE;
        return 0;
}

static int net_handle_rx(struct iov_virtio_dev *dev, unsigned q, struct iov_virtq_req *req,
                         uint32_t *ret_written)
{
        struct net *n = dev->priv;
        struct iov_net_backend *backend = n->pairs[q / 2].backend;
        /* §5.1.6.3.2: without MRG_RXBUF each frame takes one buffer, num_buffers is 1. */
        uint16_t num_buffers = 1;
        size_t got = 0;

        *ret_written = 0;
        if (req->n_out > 0 || req->in_len < IOV_NET_HDR_SIZE) {
                /* A receive buffer with nothing or too little to write into: fail it. */
                dev->stats.requests_failed++;
                return 0;
        }
        int r = backend->ops->receive(backend, req->in, req->n_in, &got);
        if (r == -EAGAIN)
                return -EAGAIN;
        if (r < 0 || got < IOV_NET_HDR_SIZE) {
                dev->stats.requests_failed++;
                return r < 0 ? -EAGAIN : 0;
        }
        virtio_iov_from_buf(req->in, req->n_in, offsetof(struct virtio_net_hdr_v1, num_buffers),
                            &num_buffers, sizeof(num_buffers));
        dev->stats.requests_read++;
        dev->stats.bytes_read += got - IOV_NET_HDR_SIZE;
        *ret_written = (uint32_t)got;
        return 0;
}

/* ---- mergeable receive buffers (§5.1.6.4.2) ---- */

/* The next frame into pair->rx_buf unless one is waiting there. -EAGAIN: none. */
static int net_rx_fetch(struct iov_virtio_dev *dev, struct net_pair *pair)
{
        struct iovec iov = {pair->rx_buf, NET_RX_BUF_SIZE};
        size_t got = 0;

        while (pair->rx_len == 0) {
                int r = pair->backend->ops->receive(pair->backend, &iov, 1, &got);
                if (r < 0)
                        return -EAGAIN; /* nothing, or a backend error: retried on the next wake-up
                                         */
                if (got >= IOV_NET_HDR_SIZE)
                        pair->rx_len = got;
                else
                        dev->stats.requests_failed++; /* a frame without its header */
        }
        return 0;
}

/* Give back the chains popped for a frame that did not fit (they stay the driver's). */
static int net_rx_unpop(struct iov_virtq *vq, unsigned chains)
{
        while (chains-- > 0)
                virtq_unpop(vq);
        return -EAGAIN;
}

/* Copy the waiting frame into as many chains as it needs; *ret_chains of them, in order,
 * in n->rx_heads/rx_lens. -EAGAIN when the ring holds too little (nothing consumed),
 * -EBADMSG for a chain the driver must not post (§5.1.6.3.1: writable only, each at
 * least a header long). */
static int net_rx_spread(struct iov_virtio_dev *dev, struct net *n, unsigned i,
                         unsigned *ret_chains)
{
        struct iov_virtq *vq = &dev->queues[net_rx_queue(i)];
        struct net_pair *pair = &n->pairs[i];
        struct iov_virtq_req *req = dev->req;
        struct iovec nb[2];
        unsigned chains = 0, n_nb = 0;
        size_t off = 0;

        while (off < pair->rx_len) {
                int r = virtq_pop(vq, req);
                if (r < 0)
                        return r;
                if (r == 0) {
                        pair->rx_wait_idx = vq->last_avail;
                        return net_rx_unpop(vq, chains);
                }
                if (req->n_out > 0 || req->in_len < IOV_NET_HDR_SIZE || chains >= vq->size)
                        return -EBADMSG;
                if (chains == 0)
                        n_nb = virtq_iov_skip(req->in, req->n_in,
                                              offsetof(struct virtio_net_hdr_v1, num_buffers), nb,
                                              ARRAY_SIZE(nb));
                size_t put = virtio_iov_from_buf(req->in, req->n_in, 0, pair->rx_buf + off,
                                                 pair->rx_len - off);
                n->rx_heads[chains] = req->head;
                n->rx_lens[chains++] = (uint32_t)put;
                off += put;
        }
        uint16_t num_buffers = (uint16_t)chains;
        virtio_iov_from_buf(nb, n_nb, 0, &num_buffers, sizeof(num_buffers));
        *ret_chains = chains;
        return 0;
}

/* Pair i's waiting frame into its used ring (published by the caller). */
static int net_rx_deliver(struct iov_virtio_dev *dev, struct net *n, unsigned i)
{
        unsigned q = net_rx_queue(i), chains = 0;

        int r = net_rx_spread(dev, n, i, &chains);
        for (unsigned c = 0; r == 0 && c < chains; c++)
                r = virtq_fill(&dev->queues[q], n->rx_heads[c], n->rx_lens[c]);
        if (r < 0)
                return r;
        dev->stats.requests_read++;
        dev->stats.bytes_read += n->pairs[i].rx_len - IOV_NET_HDR_SIZE;
        if (q < IOV_VIRTIO_STATS_QUEUES)
                dev->stats.queue_requests[q]++;
        n->pairs[i].rx_len = 0;
        return 0;
}

/* Frames until the backend or the ring runs dry, at most a queue's worth per call (1:
 * call again), then one used->idx store and at most one interrupt (§2.7.7.2). */
static int net_rx_mergeable(struct iov_virtio_dev *dev, unsigned i)
{
        struct iov_virtq *vq = &dev->queues[net_rx_queue(i)];
        struct net *n = dev->priv;
        struct net_pair *pair = &n->pairs[i];
        unsigned frames = 0;
        int r = 0;

        virtq_disable_notify(vq);
        while (frames < vq->size) {
                r = net_rx_fetch(dev, pair);
                if (r == 0)
                        r = net_rx_deliver(dev, n, i);
                if (r == -EAGAIN && pair->rx_len > 0 &&
                    virtq_enable_notify_beyond(vq, pair->rx_wait_idx)) {
                        virtq_disable_notify(vq); /* buffers arrived meanwhile */
                        continue;
                }
                if (r < 0)
                        break;
                frames++;
        }
        if (r == -EAGAIN && pair->rx_len == 0)
                (void)virtq_enable_notify(vq);
        /* -EAGAIN: wait for a frame or for buffers; 0: budget spent, call again. */
        r = r == -EAGAIN ? 0 : r == 0 ? 1 : r;
        if (frames > 0) {
                virtq_flush(vq);
                virtio_dev_signal_used(dev, net_rx_queue(i));
        }
        return r;
}

static int net_rx_serve(struct iov_virtio_dev *dev, unsigned i)
{
        if (virtio_dev_has_feature(dev, VIRTIO_NET_F_MRG_RXBUF))
                return net_rx_mergeable(dev, i);
        return virtio_dev_process_queue(dev, net_rx_queue(i), net_handle_rx);
}

/* ---- the control queue (§5.1.6.5) ---- */

/* §5.1.2: the control queue follows the pairs the driver may use: max_virtqueue_pairs
 * of them with MQ, one without. */
static bool net_is_ctrl_queue(const struct iov_virtio_dev *dev, unsigned q)
{
        const struct net *n = dev->priv;

        if (!virtio_dev_has_feature(dev, VIRTIO_NET_F_CTRL_VQ))
                return false;
        return q == (virtio_dev_has_feature(dev, VIRTIO_NET_F_MQ) ? 2 * n->n_pairs : 2);
}

/* Pairs the driver does not use get no frames: their TAP queues leave the TAP's set, so
 * the kernel steers no flow to them (tuntap.rst §3.4, TUNSETQUEUE). */
static void net_attach_pairs(struct net *n)
{
        for (unsigned i = 0; i < n->n_pairs; i++) {
                struct iov_net_backend *b = n->pairs[i].backend;
                if (b->ops->set_enabled && b->ops->set_enabled(b, i < n->active_pairs) < 0)
                        log_info("virtio-net: TAP queue %u not %s: %m", i,
                                 i < n->active_pairs ? "attached" : "detached");
        }
}

/* VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET (§5.1.6.5.5): le16 virtqueue_pairs after the header,
 * 1..max_virtqueue_pairs. */
static uint8_t net_ctrl_pairs_set(struct iov_virtio_dev *dev, const struct iov_virtq_req *req)
{
        struct net *n = dev->priv;
        uint16_t pairs = 0;

        if (!virtio_dev_has_feature(dev, VIRTIO_NET_F_MQ) ||
            virtio_iov_to_buf(req->out, req->n_out, sizeof(struct virtio_net_ctrl_hdr), &pairs,
                              sizeof(pairs)) != sizeof(pairs) ||
            pairs < VIRTIO_NET_CTRL_MQ_VQ_PAIRS_MIN || pairs > n->n_pairs)
                return VIRTIO_NET_ERR;
        n->active_pairs = pairs;
        net_attach_pairs(n);
        return VIRTIO_NET_OK;
}

/* A command: header and data the device reads, one ack byte it writes (§5.1.6.5). Only
 * the MQ class is offered (the other CTRL_* features are not); anything else is ERR. */
static int net_handle_ctrl(struct iov_virtio_dev *dev, unsigned q, struct iov_virtq_req *req,
                           uint32_t *ret_written)
{
        struct virtio_net_ctrl_hdr hdr;
        uint8_t ack = VIRTIO_NET_ERR;

        (void)q;
        *ret_written = 0;
        if (req->in_len < sizeof(ack) ||
            virtio_iov_to_buf(req->out, req->n_out, 0, &hdr, sizeof(hdr)) != sizeof(hdr)) {
                dev->stats.requests_failed++;
                return 0;
        }
        if (hdr.class == VIRTIO_NET_CTRL_MQ && hdr.cmd == VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET)
                ack = net_ctrl_pairs_set(dev, req);
        if (ack != VIRTIO_NET_OK)
                dev->stats.requests_failed++;
        *ret_written = (uint32_t)virtio_iov_from_buf(req->in, req->n_in, 0, &ack, sizeof(ack));
        return 0;
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

/* "52:54:00:12:34:56": six two-digit hex octets, a unicast address. */
int virtio_parse_mac(const char *s, uint8_t ret[6])
{
        uint8_t mac[6];

        if (strlen(s) != 17)
                return -EINVAL;
        for (int i = 0; i < 6; i++) {
                char octet[3] = {s[3 * i], s[3 * i + 1], 0};
                uint64_t v;
                if ((i < 5 && s[3 * i + 2] != ':') || util_parse_u64(octet, 16, &v) < 0)
                        return -EINVAL;
                mac[i] = (uint8_t)v;
        }
        if (mac[0] & 1)
                return -EINVAL; /* a group address cannot be a NIC's own (IEEE 802 §8.2) */
        memcpy(ret, mac, sizeof(mac));
        return 0;
}

/* 1..size-1 of [A-Za-z0-9_.-]: interface and port names (size IFNAMSIZ, with the NUL),
 * and VMs as iovd names them, by name (1..64, vm-contract.h) or id. */
static bool net_word_valid(const char *s, size_t size)
{
        size_t n = strlen(s);
        if (n == 0 || n >= size)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-",
                            s[i]))
                        return false;
        return true;
}

static bool net_name_valid(const char *s)
{
        return net_word_valid(s, IFNAMSIZ);
}

static bool net_vm_name_valid(const char *s)
{
        return net_word_valid(s, IOV_VIRTIO_NET_PEER_VM_MAX);
}

/* "peer": {"vm": "netdom", "port": "client-a"}, both required, nothing else. */
static int net_parse_peer(struct iov_virtio_net_options *o, struct json_object *value,
                          char **ret_error)
{
        struct json_object *vm = NULL, *port = NULL;

        if (!json_object_is_type(value, json_type_object))
                return virtio_spec_error(ret_error, "%s", "\"peer\" must be an object");
        json_object_object_foreach (value, key, v) {
                if (!streq(key, "vm") && !streq(key, "port"))
                        return virtio_spec_error(ret_error, "peer: unknown field \"%.64s\"", key);
                if (!json_object_is_type(v, json_type_string))
                        return virtio_spec_error(ret_error, "peer: \"%s\" must be a string", key);
        }
        if (!json_object_object_get_ex(value, "vm", &vm) ||
            !json_object_object_get_ex(value, "port", &port))
                return virtio_spec_error(ret_error, "%s", "peer needs \"vm\" and \"port\"");
        const char *vm_s = json_object_get_string(vm), *port_s = json_object_get_string(port);
        if (!net_vm_name_valid(vm_s))
                return virtio_spec_error(ret_error, "peer: vm \"%.64s\" is not a VM name or id",
                                         vm_s);
        if (!net_name_valid(port_s))
                return virtio_spec_error(
                        ret_error, "peer: port \"%.64s\" is not 1..15 of [A-Za-z0-9_.-]", port_s);
        snprintf(o->peer_vm, sizeof(o->peer_vm), "%s", vm_s);
        snprintf(o->peer_port, sizeof(o->peer_port), "%s", port_s);
        return 0;
}

static bool net_fd_name_valid(const char *s)
{
        return strncmp(s, UTIL_FD_PREFIX, strlen(UTIL_FD_PREFIX)) == 0 &&
               strlen(s) < IOV_VIRTIO_NET_TAP_NAME_MAX;
}

/* ["fd:N", ...]: descriptors iovd opened and passed, one per queue pair, into names. */
static int net_parse_fd_list(const char *key, struct json_object *value,
                             char names[][IOV_VIRTIO_NET_TAP_NAME_MAX], char **ret_error)
{
        size_t len = json_object_array_length(value);

        if (len < 1 || len > IOV_VIRTIO_NET_MAX_PAIRS)
                return virtio_spec_error(ret_error, "\"%s\" lists 1 to %u descriptors", key,
                                         IOV_VIRTIO_NET_MAX_PAIRS);
        for (size_t i = 0; i < len; i++) {
                struct json_object *v = json_object_array_get_idx(value, i);
                const char *s =
                        json_object_is_type(v, json_type_string) ? json_object_get_string(v) : "";
                if (!net_fd_name_valid(s))
                        return virtio_spec_error(ret_error, "\"%s\"[%zu] is not \"fd:N\"", key, i);
                snprintf(names[i], IOV_VIRTIO_NET_TAP_NAME_MAX, "%s", s);
        }
        return 0;
}

static unsigned net_fd_list_count(const char names[][IOV_VIRTIO_NET_TAP_NAME_MAX])
{
        unsigned n = 0;
        while (n < IOV_VIRTIO_NET_MAX_PAIRS && names[n][0])
                n++;
        return n;
}

/* "queues": pairs, 1..IOV_VIRTIO_NET_MAX_PAIRS. */
static int net_parse_queues(struct iov_virtio_net_options *o, struct json_object *value,
                            char **ret_error)
{
        int64_t n = json_object_get_int64(value);

        if (!json_object_is_type(value, json_type_int) || n < 1 || n > IOV_VIRTIO_NET_MAX_PAIRS)
                return virtio_spec_error(ret_error, "\"queues\" must be an integer from 1 to %u",
                                         IOV_VIRTIO_NET_MAX_PAIRS);
        o->queues = (unsigned)n;
        return 0;
}

/* "vhost": true, false or "auto"; iovd puts "fd:N" (["fd:N", ...] with queues > 1) in its
 * place when it opened /dev/vhost-net for a jailed VMM (vms/vm-files.c). */
static int net_parse_vhost(struct iov_virtio_net_options *o, struct json_object *value,
                           char **ret_error)
{
        const char *s =
                json_object_is_type(value, json_type_string) ? json_object_get_string(value) : NULL;

        if (json_object_is_type(value, json_type_array)) {
                o->vhost = IOV_VIRTIO_NET_VHOST_ON;
                return net_parse_fd_list("vhost", value, o->vhost_fd, ret_error);
        }
        if (json_object_is_type(value, json_type_boolean)) {
                o->vhost = json_object_get_boolean(value) ? IOV_VIRTIO_NET_VHOST_ON
                                                          : IOV_VIRTIO_NET_VHOST_OFF;
                return 0;
        }
        if (s && streq(s, "auto")) {
                o->vhost = IOV_VIRTIO_NET_VHOST_AUTO;
                return 0;
        }
        if (s && net_fd_name_valid(s)) {
                o->vhost = IOV_VIRTIO_NET_VHOST_ON;
                snprintf(o->vhost_fd[0], sizeof(o->vhost_fd[0]), "%s", s);
                return 0;
        }
        return virtio_spec_error(ret_error, "%s", "\"vhost\" must be true, false or \"auto\"");
}

static int net_parse_field(void *options, const char *key, struct json_object *value,
                           char **ret_error)
{
        struct iov_virtio_net_options *o = options;

        if (streq(key, "peer"))
                return net_parse_peer(o, value, ret_error);
        if (streq(key, "vhost"))
                return net_parse_vhost(o, value, ret_error);
        if (streq(key, "queues"))
                return net_parse_queues(o, value, ret_error);
        if (streq(key, "poll_us"))
                return virtio_spec_poll_us(value, &o->poll_us, ret_error);
        if (streq(key, "tap") && json_object_is_type(value, json_type_array)) {
                int r = net_parse_fd_list(key, value, o->tap_queue_fds, ret_error);
                if (r == 0)
                        snprintf(o->tap_name, sizeof(o->tap_name), "%s", o->tap_queue_fds[0]);
                return r;
        }
        if (!streq(key, "tap") && !streq(key, "mac") && !streq(key, "port"))
                return -ENOENT;
        if (!json_object_is_type(value, json_type_string))
                return virtio_spec_error(ret_error, "\"%s\" must be a string", key);
        const char *s = json_object_get_string(value);
        if (streq(key, "tap") || streq(key, "port")) {
                /* An interface name never holds ':' (dev_valid_name), so "fd:N" is not one. */
                bool fd_name = streq(key, "tap") && net_fd_name_valid(s);
                if (!fd_name && !net_name_valid(s))
                        return virtio_spec_error(
                                ret_error, "%s \"%.64s\" is not 1..15 of [A-Za-z0-9_.-]", key, s);
                snprintf(streq(key, "tap") ? o->tap_name : o->port, sizeof(o->port), "%s", s);
                return 0;
        }
        if (virtio_parse_mac(s, o->mac) < 0)
                return virtio_spec_error(ret_error,
                                         "mac \"%.64s\" is not a unicast xx:xx:xx:xx:xx:xx", s);
        o->has_mac = true;
        return 0;
}

/* A link is one channel with one pair; passed descriptors come one per pair. */
static int net_check_queues(struct iov_virtio_net_options *o, char **ret_error)
{
        unsigned taps = net_fd_list_count(o->tap_queue_fds);
        unsigned vhosts = net_fd_list_count(o->vhost_fd);

        o->tap_fd = -1;
        if (o->queues > 1 && !o->tap_name[0])
                return virtio_spec_error(ret_error,
                                         "\"queues\": %u needs a \"tap\": a VM-to-VM link "
                                         "(\"port\", \"peer\") has one queue pair",
                                         o->queues);
        if (o->queues > 1 && taps == 0 && net_fd_name_valid(o->tap_name))
                return virtio_spec_error(ret_error, "%s",
                                         "\"tap\": one \"fd:N\" per pair with \"queues\" > 1");
        if (taps > 0 && taps != o->queues)
                return virtio_spec_error(ret_error, "\"tap\" lists %u queues, \"queues\" is %u",
                                         taps, o->queues);
        if (vhosts > 0 && vhosts != o->queues)
                return virtio_spec_error(ret_error, "\"vhost\" lists %u devices, \"queues\" is %u",
                                         vhosts, o->queues);
        return 0;
}

static int net_parse_done(void *options, char **ret_error)
{
        struct iov_virtio_net_options *o = options;
        int backends = !!o->tap_name[0] + !!o->port[0] + !!o->peer_vm[0];

        if (backends != 1)
                return virtio_spec_error(ret_error, "%s needs one of \"tap\", \"port\", \"peer\"",
                                         "virtio-net");
        /* The port accepts no other source address than this one. */
        if (o->peer_vm[0] && !o->has_mac)
                return virtio_spec_error(ret_error, "%s", "a \"peer\" link needs its \"mac\"");
        /* vhost-net takes a TAP as its backend; a link stays on the userspace path. */
        if (o->vhost == IOV_VIRTIO_NET_VHOST_ON && !o->tap_name[0])
                return virtio_spec_error(ret_error, "%s", "\"vhost\": true needs a \"tap\"");
        if (o->queues == 0)
                o->queues = 1;
        return net_check_queues(o, ret_error);
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

int virtio_net_link_name(const struct iov_virtio_net_options *opts, char *buf, size_t size)
{
        int n;

        if (opts->port[0])
                n = snprintf(buf, size, "%s", opts->port);
        else if (opts->peer_vm[0])
                n = snprintf(buf, size, "%s/%s", opts->peer_vm, opts->peer_port);
        else
                return -ENOENT;
        return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

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
