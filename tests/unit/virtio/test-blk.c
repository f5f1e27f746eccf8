/* SPDX-License-Identifier: MIT */
/*
 * virtio-blk request parsing against a temporary raw image: reads and writes land where
 * the header says, bad requests get IOERR/UNSUPP and leave the image untouched. Every
 * test runs twice: suite virtio_blk on io_uring (requests in flight, completed through
 * the completion fd) and virtio_blk_sync on the pread/pwrite fallback.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_ring.h>

#include "fake-guest.h"
#include "util/util.h"

#define SECTORS 16

static struct fake_guest guest;
static struct fake_ring rings[IOV_VIRTIO_BLK_MAX_QUEUES];
static struct iov_virtio_dev *dev;
static char image[64] = "/tmp/iovd-virtio-blk-XXXXXX";
static int image_fd = -1;
static bool sync_mode;

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
        struct iov_virtio_blk_options opts = {
                .read_only = read_only, .serial = "iovd-test-disk", .no_io_uring = sync_mode};
        snprintf(opts.path, sizeof(opts.path), "%s", image);
        int r = virtio_blk_new(&guest.mem, &opts, &dev);
        cr_assert_eq(r, 0, "virtio_blk_new returned %d", r);
        if (!sync_mode && dev->completion_fd < 0)
                cr_skip("io_uring is not available here (kernel or sandbox): the "
                        "virtio_blk_sync suite covers the fallback");
        fake_dev_start(dev, &guest, rings, 16);
}

static void setup_uring(void)
{
        sync_mode = false;
        start(false);
}

static void setup_sync(void)
{
        sync_mode = true;
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

/* One body, two tests: io_uring and the synchronous fallback. */
#define BLK_TEST(name)                                                                             \
        static void name(void);                                                                    \
        Test(virtio_blk, name, .init = setup_uring, .fini = teardown)                              \
        {                                                                                          \
                name();                                                                            \
        }                                                                                          \
        Test(virtio_blk_sync, name, .init = setup_sync, .fini = teardown)                          \
        {                                                                                          \
                name();                                                                            \
        }                                                                                          \
        static void name(void)

/* The driver's kick, then what the device finishes asynchronously is completed. */
static void notify_and_settle(void)
{
        int r = virtio_dev_notify(dev, 0);
        cr_assert_eq(r, 0, "notify returned %d", r);
        r = fake_dev_settle(dev, NULL);
        cr_assert_eq(r, 0, "completions: %d", r);
}

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
        notify_and_settle();
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

BLK_TEST(config_reports_capacity)
{
        struct virtio_blk_config c;
        dev->ops->config_read(dev, 0, &c, sizeof(c));
        cr_assert_eq(c.capacity, SECTORS, "capacity %lu, expected %d", (unsigned long)c.capacity,
                     SECTORS);
        cr_assert(!(dev->host_features & (1ull << VIRTIO_BLK_F_RO)), "RO offered on a rw disk");
}

BLK_TEST(read_returns_file_data)
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

BLK_TEST(write_reaches_file)
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

BLK_TEST(read_only_refuses_writes)
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

BLK_TEST(out_of_range_fails)
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

BLK_TEST(partial_sector_fails)
{
        struct blk_req q;
        submit(VIRTIO_BLK_T_OUT, 0, 100, false, &q);
        cr_assert_eq(status_of(&q), VIRTIO_BLK_S_IOERR, "100-byte write: status %u", status_of(&q));
        expect_image_unchanged();
}

BLK_TEST(oversized_request_fails)
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
        notify_and_settle();
        uint8_t s = *(uint8_t *)fake_guest_ptr(&guest, st);
        cr_assert_eq(s, VIRTIO_BLK_S_IOERR, "5 MiB read: status %u", s);
}

BLK_TEST(short_header_fails)
{
        uint64_t hdr = fake_guest_alloc(&guest, 8), st = fake_guest_alloc(&guest, 1);
        struct fake_buf bufs[] = {{hdr, 8, false}, {st, 1, true}};
        fake_ring_add(&rings[0], bufs, 2);
        notify_and_settle();
        uint8_t s = *(uint8_t *)fake_guest_ptr(&guest, st);
        cr_assert_eq(s, VIRTIO_BLK_S_IOERR, "8-byte header: status %u", s);
}

