/* SPDX-License-Identifier: MIT */
/*
 * virtio-net's frames (virtio 1.2 §5.1.6): the transmit path (one chain, one frame to the
 * backend) and the receive path, one chain per frame, or with MRG_RXBUF a frame spread
 * over as many chains as it needs (§5.1.6.4.2). See net.c for the device.
 */
#include "vmm/virtio/net.h"

#include <errno.h>
#include <linux/virtio_net.h>

#include "util/util.h"

/* Guest features that make the transmit header meaningful to the backend (§5.1.6.2). */
#define NET_TX_OFFLOADS                                                                            \
        ((1ull << VIRTIO_NET_F_CSUM) | (1ull << VIRTIO_NET_F_HOST_TSO4) |                          \
         (1ull << VIRTIO_NET_F_HOST_TSO6))

int net_handle_tx(struct iov_virtio_dev *dev, unsigned q, struct iov_virtq_req *req,
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

int net_rx_serve(struct iov_virtio_dev *dev, unsigned i)
{
        if (virtio_dev_has_feature(dev, VIRTIO_NET_F_MRG_RXBUF))
                return net_rx_mergeable(dev, i);
        return virtio_dev_process_queue(dev, net_rx_queue(i), net_handle_rx);
}
