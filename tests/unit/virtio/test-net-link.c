/* SPDX-License-Identifier: MIT */
/*
 * virtio-net over a VM-to-VM link (vmm/virtio/net-link.c), with a SOCK_SEQPACKET
 * socketpair standing in for the channel iovd makes: the test holds the peer's end.
 * A port (the driver VM's side) and a client side, each a device on the fake guest:
 * carrier follows the end, frames cross without a virtio header, a port drops frames
 * from a source MAC other than its client's, a full or gone peer never blocks the queue.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <json-c/json.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <linux/virtio_net.h>

#include "fake-guest.h"

#define HDR sizeof(struct virtio_net_hdr_v1)

static const uint8_t client_mac[6] = {0x52, 0x54, 0, 0, 0, 1};
static struct fake_guest guest;
static struct fake_ring rings[2];
static struct iov_virtio_dev *dev;
static unsigned config_interrupts;

static void count_config(struct iov_virtio_dev *d)
{
        (void)d;
        config_interrupts++;
}

/* A device for a port ("client-a") or a client side ("netdom/client-a"). */
static void start(bool port)
{
        struct iov_virtio_net_options opts = {.tap_fd = -1, .has_mac = true};
        memcpy(opts.mac, client_mac, 6);
        if (port) {
                strcpy(opts.port, "client-a");
                opts.mac[5] = 0x0a;
        } else {
                strcpy(opts.peer_vm, "netdom");
                strcpy(opts.peer_port, "client-a");
        }
        cr_assert_eq(fake_guest_init(&guest), 0, "fake guest allocation failed");
        int r = virtio_net_new(&guest.mem, &opts, &dev);
        cr_assert_eq(r, 0, "virtio_net_new returned %d", r);
        dev->transport.signal_config = count_config;
        config_interrupts = 0;
        fake_dev_start(dev, &guest, rings, 16);
}

static void teardown(void)
{
        virtio_dev_free(dev);
        dev = NULL;
        fake_guest_fini(&guest);
}

/* A new channel: our end to link name (mac for a port), the peer's end returned. */
static int attach(const char *name, const uint8_t *mac)
{
        int sv[2];
        cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0,
                     "socketpair: %m");
        int r = virtio_net_link_attach(name, sv[0], mac);
        cr_assert_eq(r, 0, "attach %s returned %d", name, r);
        /* The I/O thread's turn: the eventfd woke it, it adopts the end. */
        cr_assert_geq(virtio_dev_backend_ready(dev), 0, "backend_ready failed");
        return sv[1];
}

static uint16_t status(void)
{
        struct virtio_net_config c;
        dev->ops->config_read(dev, 0, &c, sizeof(c));
        return c.status;
}

/* Counter `key` of the only link this process has. */
static int64_t counter(const char *key)
{
        struct json_object *links = virtio_net_links_json(), *v = NULL;
        cr_assert_eq(json_object_array_length(links), 1, "links: %s",
                     json_object_to_json_string(links));
        cr_assert(json_object_object_get_ex(json_object_array_get_idx(links, 0), key, &v),
                  "no %s in %s", key, json_object_to_json_string(links));
        int64_t n = json_object_get_int64(v);
        json_object_put(links);
        return n;
}

static void transmit(uint8_t fill, size_t len)
{
        uint64_t h = fake_guest_alloc(&guest, HDR), f = fake_guest_alloc(&guest, (uint32_t)len);
        memset(fake_guest_ptr(&guest, h), 0xff, HDR);
        memset(fake_guest_ptr(&guest, f), fill, len);
        memcpy((uint8_t *)fake_guest_ptr(&guest, f) + 6, client_mac, 6);
        struct fake_buf bufs[] = {{h, HDR, false}, {f, (uint32_t)len, false}};
        fake_ring_add(&rings[1], bufs, 2);
        cr_assert_eq(virtio_dev_notify(dev, 1), 0, "tx notify failed");
}

