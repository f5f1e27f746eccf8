/* SPDX-License-Identifier: MIT */
/*
 * virtio-blk request parsing against a temporary raw image: reads and writes land where
 * the header says, bad requests get IOERR/UNSUPP and leave the image untouched.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/virtio_blk.h>

#include "fake-guest.h"

#define SECTORS 16

static struct fake_guest guest;
static struct fake_ring rings[1];
static struct iov_virtio_dev *dev;
static char image[] = "/tmp/iovd-virtio-blk-XXXXXX";
static int image_fd = -1;

static uint8_t pattern(uint64_t off)
{
        return (uint8_t)(off * 7 + off / 512);
}

static void start(bool read_only)
{
        cr_assert_eq(fake_guest_init(&guest), 0, "fake guest allocation failed");
        strcpy(image, "/tmp/iovd-virtio-blk-XXXXXX");
        image_fd = mkstemp(image);
        cr_assert_geq(image_fd, 0, "mkstemp failed: %m");
        uint8_t buf[SECTORS * 512];
        for (size_t i = 0; i < sizeof(buf); i++)
                buf[i] = pattern(i);
        cr_assert_eq(write(image_fd, buf, sizeof(buf)), (ssize_t)sizeof(buf), "image write");
        struct iov_virtio_blk_options opts = {.read_only = read_only, .serial = "iovd-test-disk"};
        snprintf(opts.path, sizeof(opts.path), "%s", image);
        int r = virtio_blk_new(&guest.mem, &opts, &dev);
        cr_assert_eq(r, 0, "virtio_blk_new returned %d", r);
        fake_dev_start(dev, &guest, rings, 16);
}

static void setup(void)
{
        start(false);
}

static void teardown(void)
{
        virtio_dev_free(dev);
        dev = NULL;
        close(image_fd);
        unlink(image);
        fake_guest_fini(&guest);
}

TestSuite(virtio_blk, .init = setup, .fini = teardown);

struct blk_req {
        uint64_t hdr, data, status;
};

/* Header + data + status in three descriptors; returns the used length. */
static uint32_t submit(uint32_t type, uint64_t sector, uint32_t data_len, bool data_writable,
                       struct blk_req *ret)
{
        struct blk_req q = {fake_guest_alloc(&guest, 16), fake_guest_alloc(&guest, data_len),
                            fake_guest_alloc(&guest, 1)};
        struct virtio_blk_outhdr h = {.type = type, .sector = sector};
        memcpy(fake_guest_ptr(&guest, q.hdr), &h, sizeof(h));
        *(uint8_t *)fake_guest_ptr(&guest, q.status) = 0xee;
        struct fake_buf bufs[] = {
                {q.hdr, 16, false}, {q.data, data_len, data_writable}, {q.status, 1, true}};
        if (data_len)
                fake_ring_add(&rings[0], bufs, 3);
        else
                fake_ring_add(&rings[0], (struct fake_buf[]){bufs[0], bufs[2]}, 2);
        int r = virtio_dev_notify(dev, 0);
        cr_assert_eq(r, 0, "notify returned %d", r);
        uint32_t id, len;
        cr_assert_eq(fake_ring_get_used(&rings[0], &id, &len), 1, "request not completed");
        *ret = q;
        return len;
}

static uint8_t status_of(const struct blk_req *q)
{
        return *(uint8_t *)fake_guest_ptr(&guest, q->status);
}

static void expect_image_unchanged(void)
{
        uint8_t buf[SECTORS * 512];
        cr_assert_eq(pread(image_fd, buf, sizeof(buf), 0), (ssize_t)sizeof(buf), "image read");
        for (size_t i = 0; i < sizeof(buf); i++)
                cr_assert_eq(buf[i], pattern(i), "image byte %zu changed to 0x%02x", i, buf[i]);
}

Test(virtio_blk, config_reports_capacity)
{
        struct virtio_blk_config c;
        dev->ops->config_read(dev, 0, &c, sizeof(c));
        cr_assert_eq(c.capacity, SECTORS, "capacity %lu, expected %d", (unsigned long)c.capacity,
                     SECTORS);
        cr_assert(!(dev->host_features & (1ull << VIRTIO_BLK_F_RO)), "RO offered on a rw disk");
}

Test(virtio_blk, read_returns_file_data)
{
        struct blk_req q;
        uint32_t len = submit(VIRTIO_BLK_T_IN, 3, 1024, true, &q);
        cr_assert_eq(status_of(&q), VIRTIO_BLK_S_OK, "status %u", status_of(&q));
        cr_assert_eq(len, 1025, "used len %u, expected 1025", len);
        const uint8_t *d = fake_guest_ptr(&guest, q.data);
        for (int i = 0; i < 1024; i++)
                cr_assert_eq(d[i], pattern(3 * 512 + i), "data byte %d is 0x%02x", i, d[i]);
        cr_assert_eq(dev->stats.bytes_read, 1024, "bytes_read %lu",
                     (unsigned long)dev->stats.bytes_read);
        cr_assert_eq(dev->stats.requests_read, 1, "requests_read %lu",
                     (unsigned long)dev->stats.requests_read);
}

