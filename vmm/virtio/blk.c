/* SPDX-License-Identifier: MIT */
/*
 * virtio-blk (virtio 1.2 §5.2) on a raw image file: one request queue. A request is a
 * 16-byte header (type, ioprio, sector) the device reads, the data, and one status byte
 * the device writes last (§5.2.6). Data moves with pread/pwrite straight between the
 * file and guest memory. Requests are bounded (IOV_VIRTIO_BLK_MAX_REQUEST bytes, whole
 * sectors, inside the disk); one that is not gets IOERR and changes nothing.
 *
 *   {"type": "virtio-blk", "path": "/var/lib/x.img", "read_only": false, "serial": "disk0"}
 *
 * path is required: a path, or "fd:N" for a descriptor iovd opened and passed (iovd
 * always does: the VMM opens no host path of a definition); a regular file, or a block
 * device. serial (the GET_ID answer) is at most 20 bytes.
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

#define SECTOR_SIZE 512u
/* Segment size and count we advertise; together they cap a request at the maximum. */
#define BLK_SIZE_MAX (32u << 10)
#define BLK_SEG_MAX  (IOV_VIRTIO_BLK_MAX_REQUEST / BLK_SIZE_MAX)

struct blk {
        int fd;
        bool read_only;
        uint64_t sectors;
        char serial[VIRTIO_BLK_ID_BYTES];
        struct virtio_blk_config config;
        struct iovec data[IOV_VIRTQ_MAX_SEGS]; /* the data part of the current request */
};

/* The data part of a request: iovecs [first, first + n) with `skip` bytes cut from the
 * front and `trim` bytes from the back. Returns the number of iovecs. */
