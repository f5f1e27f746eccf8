/* SPDX-License-Identifier: MIT */
/*
 * The data path of virtio-blk. Reads, writes and flushes go to one io_uring per disk:
 * the I/O thread prepares an entry per request while it drains a queue, hands the whole
 * batch to the kernel with one io_uring_enter, and goes back to sleep; the kernel
 * signals an eventfd (the device's completion_fd) as requests finish, and the I/O thread
 * puts every finished one into the used rings with one used->idx store and at most one
 * interrupt per queue (virtio 1.2 §2.7.8, §2.7.10). So many requests are in flight per
 * queue and the guest's I/O thread is never blocked in a read.
 *
 * io_uring is not always there: a kernel without it, kernel.io_uring_disabled, or a
 * container whose seccomp profile refuses io_uring_setup. Then, and for what the ring
 * cannot take (a full ring, a head the driver published twice), the request is done
 * synchronously with pread/pwrite on the I/O thread, as before.
 *
 * The kernel runs ring operations in its own workers, outside iovd-vmm's seccomp filter
 * (vmm/sandbox.c), so the ring is sandboxed by io_uring itself: it starts disabled, gets
 * the image as its only (fixed) file and IORING_REGISTER_RESTRICTIONS allowing READV,
 * WRITEV and FSYNC on fixed files only, and no register operation afterwards
 * (io_uring_register(2)).
 */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <linux/falloc.h>

#include "util/util.h"
#include "vmm/virtio/blk.h"

struct blk_uring {
        struct io_uring ring;
        unsigned inflight; /* entries handed to the ring, not reaped */
        unsigned prepared; /* entries prepared, not yet submitted */
};

/* ---- synchronous path ---------------------------------------------------------------- */

/* One pread/pwrite per segment: the calls iovd-vmm's seccomp allow-list has. A short
 * transfer continues where it stopped; a zero one (past the end) is an error. */
static int sync_rw(int fd, bool write, const struct iovec *iov, unsigned n, uint64_t offset)
{
        off_t off = (off_t)offset;

        for (unsigned i = 0; i < n; i++) {
                uint8_t *p = iov[i].iov_base;
                size_t left = iov[i].iov_len;
                while (left > 0) {
                        ssize_t got = write ? pwrite(fd, p, left, off) : pread(fd, p, left, off);
                        if (got < 0 && errno == EINTR)
                                continue;
                        if (got <= 0)
                                return got < 0 ? -errno : -EIO;
                        p += got;
                        left -= (size_t)got;
                        off += got;
                }
        }
        return 0;
}

int blk_io_sync(struct blk *b, bool write, const struct iovec *iov, unsigned n, uint64_t offset)
{
        int r = sync_rw(b->fd, write, iov, n, offset);
        /* O_DIRECT refuses buffers, lengths and offsets the host's block size does not
         * divide (open(2), O_DIRECT): those go through the page cache instead. */
        if (r == -EINVAL && b->fd_buffered >= 0)
                r = sync_rw(b->fd_buffered, write, iov, n, offset);
        return r;
}

static void io_account(struct iov_virtio_dev *dev, uint8_t type, uint64_t len, uint8_t status)
{
        if (status != VIRTIO_BLK_S_OK) {
                dev->stats.requests_failed++;
                return;
        }
        if (type == VIRTIO_BLK_T_IN) {
                dev->stats.requests_read++;
                dev->stats.bytes_read += len;
        } else if (type == VIRTIO_BLK_T_OUT) {
                dev->stats.requests_written++;
                dev->stats.bytes_written += len;
        }
}

/* ---- the ring -------------------------------------------------------------------------- */

static int uring_restrict(struct io_uring *ring)
{
        struct io_uring_restriction res[] = {
                {.opcode = IORING_RESTRICTION_SQE_OP, .sqe_op = IORING_OP_READV},
                {.opcode = IORING_RESTRICTION_SQE_OP, .sqe_op = IORING_OP_WRITEV},
                {.opcode = IORING_RESTRICTION_SQE_OP, .sqe_op = IORING_OP_FSYNC},
                {.opcode = IORING_RESTRICTION_SQE_FLAGS_REQUIRED, .sqe_flags = IOSQE_FIXED_FILE},
        };
        /* The raw call: Debian's liburing 2.3 declares io_uring_register_restrictions and
         * io_uring_enable_rings but does not export them. */
        return io_uring_register((unsigned)ring->ring_fd, IORING_REGISTER_RESTRICTIONS, res,
                                 ARRAY_SIZE(res));
}

