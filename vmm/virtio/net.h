/* SPDX-License-Identifier: MIT */
/*
 * Private to virtio-net: the device (net.c: queues, backends, vhost-net, lifecycle), its
 * frames (net-io.c: the transmit and receive paths, mergeable receive buffers), its
 * control queue (net-ctrl.c) and its options from the VM definition (net-config.c).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>
#include <json-c/json.h>
#include <linux/virtio_net.h>

#include "vmm/virtio/net-backend.h"
#include "vmm/virtio/virtio.h"

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

static inline unsigned net_rx_queue(unsigned pair)
{
        return 2 * pair;
}

/* net-io.c */
/* A transmit chain: header and frame to the pair's backend (q / 2). */
int net_handle_tx(struct iov_virtio_dev *dev, unsigned q, struct iov_virtq_req *req,
                  uint32_t *ret_written);
/* Pair i's receive queue filled from its backend, with or without MRG_RXBUF. */
int net_rx_serve(struct iov_virtio_dev *dev, unsigned i);

/* net-ctrl.c */
bool net_is_ctrl_queue(const struct iov_virtio_dev *dev, unsigned q);
/* The TAP queues of the pairs in use attached, the others detached. */
void net_attach_pairs(struct net *n);
int net_handle_ctrl(struct iov_virtio_dev *dev, unsigned q, struct iov_virtq_req *req,
                    uint32_t *ret_written);

/* net-config.c: ops->parse_field and ops->parse_done (virtio.h). */
int net_parse_field(void *options, const char *key, struct json_object *value, char **ret_error);
int net_parse_done(void *options, char **ret_error);