static unsigned blk_data_iov(struct blk *b, const struct iovec *iov, unsigned n, size_t skip,
                             size_t trim)
{
        unsigned out = 0;

        for (unsigned i = 0; i < n; i++) {
                struct iovec v = iov[i];
                if (skip >= v.iov_len) {
                        skip -= v.iov_len;
                        continue;
                }
                v.iov_base = (uint8_t *)v.iov_base + skip;
                v.iov_len -= skip;
                skip = 0;
                b->data[out++] = v;
        }
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

/* One pread/pwrite per segment: the calls iovd-vmm's seccomp allow-list has (vmm/sandbox.c).
 * A short transfer continues where it stopped; a zero one (past the end) is an error. */
static int blk_rw(struct blk *b, bool write, unsigned n, uint64_t sector)
{
        off_t off = (off_t)(sector * SECTOR_SIZE);

        for (unsigned i = 0; i < n; i++) {
                uint8_t *p = b->data[i].iov_base;
                size_t left = b->data[i].iov_len;
                while (left > 0) {
                        ssize_t got =
                                write ? pwrite(b->fd, p, left, off) : pread(b->fd, p, left, off);
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

static uint8_t blk_do_read(struct iov_virtio_dev *dev, struct iov_virtq_req *req, uint64_t sector,
                           uint32_t *ret_data)
{
        struct blk *b = dev->priv;
        uint64_t len = req->in_len - 1;

        if (!blk_range_ok(b, sector, len))
                return VIRTIO_BLK_S_IOERR;
        unsigned n = blk_data_iov(b, req->in, req->n_in, 0, 1);
        if (blk_rw(b, false, n, sector) < 0)
                return VIRTIO_BLK_S_IOERR;
        dev->stats.requests_read++;
        dev->stats.bytes_read += len;
        *ret_data = (uint32_t)len;
        return VIRTIO_BLK_S_OK;
}

static uint8_t blk_do_write(struct iov_virtio_dev *dev, struct iov_virtq_req *req, uint64_t sector)
{
        struct blk *b = dev->priv;
        uint64_t len = req->out_len - sizeof(struct virtio_blk_outhdr);

        if (b->read_only || !blk_range_ok(b, sector, len))
                return VIRTIO_BLK_S_IOERR;
        unsigned n = blk_data_iov(b, req->out, req->n_out, sizeof(struct virtio_blk_outhdr), 0);
        if (blk_rw(b, true, n, sector) < 0)
                return VIRTIO_BLK_S_IOERR;
        dev->stats.requests_written++;
        dev->stats.bytes_written += len;
        return VIRTIO_BLK_S_OK;
}

static uint8_t blk_do_get_id(struct iov_virtio_dev *dev, struct iov_virtq_req *req,
                             uint32_t *ret_data)
{
        struct blk *b = dev->priv;
        size_t len = req->in_len - 1 < VIRTIO_BLK_ID_BYTES ? req->in_len - 1 : VIRTIO_BLK_ID_BYTES;

        *ret_data = (uint32_t)virtio_iov_from_buf(req->in, req->n_in, 0, b->serial, len);
        return VIRTIO_BLK_S_OK;
}

static uint8_t blk_dispatch(struct iov_virtio_dev *dev, struct iov_virtq_req *req,
                            const struct virtio_blk_outhdr *hdr, uint32_t *ret_data)
{
        struct blk *b = dev->priv;

        switch (hdr->type) {
        case VIRTIO_BLK_T_IN:
                return blk_do_read(dev, req, hdr->sector, ret_data);
        case VIRTIO_BLK_T_OUT:
                return blk_do_write(dev, req, hdr->sector);
        case VIRTIO_BLK_T_FLUSH:
                if (!b->read_only && fdatasync(b->fd) < 0)
                        return VIRTIO_BLK_S_IOERR;
                return VIRTIO_BLK_S_OK;
        case VIRTIO_BLK_T_GET_ID:
                return blk_do_get_id(dev, req, ret_data);
        default:
                return VIRTIO_BLK_S_UNSUPP;
        }
}

static int blk_handle(struct iov_virtio_dev *dev, unsigned q, struct iov_virtq_req *req,
                      uint32_t *ret_written)
{
        struct virtio_blk_outhdr hdr;
        uint32_t data = 0;
        uint8_t status;

        (void)q;
        /* Without a writable byte there is nowhere to put the status: fail, touch
         * nothing (§5.2.6.1: the status byte is the last device-writable byte). */
        if (req->in_len == 0) {
                dev->stats.requests_failed++;
                *ret_written = 0;
                return 0;
        }
        if (virtio_iov_to_buf(req->out, req->n_out, 0, &hdr, sizeof(hdr)) != sizeof(hdr))
                status = VIRTIO_BLK_S_IOERR;
        else
                status = blk_dispatch(dev, req, &hdr, &data);
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
        return virtio_dev_process_queue(dev, q, blk_handle);
}

static void blk_destroy(struct iov_virtio_dev *dev)
{
        struct blk *b = dev->priv;
        if (!b)
                return;
        if (b->fd >= 0)
                close(b->fd);
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

static int blk_parse_field(void *options, const char *key, struct json_object *value,
                           char **ret_error)
{
        struct iov_virtio_blk_options *o = options;

        if (streq(key, "path"))
                return virtio_spec_string(value, key, o->path, sizeof(o->path), ret_error);
        if (streq(key, "serial"))
                return blk_parse_serial(o, value, ret_error);
        if (!streq(key, "read_only"))
                return -ENOENT;
        if (!json_object_is_type(value, json_type_boolean))
                return virtio_spec_error(ret_error, "\"%s\" must be true or false", key);
        o->read_only = json_object_get_boolean(value);
        return 0;
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
        return virtio_blk_new(host->mem, options, ret);
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
        .queue_max_size = 256,
        .config_size = sizeof(struct virtio_blk_config),
        .config_read = virtio_dev_read_config,
        .queue_notify = blk_queue_notify,
        .destroy = blk_destroy,
        .options_size = sizeof(struct iov_virtio_blk_options),
        .parse_field = blk_parse_field,
        .parse_done = blk_parse_done,
        .host_files = blk_host_files,
        .create = blk_create,
};

IOV_VIRTIO_DEVICE(blk_ops)

static int blk_open(const struct iov_virtio_blk_options *opts, struct blk *b)
{
        struct stat st;

        uint64_t size = 0;
        int r = util_open_inherited(opts->path, opts->read_only ? O_RDONLY : O_RDWR, &b->fd);
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
        memcpy(b->serial, opts->serial, sizeof(b->serial));
        b->config.capacity = b->sectors;
        b->config.size_max = BLK_SIZE_MAX;
        b->config.seg_max = BLK_SEG_MAX;
        return 0;
}

int virtio_blk_new(const struct iov_virtio_mem *mem, const struct iov_virtio_blk_options *opts,
                   struct iov_virtio_dev **ret)
{
        struct blk *b = calloc(1, sizeof(*b));
        struct iov_virtio_dev *dev;
        /* Only read-only depends on the options; the rest is in blk_ops.features. */
        uint64_t features = 0;
        int r;

        if (!b)
                return -ENOMEM;
        r = blk_open(opts, b);
        if (r < 0) {
                if (b->fd >= 0)
                        close(b->fd);
                free(b);
                return r;
        }
        if (opts->read_only)
                features |= 1ull << VIRTIO_BLK_F_RO;
        r = virtio_dev_new(&blk_ops, features, mem, &dev);
        if (r < 0) {
                close(b->fd);
                free(b);
                return r;
        }
        dev->priv = b;
        dev->config = &b->config;
        *ret = dev;
        return 0;
}
