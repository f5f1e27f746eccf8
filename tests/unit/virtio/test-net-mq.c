/* SPDX-License-Identifier: MIT */
/*
 * Multiqueue virtio-net (virtio 1.2 §5.1.6.5.5) with datagram socket pairs standing in
 * for the TAP's queues, passed the way iovd passes them ("tap": ["fd:N", "fd:M"]): the
 * queue layout and config space, the control queue's VQ_PAIRS_SET, frames of each pair
 * on its own backend, idle pairs left alone; and the adaptive poll's hits and misses.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <linux/virtio_config.h>
#include <linux/virtio_net.h>

#include "fake-guest.h"
#include "util/util.h"

#define HDR   sizeof(struct virtio_net_hdr_v1)
#define PAIRS 2
#define CTRLQ (2 * PAIRS)

static struct fake_guest guest;
static struct fake_ring rings[2 * PAIRS + 1];
static struct iov_virtio_dev *dev;
static int peers[PAIRS] = {-1, -1};

/* A device with PAIRS pairs, each backend one end of a socket pair (the other in peers). */
static void start(unsigned poll_us)
{
        struct iov_virtio_net_options opts = {.mac = {2, 0, 0, 0, 0, 8},
                                              .queues = PAIRS,
                                              .poll_us = poll_us,
                                              .vhost = IOV_VIRTIO_NET_VHOST_OFF};

        cr_assert_eq(fake_guest_init(&guest), 0, "fake guest allocation failed");
        for (unsigned i = 0; i < PAIRS; i++) {
                int sv[2];
                cr_assert_eq(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0, sv), 0,
                             "socketpair: %m");
                peers[i] = sv[1];
                /* dup'ed by the device like an inherited descriptor; ours is closed below */
                snprintf(opts.tap_queue_fds[i], sizeof(opts.tap_queue_fds[i]), "fd:%d", sv[0]);
        }
        snprintf(opts.tap_name, sizeof(opts.tap_name), "%s", opts.tap_queue_fds[0]);
        int r = virtio_net_new(&guest.mem, &opts, &dev);
        cr_assert_eq(r, 0, "virtio_net_new returned %d", r);
        for (unsigned i = 0; i < PAIRS; i++) {
                int fd = -1;
                sscanf(opts.tap_queue_fds[i], "fd:%d", &fd);
                close(fd);
        }
        uint8_t status = fake_dev_start(dev, &guest, rings, 16);
        cr_assert(status & VIRTIO_CONFIG_S_DRIVER_OK, "device status 0x%x", status);
}

static void teardown(void)
{
        virtio_dev_free(dev);
        dev = NULL;
        for (unsigned i = 0; i < PAIRS; i++)
                if (peers[i] >= 0)
                        close(peers[i]);
        if (guest.ram)
                fake_guest_fini(&guest);
}

TestSuite(virtio_net_mq, .fini = teardown);

/* One control command on the control queue; returns the device's ack. */
static uint8_t ctrl_command(uint8_t class, uint8_t cmd, const void *data, uint32_t len)
{
        uint64_t h = fake_guest_alloc(&guest, 2), d = fake_guest_alloc(&guest, 16),
                 a = fake_guest_alloc(&guest, 1);
        uint8_t *hdr = fake_guest_ptr(&guest, h), *ack = fake_guest_ptr(&guest, a);

        hdr[0] = class;
        hdr[1] = cmd;
        memcpy(fake_guest_ptr(&guest, d), data, len);
        *ack = 0xee;
        struct fake_buf bufs[] = {{h, 2, false}, {d, len, false}, {a, 1, true}};
        fake_ring_add(&rings[CTRLQ], bufs, 3);
        cr_assert_eq(virtio_dev_notify(dev, CTRLQ), 0, "control queue notify failed");
        uint32_t id, written;
        cr_assert_eq(fake_ring_get_used(&rings[CTRLQ], &id, &written), 1, "command not completed");
        cr_assert_eq(written, 1, "the device wrote %u bytes, expected the ack byte", written);
        return *ack;
}

static uint8_t pairs_set(uint16_t pairs)
{
        return ctrl_command(VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, &pairs,
                            sizeof(pairs));
}

