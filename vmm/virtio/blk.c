/* SPDX-License-Identifier: MIT */
/*
 * virtio-blk (virtio 1.2 §5.2) on a raw image file: one request queue per vCPU by
 * default (VIRTIO_BLK_F_MQ), each served by the device's I/O thread. A request is a
 * 16-byte header (type, ioprio, sector) the device reads, the data, and one status byte
 * the device writes last (§5.2.6). Data moves straight between the file and guest
 * memory, through io_uring with many requests in flight (blk-io.c), or with pread/pwrite
 * where io_uring is unavailable. Requests are bounded (IOV_VIRTIO_BLK_MAX_REQUEST bytes,
 * whole sectors, inside the disk); one that is not gets IOERR and changes nothing.
 * DISCARD and WRITE_ZEROES (on a writable disk) punch holes or zero ranges of the file.
 *
 *   {"type": "virtio-blk", "path": "/var/lib/x.img", "read_only": false, "serial": "disk0",
 *    "num_queues": 2, "direct": false, "poll_us": 0}
 *
 * path is required; serial (the GET_ID answer) is at most 20 bytes; num_queues is 1 to
 * IOV_VIRTIO_BLK_MAX_QUEUES (default: the VM's vCPUs, at most that); direct opens the
 * image with O_DIRECT, so the host's page cache holds no copy of the guest's disk;
 * poll_us (0..IOV_VIRTIO_POLL_US_MAX, 0 by default: off) lets the I/O thread watch a
 * drained queue that long before it asks the driver to notify again (device.c).
 * path may be "fd:N", a descriptor iovd opened and passed (iovd always does: the VMM
 * opens no host path of a definition); a regular file, or a block device.
 */
#include "vmm/virtio/virtio.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <linux/fs.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_ids.h>

#include "util/util.h"
#include "vmm/virtio/blk.h"

#define SECTOR_SIZE IOV_BLK_SECTOR_SIZE
/* Segment size and count we advertise; together they cap a request at the maximum. */
#define BLK_SIZE_MAX (32u << 10)
#define BLK_SEG_MAX  (IOV_VIRTIO_BLK_MAX_REQUEST / BLK_SIZE_MAX)

/* The data part of a request: iovecs [first, first + n) with `skip` bytes cut from the
 * front and `trim` bytes from the back. Returns the number of iovecs. */
static unsigned blk_data_iov(struct blk *b, const struct iovec *iov, unsigned n, size_t skip,
                             size_t trim)
{
        unsigned out = virtq_iov_skip(iov, n, skip, b->data, ARRAY_SIZE(b->data));

        while (trim > 0 && out > 0) {
                struct iovec *v = &b->data[out - 1];
                size_t cut = trim < v->iov_len ? trim : v->iov_len;
                v->iov_len -= cut;
                trim -= cut;
                if (v->iov_len == 0)
                        out--;
        }
        return out;
}

/* Whole sectors, no more than the request bound, inside the disk. */
static bool blk_range_ok(const struct blk *b, uint64_t sector, uint64_t len)
{
        if (len % SECTOR_SIZE != 0 || len > IOV_VIRTIO_BLK_MAX_REQUEST)
                return false;
        return sector <= b->sectors && len / SECTOR_SIZE <= b->sectors - sector;
}

static int blk_do_read(struct iov_virtio_dev *dev, unsigned q, struct iov_virtq_req *req,
                       uint64_t sector, uint8_t *ret_status, uint32_t *ret_data)
{
        struct blk *b = dev->priv;
        uint64_t len = req->in_len - 1;

        if (!blk_range_ok(b, sector, len)) {
                *ret_status = VIRTIO_BLK_S_IOERR;
                return 0;
        }
        unsigned n = blk_data_iov(b, req->in, req->n_in, 0, 1);
        int r = blk_io_rw(dev, q, req, false, n, sector, ret_status);
        if (r == 0 && *ret_status == VIRTIO_BLK_S_OK)
                *ret_data = (uint32_t)len;
        return r;
}

static int blk_do_write(struct iov_virtio_dev *dev, unsigned q, struct iov_virtq_req *req,
                        uint64_t sector, uint8_t *ret_status)
{
        struct blk *b = dev->priv;
        uint64_t len = req->out_len - sizeof(struct virtio_blk_outhdr);

        if (b->read_only || !blk_range_ok(b, sector, len)) {
                *ret_status = VIRTIO_BLK_S_IOERR;
                return 0;
        }
        unsigned n = blk_data_iov(b, req->out, req->n_out, sizeof(struct virtio_blk_outhdr), 0);
        return blk_io_rw(dev, q, req, true, n, sector, ret_status);
}