BLK_TEST(header_split_across_descriptors)
{
        uint64_t hdr = fake_guest_alloc(&guest, 16), data = fake_guest_alloc(&guest, 512),
                 st = fake_guest_alloc(&guest, 1);
        struct virtio_blk_outhdr h = {.type = VIRTIO_BLK_T_IN, .sector = 1};
        memcpy(fake_guest_ptr(&guest, hdr), &h, sizeof(h));
        struct fake_buf bufs[] = {
                {hdr, 5, false}, {hdr + 5, 11, false}, {data, 512, true}, {st, 1, true}};
        fake_ring_add(&rings[0], bufs, 4);
        notify_and_settle();
        uint8_t s = *(uint8_t *)fake_guest_ptr(&guest, st);
        cr_assert_eq(s, VIRTIO_BLK_S_OK, "split header: status %u", s);
        uint8_t d0 = *(uint8_t *)fake_guest_ptr(&guest, data);
        cr_assert_eq(d0, pattern(512), "first byte 0x%02x, expected 0x%02x", d0, pattern(512));
}

BLK_TEST(status_sharing_the_data_buffer)
{
        /* Data and status in one writable descriptor of 513 bytes. */
        uint64_t hdr = fake_guest_alloc(&guest, 16), data = fake_guest_alloc(&guest, 513);
        struct virtio_blk_outhdr h = {.type = VIRTIO_BLK_T_IN, .sector = 2};
        memcpy(fake_guest_ptr(&guest, hdr), &h, sizeof(h));
        struct fake_buf bufs[] = {{hdr, 16, false}, {data, 513, true}};
        fake_ring_add(&rings[0], bufs, 2);
        notify_and_settle();
        const uint8_t *d = fake_guest_ptr(&guest, data);
        cr_assert_eq(d[512], VIRTIO_BLK_S_OK, "status byte %u", d[512]);
        cr_assert_eq(d[511], pattern(2 * 512 + 511), "last data byte 0x%02x", d[511]);
}

BLK_TEST(no_status_byte_fails_without_io)
{
        uint64_t hdr = fake_guest_alloc(&guest, 16);
        struct virtio_blk_outhdr h = {.type = VIRTIO_BLK_T_OUT};
        memcpy(fake_guest_ptr(&guest, hdr), &h, sizeof(h));
        struct fake_buf bufs[] = {{hdr, 16, false}, {hdr, 16, false}};
        fake_ring_add(&rings[0], bufs, 2);
        notify_and_settle();
        uint32_t id, len;
        cr_assert_eq(fake_ring_get_used(&rings[0], &id, &len), 1, "request not completed");
        cr_assert_eq(len, 0, "used len %u without a status byte", len);
        expect_image_unchanged();
}

BLK_TEST(flush_get_id_and_unknown)
{
        struct blk_req q;
        submit(VIRTIO_BLK_T_FLUSH, 0, 0, false, &q);
        cr_assert_eq(status_of(&q), VIRTIO_BLK_S_OK, "flush: status %u", status_of(&q));

        uint32_t len = submit(VIRTIO_BLK_T_GET_ID, 0, VIRTIO_BLK_ID_BYTES, true, &q);
        cr_assert_eq(status_of(&q), VIRTIO_BLK_S_OK, "get_id: status %u", status_of(&q));
        cr_assert_eq(len, VIRTIO_BLK_ID_BYTES + 1, "get_id used len %u", len);
        cr_assert_str_eq((char *)fake_guest_ptr(&guest, q.data), "iovd-test-disk", "serial '%s'",
                         (char *)fake_guest_ptr(&guest, q.data));

        submit(99, 0, 16, false, &q);
        cr_assert_eq(status_of(&q), VIRTIO_BLK_S_UNSUPP, "type 99: status %u", status_of(&q));
}

BLK_TEST(bad_image_is_refused)
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

BLK_TEST(only_regular_files)
{
        struct iov_virtio_dev *d = NULL;
        struct iov_virtio_blk_options opts = {.path = "/dev/null"};
        int r = virtio_blk_new(&guest.mem, &opts, &d);
        cr_assert_eq(r, -EINVAL, "/dev/null as a disk: returned %d, expected -EINVAL", r);
        snprintf(opts.path, sizeof(opts.path), "%s", "/tmp");
        r = virtio_blk_new(&guest.mem, &opts, &d);
        cr_assert_lt(r, 0, "a directory as a disk: returned %d", r);
}