/* Entries: one per slot, so a submission never waits for a completion; the completion
 * queue is twice that (the default), so completions never overflow either. */
static int uring_setup(struct blk_uring *u, int fd, int event_fd, unsigned entries)
{
        struct io_uring_params params = {.flags = IORING_SETUP_R_DISABLED};
        int r = io_uring_queue_init_params(entries, &u->ring, &params);
        if (r < 0)
                return r;
        r = io_uring_register_files(&u->ring, &fd, 1);
        if (r >= 0)
                r = io_uring_register_eventfd(&u->ring, event_fd);
        if (r >= 0)
                r = uring_restrict(&u->ring);
        if (r >= 0)
                r = io_uring_register((unsigned)u->ring.ring_fd, IORING_REGISTER_ENABLE_RINGS, NULL,
                                      0);
        if (r < 0)
                io_uring_queue_exit(&u->ring);
        return r < 0 ? r : 0;
}

int blk_io_start(struct iov_virtio_dev *dev, unsigned num_queues)
{
        struct blk *b = dev->priv;

        b->inflight = calloc((size_t)num_queues * IOV_BLK_QUEUE_SIZE, sizeof(*b->inflight));
        if (!b->inflight)
                return -ENOMEM;
        if (b->no_io_uring)
                return 0;
        _cleanup_free_ struct blk_uring *u = calloc(1, sizeof(*u));
        if (!u)
                return -ENOMEM;
        _cleanup_close_ int event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (event_fd < 0)
                return -errno;
        /* Refused (ENOSYS, EPERM, ENOMEM): the synchronous path serves the disk. */
        if (uring_setup(u, b->fd, event_fd, num_queues * IOV_BLK_QUEUE_SIZE) < 0)
                return 0;
        dev->completion_fd = TAKE_FD(event_fd);
        b->uring = TAKE_PTR(u);
        return 0;
}

static struct blk_inflight *slot_of(struct blk *b, unsigned q, uint16_t head)
{
        return &b->inflight[(size_t)q * IOV_BLK_QUEUE_SIZE + head];
}

/* The last byte of the device-writable part (§5.2.6.1); blk.c checked there is one and
 * the core never keeps a zero-length segment. */
static uint8_t *status_byte(const struct iov_virtq_req *req)
{
        const struct iovec *last = &req->in[req->n_in - 1];
        return (uint8_t *)last->iov_base + last->iov_len - 1;
}

void blk_io_submit(struct iov_virtio_dev *dev)
{
        struct blk *b = dev->priv;

        if (!b->uring || b->uring->prepared == 0)
                return;
        /* Entries the kernel did not take stay in the ring for the next call. */
        int r = io_uring_submit(&b->uring->ring);
        if (r > 0)
                b->uring->prepared -=
                        (unsigned)r < b->uring->prepared ? (unsigned)r : b->uring->prepared;
}

static struct io_uring_sqe *uring_get_sqe(struct iov_virtio_dev *dev)
{
        struct blk *b = dev->priv;
        struct io_uring_sqe *sqe = io_uring_get_sqe(&b->uring->ring);
        if (sqe)
                return sqe;
        blk_io_submit(dev);
        return io_uring_get_sqe(&b->uring->ring);
}

static void uring_prep(struct io_uring_sqe *sqe, const struct blk_inflight *s, uint64_t data)
{
        if (s->type == VIRTIO_BLK_T_IN)
                io_uring_prep_readv(sqe, 0, s->iov, s->n_iov, s->offset);
        else if (s->type == VIRTIO_BLK_T_OUT)
                io_uring_prep_writev(sqe, 0, s->iov, s->n_iov, s->offset);
        else
                io_uring_prep_fsync(sqe, 0, IORING_FSYNC_DATASYNC);
        /* File index 0 of the registered files: the image, the only one the ring has. */
        io_uring_sqe_set_flags(sqe, IOSQE_FIXED_FILE);
        io_uring_sqe_set_data64(sqe, data);
}

