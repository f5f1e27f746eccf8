/* SPDX-License-Identifier: MIT */
#include <criterion/criterion.h>
#include <string.h>

#include "fake-guest.h"

static struct fake_guest guest;
static struct fake_ring rings[1];
static struct iov_virtio_dev *dev;

static void setup(void)
{
        cr_assert_eq(fake_guest_init(&guest), 0, "fake guest allocation failed");
        int r = virtio_rng_new(&guest.mem, &dev);
        cr_assert_eq(r, 0, "virtio_rng_new returned %d", r);
        fake_dev_start(dev, &guest, rings, 16);
}

static void teardown(void)
{
        virtio_dev_free(dev);
        fake_guest_fini(&guest);
}

TestSuite(virtio_rng, .init = setup, .fini = teardown);

static uint32_t request(const struct fake_buf *bufs, unsigned n)
{
        uint32_t id, len;
        fake_ring_add(&rings[0], bufs, n);
        int r = virtio_dev_notify(dev, 0);
        cr_assert_eq(r, 0, "notify returned %d", r);
        cr_assert_eq(fake_ring_get_used(&rings[0], &id, &len), 1, "request not completed");
        return len;
}

Test(virtio_rng, fills_the_buffer)
{
        uint64_t a = fake_guest_alloc(&guest, 256);
        struct fake_buf bufs[] = {{a, 256, true}};
        uint32_t len = request(bufs, 1);
        cr_assert_eq(len, 256, "used len %u, expected 256", len);
        static const uint8_t zero[256];
        cr_assert_neq(memcmp(fake_guest_ptr(&guest, a), zero, 256), 0, "buffer still zero");
        cr_assert_eq(dev->stats.bytes_read, 256, "bytes_read %lu",
                     (unsigned long)dev->stats.bytes_read);
}

Test(virtio_rng, request_is_capped)
{
        uint64_t a = fake_guest_alloc(&guest, 3000), b = fake_guest_alloc(&guest, 3000);
        struct fake_buf bufs[] = {{a, 3000, true}, {b, 3000, true}};
        uint32_t len = request(bufs, 2);
        cr_assert_eq(len, IOV_VIRTIO_RNG_MAX_REQUEST, "used len %u, expected the cap %u", len,
                     IOV_VIRTIO_RNG_MAX_REQUEST);
        static const uint8_t zero[16];
        cr_assert_eq(memcmp(fake_guest_ptr(&guest, b + 1096), zero, 16), 0,
                     "bytes past the cap were written");
}

Test(virtio_rng, readable_only_chain_gets_nothing)
{
        uint64_t a = fake_guest_alloc(&guest, 64);
        struct fake_buf bufs[] = {{a, 64, false}};
        uint32_t len = request(bufs, 1);
        cr_assert_eq(len, 0, "used len %u for a readable-only chain", len);
}