/* Five reads in one kick: the device takes them all before any completes (io_uring: in
 * flight together), and returns them with at most one interrupt per completion batch
 * (one used->idx store each), data in place. */
BLK_TEST(batch_of_reads_in_flight_together)
{
        struct blk_req q[5];
        for (unsigned i = 0; i < 5; i++) {
                q[i] = (struct blk_req){fake_guest_alloc(&guest, 16), fake_guest_alloc(&guest, 512),
                                        fake_guest_alloc(&guest, 1)};
                struct virtio_blk_outhdr h = {.type = VIRTIO_BLK_T_IN, .sector = i * 3};
                memcpy(fake_guest_ptr(&guest, q[i].hdr), &h, sizeof(h));
                struct fake_buf bufs[] = {
                        {q[i].hdr, 16, false}, {q[i].data, 512, true}, {q[i].status, 1, true}};
                fake_ring_add(&rings[0], bufs, 3);
        }
        cr_assert_eq(virtio_dev_notify(dev, 0), 0, "notify failed");
        cr_assert_eq(dev->queues[0].last_avail, 5, "device took %u of 5 chains",
                     dev->queues[0].last_avail);
        uint32_t id, len;
        if (!sync_mode)
                cr_assert_eq(fake_ring_get_used(&rings[0], &id, &len), 0,
                             "a read completed before the completion fd was served");
        usleep(100 * 1000); /* let the kernel finish them all: one batch, normally */
        unsigned rounds = 1;
        cr_assert_eq(fake_dev_settle(dev, &rounds), 0, "completions timed out");
        for (unsigned i = 0; i < 5; i++) {
                cr_assert_eq(fake_ring_get_used(&rings[0], &id, &len), 1, "%u of 5 used", i);
                cr_assert_eq(len, 513, "used len %u, expected 513", len);
                uint8_t d = *(uint8_t *)fake_guest_ptr(&guest, q[id / 3].data);
                cr_assert_eq(d, pattern(id / 3 * 3 * 512), "head %u: data byte 0x%02x", id, d);
                cr_assert_eq(status_of(&q[id / 3]), VIRTIO_BLK_S_OK, "head %u: status", id);
        }
        cr_assert_leq(dev->stats.interrupts, rounds, "%lu interrupts for %u completion batches",
                      (unsigned long)dev->stats.interrupts, rounds);
        cr_assert_eq(dev->stats.requests_read, 5, "requests_read %lu",
                     (unsigned long)dev->stats.requests_read);
}

/* DISCARD / WRITE_ZEROES: header, segments in the device-readable part, status. */
static uint8_t submit_segments(uint32_t type, const struct virtio_blk_discard_write_zeroes *segs,
                               unsigned n, uint32_t bytes)
{
        uint64_t hdr = fake_guest_alloc(&guest, 16), seg = fake_guest_alloc(&guest, bytes),
                 st = fake_guest_alloc(&guest, 1);
        struct virtio_blk_outhdr h = {.type = type};
        memcpy(fake_guest_ptr(&guest, hdr), &h, sizeof(h));
        memcpy(fake_guest_ptr(&guest, seg), segs, n * sizeof(*segs));
        *(uint8_t *)fake_guest_ptr(&guest, st) = 0xee;
        struct fake_buf bufs[] = {{hdr, 16, false}, {seg, bytes, false}, {st, 1, true}};
        fake_ring_add(&rings[0], bufs, 3);
        notify_and_settle();
        uint32_t id, len;
        cr_assert_eq(fake_ring_get_used(&rings[0], &id, &len), 1, "request not completed");
        cr_assert_eq(len, 1, "used len %u, expected 1", len);
        return *(uint8_t *)fake_guest_ptr(&guest, st);
}

static uint8_t submit_range(uint32_t type, uint64_t sector, uint32_t sectors, uint32_t flags)
{
        struct virtio_blk_discard_write_zeroes s = {
                .sector = sector, .num_sectors = sectors, .flags = flags};
        return submit_segments(type, &s, 1, sizeof(s));
}

