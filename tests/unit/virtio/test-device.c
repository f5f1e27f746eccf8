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

/* Notification suppression while the device drains a queue (§2.7.10, §2.7.7.1): chains
 * the driver adds meanwhile cost no kick, and the device asks for one again only once
 * the ring is empty. The handler plays the driver: it adds two chains during the first
 * request and records whether the driver's rule would have kicked. */
static bool driver_would_kick, flags_suppressed;
static uint16_t added_during;

static bool driver_kick_rule(struct iov_virtq *vq, uint16_t old_idx, uint16_t new_idx)
{
        if (vq->event_idx) {
                uint16_t avail_event = *(volatile uint16_t *)&vq->used->ring[vq->size];
                return vring_need_event(avail_event, new_idx, old_idx);
        }
        return !(vq->used->flags & VRING_USED_F_NO_NOTIFY);
}

static int busy_driver_handle(struct iov_virtio_dev *d, unsigned q, struct iov_virtq_req *req,
                              uint32_t *ret_written)
{
        struct iov_virtq *vq = &d->queues[q];
        if (added_during == 0) {
                uint64_t a = fake_guest_alloc(&guest, 8);
                struct fake_buf bufs[] = {{a, 8, true}};
                flags_suppressed = vq->used->flags & VRING_USED_F_NO_NOTIFY;
                for (int i = 0; i < 2; i++) {
                        uint16_t old = rings[0].avail_idx;
                        fake_ring_add(&rings[0], bufs, 1);
                        driver_would_kick |= driver_kick_rule(vq, old, rings[0].avail_idx);
                        added_during++;
                }
        }
        return echo_handle(d, q, req, ret_written);
}

static int busy_driver_notify(struct iov_virtio_dev *d, unsigned q)
{
        return virtio_dev_process_queue(d, q, busy_driver_handle);
}

static void drain_with_busy_driver(bool event_idx)
{
        static struct iov_virtio_dev_ops ops;
        ops = echo_ops;
        ops.queue_notify = busy_driver_notify;
        virtio_dev_free(dev);
        cr_assert_eq(virtio_dev_new(&ops, 0, &guest.mem, &dev), 0, "virtio_dev_new failed");
        dev->transport = (struct iov_virtio_transport){.signal_queue = on_queue};
        fake_dev_start(dev, &guest, rings, 8);
        dev->queues[0].event_idx = event_idx;
        driver_would_kick = flags_suppressed = false;
        added_during = 0;

        uint64_t a = fake_guest_alloc(&guest, 8);
        struct fake_buf bufs[] = {{a, 8, true}};
        fake_ring_add(&rings[0], bufs, 1);
        (void)virtq_enable_notify(&dev->queues[0]); /* as after an earlier, empty drain */
        cr_assert_eq(virtio_dev_notify(dev, 0), 0, "notify failed");
        cr_assert_eq(handled, 3, "served %u chains, expected 3 (one kick)", handled);
        cr_assert_not(driver_would_kick,
                      "the driver would have kicked during the drain "
                      "(event_idx %d)",
                      event_idx);
        cr_assert_eq(queue_signals, 1, "%u interrupts for one batch", queue_signals);
        uint32_t id, len;
        for (int i = 0; i < 3; i++)
                cr_assert_eq(fake_ring_get_used(&rings[0], &id, &len), 1, "%d of 3 used", i);
        /* Drained: the next chain must kick again. */
        uint16_t old = rings[0].avail_idx;
        fake_ring_add(&rings[0], bufs, 1);
        cr_assert(driver_kick_rule(&dev->queues[0], old, rings[0].avail_idx),
                  "no kick asked for after the drain (event_idx %d)", event_idx);
}

Test(virtio_device, event_idx_no_kick_while_draining)
{
        drain_with_busy_driver(true);
        cr_assert_eq(fake_ring_avail_event(&rings[0]), 3, "avail_event %u, expected 3",
                     fake_ring_avail_event(&rings[0]));
}

Test(virtio_device, no_notify_flag_while_draining)
{
        drain_with_busy_driver(false);
        cr_assert(flags_suppressed, "VRING_USED_F_NO_NOTIFY not set during the drain");
        cr_assert_eq(dev->queues[0].used->flags, 0, "used flags 0x%x after the drain",
                     dev->queues[0].used->flags);
}

/* A device that completes later: the handler takes chains (IOV_VIRTIO_REQ_ASYNC), the
 * completion fills several and publishes them with one index store and one interrupt. */
static uint16_t taken[8];
static unsigned n_taken;

static int async_handle(struct iov_virtio_dev *d, unsigned q, struct iov_virtq_req *req,
                        uint32_t *ret_written)
{
        (void)d;
        (void)q;
        (void)ret_written;
        taken[n_taken++] = req->head;
        return IOV_VIRTIO_REQ_ASYNC;
}

static int async_notify(struct iov_virtio_dev *d, unsigned q)
{
        return virtio_dev_process_queue(d, q, async_handle);
}

Test(virtio_device, async_completions_published_as_one_batch)
{
        static struct iov_virtio_dev_ops ops;
        ops = echo_ops;
        ops.queue_notify = async_notify;
        virtio_dev_free(dev);
        cr_assert_eq(virtio_dev_new(&ops, 0, &guest.mem, &dev), 0, "virtio_dev_new failed");
        dev->transport = (struct iov_virtio_transport){.signal_queue = on_queue};
        fake_dev_start(dev, &guest, rings, 8);
        n_taken = 0;
        uint64_t a = fake_guest_alloc(&guest, 8);
        struct fake_buf bufs[] = {{a, 8, true}};
        for (int i = 0; i < 4; i++)
                fake_ring_add(&rings[0], bufs, 1);
        cr_assert_eq(virtio_dev_notify(dev, 0), 0, "notify failed");
        cr_assert_eq(n_taken, 4, "took %u chains", n_taken);
        cr_assert_eq(dev->queues[0].used->idx, 0, "used idx %u before any completion",
                     dev->queues[0].used->idx);
        cr_assert_eq(queue_signals, 0, "interrupt before any completion");

        for (unsigned i = 0; i < 3; i++) {
                cr_assert_eq(virtio_dev_fill_used(dev, 0, taken[i], 8), 0, "fill failed");
                cr_assert_eq(dev->queues[0].used->idx, 0, "used idx published by a fill");
        }
        virtio_dev_flush_used(dev, 0);
        cr_assert_eq(dev->queues[0].used->idx, 3, "used idx %u after the flush",
                     dev->queues[0].used->idx);
        cr_assert_eq(queue_signals, 1, "%u interrupts for one batch", queue_signals);
        cr_assert_eq(virtio_dev_fill_used(dev, 5, taken[3], 8), -EINVAL, "queue 5 filled");
}
