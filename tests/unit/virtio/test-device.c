/* SPDX-License-Identifier: MIT */
/*
 * The device layer: feature negotiation, status, reset, and how a broken ring becomes
 * DEVICE_NEEDS_RESET (virtio 1.2 §2.1.2) with a config-change interrupt.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>
#include <linux/virtio_config.h>

#include "fake-guest.h"

static struct fake_guest guest;
static struct fake_ring rings[1];
static struct iov_virtio_dev *dev;
static unsigned config_signals, queue_signals, handled;

static int echo_handle(struct iov_virtio_dev *d, unsigned q, struct iov_virtq_req *req,
                       uint32_t *ret_written)
{
        (void)d;
        (void)q;
        handled++;
        *ret_written = (uint32_t)req->in_len;
        return 0;
}

static int echo_notify(struct iov_virtio_dev *d, unsigned q)
{
        return virtio_dev_process_queue(d, q, echo_handle);
}

static const struct iov_virtio_dev_ops echo_ops = {
        .name = "echo",
        .device_id = 99,
        .num_queues = 1,
        .queue_max_size = 512,
        .queue_notify = echo_notify,
};

static void on_config(struct iov_virtio_dev *d)
{
        (void)d;
        config_signals++;
}

static void on_queue(struct iov_virtio_dev *d, unsigned q)
{
        (void)d;
        (void)q;
        queue_signals++;
}

static void setup(void)
{
        cr_assert_eq(fake_guest_init(&guest), 0, "fake guest allocation failed");
        int r = virtio_dev_new(&echo_ops, 0, &guest.mem, &dev);
        cr_assert_eq(r, 0, "virtio_dev_new returned %d", r);
        dev->transport =
                (struct iov_virtio_transport){.signal_queue = on_queue, .signal_config = on_config};
        config_signals = queue_signals = handled = 0;
}

static void teardown(void)
{
        virtio_dev_free(dev);
        fake_guest_fini(&guest);
}

TestSuite(virtio_device, .init = setup, .fini = teardown);

#define S_NEGOTIATING (VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER)

Test(virtio_device, features_ok_needs_version_1)
{
        virtio_dev_set_status(dev, S_NEGOTIATING);
        dev->guest_features = 1ull << VIRTIO_RING_F_EVENT_IDX;
        virtio_dev_set_status(dev, S_NEGOTIATING | VIRTIO_CONFIG_S_FEATURES_OK);
        cr_assert_eq(dev->status & VIRTIO_CONFIG_S_FEATURES_OK, 0,
                     "FEATURES_OK kept without VERSION_1 (status 0x%x)", dev->status);
}

Test(virtio_device, features_ok_refuses_unoffered_feature)
{
        virtio_dev_set_status(dev, S_NEGOTIATING);
        dev->guest_features = (1ull << VIRTIO_F_VERSION_1) | (1ull << 40);
        virtio_dev_set_status(dev, S_NEGOTIATING | VIRTIO_CONFIG_S_FEATURES_OK);
        cr_assert_eq(dev->status & VIRTIO_CONFIG_S_FEATURES_OK, 0,
                     "FEATURES_OK kept with unoffered bit 40 (status 0x%x)", dev->status);
}

Test(virtio_device, features_ok_sets_queue_features)
{
        virtio_dev_set_status(dev, S_NEGOTIATING);
        dev->guest_features = (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_RING_F_EVENT_IDX);
        virtio_dev_set_status(dev, S_NEGOTIATING | VIRTIO_CONFIG_S_FEATURES_OK);
        cr_assert(dev->status & VIRTIO_CONFIG_S_FEATURES_OK, "FEATURES_OK refused (0x%x)",
                  dev->status);
        cr_assert(dev->queues[0].event_idx, "event_idx not set on the queue");
        cr_assert(!dev->queues[0].indirect_desc, "indirect_desc set though not negotiated");
}

Test(virtio_device, requests_flow_after_driver_ok)
{
        uint8_t s = fake_dev_start(dev, &guest, rings, 8);
        cr_assert(s & VIRTIO_CONFIG_S_DRIVER_OK, "device did not reach DRIVER_OK (0x%x)", s);
        uint64_t a = fake_guest_alloc(&guest, 8);
        struct fake_buf bufs[] = {{a, 8, true}};
        fake_ring_add(&rings[0], bufs, 1);
        int r = virtio_dev_notify(dev, 0);
        cr_assert_eq(r, 0, "notify returned %d", r);
        uint32_t id, len;
        cr_assert_eq(fake_ring_get_used(&rings[0], &id, &len), 1, "no used element");
        cr_assert_eq(len, 8, "used len %u, expected 8", len);
        cr_assert_eq(queue_signals, 1, "queue interrupts %u, expected 1", queue_signals);
}

Test(virtio_device, notify_before_driver_ok_is_ignored)
{
        uint64_t a = fake_guest_alloc(&guest, 8);
        struct fake_buf bufs[] = {{a, 8, true}};
        fake_ring_init(&rings[0], &guest, &dev->queues[0], 8, 0x1000);
        cr_assert_eq(virtq_enable(&dev->queues[0], &guest.mem), 0, "enable failed");
        fake_ring_add(&rings[0], bufs, 1);
        int r = virtio_dev_notify(dev, 0);
        cr_assert_eq(r, 0, "notify returned %d", r);
        cr_assert_eq(handled, 0, "request served before DRIVER_OK");
        cr_assert_eq(virtio_dev_notify(dev, 7), -EINVAL, "notify of queue 7 accepted");
}

Test(virtio_device, broken_ring_sets_needs_reset)
{
        fake_dev_start(dev, &guest, rings, 8);
        uint64_t a = fake_guest_alloc(&guest, 8);
        fake_ring_set_desc(&rings[0], 0, a, 8, VRING_DESC_F_NEXT, 0); /* self loop */
        fake_ring_publish(&rings[0], 0, 1);
        int r = virtio_dev_notify(dev, 0);
        cr_assert_eq(r, -EBADMSG, "notify on a looping chain returned %d", r);
        cr_assert(dev->status & VIRTIO_CONFIG_S_NEEDS_RESET, "NEEDS_RESET not set (0x%x)",
                  dev->status);
        cr_assert_eq(config_signals, 1, "config interrupts %u, expected 1", config_signals);

        /* The driver cannot clear it by writing status; only a reset does. */
        virtio_dev_set_status(dev, dev->status & ~VIRTIO_CONFIG_S_NEEDS_RESET);
        cr_assert(dev->status & VIRTIO_CONFIG_S_NEEDS_RESET, "status write cleared NEEDS_RESET");
        r = virtio_dev_notify(dev, 0);
        cr_assert_eq(r, 0, "notify on a device needing reset returned %d", r);

        virtio_dev_set_status(dev, 0);
        cr_assert_eq(dev->status, 0, "status 0x%x after reset", dev->status);
        cr_assert(!dev->queues[0].enabled, "queue still enabled after reset");
        cr_assert_eq(dev->queues[0].size, 512, "queue size %u after reset, expected 512",
                     dev->queues[0].size);
}

Test(virtio_device, full_ring_is_served_in_budgeted_rounds)
{
        fake_dev_start(dev, &guest, rings, 512);
        uint64_t a = fake_guest_alloc(&guest, 8);
        struct fake_buf bufs[] = {{a, 8, true}};
        for (int i = 0; i < 400; i++)
                fake_ring_add(&rings[0], bufs, 1);
        int r = virtio_dev_notify(dev, 0);
        cr_assert_eq(r, 1, "first round returned %d, expected 1 (work left)", r);
        cr_assert(handled < 400, "first round served all %u requests", handled);
        r = virtio_dev_notify(dev, 0);
        cr_assert_eq(r, 0, "second round returned %d", r);
        cr_assert_eq(handled, 400, "served %u requests, expected 400", handled);
}
