/* SPDX-License-Identifier: MIT */
/*
 * virtio-net request parsing with a datagram socket pair standing in for the TAP fd (it
 * keeps frame boundaries the same way): the header the host sees, the header the guest
 * gets, and chains that do not fit a transmit or receive request.
 */
#include <criterion/criterion.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <linux/virtio_net.h>

#include "fake-guest.h"

#define HDR sizeof(struct virtio_net_hdr_v1)

static struct fake_guest guest;
static struct fake_ring rings[2];
static struct iov_virtio_dev *dev;
static int peer = -1;

static void setup(void)
{
        int sv[2];
        cr_assert_eq(fake_guest_init(&guest), 0, "fake guest allocation failed");
        cr_assert_eq(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0, sv), 0, "socketpair: %m");
        peer = sv[1];
        struct iov_virtio_net_options opts = {.tap_fd = sv[0], .mac = {2, 0, 0, 0, 0, 7}};
        int r = virtio_net_new(&guest.mem, &opts, &dev);
        cr_assert_eq(r, 0, "virtio_net_new returned %d", r);
        fake_dev_start(dev, &guest, rings, 16);
}

static void teardown(void)
{
        virtio_dev_free(dev);
        close(peer);
        fake_guest_fini(&guest);
}

TestSuite(virtio_net, .init = setup, .fini = teardown);

Test(virtio_net, config_has_mac_and_link)
{
        struct virtio_net_config c;
        dev->ops->config_read(dev, 0, &c, sizeof(c));
        cr_assert_eq(c.mac[5], 7, "mac[5] %u, expected 7", c.mac[5]);
        cr_assert_eq(c.status, VIRTIO_NET_S_LINK_UP, "status %u", c.status);
}

Test(virtio_net, tx_sends_frame_with_clean_header)
{
        uint64_t h = fake_guest_alloc(&guest, HDR), f = fake_guest_alloc(&guest, 60);
        memset(fake_guest_ptr(&guest, h), 0xff, HDR); /* garbage offload request */
        memset(fake_guest_ptr(&guest, f), 0x5a, 60);
        struct fake_buf bufs[] = {{h, HDR, false}, {f, 60, false}};
        fake_ring_add(&rings[1], bufs, 2);
        cr_assert_eq(virtio_dev_notify(dev, 1), 0, "notify failed");

        uint8_t got[200];
        ssize_t n = recv(peer, got, sizeof(got), 0);
        cr_assert_eq(n, (ssize_t)(HDR + 60), "backend got %zd bytes, expected %zu", n, HDR + 60);
        for (size_t i = 0; i < HDR; i++)
                cr_assert_eq(got[i], 0, "header byte %zu passed through as 0x%02x", i, got[i]);
        cr_assert_eq(got[HDR], 0x5a, "frame byte 0x%02x", got[HDR]);
        uint32_t id, len;
        cr_assert_eq(fake_ring_get_used(&rings[1], &id, &len), 1, "tx not completed");
        cr_assert_eq(dev->stats.bytes_written, 60, "tx bytes %lu",
                     (unsigned long)dev->stats.bytes_written);
}

Test(virtio_net, tx_with_writable_part_is_dropped)
{
        uint64_t f = fake_guest_alloc(&guest, 80);
        struct fake_buf bufs[] = {{f, 80, false}, {f, 8, true}};
        fake_ring_add(&rings[1], bufs, 2);
        cr_assert_eq(virtio_dev_notify(dev, 1), 0, "notify failed");
        uint8_t got[200];
        cr_assert_lt(recv(peer, got, sizeof(got), 0), 0, "malformed tx reached the backend");
        uint32_t id, len;
        cr_assert_eq(fake_ring_get_used(&rings[1], &id, &len), 1, "bad tx not completed");
        cr_assert_eq(dev->stats.requests_failed, 1, "requests_failed %lu",
                     (unsigned long)dev->stats.requests_failed);
}

Test(virtio_net, tx_header_only_is_dropped)
{
        uint64_t h = fake_guest_alloc(&guest, HDR);
        struct fake_buf bufs[] = {{h, HDR, false}};
        fake_ring_add(&rings[1], bufs, 1);
        cr_assert_eq(virtio_dev_notify(dev, 1), 0, "notify failed");
        uint8_t got[64];
        cr_assert_lt(recv(peer, got, sizeof(got), 0), 0, "empty frame reached the backend");
}

Test(virtio_net, rx_delivers_frame)
{
        uint8_t pkt[HDR + 42] = {0};
        memset(pkt + HDR, 0x42, 42);
        cr_assert_eq(send(peer, pkt, sizeof(pkt), 0), (ssize_t)sizeof(pkt), "send: %m");
        uint64_t b = fake_guest_alloc(&guest, 1526);
        struct fake_buf bufs[] = {{b, 1526, true}};
        fake_ring_add(&rings[0], bufs, 1);
        cr_assert_eq(virtio_dev_notify(dev, 0), 0, "notify failed");

        uint32_t id, len;
        cr_assert_eq(fake_ring_get_used(&rings[0], &id, &len), 1, "frame not delivered");
        cr_assert_eq(len, HDR + 42, "used len %u, expected %zu", len, HDR + 42);
        struct virtio_net_hdr_v1 *h = fake_guest_ptr(&guest, b);
        cr_assert_eq(h->num_buffers, 1, "num_buffers %u, expected 1", h->num_buffers);
        cr_assert_eq(*(uint8_t *)fake_guest_ptr(&guest, b + HDR), 0x42, "frame data differs");
        cr_assert_eq(dev->stats.bytes_read, 42, "rx bytes %lu",
                     (unsigned long)dev->stats.bytes_read);
}

Test(virtio_net, rx_without_frame_keeps_buffer)
{
        uint64_t b = fake_guest_alloc(&guest, 1526);
        struct fake_buf bufs[] = {{b, 1526, true}};
        fake_ring_add(&rings[0], bufs, 1);
        cr_assert_eq(virtio_dev_notify(dev, 0), 0, "notify failed");
        uint32_t id, len;
        cr_assert_eq(fake_ring_get_used(&rings[0], &id, &len), 0, "buffer used with no frame");

        uint8_t pkt[HDR + 10] = {0};
        cr_assert_eq(send(peer, pkt, sizeof(pkt), 0), (ssize_t)sizeof(pkt), "send: %m");
        cr_assert_eq(virtio_dev_backend_ready(dev), 0, "backend_ready failed");
        cr_assert_eq(fake_ring_get_used(&rings[0], &id, &len), 1, "kept buffer not used");
        cr_assert_eq(len, HDR + 10, "used len %u", len);
}

Test(virtio_net, rx_readable_buffer_is_failed)
{
        uint8_t pkt[HDR + 10] = {0};
        cr_assert_eq(send(peer, pkt, sizeof(pkt), 0), (ssize_t)sizeof(pkt), "send: %m");
        uint64_t b = fake_guest_alloc(&guest, 1526);
        struct fake_buf bufs[] = {{b, 1526, false}};
        fake_ring_add(&rings[0], bufs, 1);
        cr_assert_eq(virtio_dev_notify(dev, 0), 0, "notify failed");
        uint32_t id, len;
        cr_assert_eq(fake_ring_get_used(&rings[0], &id, &len), 1, "bad rx buffer not completed");
        cr_assert_eq(len, 0, "used len %u for a readable rx buffer", len);
        cr_assert_eq(*(uint8_t *)fake_guest_ptr(&guest, b), 0, "readable buffer was written");
}
