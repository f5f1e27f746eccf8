/* SPDX-License-Identifier: MIT */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "fake-guest.h"

static struct fake_guest guest;
static struct fake_ring rings[2];
static struct iov_virtio_dev *dev;
static int in_pipe[2], out_pipe[2];

static void setup(void)
{
        cr_assert_eq(fake_guest_init(&guest), 0, "fake guest allocation failed");
        cr_assert_eq(pipe(in_pipe), 0, "pipe: %m");
        cr_assert_eq(pipe(out_pipe), 0, "pipe: %m");
        int r = virtio_console_new(&guest.mem, in_pipe[0], out_pipe[1], &dev);
        cr_assert_eq(r, 0, "virtio_console_new returned %d", r);
        fake_dev_start(dev, &guest, rings, 16);
}

static void teardown(void)
{
        virtio_dev_free(dev);
        for (int i = 0; i < 2; i++) {
                close(in_pipe[i]);
                close(out_pipe[i]);
        }
        fake_guest_fini(&guest);
}

TestSuite(virtio_console, .init = setup, .fini = teardown);

Test(virtio_console, output_reaches_stream_in_order)
{
        uint64_t a = fake_guest_alloc(&guest, 6), b = fake_guest_alloc(&guest, 6);
        memcpy(fake_guest_ptr(&guest, a), "hello ", 6);
        memcpy(fake_guest_ptr(&guest, b), "world\n", 6);
        fake_ring_add(&rings[1], (struct fake_buf[]){{a, 6, false}}, 1);
        fake_ring_add(&rings[1], (struct fake_buf[]){{b, 6, false}}, 1);
        cr_assert_eq(virtio_dev_notify(dev, 1), 0, "notify failed");
        char got[32] = {0};
        ssize_t n = read(out_pipe[0], got, sizeof(got) - 1);
        cr_assert_eq(n, 12, "stream got %zd bytes", n);
        cr_assert_str_eq(got, "hello world\n", "stream got '%s'", got);
        cr_assert_eq(dev->stats.bytes_written, 12, "bytes_written %lu",
                     (unsigned long)dev->stats.bytes_written);
}

Test(virtio_console, input_fills_receive_buffer)
{
        uint64_t a = fake_guest_alloc(&guest, 64);
        fake_ring_add(&rings[0], (struct fake_buf[]){{a, 64, true}}, 1);
        cr_assert_eq(virtio_dev_notify(dev, 0), 0, "notify failed");
        uint32_t id, len;
        cr_assert_eq(fake_ring_get_used(&rings[0], &id, &len), 0, "buffer used without input");

        cr_assert_eq(write(in_pipe[1], "ls\n", 3), 3, "write: %m");
        cr_assert_eq(virtio_dev_backend_ready(dev), 0, "backend_ready failed");
        cr_assert_eq(fake_ring_get_used(&rings[0], &id, &len), 1, "input not delivered");
        cr_assert_eq(len, 3, "used len %u, expected 3", len);
        cr_assert_eq(memcmp(fake_guest_ptr(&guest, a), "ls\n", 3), 0, "input differs");
}

Test(virtio_console, input_eof_is_reported)
{
        uint64_t a = fake_guest_alloc(&guest, 64);
        fake_ring_add(&rings[0], (struct fake_buf[]){{a, 64, true}}, 1);
        close(in_pipe[1]);
        in_pipe[1] = -1;
        int r = virtio_dev_backend_ready(dev);
        cr_assert_eq(r, -EPIPE, "backend_ready at EOF returned %d, expected -EPIPE", r);
        uint32_t id, len;
        cr_assert_eq(fake_ring_get_used(&rings[0], &id, &len), 0, "buffer used at EOF");
}