/* Put one request on the ring: 0, or negative when it must be done synchronously. */
static int uring_queue(struct iov_virtio_dev *dev, unsigned q, const struct iov_virtq_req *req,
                       struct blk_inflight proto)
{
        struct blk *b = dev->priv;
        struct blk_inflight *s = slot_of(b, q, req->head);

        /* The driver published a head that is still ours: done synchronously, so the
         * slot of the first is not overwritten. */
        if (s->busy || !b->uring)
                return -EBUSY;
        if (proto.n_iov > 0) {
                proto.iov = malloc(proto.n_iov * sizeof(*proto.iov));
                if (!proto.iov)
                        return -ENOMEM;
                memcpy(proto.iov, b->data, proto.n_iov * sizeof(*proto.iov));
        }
        struct io_uring_sqe *sqe = uring_get_sqe(dev);
        if (!sqe) {
                free(proto.iov);
                return -EAGAIN;
        }
        proto.status = status_byte(req);
        proto.busy = true;
        *s = proto;
        uring_prep(sqe, s, (uint64_t)q * IOV_BLK_QUEUE_SIZE + req->head);
        b->uring->prepared++;
        b->uring->inflight++;
        if (s->type != VIRTIO_BLK_T_FLUSH)
                b->queue_rw_inflight[q]++;
        return 0;
}

int blk_io_rw(struct iov_virtio_dev *dev, unsigned q, const struct iov_virtq_req *req, bool write,
              unsigned n, uint64_t sector, uint8_t *ret_status)
{
        struct blk *b = dev->priv;
        struct blk_inflight proto = {.n_iov = n,
                                     .offset = sector * IOV_BLK_SECTOR_SIZE,
                                     .type = write ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN};

        for (unsigned i = 0; i < n; i++)
                proto.len += b->data[i].iov_len;
        if (uring_queue(dev, q, req, proto) == 0)
                return IOV_VIRTIO_REQ_ASYNC;
        int r = blk_io_sync(b, write, b->data, n, proto.offset);
        *ret_status = r < 0 ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK;
        if (r == 0)
                io_account(dev, proto.type, proto.len, *ret_status); /* failures: blk.c */
        return 0;
}

int blk_io_flush(struct iov_virtio_dev *dev, unsigned q, const struct iov_virtq_req *req,
                 uint8_t *ret_status)
{
        struct blk *b = dev->priv;

        /* Nothing of a read-only image can be dirty. */
        if (b->read_only) {
                *ret_status = VIRTIO_BLK_S_OK;
                return 0;
        }
        if (uring_queue(dev, q, req, (struct blk_inflight){.type = VIRTIO_BLK_T_FLUSH}) == 0)
                return IOV_VIRTIO_REQ_ASYNC;
        *ret_status = fdatasync(b->fd) < 0 ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK;
        return 0;
}

/* ---- completions ----------------------------------------------------------------------- */

static uint8_t inflight_status(struct blk *b, const struct blk_inflight *s, int res)
{
        if (s->type == VIRTIO_BLK_T_FLUSH)
                return res < 0 ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK;
        if (res >= 0 && (uint64_t)res == s->len)
                return VIRTIO_BLK_S_OK;
        /* Short, or refused (O_DIRECT alignment, EAGAIN): once more, synchronously, from
         * the start; a real I/O error fails there again. */
        if (blk_io_sync(b, s->type == VIRTIO_BLK_T_OUT, s->iov, s->n_iov, s->offset) < 0)
                return VIRTIO_BLK_S_IOERR;
        return VIRTIO_BLK_S_OK;
}

static void slot_release(struct blk_inflight *s)
{
        free(s->iov);
        *s = (struct blk_inflight){0};
}