static void expect_zeroes(uint64_t from, uint64_t to)
{
        uint8_t buf[SECTORS * 512];
        cr_assert_eq(pread(image_fd, buf, sizeof(buf), 0), (ssize_t)sizeof(buf), "image read");
        for (size_t i = 0; i < sizeof(buf); i++) {
                uint8_t want = i >= from * 512 && i < to * 512 ? 0 : pattern(i);
                cr_assert_eq(buf[i], want, "image byte %zu is 0x%02x, expected 0x%02x", i, buf[i],
                             want);
        }
}

BLK_TEST(discard_and_write_zeroes_limits_in_config)
{
        uint64_t want = (1ull << VIRTIO_BLK_F_DISCARD) | (1ull << VIRTIO_BLK_F_WRITE_ZEROES);
        cr_assert_eq(dev->host_features & want, want, "features 0x%llx",
                     (unsigned long long)dev->host_features);
        struct virtio_blk_config c;
        dev->ops->config_read(dev, 0, &c, sizeof(c));
        cr_assert_gt(c.max_discard_sectors, 0, "max_discard_sectors 0");
        cr_assert_gt(c.max_discard_seg, 0, "max_discard_seg 0");
        cr_assert_gt(c.discard_sector_alignment, 0, "discard_sector_alignment 0");
        cr_assert_gt(c.max_write_zeroes_sectors, 0, "max_write_zeroes_sectors 0");
        cr_assert_gt(c.max_write_zeroes_seg, 0, "max_write_zeroes_seg 0");

        teardown();
        start(true);
        cr_assert_eq(dev->host_features & want, 0, "discard/write-zeroes offered read-only");
        cr_assert_eq(submit_range(VIRTIO_BLK_T_WRITE_ZEROES, 0, 1, 0), VIRTIO_BLK_S_IOERR,
                     "write-zeroes on a read-only disk not refused");
        expect_image_unchanged();
}

BLK_TEST(write_zeroes_zeroes_the_range)
{
        uint8_t s = submit_range(VIRTIO_BLK_T_WRITE_ZEROES, 2, 3, 0);
        cr_assert_eq(s, VIRTIO_BLK_S_OK, "write-zeroes: status %u", s);
        expect_zeroes(2, 5);
        s = submit_range(VIRTIO_BLK_T_WRITE_ZEROES, 8, 1, VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP);
        cr_assert_eq(s, VIRTIO_BLK_S_OK, "write-zeroes with unmap: status %u", s);
        uint8_t b;
        cr_assert_eq(pread(image_fd, &b, 1, 8 * 512 + 100), 1, "image read");
        cr_assert_eq(b, 0, "unmapped sector reads 0x%02x", b);
}

BLK_TEST(discard_reads_back_as_zeroes_or_data)
{
        /* A discard is a hint: the range may keep its data or read as zeroes, never
         * anything else, and nothing outside it changes. */
        uint8_t s = submit_range(VIRTIO_BLK_T_DISCARD, 4, 2, 0);
        cr_assert_eq(s, VIRTIO_BLK_S_OK, "discard: status %u", s);
        uint8_t buf[SECTORS * 512];
        cr_assert_eq(pread(image_fd, buf, sizeof(buf), 0), (ssize_t)sizeof(buf), "image read");
        for (size_t i = 0; i < sizeof(buf); i++) {
                bool inside = i >= 4 * 512 && i < 6 * 512;
                cr_assert(buf[i] == pattern(i) || (inside && buf[i] == 0),
                          "image byte %zu is 0x%02x after discard of sectors 4-5", i, buf[i]);
        }
}