static uint8_t blk_do_get_id(struct iov_virtio_dev *dev, struct iov_virtq_req *req,
                             uint32_t *ret_data)
{
        struct blk *b = dev->priv;
        size_t len = req->in_len - 1 < VIRTIO_BLK_ID_BYTES ? req->in_len - 1 : VIRTIO_BLK_ID_BYTES;

        *ret_data = (uint32_t)virtio_iov_from_buf(req->in, req->n_in, 0, b->serial, len);
        return VIRTIO_BLK_S_OK;
}

/* 0 with *ret_status (done), or IOV_VIRTIO_REQ_ASYNC (blk-io.c completes it). */
static int blk_dispatch(struct iov_virtio_dev *dev, unsigned q, struct iov_virtq_req *req,
                        const struct virtio_blk_outhdr *hdr, uint8_t *ret_status,
                        uint32_t *ret_data)
{
        switch (hdr->type) {
        case VIRTIO_BLK_T_IN:
                return blk_do_read(dev, q, req, hdr->sector, ret_status, ret_data);
        case VIRTIO_BLK_T_OUT:
                return blk_do_write(dev, q, req, hdr->sector, ret_status);
        case VIRTIO_BLK_T_FLUSH:
                return blk_io_flush(dev, q, req, ret_status);
        case VIRTIO_BLK_T_GET_ID:
                *ret_status = blk_do_get_id(dev, req, ret_data);
                return 0;
        case VIRTIO_BLK_T_DISCARD:
        case VIRTIO_BLK_T_WRITE_ZEROES:
                /* Offered only on a writable disk; blk_io_discard refuses them otherwise. */
                *ret_status = blk_io_discard(dev, req, hdr->type);
                return 0;
        default:
                *ret_status = VIRTIO_BLK_S_UNSUPP;
                return 0;
        }
}

static int blk_handle(struct iov_virtio_dev *dev, unsigned q, struct iov_virtq_req *req,
                      uint32_t *ret_written)
{
        struct virtio_blk_outhdr hdr;
        uint32_t data = 0;
        uint8_t status = VIRTIO_BLK_S_IOERR;

        /* Without a writable byte there is nowhere to put the status: fail, touch
         * nothing (§5.2.6.1: the status byte is the last device-writable byte). */
        if (req->in_len == 0) {
                dev->stats.requests_failed++;
                *ret_written = 0;
                return 0;
        }
        if (virtio_iov_to_buf(req->out, req->n_out, 0, &hdr, sizeof(hdr)) == sizeof(hdr) &&
            blk_dispatch(dev, q, req, &hdr, &status, &data) == IOV_VIRTIO_REQ_ASYNC)
                return IOV_VIRTIO_REQ_ASYNC;
        if (status != VIRTIO_BLK_S_OK) {
                dev->stats.requests_failed++;
                data = 0;
        }
        virtio_iov_from_buf(req->in, req->n_in, req->in_len - 1, &status, 1);
        *ret_written = data + 1;
        return 0;
}

static int blk_queue_notify(struct iov_virtio_dev *dev, unsigned q)
{
        int r = virtio_dev_process_queue(dev, q, blk_handle);
        /* The whole batch the drain prepared goes to the kernel in one call. */
        blk_io_submit(dev);
        return r;
}

static void blk_reset(struct iov_virtio_dev *dev)
{
        blk_io_drain(dev);
}

static int blk_complete(struct iov_virtio_dev *dev)
{
        return blk_io_complete(dev);
}

static void blk_close(struct blk *b)
{
        if (b->fd >= 0)
                close(b->fd);
        if (b->fd_buffered >= 0)
                close(b->fd_buffered);
        b->fd = b->fd_buffered = -1;
}

static void blk_destroy(struct iov_virtio_dev *dev)
{
        struct blk *b = dev->priv;
        if (!b)
                return;
        blk_io_stop(dev);
        blk_close(b);
}

static int blk_parse_serial(struct iov_virtio_blk_options *o, struct json_object *value,
                            char **ret_error)
{
        if (!json_object_is_type(value, json_type_string))
                return virtio_spec_error(ret_error, "\"%s\" must be a string", "serial");
        const char *s = json_object_get_string(value);
        if (strlen(s) > sizeof(o->serial))
                return virtio_spec_error(ret_error, "serial \"%.64s\" is longer than %zu bytes", s,
                                         sizeof(o->serial));
        memset(o->serial, 0, sizeof(o->serial));
        memcpy(o->serial, s, strlen(s));
        return 0;
}

