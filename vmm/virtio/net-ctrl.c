/* SPDX-License-Identifier: MIT */
/*
 * virtio-net's control queue (virtio 1.2 §5.1.6.5): VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, and
 * the TAP queues of the pairs the driver does not use taken out of the TAP's set.
 */
#include "vmm/virtio/net.h"

#include <linux/virtio_net.h>

#include "util/util.h"

/* §5.1.2: the control queue follows the pairs the driver may use: max_virtqueue_pairs
 * of them with MQ, one without. */
bool net_is_ctrl_queue(const struct iov_virtio_dev *dev, unsigned q)
{
        const struct net *n = dev->priv;

        if (!virtio_dev_has_feature(dev, VIRTIO_NET_F_CTRL_VQ))
                return false;
        return q == (virtio_dev_has_feature(dev, VIRTIO_NET_F_MQ) ? 2 * n->n_pairs : 2);
}

/* Pairs the driver does not use get no frames: their TAP queues leave the TAP's set, so
 * the kernel steers no flow to them (tuntap.rst §3.4, TUNSETQUEUE). */
void net_attach_pairs(struct net *n)
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
int net_handle_ctrl(struct iov_virtio_dev *dev, unsigned q, struct iov_virtq_req *req,
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