BLK_TEST(discard_ranges_checked_against_capacity)
{
        static const struct {
                uint64_t sector;
                uint32_t sectors;
        } bad[] = {{SECTORS - 1, 2}, {SECTORS, 1}, {~0ull, 1}, {~0ull / 512, 8}, {0, ~0u}};
        for (unsigned i = 0; i < ARRAY_SIZE(bad); i++) {
                uint8_t s =
                        submit_range(VIRTIO_BLK_T_WRITE_ZEROES, bad[i].sector, bad[i].sectors, 0);
                cr_assert_eq(s, VIRTIO_BLK_S_IOERR, "write-zeroes %lu+%u: status %u",
                             (unsigned long)bad[i].sector, bad[i].sectors, s);
                s = submit_range(VIRTIO_BLK_T_DISCARD, bad[i].sector, bad[i].sectors, 0);
                cr_assert_eq(s, VIRTIO_BLK_S_IOERR, "discard %lu+%u: status %u",
                             (unsigned long)bad[i].sector, bad[i].sectors, s);
        }
        /* A good segment before a bad one is not applied either. */
        struct virtio_blk_discard_write_zeroes two[] = {{.sector = 0, .num_sectors = 2},
                                                        {.sector = SECTORS, .num_sectors = 1}};
        uint8_t s = submit_segments(VIRTIO_BLK_T_WRITE_ZEROES, two, 2, sizeof(two));
        cr_assert_eq(s, VIRTIO_BLK_S_IOERR, "two segments, second outside: status %u", s);
        /* Segment lists that are not whole segments, or more than max_*_seg. */
        s = submit_segments(VIRTIO_BLK_T_WRITE_ZEROES, two, 1, 15);
        cr_assert_eq(s, VIRTIO_BLK_S_IOERR, "15-byte segment list: status %u", s);
        static struct virtio_blk_discard_write_zeroes many[64];
        s = submit_segments(VIRTIO_BLK_T_DISCARD, many, 64, sizeof(many));
        cr_assert_eq(s, VIRTIO_BLK_S_IOERR, "64 segments: status %u", s);
        expect_image_unchanged();
}

BLK_TEST(discard_flags_are_checked)
{
        /* §5.2.6.2: unmap is for write-zeroes only; unknown flags are unsupported. */
        uint8_t s = submit_range(VIRTIO_BLK_T_DISCARD, 0, 1, VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP);
        cr_assert_eq(s, VIRTIO_BLK_S_UNSUPP, "discard with unmap: status %u", s);
        s = submit_range(VIRTIO_BLK_T_WRITE_ZEROES, 0, 1, 2);
        cr_assert_eq(s, VIRTIO_BLK_S_UNSUPP, "write-zeroes with flag 2: status %u", s);
        expect_image_unchanged();
}

/* Three queues: offered with VIRTIO_BLK_F_MQ and num_queues in config space; a request
 * on queue 2 completes on queue 2. */
BLK_TEST(multiqueue_serves_each_queue)
{
        teardown();
        cr_assert_eq(fake_guest_init(&guest), 0, "fake guest allocation failed");
        strcpy(image, "/tmp/iovd-virtio-blk-XXXXXX");
        image_fd = mkstemp(image);
        cr_assert_eq(ftruncate(image_fd, SECTORS * 512), 0, "ftruncate: %m");
        cr_assert_eq(pwrite(image_fd, "mq", 2, 512), 2, "image write");
        struct iov_virtio_blk_options opts = {.num_queues = 3, .no_io_uring = sync_mode};
        snprintf(opts.path, sizeof(opts.path), "%s", image);
        cr_assert_eq(virtio_blk_new(&guest.mem, &opts, &dev), 0, "3 queues refused");
        cr_assert(dev->host_features & (1ull << VIRTIO_BLK_F_MQ), "MQ not offered");
        cr_assert_eq(dev->num_queues, 3, "%u queues", dev->num_queues);
        struct virtio_blk_config c;
        dev->ops->config_read(dev, 0, &c, sizeof(c));
        cr_assert_eq(c.num_queues, 3, "config num_queues %u", c.num_queues);
        fake_dev_start(dev, &guest, rings, 16);

        uint64_t hdr = fake_guest_alloc(&guest, 16), data = fake_guest_alloc(&guest, 512),
                 st = fake_guest_alloc(&guest, 1);
        struct virtio_blk_outhdr h = {.type = VIRTIO_BLK_T_IN, .sector = 1};
        memcpy(fake_guest_ptr(&guest, hdr), &h, sizeof(h));
        struct fake_buf bufs[] = {{hdr, 16, false}, {data, 512, true}, {st, 1, true}};
        fake_ring_add(&rings[2], bufs, 3);
        cr_assert_eq(virtio_dev_notify(dev, 2), 0, "notify of queue 2 failed");
        cr_assert_eq(fake_dev_settle(dev, NULL), 0, "completions timed out");
        uint32_t id, len;
        cr_assert_eq(fake_ring_get_used(&rings[0], &id, &len), 0, "completed on queue 0");
        cr_assert_eq(fake_ring_get_used(&rings[2], &id, &len), 1, "not completed on queue 2");
        cr_assert_eq(memcmp(fake_guest_ptr(&guest, data), "mq", 2), 0, "wrong data on queue 2");

        struct iov_virtio_dev *d = NULL;
        opts.num_queues = IOV_VIRTIO_BLK_MAX_QUEUES + 1;
        cr_assert_eq(virtio_blk_new(&guest.mem, &opts, &d), -EINVAL, "%u queues accepted",
                     opts.num_queues);
}

