/* SPDX-License-Identifier: MIT */
/*
 * virtio-console (virtio 1.2 §5.3), port 0 only (no MULTIPORT): receiveq0 carries input
 * to the guest, transmitq0 carries its output (hvc0 in Linux). Output goes to the VM's
 * console stream fd, input comes from another fd that is polled by the I/O thread.
 */
#include "vmm/virtio/virtio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <linux/virtio_console.h>

#include "util/util.h"

enum {
        CONSOLE_RX = 0,
        CONSOLE_TX = 1,
};

struct console {
        int in_fd, out_fd;
        bool in_eof;
        struct virtio_console_config config;
};

/* transmitq: every readable byte goes to the console stream, in order. */
static int console_handle_tx(struct iov_virtio_dev *dev, unsigned q, struct iov_virtq_req *req,
                             uint32_t *ret_written)
{
        struct console *c = dev->priv;

        (void)q;
        for (unsigned i = 0; i < req->n_out; i++)
                if (c->out_fd >= 0 &&
                    util_write_all(c->out_fd, req->out[i].iov_base, req->out[i].iov_len) < 0) {
                        /* The stream is gone; the guest's output is dropped, not stuck. */
                        dev->stats.requests_failed++;
                        break;
                }
        dev->stats.requests_written++;
        dev->stats.bytes_written += req->out_len;
        *ret_written = 0;
        return 0;
}

/* receiveq: fill one buffer with whatever input is pending. */
static int console_handle_rx(struct iov_virtio_dev *dev, unsigned q, struct iov_virtq_req *req,
                             uint32_t *ret_written)
{
        struct console *c = dev->priv;

        (void)q;
        if (c->in_fd < 0 || c->in_eof)
                return -EAGAIN;
        if (req->n_in == 0) {
                /* Nothing writable in a receive buffer: fail it, keep the input. */
                dev->stats.requests_failed++;
                *ret_written = 0;
                return 0;
        }
        ssize_t n = readv(c->in_fd, req->in, (int)req->n_in);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return -EAGAIN;
        if (n <= 0) {
                c->in_eof = true;
                return -EAGAIN;
        }
        dev->stats.requests_read++;
        dev->stats.bytes_read += (uint64_t)n;
        *ret_written = (uint32_t)n;
        return 0;
}

static int console_queue_notify(struct iov_virtio_dev *dev, unsigned q)
{
        return virtio_dev_process_queue(dev, q,
                                        q == CONSOLE_TX ? console_handle_tx : console_handle_rx);
}

static int console_backend_ready(struct iov_virtio_dev *dev)
{
        struct console *c = dev->priv;

        if (!virtio_dev_queue_ready(dev, CONSOLE_RX))
                return 0;
        int r = virtio_dev_process_queue(dev, CONSOLE_RX, console_handle_rx);
        if (r >= 0 && c->in_eof)
                return -EPIPE;
        return r;
}

static const struct iov_virtio_dev_ops console_ops = {
        .name = "virtio-console",
        .device_id = 3,
        .num_queues = 2,
        .queue_max_size = 256,
        .config_size = sizeof(struct virtio_console_config),
        .config_read = virtio_dev_read_config,
        .queue_notify = console_queue_notify,
        .backend_ready = console_backend_ready,
};

int virtio_console_new(const struct iov_virtio_mem *mem, int in_fd, int out_fd,
                       struct iov_virtio_dev **ret)
{
        _cleanup_free_ struct console *c = calloc(1, sizeof(*c));
        struct iov_virtio_dev *dev;
        int r;

        if (!c)
                return -ENOMEM;
        /* Input is read until EAGAIN from the I/O thread, which must never block. */
        if (in_fd >= 0) {
                int flags = fcntl(in_fd, F_GETFL);
                if (flags < 0 || fcntl(in_fd, F_SETFL, flags | O_NONBLOCK) < 0)
                        return -errno;
        }
        c->in_fd = in_fd;
        c->out_fd = out_fd;
        r = virtio_dev_new(&console_ops, 0, mem, &dev);
        if (r < 0)
                return r;
        dev->config = &c->config;
        dev->priv = TAKE_PTR(c);
        dev->backend_fd = in_fd;
        *ret = dev;
        return 0;
}