static uint64_t post_rx(void)
{
        uint64_t b = fake_guest_alloc(&guest, 1526);
        struct fake_buf bufs[] = {{b, 1526, true}};
        fake_ring_add(&rings[0], bufs, 1);
        cr_assert_eq(virtio_dev_notify(dev, 0), 0, "rx notify failed");
        return b;
}

static void send_frame(int peer, const uint8_t source[6], uint8_t fill, size_t len)
{
        uint8_t frame[1514];
        memset(frame, fill, len);
        memcpy(frame + 6, source, 6);
        cr_assert_eq(send(peer, frame, len, 0), (ssize_t)len, "send: %m");
}

TestSuite(virtio_net_link, .fini = teardown);

Test(virtio_net_link, down_until_an_end_arrives)
{
        start(false);
        cr_assert_eq(status(), 0, "status %u before any end, expected carrier off", status());
        transmit(0x11, 60);
        cr_assert_eq(counter("dropped_down"), 1, "a frame sent while down is not counted");
        uint32_t id, len;
        cr_assert_eq(fake_ring_get_used(&rings[1], &id, &len), 1, "tx while down not completed");
        int peer = attach("netdom/client-a", NULL);
        cr_assert_eq(status(), VIRTIO_NET_S_LINK_UP, "status %u after attach", status());
        cr_assert_eq(config_interrupts, 1, "%u config interrupts for carrier on",
                     config_interrupts);
        cr_assert_gt(counter("carrier_changed_usec"), 0, "the carrier change has no time");
        close(peer);
}

Test(virtio_net_link, client_frame_reaches_peer_without_header)
{
        start(false);
        int peer = attach("netdom/client-a", NULL);
        transmit(0x5a, 60);
        uint8_t got[200];
        ssize_t n = recv(peer, got, sizeof(got), MSG_DONTWAIT);
        cr_assert_eq(n, 60, "peer got %zd bytes, expected the 60-byte frame alone", n);
        cr_assert_eq(got[0], 0x5a, "frame byte 0x%02x", got[0]);
        cr_assert_eq(counter("frames_sent"), 1, "frames_sent");
        cr_assert_eq(counter("bytes_sent"), 60, "bytes_sent");
        close(peer);
}

Test(virtio_net_link, port_delivers_client_frames_with_header)
{
        start(true);
        int peer = attach("client-a", client_mac);
        uint64_t b = post_rx();
        send_frame(peer, client_mac, 0x42, 64);
        cr_assert_eq(virtio_dev_backend_ready(dev), 0, "backend_ready failed");
        uint32_t id, len;
        cr_assert_eq(fake_ring_get_used(&rings[0], &id, &len), 1, "frame not delivered");
        cr_assert_eq(len, HDR + 64, "used len %u, expected %zu", len, HDR + 64);
        struct virtio_net_hdr_v1 *h = fake_guest_ptr(&guest, b);
        cr_assert_eq(h->num_buffers, 1, "num_buffers %u", h->num_buffers);
        cr_assert_eq(h->flags | h->gso_type | h->hdr_len, 0, "header not zeroed");
        cr_assert_eq(*(uint8_t *)fake_guest_ptr(&guest, b + HDR), 0x42, "frame data differs");
        cr_assert_eq(counter("frames_received"), 1, "frames_received");
        close(peer);
}

Test(virtio_net_link, port_drops_forged_source_mac)
{
        static const uint8_t forged[6] = {0x52, 0x54, 0, 0, 0, 0x66};
        start(true);
        int peer = attach("client-a", client_mac);
        post_rx();
        send_frame(peer, forged, 0x13, 64);
        send_frame(peer, client_mac, 0x42, 70);
        cr_assert_eq(virtio_dev_backend_ready(dev), 0, "backend_ready failed");
        uint32_t id, len;
        cr_assert_eq(fake_ring_get_used(&rings[0], &id, &len), 1, "good frame not delivered");
        cr_assert_eq(len, HDR + 70, "used len %u: the forged frame got through", len);
        cr_assert_eq(fake_ring_get_used(&rings[0], &id, &len), 0, "two buffers used");
        cr_assert_eq(counter("dropped_source_mac"), 1, "forged frame not counted");
        cr_assert_eq(counter("frames_received"), 1, "frames_received");
        close(peer);
}