/* O_DIRECT: aligned requests bypass the page cache, misaligned ones (the fake guest's
 * buffers are 16-byte aligned) are served through the buffered descriptor; both read
 * the file's data. */
BLK_TEST(direct_reads_aligned_and_misaligned)
{
        teardown();
        cr_assert_eq(fake_guest_init(&guest), 0, "fake guest allocation failed");
        strcpy(image, "/var/tmp/iovd-virtio-blk-XXXXXX");
        image_fd = mkstemp(image);
        cr_assert_geq(image_fd, 0, "mkstemp: %m");
        uint8_t buf[SECTORS * 512];
        for (size_t i = 0; i < sizeof(buf); i++)
                buf[i] = pattern(i);
        cr_assert_eq(write(image_fd, buf, sizeof(buf)), (ssize_t)sizeof(buf), "image write");
        struct iov_virtio_blk_options opts = {.direct = true, .no_io_uring = sync_mode};
        snprintf(opts.path, sizeof(opts.path), "%s", image);
        int r = virtio_blk_new(&guest.mem, &opts, &dev);
        if (r == -EINVAL)
                cr_skip("no O_DIRECT on the file system of /var/tmp");
        cr_assert_eq(r, 0, "direct image refused: %d", r);
        fake_dev_start(dev, &guest, rings, 16);

        /* The header takes 16 bytes, then the data starts on a 4 KiB boundary. */
        guest.next_buf = ((guest.next_buf + 8191) & ~4095ull) - 16;
        struct blk_req q;
        submit(VIRTIO_BLK_T_IN, 2, 4096, true, &q);
        cr_assert_eq(status_of(&q), VIRTIO_BLK_S_OK, "direct read: status %u", status_of(&q));
        const uint8_t *d = fake_guest_ptr(&guest, q.data);
        for (int i = 0; i < 4096; i++)
                cr_assert_eq(d[i], pattern(2 * 512 + i), "direct read byte %d is 0x%02x", i, d[i]);
        submit(VIRTIO_BLK_T_IN, 1, 512, true, &q); /* data 16 bytes after a boundary */
        cr_assert_eq(status_of(&q), VIRTIO_BLK_S_OK, "misaligned read: status %u", status_of(&q));
        d = fake_guest_ptr(&guest, q.data);
        for (int i = 0; i < 512; i++)
                cr_assert_eq(d[i], pattern(512 + i), "misaligned read byte %d is 0x%02x", i, d[i]);
}

/* Would the driver kick after publishing new_idx (from old_idx)? Its side of §2.7.10. */
static bool driver_kicks(uint16_t old_idx, uint16_t new_idx)
{
        struct iov_virtq *vq = &dev->queues[0];
        if (vq->event_idx) {
                uint16_t avail_event = *(volatile uint16_t *)&vq->used->ring[vq->size];
                return vring_need_event(avail_event, new_idx, old_idx);
        }
        return !(vq->used->flags & VRING_USED_F_NO_NOTIFY);
}

static void add_read(uint64_t sector, struct blk_req *ret)
{
        *ret = (struct blk_req){fake_guest_alloc(&guest, 16), fake_guest_alloc(&guest, 512),
                                fake_guest_alloc(&guest, 1)};
        struct virtio_blk_outhdr h = {.type = VIRTIO_BLK_T_IN, .sector = sector};
        memcpy(fake_guest_ptr(&guest, ret->hdr), &h, sizeof(h));
        struct fake_buf bufs[] = {
                {ret->hdr, 16, false}, {ret->data, 512, true}, {ret->status, 1, true}};
        fake_ring_add(&rings[0], bufs, 3);
}

/* A busy queue takes no kick per request: while reads are in flight the driver is told
 * not to kick, a read it adds meanwhile is taken when those complete, and once nothing
 * is in flight it must kick again. With and without EVENT_IDX. */