Test(virtio_blk, write_reaches_file)
{
        struct blk_req q;
        uint64_t data = fake_guest_alloc(&guest, 0); /* where submit puts the data */
        memset(fake_guest_ptr(&guest, data + 16), 0xab, 512);
        uint32_t len = submit(VIRTIO_BLK_T_OUT, SECTORS - 1, 512, false, &q);
        cr_assert_eq(status_of(&q), VIRTIO_BLK_S_OK, "status %u", status_of(&q));
        cr_assert_eq(len, 1, "used len %u, expected 1", len);
        uint8_t buf[512];
        cr_assert_eq(pread(image_fd, buf, 512, (SECTORS - 1) * 512), 512, "image read");
        for (int i = 0; i < 512; i++)
                cr_assert_eq(buf[i], 0xab, "image byte %d is 0x%02x", i, buf[i]);
        cr_assert_eq(dev->stats.bytes_written, 512, "bytes_written %lu",
                     (unsigned long)dev->stats.bytes_written);
}

Test(virtio_blk, read_only_refuses_writes)
{
        teardown();
        start(true);
        cr_assert(dev->host_features & (1ull << VIRTIO_BLK_F_RO), "RO not offered");
        struct blk_req q;
        submit(VIRTIO_BLK_T_OUT, 0, 512, false, &q);
        cr_assert_eq(status_of(&q), VIRTIO_BLK_S_IOERR, "write on read-only: status %u",
                     status_of(&q));
        expect_image_unchanged();
}

Test(virtio_blk, out_of_range_fails)
{
        static const uint64_t sectors[] = {SECTORS - 1, SECTORS, ~0ull, ~0ull / 512};
        for (unsigned i = 0; i < 4; i++) {
                struct blk_req q;
                uint32_t len = submit(VIRTIO_BLK_T_OUT, sectors[i], 1024, false, &q);
                cr_assert_eq(status_of(&q), VIRTIO_BLK_S_IOERR, "sector %lu: status %u",
                             (unsigned long)sectors[i], status_of(&q));
                cr_assert_eq(len, 1, "sector %lu: used len %u", (unsigned long)sectors[i], len);
        }
        expect_image_unchanged();
        cr_assert_eq(dev->stats.requests_failed, 4, "requests_failed %lu",
                     (unsigned long)dev->stats.requests_failed);
}

Test(virtio_blk, partial_sector_fails)
{
        struct blk_req q;
        submit(VIRTIO_BLK_T_OUT, 0, 100, false, &q);
        cr_assert_eq(status_of(&q), VIRTIO_BLK_S_IOERR, "100-byte write: status %u", status_of(&q));
        expect_image_unchanged();
}

Test(virtio_blk, oversized_request_fails)
{
        /* Five 1 MiB descriptors over the same guest buffer: 5 MiB > the bound. */
        uint64_t hdr = fake_guest_alloc(&guest, 16), st = fake_guest_alloc(&guest, 1);
        struct virtio_blk_outhdr h = {.type = VIRTIO_BLK_T_IN};
        memcpy(fake_guest_ptr(&guest, hdr), &h, sizeof(h));
        struct fake_buf bufs[7] = {{hdr, 16, false}};
        for (int i = 1; i <= 5; i++)
                bufs[i] = (struct fake_buf){0, 1u << 20, true};
        bufs[6] = (struct fake_buf){st, 1, true};
        fake_ring_add(&rings[0], bufs, 7);
        cr_assert_eq(virtio_dev_notify(dev, 0), 0, "notify failed");
        uint8_t s = *(uint8_t *)fake_guest_ptr(&guest, st);
        cr_assert_eq(s, VIRTIO_BLK_S_IOERR, "5 MiB read: status %u", s);
}

Test(virtio_blk, short_header_fails)
{
        uint64_t hdr = fake_guest_alloc(&guest, 8), st = fake_guest_alloc(&guest, 1);
        struct fake_buf bufs[] = {{hdr, 8, false}, {st, 1, true}};
        fake_ring_add(&rings[0], bufs, 2);
        cr_assert_eq(virtio_dev_notify(dev, 0), 0, "notify failed");
        uint8_t s = *(uint8_t *)fake_guest_ptr(&guest, st);
        cr_assert_eq(s, VIRTIO_BLK_S_IOERR, "8-byte header: status %u", s);
}

