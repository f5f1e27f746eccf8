/* SPDX-License-Identifier: MIT */
/*
 * virtio-rng (virtio 1.2 §5.4): one request queue; the driver posts device-writable
 * buffers and we fill them from getrandom(2), at most IOV_VIRTIO_RNG_MAX_REQUEST bytes a
 * request so one guest cannot drain the host pool in one go. No config space.
 *
 *   {"type": "virtio-rng"}   (no fields)
 */
#include "vmm/virtio/virtio.h"

#include <errno.h>
#include <sys/random.h>
#include <linux/virtio_ids.h>

static int rng_fill(void *buf, size_t len)
{
        size_t done = 0;

        while (done < len) {
                ssize_t n = getrandom((uint8_t *)buf + done, len - done, 0);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                done += (size_t)n;
        }
        return 0;
}

static int rng_handle(struct iov_virtio_dev *dev, unsigned q, struct iov_virtq_req *req,
                      uint32_t *ret_written)
{
        uint32_t written = 0;

        (void)q;
        /* A chain with nothing to write into is answered empty (§5.4.6.1 only asks for
         * device-writable buffers; a readable part is ignored). */
        for (unsigned i = 0; i < req->n_in && written < IOV_VIRTIO_RNG_MAX_REQUEST; i++) {
                size_t len = req->in[i].iov_len;
                if (len > IOV_VIRTIO_RNG_MAX_REQUEST - written)
                        len = IOV_VIRTIO_RNG_MAX_REQUEST - written;
                if (rng_fill(req->in[i].iov_base, len) < 0) {
                        dev->stats.requests_failed++;
                        break;
                }
                written += (uint32_t)len;
        }
        dev->stats.requests_read++;
        dev->stats.bytes_read += written;
        *ret_written = written;
        return 0;
}

static int rng_queue_notify(struct iov_virtio_dev *dev, unsigned q)
{
        return virtio_dev_process_queue(dev, q, rng_handle);
}

static int rng_create(const void *options, const struct iov_virtio_host *host,
                      struct iov_virtio_dev **ret)
{
        (void)options;
        return virtio_rng_new(host->mem, ret);
}

static const struct iov_virtio_dev_ops rng_ops = {
        .name = "virtio-rng",
        .device_id = VIRTIO_ID_RNG,
        .num_queues = 1,
        .queue_max_size = 64,
        .config_size = 0,
        .queue_notify = rng_queue_notify,
        .create = rng_create,
};

IOV_VIRTIO_DEVICE(rng_ops)

int virtio_rng_new(const struct iov_virtio_mem *mem, struct iov_virtio_dev **ret)
{
        return virtio_dev_new(&rng_ops, 0, mem, ret);
}
