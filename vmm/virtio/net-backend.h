/* SPDX-License-Identifier: MIT */
/*
 * Private to virtio-net (net.c, net-tap.c, net-link.c): where a virtio-net device's frames
 * go. The device (net.c) owns the queues and the guest's view; a backend moves whole
 * frames to and from one host object: a TAP interface (net-tap.c) or one end of a
 * VM-to-VM link (net-link.c). Neither blocks: the I/O thread serving the queues must
 * never wait for a peer.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>
#include <linux/virtio_net.h>

#include "vmm/virtio/virtio.h"

#define IOV_NET_HDR_SIZE sizeof(struct virtio_net_hdr_v1)
/* Largest frame without GSO: 64 KiB covers jumbo frames and anything TAP may hand us. */
#define IOV_NET_MAX_FRAME 65550u
#define IOV_NET_ETH_HLEN  14u /* destination, source, EtherType (IEEE 802.3 §3.1.1) */

struct iov_net_backend;

struct iov_net_backend_ops {
        /* One frame out. frame[0] is a virtio_net_hdr_v1 in host memory, zeroed unless the
         * guest negotiated an offload of the backend's features (then the guest's own,
         * copied once), frame[1..n-1] the frame itself (len bytes). 0 when sent, -ENOBUFS
         * when dropped (the peer is full or gone), never blocks. */
        int (*transmit)(struct iov_net_backend *b, const struct iovec *frame, unsigned n,
                        size_t len);
        /* One frame in, into a receive buffer whose first IOV_NET_HDR_SIZE bytes are the
         * header: *ret_len is the bytes written, header included (the backend writes a
         * zeroed header when its host object has none). -EAGAIN when nothing is waiting. */
        int (*receive)(struct iov_net_backend *b, const struct iovec *buf, unsigned n,
                       size_t *ret_len);
        /* Things that happen to the host object besides frames (a peer's end closed, a new
         * end arrived): handle them, update carrier. NULL: nothing ever happens. */
        void (*service)(struct iov_net_backend *b);
        /* watch_fd is readable: the same as service, also while the guest has posted no
         * receive buffer (poll_fd then rests, and a closed peer would go unnoticed until
         * the guest's next frame). NULL with watch_fd -1. */
        void (*watch)(struct iov_net_backend *b);
        /* The guest's features are final (DRIVER_OK) or back to none (reset): hand the
         * guest only the offloaded frames it acked (virtio 1.2 §5.1.6.4). NULL when the
         * backend offers no offload (features 0). */
        int (*set_offload)(struct iov_net_backend *b, uint64_t guest_features);
        /* A multiqueue TAP's queue in or out of the TAP's set (TUNSETQUEUE): the kernel
         * steers frames only to attached queues. NULL: always in. */
        int (*set_enabled)(struct iov_net_backend *b, bool enabled);
        void (*free)(struct iov_net_backend *b);
};

struct iov_net_backend {
        const struct iov_net_backend_ops *ops;
        int poll_fd;  /* readable when receive or service has work */
        int watch_fd; /* readable on events besides frames (ops->watch), or -1 */
        bool carrier; /* virtio 1.2 §5.1.4: VIRTIO_NET_S_LINK_UP */
        /* virtio-net feature bits the backend carries (offloads, mergeable receive
         * buffers): what the device offers besides MAC and STATUS; 0 for the plain path. */
        uint64_t features;
        /* The fd vhost-net can take as its backend (VHOST_NET_SET_BACKEND: a TAP), or -1
         * (a link, or a stand-in): such a backend stays on the userspace path. */
        int vhost_backend_fd;
};

/* The offloads a TAP carries: checksum and TSO both ways, and mergeable receive buffers
 * (the device's side, offered with them; virtio 1.2 §5.1.3). */
#define IOV_NET_TAP_FEATURES                                                                       \
        ((1ull << VIRTIO_NET_F_CSUM) | (1ull << VIRTIO_NET_F_GUEST_CSUM) |                         \
         (1ull << VIRTIO_NET_F_HOST_TSO4) | (1ull << VIRTIO_NET_F_HOST_TSO6) |                     \
         (1ull << VIRTIO_NET_F_GUEST_TSO4) | (1ull << VIRTIO_NET_F_GUEST_TSO6) |                   \
         (1ull << VIRTIO_NET_F_MRG_RXBUF))

/* net-tap.c: TAP interface name (opened or created), or an open TAP fd (taken over).
 * stand_in: offer the offloads although fd may be no TAP (its TUNSETOFFLOAD is skipped). */
int net_tap_backend_new(const char *name, int fd, bool stand_in, struct iov_net_backend **ret);
/* net-link.c: a VM-to-VM link named name ("PORT" on the driver side, "VM/PORT" on the
 * client's), down until virtio_net_link_attach() hands it an end. */
int net_link_backend_new(const char *name, bool is_port, struct iov_net_backend **ret);