static int blk_parse_bool(bool *field, const char *key, struct json_object *value, char **ret_error)
{
        if (!json_object_is_type(value, json_type_boolean))
                return virtio_spec_error(ret_error, "\"%s\" must be true or false", key);
        *field = json_object_get_boolean(value);
        return 0;
}

static int blk_parse_queues(struct iov_virtio_blk_options *o, struct json_object *value,
                            char **ret_error)
{
        int64_t n = json_object_get_int64(value);

        if (!json_object_is_type(value, json_type_int) || n < 1 || n > IOV_VIRTIO_BLK_MAX_QUEUES)
                return virtio_spec_error(ret_error,
                                         "\"num_queues\" must be an integer from 1 to %u",
                                         IOV_VIRTIO_BLK_MAX_QUEUES);
        o->num_queues = (unsigned)n;
        return 0;
}

static int blk_parse_field(void *options, const char *key, struct json_object *value,
                           char **ret_error)
{
        struct iov_virtio_blk_options *o = options;

        if (streq(key, "path"))
                return virtio_spec_string(value, key, o->path, sizeof(o->path), ret_error);
        if (streq(key, "serial"))
                return blk_parse_serial(o, value, ret_error);
        if (streq(key, "read_only"))
                return blk_parse_bool(&o->read_only, key, value, ret_error);
        if (streq(key, "direct"))
                return blk_parse_bool(&o->direct, key, value, ret_error);
        if (streq(key, "num_queues"))
                return blk_parse_queues(o, value, ret_error);
        if (streq(key, "poll_us"))
                return virtio_spec_poll_us(value, &o->poll_us, ret_error);
        return -ENOENT;
}

static int blk_parse_done(void *options, char **ret_error)
{
        const struct iov_virtio_blk_options *o = options;

        if (!o->path[0])
                return virtio_spec_error(ret_error, "%s needs \"path\"", "virtio-blk");
        return 0;
}

static int blk_create(const void *options, const struct iov_virtio_host *host,
                      struct iov_virtio_dev **ret)
{
        struct iov_virtio_blk_options o = *(const struct iov_virtio_blk_options *)options;

        /* One queue per vCPU: the guest's blk-mq maps each CPU to its own queue, so no
         * two CPUs share a ring lock (§5.2.5: num_queues with VIRTIO_BLK_F_MQ). */
        if (o.num_queues == 0) {
                unsigned vcpus = host->vcpus ? host->vcpus : 1;
                o.num_queues =
                        vcpus < IOV_VIRTIO_BLK_MAX_QUEUES ? vcpus : IOV_VIRTIO_BLK_MAX_QUEUES;
        }
        return virtio_blk_new(host->mem, &o, ret);
}

/* iovd opens "path" for iovd-vmm and passes it (virtio.h, host_files). */
static const struct iov_virtio_host_file blk_host_files[] = {{"path", IOV_VIRTIO_HOST_IMAGE},
                                                             {NULL, 0}};

static const struct iov_virtio_dev_ops blk_ops = {
        .name = "virtio-blk",
        .device_id = VIRTIO_ID_BLOCK,
        .features = (1ull << VIRTIO_BLK_F_SIZE_MAX) | (1ull << VIRTIO_BLK_F_SEG_MAX) |
                    (1ull << VIRTIO_BLK_F_FLUSH),
        .num_queues = 1,
        .queue_max_size = IOV_BLK_QUEUE_SIZE,
        .config_size = sizeof(struct virtio_blk_config),
        .config_read = virtio_dev_read_config,
        .queue_notify = blk_queue_notify,
        .complete = blk_complete,
        .queue_busy = blk_io_queue_busy,
        .reset = blk_reset,
        .destroy = blk_destroy,
        .options_size = sizeof(struct iov_virtio_blk_options),
        .parse_field = blk_parse_field,
        .parse_done = blk_parse_done,
        .host_files = blk_host_files,
        .create = blk_create,
};

IOV_VIRTIO_DEVICE(blk_ops)

/* With "direct" a second descriptor through the page cache takes what O_DIRECT refuses;
 * a file system without O_DIRECT (tmpfs before Linux 6.6) refuses the option. A
 * descriptor iovd passed ("fd:N") is one open file: O_DIRECT is set on it (fcntl(2)
 * F_SETFL) and there is no page-cache copy, so a request O_DIRECT refuses fails (IOERR). */