Test(virtio_net_mq, layout_and_config)
{
        struct virtio_net_config c;

        start(0);
        cr_assert_eq(dev->num_queues, 2 * PAIRS + 1, "%u queues, expected %u", dev->num_queues,
                     2 * PAIRS + 1);
        uint64_t mq = (1ull << VIRTIO_NET_F_MQ) | (1ull << VIRTIO_NET_F_CTRL_VQ);
        cr_assert_eq(dev->host_features & mq, mq, "features 0x%llx lack MQ or CTRL_VQ",
                     (unsigned long long)dev->host_features);
        dev->ops->config_read(dev, 0, &c, sizeof(c));
        cr_assert_eq(c.max_virtqueue_pairs, PAIRS, "max_virtqueue_pairs %u", c.max_virtqueue_pairs);
        for (unsigned i = 0; i < PAIRS; i++)
                cr_assert_geq(dev->backend_fd[i], 0, "pair %u has no backend fd", i);
}

Test(virtio_net_mq, single_pair_has_no_control_queue)
{
        int sv[2];

        cr_assert_eq(fake_guest_init(&guest), 0, "fake guest allocation failed");
        cr_assert_eq(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0, sv), 0, "socketpair: %m");
        peers[0] = sv[1];
        struct iov_virtio_net_options opts = {.tap_fd = sv[0], .mac = {2, 0, 0, 0, 0, 8}};
        int r = virtio_net_new(&guest.mem, &opts, &dev);
        cr_assert_eq(r, 0, "virtio_net_new returned %d", r);
        cr_assert_eq(dev->num_queues, 2, "%u queues for one pair", dev->num_queues);
        cr_assert_eq(dev->host_features & (1ull << VIRTIO_NET_F_CTRL_VQ), 0,
                     "one pair offers a control queue");
}

Test(virtio_net_mq, pairs_set_takes_1_to_max)
{
        start(0);
        cr_assert_eq(pairs_set(2), VIRTIO_NET_OK, "VQ_PAIRS_SET 2 refused");
        cr_assert_eq(pairs_set(1), VIRTIO_NET_OK, "VQ_PAIRS_SET 1 refused");
        cr_assert_eq(pairs_set(0), VIRTIO_NET_ERR, "VQ_PAIRS_SET 0 accepted");
        cr_assert_eq(pairs_set(PAIRS + 1), VIRTIO_NET_ERR, "VQ_PAIRS_SET beyond max accepted");
        uint8_t promisc = 1;
        cr_assert_eq(ctrl_command(VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC, &promisc, 1),
                     VIRTIO_NET_ERR, "a command of a class not offered was accepted");
}

/* A receive chain on pair i's receive queue. */
static void post_rx(unsigned i)
{
        uint64_t b = fake_guest_alloc(&guest, 2048);
        fake_ring_add(&rings[2 * i], &(struct fake_buf){b, 2048, true}, 1);
        cr_assert_eq(virtio_dev_notify(dev, 2 * i), 0, "notify rx %u failed", i);
}

Test(virtio_net_mq, idle_pair_gets_no_frames_until_set)
{
        uint8_t frame[HDR + 60] = {0};
        uint32_t id, len;

        start(0);
        post_rx(1);
        cr_assert(dev->ops->backend_blocked(dev, 1), "pair 2 is polled before VQ_PAIRS_SET");
        cr_assert_eq(send(peers[1], frame, sizeof(frame), 0), (ssize_t)sizeof(frame), "send: %m");
        cr_assert_eq(virtio_dev_backend_ready_at(dev, 1), 0, "backend 1 ready failed");
        cr_assert_eq(fake_ring_get_used(&rings[2], &id, &len), 0, "an idle pair got a frame");

        cr_assert_eq(pairs_set(2), VIRTIO_NET_OK, "VQ_PAIRS_SET 2 refused");
        cr_assert_not(dev->ops->backend_blocked(dev, 1), "pair 2 still idle after VQ_PAIRS_SET");
        cr_assert_eq(virtio_dev_backend_ready_at(dev, 1), 0, "backend 1 ready failed");
        cr_assert_eq(fake_ring_get_used(&rings[2], &id, &len), 1, "pair 2 got no frame");
        cr_assert_eq(len, sizeof(frame), "pair 2 got %u bytes", len);
        cr_assert_eq(dev->stats.queue_requests[2], 1, "queue 2 counted %llu requests",
                     (unsigned long long)dev->stats.queue_requests[2]);
}