/* One finished entry: status byte, counters, used element (published by the caller). */
static void uring_done(struct iov_virtio_dev *dev, uint64_t data, int res)
{
        struct blk *b = dev->priv;
        unsigned q = (unsigned)(data / IOV_BLK_QUEUE_SIZE);
        uint16_t head = (uint16_t)(data % IOV_BLK_QUEUE_SIZE);

        if (q >= dev->num_queues)
                return;
        struct blk_inflight *s = slot_of(b, q, head);
        if (!s->busy)
                return; /* not ours to complete (the kernel returns each entry once) */
        uint8_t status = inflight_status(b, s, res);
        *s->status = status;
        io_account(dev, s->type, s->len, status);
        uint32_t written = 1;
        if (status == VIRTIO_BLK_S_OK && s->type == VIRTIO_BLK_T_IN)
                written += (uint32_t)s->len;
        (void)virtio_dev_fill_used(dev, q, head, written);
        b->completed_queues |= 1u << q;
        if (s->type != VIRTIO_BLK_T_FLUSH && b->queue_rw_inflight[q] > 0)
                b->queue_rw_inflight[q]--;
        slot_release(s);
}

bool blk_io_queue_busy(struct iov_virtio_dev *dev, unsigned q)
{
        const struct blk *b = dev->priv;
        /* Only reads and writes: they finish quickly, a flush may take seconds, and a
         * request the driver adds meanwhile would wait for it. */
        return q < dev->num_queues && b->queue_rw_inflight[q] > 0;
}

int blk_io_complete(struct iov_virtio_dev *dev)
{
        struct blk *b = dev->priv;
        struct io_uring_cqe *cqe;
        unsigned head, n = 0;

        if (!b->uring)
                return 0;
        io_uring_for_each_cqe(&b->uring->ring, head, cqe)
        {
                uring_done(dev, cqe->user_data, cqe->res);
                n++;
        }
        io_uring_cq_advance(&b->uring->ring, n);
        b->uring->inflight -= n < b->uring->inflight ? n : b->uring->inflight;
        uint32_t done = b->completed_queues;
        b->completed_queues = 0;
        for (unsigned q = 0; q < dev->num_queues; q++)
                if (done & (1u << q))
                        virtio_dev_flush_used(dev, q);
        /* The queues kept notifications off while these were in flight: what the driver
         * added meanwhile is taken now, and the ring batch goes to the kernel with it. */
        for (unsigned q = 0; q < dev->num_queues; q++)
                if (done & (1u << q))
                        (void)virtio_dev_poll_queue(dev, q);
        /* Entries the kernel refused while its completion queue was full (io_uring_submit:
         * -EBUSY) go now that completions were reaped: left for the driver's next kick,
         * they were lost to a driver that waits for them and never kicks. */
        blk_io_submit(dev);
        return (int)b->uring->inflight;
}

/* The device is reset: wait for what is in flight and return none of it (the driver
 * has forgotten these requests; §2.4: after reset the device touches no ring). */
void blk_io_drain(struct iov_virtio_dev *dev)
{
        struct blk *b = dev->priv;

        if (!b->uring)
                return;
        blk_io_submit(dev);
        while (b->uring->inflight > 0) {
                struct io_uring_cqe *cqe;
                int r = io_uring_wait_cqe(&b->uring->ring, &cqe);
                if (r == -EINTR)
                        continue;
                if (r < 0)
                        break;
                uint64_t data = cqe->user_data;
                io_uring_cqe_seen(&b->uring->ring, cqe);
                b->uring->inflight--;
                if (data / IOV_BLK_QUEUE_SIZE < dev->num_queues)
                        slot_release(&b->inflight[data]);
        }
        b->completed_queues = 0;
        memset(b->queue_rw_inflight, 0, sizeof(b->queue_rw_inflight));
}

void blk_io_stop(struct iov_virtio_dev *dev)
{
        struct blk *b = dev->priv;

        blk_io_drain(dev);
        if (b->uring) {
                io_uring_queue_exit(&b->uring->ring);
                free(b->uring);
                b->uring = NULL;
        }
        if (dev->completion_fd >= 0)
                close(dev->completion_fd);
        dev->completion_fd = -1;
        if (b->inflight)
                for (size_t i = 0; i < (size_t)dev->num_queues * IOV_BLK_QUEUE_SIZE; i++)
                        slot_release(&b->inflight[i]);
        free(b->inflight);
        b->inflight = NULL;
}