static void busy_queue_needs_no_kick(bool event_idx)
{
        if (sync_mode)
                cr_skip("nothing is in flight on the synchronous path");
        dev->queues[0].event_idx = event_idx;
        struct blk_req q[3];
        add_read(1, &q[0]);
        add_read(2, &q[1]);
        cr_assert_eq(virtio_dev_notify(dev, 0), 0, "notify failed");
        uint16_t old = rings[0].avail_idx;
        add_read(3, &q[2]);
        cr_assert_not(driver_kicks(old, rings[0].avail_idx),
                      "the driver must kick although two reads are in flight (event_idx %d)",
                      event_idx);
        cr_assert_eq(fake_dev_settle(dev, NULL), 0, "completions timed out");
        uint32_t id, len;
        for (int i = 0; i < 3; i++)
                cr_assert_eq(fake_ring_get_used(&rings[0], &id, &len), 1, "%d of 3 used", i);
        for (int i = 0; i < 3; i++) {
                cr_assert_eq(status_of(&q[i]), VIRTIO_BLK_S_OK, "read %d: status", i);
                uint8_t d = *(uint8_t *)fake_guest_ptr(&guest, q[i].data);
                cr_assert_eq(d, pattern((uint64_t)(i + 1) * 512), "read %d: byte 0x%02x", i, d);
        }
        cr_assert_eq(dev->stats.notifications, 1, "%lu notifications for 3 reads",
                     (unsigned long)dev->stats.notifications);
        cr_assert_eq(dev->stats.requests_deferred, 1,
                     "%lu reads counted as taken on a completion, expected the third",
                     (unsigned long)dev->stats.requests_deferred);
        old = rings[0].avail_idx;
        add_read(4, &q[0]);
        cr_assert(driver_kicks(old, rings[0].avail_idx), "idle queue: no kick asked for");
}

BLK_TEST(busy_queue_needs_no_kick_event_idx)
{
        busy_queue_needs_no_kick(true);
}

BLK_TEST(busy_queue_needs_no_kick_without_event_idx)
{
        busy_queue_needs_no_kick(false);
}

/* io_uring refused, as in a container whose seccomp profile returns EPERM for
 * io_uring_setup: the disk is still made, on the synchronous path, and serves reads.
 * In a child, since the filter cannot be taken off again. */
static void refuse_io_uring_setup(void)
{
        struct sock_filter insns[] = {
                BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
                BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_io_uring_setup, 0, 1),
                BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
                BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        };
        struct sock_fprog prog = {.len = ARRAY_SIZE(insns), .filter = insns};
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
            syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0)
                _exit(2);
}

/* In the child: a device asking for io_uring where io_uring_setup fails; 0 when it
 * has no ring and reads sector 5 correctly. No criterion assertions here. */
static int child_read_without_io_uring(void)
{
        struct iov_virtio_blk_options opts = {.serial = "x"};
        struct iov_virtio_dev *d = NULL;

        refuse_io_uring_setup();
        snprintf(opts.path, sizeof(opts.path), "%s", image);
        if (virtio_blk_new(&guest.mem, &opts, &d) < 0)
                return 3;
        if (d->completion_fd >= 0)
                return 4; /* a ring although io_uring_setup fails */
        fake_dev_start(d, &guest, rings, 16);
        struct blk_req q;
        add_read(5, &q);
        uint32_t id, len;
        if (virtio_dev_notify(d, 0) != 0 || fake_ring_get_used(&rings[0], &id, &len) != 1)
                return 5;
        const uint8_t *data = fake_guest_ptr(&guest, q.data);
        if (len != 513 || status_of(&q) != VIRTIO_BLK_S_OK || data[0] != pattern(5 * 512))
                return 6;
        virtio_dev_free(d);
        return 0;
}

BLK_TEST(io_uring_refused_falls_back_to_sync)
{
        if (sync_mode)
                cr_skip("the synchronous suite does not ask for io_uring");
        pid_t pid = fork();
        cr_assert_geq(pid, 0, "fork: %m");
        if (pid == 0)
                _exit(child_read_without_io_uring());
        int status;
        cr_assert_eq(waitpid(pid, &status, 0), pid, "waitpid: %m");
        cr_assert(WIFEXITED(status), "child ended by signal %d", WTERMSIG(status));
        cr_assert_eq(WEXITSTATUS(status), 0,
                     "child status %d (2: no filter, 3: device refused, 4: ring made, "
                     "5: not completed, 6: wrong data)",
                     WEXITSTATUS(status));
}