Test(virtio_net_mq, each_pair_transmits_on_its_own_backend)
{
        uint8_t got[256];

        start(0);
        cr_assert_eq(pairs_set(2), VIRTIO_NET_OK, "VQ_PAIRS_SET 2 refused");
        for (unsigned i = 0; i < PAIRS; i++) {
                uint64_t f = fake_guest_alloc(&guest, HDR + 60);
                memset((uint8_t *)fake_guest_ptr(&guest, f) + HDR, 0x10 + (int)i, 60);
                fake_ring_add(&rings[2 * i + 1], &(struct fake_buf){f, HDR + 60, false}, 1);
                cr_assert_eq(virtio_dev_notify(dev, 2 * i + 1), 0, "notify tx %u failed", i);
        }
        for (unsigned i = 0; i < PAIRS; i++) {
                ssize_t n = recv(peers[i], got, sizeof(got), 0);
                cr_assert_eq(n, (ssize_t)(HDR + 60), "backend %u got %zd bytes", i, n);
                cr_assert_eq(got[HDR], 0x10 + i, "backend %u got pair 0x%x's frame", i, got[HDR]);
                cr_assert_eq(dev->stats.queue_requests[2 * i + 1], 1, "queue %u counted %llu",
                             2 * i + 1, (unsigned long long)dev->stats.queue_requests[2 * i + 1]);
        }
}

Test(virtio_net_mq, poll_miss_is_counted)
{
        start(200);
        uint64_t f = fake_guest_alloc(&guest, HDR + 60);
        fake_ring_add(&rings[1], &(struct fake_buf){f, HDR + 60, false}, 1);
        cr_assert_eq(virtio_dev_notify(dev, 1), 0, "notify failed");
        cr_assert_eq(dev->stats.poll_misses, 1, "%llu poll misses, expected 1",
                     (unsigned long long)dev->stats.poll_misses);
        cr_assert_eq(dev->stats.poll_hits, 0, "%llu poll hits with nothing posted",
                     (unsigned long long)dev->stats.poll_hits);
}

/* The driver's second request, posted while the device polls after the first. */
struct late {
        uint64_t gpa;
        uint16_t used_before;
        bool running;
};

static void *late_request(void *arg)
{
        struct late *l = arg;

        __atomic_store_n(&l->running, true, __ATOMIC_RELEASE);
        /* The first request is in the used ring: the device is about to look at an empty
         * ring and poll. A few microseconds more (busy: a sleep may take milliseconds on a
         * loaded host) put the second one into the poll rather than the first batch. */
        while (__atomic_load_n(&dev->queues[1].used_idx, __ATOMIC_ACQUIRE) == l->used_before)
                ;
        uint64_t until = util_now_usec() + 20;
        while (util_now_usec() < until)
                ;
        fake_ring_add(&rings[1], &(struct fake_buf){l->gpa, HDR + 60, false}, 1);
        return NULL;
}

/* One request, a notification, and a second request from another thread meanwhile. */
static void poll_attempt(void)
{
        struct late l = {.gpa = fake_guest_alloc(&guest, HDR + 60),
                         .used_before = dev->queues[1].used_idx};
        uint64_t f = fake_guest_alloc(&guest, HDR + 60);
        pthread_t t;

        cr_assert_eq(pthread_create(&t, NULL, late_request, &l), 0, "pthread_create");
        fake_ring_add(&rings[1], &(struct fake_buf){f, HDR + 60, false}, 1);
        while (!__atomic_load_n(&l.running, __ATOMIC_ACQUIRE))
                ;
        cr_assert_eq(virtio_dev_notify(dev, 1), 0, "notify failed");
        pthread_join(t, NULL);
}

Test(virtio_net_mq, poll_hit_serves_without_a_kick)
{
        unsigned attempts = 0;

        start(IOV_VIRTIO_POLL_US_MAX);
        /* The late request lands in the 1 ms poll unless the host preempts a thread at the
         * wrong moment: a few attempts. */
        while (dev->stats.poll_hits == 0 && attempts < 20) {
                poll_attempt();
                attempts++;
        }
        if (dev->stats.poll_hits == 0)
                cr_skip_test("no second request came during the 1 ms poll in %u attempts: host "
                             "too loaded to time it",
                             attempts);
        /* A hit is a request served with no notification of its own; one more sweeps up
         * a straggler of an attempt whose thread was preempted past the poll. */
        cr_assert_eq(virtio_dev_notify(dev, 1), 0, "notify failed");
        cr_assert_eq(dev->stats.requests_written, 2 * attempts,
                     "%llu requests served in %u attempts of two",
                     (unsigned long long)dev->stats.requests_written, attempts);
}