Test(virtio_blk, header_split_across_descriptors)
{
        uint64_t hdr = fake_guest_alloc(&guest, 16), data = fake_guest_alloc(&guest, 512),
                 st = fake_guest_alloc(&guest, 1);
        struct virtio_blk_outhdr h = {.type = VIRTIO_BLK_T_IN, .sector = 1};
        memcpy(fake_guest_ptr(&guest, hdr), &h, sizeof(h));
        struct fake_buf bufs[] = {
                {hdr, 5, false}, {hdr + 5, 11, false}, {data, 512, true}, {st, 1, true}};
        fake_ring_add(&rings[0], bufs, 4);
        cr_assert_eq(virtio_dev_notify(dev, 0), 0, "notify failed");
        uint8_t s = *(uint8_t *)fake_guest_ptr(&guest, st);
        cr_assert_eq(s, VIRTIO_BLK_S_OK, "split header: status %u", s);
        uint8_t d0 = *(uint8_t *)fake_guest_ptr(&guest, data);
        cr_assert_eq(d0, pattern(512), "first byte 0x%02x, expected 0x%02x", d0, pattern(512));
}

Test(virtio_blk, status_sharing_the_data_buffer)
{
        /* Data and status in one writable descriptor of 513 bytes. */
        uint64_t hdr = fake_guest_alloc(&guest, 16), data = fake_guest_alloc(&guest, 513);
        struct virtio_blk_outhdr h = {.type = VIRTIO_BLK_T_IN, .sector = 2};
        memcpy(fake_guest_ptr(&guest, hdr), &h, sizeof(h));
        struct fake_buf bufs[] = {{hdr, 16, false}, {data, 513, true}};
        fake_ring_add(&rings[0], bufs, 2);
        cr_assert_eq(virtio_dev_notify(dev, 0), 0, "notify failed");
        const uint8_t *d = fake_guest_ptr(&guest, data);
        cr_assert_eq(d[512], VIRTIO_BLK_S_OK, "status byte %u", d[512]);
        cr_assert_eq(d[511], pattern(2 * 512 + 511), "last data byte 0x%02x", d[511]);
}

Test(virtio_blk, no_status_byte_fails_without_io)
{
        uint64_t hdr = fake_guest_alloc(&guest, 16);
        struct virtio_blk_outhdr h = {.type = VIRTIO_BLK_T_OUT};
        memcpy(fake_guest_ptr(&guest, hdr), &h, sizeof(h));
        struct fake_buf bufs[] = {{hdr, 16, false}, {hdr, 16, false}};
        fake_ring_add(&rings[0], bufs, 2);
        cr_assert_eq(virtio_dev_notify(dev, 0), 0, "notify failed");
        uint32_t id, len;
        cr_assert_eq(fake_ring_get_used(&rings[0], &id, &len), 1, "request not completed");
        cr_assert_eq(len, 0, "used len %u without a status byte", len);
        expect_image_unchanged();
}

Test(virtio_blk, flush_get_id_and_unknown)
{
        struct blk_req q;
        submit(VIRTIO_BLK_T_FLUSH, 0, 0, false, &q);
        cr_assert_eq(status_of(&q), VIRTIO_BLK_S_OK, "flush: status %u", status_of(&q));

        uint32_t len = submit(VIRTIO_BLK_T_GET_ID, 0, VIRTIO_BLK_ID_BYTES, true, &q);
        cr_assert_eq(status_of(&q), VIRTIO_BLK_S_OK, "get_id: status %u", status_of(&q));
        cr_assert_eq(len, VIRTIO_BLK_ID_BYTES + 1, "get_id used len %u", len);
        cr_assert_str_eq((char *)fake_guest_ptr(&guest, q.data), "iovd-test-disk", "serial '%s'",
                         (char *)fake_guest_ptr(&guest, q.data));

        submit(VIRTIO_BLK_T_DISCARD, 0, 16, false, &q);
        cr_assert_eq(status_of(&q), VIRTIO_BLK_S_UNSUPP, "discard: status %u", status_of(&q));
}

Test(virtio_blk, bad_image_is_refused)
{
        struct iov_virtio_dev *d = NULL;
        struct iov_virtio_blk_options opts = {.path = "/nonexistent/disk.img"};
        cr_assert_lt(virtio_blk_new(&guest.mem, &opts, &d), 0, "missing image accepted");
        cr_assert_eq(ftruncate(image_fd, 1000), 0, "truncate");
        snprintf(opts.path, sizeof(opts.path), "%s", image);
        int r = virtio_blk_new(&guest.mem, &opts, &d);
        cr_assert_lt(r, 0, "1000-byte image (not whole sectors) accepted");
        cr_assert_null(d, "device returned on failure");
}

Test(virtio_blk, only_regular_files)
{
        struct iov_virtio_dev *d = NULL;
        struct iov_virtio_blk_options opts = {.path = "/dev/null"};
        int r = virtio_blk_new(&guest.mem, &opts, &d);
        cr_assert_eq(r, -EINVAL, "/dev/null as a disk: returned %d, expected -EINVAL", r);
        snprintf(opts.path, sizeof(opts.path), "%s", "/tmp");
        r = virtio_blk_new(&guest.mem, &opts, &d);
        cr_assert_lt(r, 0, "a directory as a disk: returned %d", r);
}