Test(virtio_net_link, client_side_takes_any_source)
{
        static const uint8_t other[6] = {0x52, 0x54, 0, 0, 0, 0x77};
        start(false);
        int peer = attach("netdom/client-a", NULL);
        post_rx();
        send_frame(peer, other, 0x21, 60);
        cr_assert_eq(virtio_dev_backend_ready(dev), 0, "backend_ready failed");
        uint32_t id, len;
        cr_assert_eq(fake_ring_get_used(&rings[0], &id, &len), 1, "frame not delivered");
        close(peer);
}

Test(virtio_net_link, peer_gone_turns_carrier_off_then_new_end_on)
{
        start(false);
        int peer = attach("netdom/client-a", NULL);
        post_rx();
        close(peer);
        cr_assert_eq(virtio_dev_backend_ready(dev), 0, "backend_ready failed");
        cr_assert_eq(status(), 0, "status %u after the peer closed, expected carrier off",
                     status());
        cr_assert_eq(config_interrupts, 2, "%u config interrupts (on, off)", config_interrupts);
        transmit(0x11, 60);
        cr_assert_eq(counter("dropped_down"), 1, "frame to a gone peer not counted");

        peer = attach("netdom/client-a", NULL);
        cr_assert_eq(status(), VIRTIO_NET_S_LINK_UP, "status %u after a new end", status());
        transmit(0x22, 60);
        uint8_t got[100];
        cr_assert_eq(recv(peer, got, sizeof(got), MSG_DONTWAIT), 60, "no frame on the new end");
        close(peer);
}

Test(virtio_net_link, full_peer_drops_without_blocking)
{
        start(false);
        int peer = attach("netdom/client-a", NULL);
        /* The peer never reads: the channel fills, later frames are dropped, none waits. */
        uint64_t h = fake_guest_alloc(&guest, HDR), f = fake_guest_alloc(&guest, 1500);
        memset(fake_guest_ptr(&guest, f), 0x33, 1500);
        for (int i = 0; i < 2000; i++) {
                struct fake_buf bufs[] = {{h, HDR, false}, {f, 1500, false}};
                uint32_t id, len;
                fake_ring_add(&rings[1], bufs, 2);
                cr_assert_eq(virtio_dev_notify(dev, 1), 0, "tx notify %d failed", i);
                cr_assert_eq(fake_ring_get_used(&rings[1], &id, &len), 1, "tx %d not completed", i);
        }
        cr_assert_gt(counter("dropped_full"), 0, "a full peer dropped nothing");
        cr_assert_gt(counter("frames_sent"), 0, "nothing was sent before the peer was full");
        cr_assert_eq(counter("frames_sent") + counter("dropped_full"), 2000,
                     "frames sent plus dropped is not 2000");
        cr_assert_eq(status(), VIRTIO_NET_S_LINK_UP, "a full peer is not a link down");
        close(peer);
}

Test(virtio_net_link, attach_checks_name_and_mac)
{
        int sv[2];
        start(true);
        cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0, "socketpair: %m");
        cr_assert_eq(virtio_net_link_attach("nosuch", sv[0], client_mac), -ENOENT,
                     "unknown link accepted");
        cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0, "socketpair: %m");
        cr_assert_eq(virtio_net_link_attach("client-a", sv[0], NULL), -EINVAL,
                     "a port accepted an end without its client's MAC");
        cr_assert_eq(status(), 0, "status %u after refused attaches", status());
}