static int blk_open_files(const struct iov_virtio_blk_options *opts, struct blk *b)
{
        int flags = opts->read_only ? O_RDONLY : O_RDWR;
        bool inherited = strncmp(opts->path, UTIL_FD_PREFIX, strlen(UTIL_FD_PREFIX)) == 0;

        int r = util_open_inherited(opts->path, flags | (opts->direct && !inherited ? O_DIRECT : 0),
                                    &b->fd);
        if (r < 0 || !opts->direct)
                return r;
        if (inherited) {
                int status = fcntl(b->fd, F_GETFL);
                if (status < 0 || fcntl(b->fd, F_SETFL, status | O_DIRECT) < 0)
                        return -errno;
                return 0;
        }
        b->fd_buffered = open(opts->path, flags | O_CLOEXEC);
        if (b->fd_buffered < 0)
                return -errno;
        return 0;
}

static void blk_config_fill(struct blk *b, unsigned num_queues)
{
        b->config.capacity = b->sectors;
        b->config.size_max = BLK_SIZE_MAX;
        b->config.seg_max = BLK_SEG_MAX;
        b->config.num_queues = (uint16_t)num_queues;
        /* §5.2.4: limits per segment and per request; any sector may start a range. */
        b->config.max_discard_sectors = IOV_BLK_DISCARD_MAX_SECTORS;
        b->config.max_discard_seg = IOV_BLK_DISCARD_MAX_SEG;
        b->config.discard_sector_alignment = 1;
        b->config.max_write_zeroes_sectors = IOV_BLK_DISCARD_MAX_SECTORS;
        b->config.max_write_zeroes_seg = IOV_BLK_DISCARD_MAX_SEG;
        /* A hole is how a file without ZERO_RANGE zeroes a range (blk-io.c). */
        b->config.write_zeroes_may_unmap = 1;
}

static int blk_open(const struct iov_virtio_blk_options *opts, struct blk *b)
{
        struct stat st;

        uint64_t size = 0;
        int r = blk_open_files(opts, b);
        if (r < 0)
                return r;
        if (fstat(b->fd, &st) < 0)
                return -errno;
        /* A raw image file, or a block device (iovd passes one only when its operator
         * allowed them: --allow-block-devices). */
        if (S_ISREG(st.st_mode) && st.st_size >= 0)
                size = (uint64_t)st.st_size;
        else if (!S_ISBLK(st.st_mode) || ioctl(b->fd, BLKGETSIZE64, &size) < 0)
                return -EINVAL;
        if (size % SECTOR_SIZE != 0)
                return -EINVAL; /* a partial last sector could not be addressed */
        b->sectors = size / SECTOR_SIZE;
        b->read_only = opts->read_only;
        b->no_io_uring = opts->no_io_uring;
        memcpy(b->serial, opts->serial, sizeof(b->serial));
        blk_config_fill(b, opts->num_queues ? opts->num_queues : 1);
        return 0;
}

/* Feature bits that depend on the options. */
static uint64_t blk_features(const struct iov_virtio_blk_options *opts, unsigned num_queues)
{
        uint64_t features = 0;

        if (opts->read_only)
                features |= 1ull << VIRTIO_BLK_F_RO;
        else
                features |= (1ull << VIRTIO_BLK_F_DISCARD) | (1ull << VIRTIO_BLK_F_WRITE_ZEROES);
        if (num_queues > 1)
                features |= 1ull << VIRTIO_BLK_F_MQ;
        return features;
}

int virtio_blk_new(const struct iov_virtio_mem *mem, const struct iov_virtio_blk_options *opts,
                   struct iov_virtio_dev **ret)
{
        unsigned num_queues = opts->num_queues ? opts->num_queues : 1;
        struct iov_virtio_dev *dev;

        if (num_queues > IOV_VIRTIO_BLK_MAX_QUEUES)
                return -EINVAL;
        struct blk *b = calloc(1, sizeof(*b));
        if (!b)
                return -ENOMEM;
        b->fd = b->fd_buffered = -1;
        int r = blk_open(opts, b);
        if (r >= 0)
                r = virtio_dev_new_mq(&blk_ops, blk_features(opts, num_queues), num_queues, mem,
                                      &dev);
        if (r < 0) {
                blk_close(b);
                free(b);
                return r;
        }
        dev->priv = b;
        dev->config = &b->config;
        dev->poll_us = opts->poll_us;
        r = blk_io_start(dev, num_queues);
        if (r < 0) {
                virtio_dev_free(dev);
                return r;
        }
        *ret = dev;
        return 0;
}