/* ---- discard and write-zeroes (§5.2.6) -------------------------------------------------- */

static uint8_t discard_check(const struct blk *b, uint32_t type,
                             const struct virtio_blk_discard_write_zeroes *seg, unsigned n)
{
        uint32_t allowed =
                type == VIRTIO_BLK_T_WRITE_ZEROES ? VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP : 0;
        for (unsigned i = 0; i < n; i++) {
                /* §5.2.6.2: a discard with unmap set, or flags we do not know: UNSUPP. */
                if (seg[i].flags & ~allowed)
                        return VIRTIO_BLK_S_UNSUPP;
                if (seg[i].num_sectors > IOV_BLK_DISCARD_MAX_SECTORS ||
                    seg[i].sector > b->sectors || seg[i].num_sectors > b->sectors - seg[i].sector)
                        return VIRTIO_BLK_S_IOERR;
        }
        return VIRTIO_BLK_S_OK;
}

/* Without fallocate support at all: zeroes written the plain way. */
static int zero_write(struct blk *b, uint64_t off, uint64_t len)
{
        static const uint8_t zeroes[64 << 10] __attribute__((aligned(4096)));

        while (len > 0) {
                size_t chunk = len < sizeof(zeroes) ? len : sizeof(zeroes);
                struct iovec v = {(void *)zeroes, chunk};
                int r = blk_io_sync(b, true, &v, 1, off);
                if (r < 0)
                        return r;
                off += chunk;
                len -= chunk;
        }
        return 0;
}

static int discard_one(struct blk *b, uint32_t type,
                       const struct virtio_blk_discard_write_zeroes *s)
{
        off_t off = (off_t)(s->sector * IOV_BLK_SECTOR_SIZE);
        off_t len = (off_t)s->num_sectors * IOV_BLK_SECTOR_SIZE;
        bool zero = type == VIRTIO_BLK_T_WRITE_ZEROES;

        if (len == 0)
                return 0;
        if (zero && !(s->flags & VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP) &&
            fallocate(b->fd, FALLOC_FL_KEEP_SIZE | FALLOC_FL_ZERO_RANGE, off, len) == 0)
                return 0;
        /* A hole reads as zeroes (write_zeroes_may_unmap is set): tmpfs has no
         * ZERO_RANGE but punches holes. */
        if (fallocate(b->fd, FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE, off, len) == 0)
                return 0;
        if (errno != EOPNOTSUPP)
                return -errno;
        /* A discard is a hint (§5.2.6.2): nothing to do when the file cannot punch. */
        return zero ? zero_write(b, (uint64_t)off, (uint64_t)len) : 0;
}

uint8_t blk_io_discard(struct iov_virtio_dev *dev, const struct iov_virtq_req *req, uint32_t type)
{
        struct blk *b = dev->priv;
        struct virtio_blk_discard_write_zeroes seg[IOV_BLK_DISCARD_MAX_SEG];
        uint64_t bytes = req->out_len - sizeof(struct virtio_blk_outhdr);

        if (b->read_only)
                return VIRTIO_BLK_S_IOERR;
        if (bytes == 0 || bytes % sizeof(seg[0]) != 0 || bytes / sizeof(seg[0]) > ARRAY_SIZE(seg))
                return VIRTIO_BLK_S_IOERR;
        /* One copy of the segments: the guest may change its buffer meanwhile. */
        unsigned n = (unsigned)(bytes / sizeof(seg[0]));
        virtio_iov_to_buf(req->out, req->n_out, sizeof(struct virtio_blk_outhdr), seg, bytes);
        uint8_t status = discard_check(b, type, seg, n);
        for (unsigned i = 0; i < n && status == VIRTIO_BLK_S_OK; i++)
                if (discard_one(b, type, &seg[i]) < 0)
                        status = VIRTIO_BLK_S_IOERR;
        return status;
}
