/* SPDX-License-Identifier: MIT */
/*
 * virtio-console (virtio 1.2 §5.3), port 0 only (no MULTIPORT): receiveq0 carries input
 * to the guest, transmitq0 carries its output (hvc0 in Linux). Output goes to the VM's
 * console stream fd, input comes from another fd that is polled by the I/O thread.
 *
 *   {"type": "virtio-console", "input": "/run/vm/console.in"}   (input: optional FIFO)
 *
 * Made from a spec, the console writes to the VM's console stream (the UART's fd) and
 * reads the FIFO named by "input", opened read-write so it never reads as EOF between
 * writers; the device owns that fd. "input" may be "fd:N", a FIFO iovd opened and passed.
 */
#include "vmm/virtio/virtio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <linux/virtio_console.h>
#include <linux/virtio_ids.h>

#include "util/util.h"

enum {
        CONSOLE_RX = 0,
        CONSOLE_TX = 1,
};

struct console {
        int in_fd, out_fd;
        bool in_fd_owned; /* opened by console_create: closed with the device */
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

static int console_backend_ready(struct iov_virtio_dev *dev, unsigned b)
{
        struct console *c = dev->priv;

        (void)b; /* one input, backend 0 */
        if (!virtio_dev_queue_ready(dev, CONSOLE_RX))
                return 0;
        int r = virtio_dev_process_queue(dev, CONSOLE_RX, console_handle_rx);
        if (r >= 0 && c->in_eof)
                return -EPIPE;
        return r;
}

static void console_destroy(struct iov_virtio_dev *dev)
{
        struct console *c = dev->priv;

        if (c && c->in_fd_owned && c->in_fd >= 0)
                close(c->in_fd);
}

static int console_parse_field(void *options, const char *key, struct json_object *value,
                               char **ret_error)
{
        struct iov_virtio_console_options *o = options;

        if (!streq(key, "input"))
                return -ENOENT;
        return virtio_spec_string(value, key, o->input, sizeof(o->input), ret_error);
}

/* The input FIFO; a path that is not a FIFO is refused, since a regular file would read
 * as EOF at once and a device node could block or have side effects. */
static int console_open_input(const char *path, int *ret_fd)
{
        struct stat st;
        _cleanup_close_ int fd = -1;
        int r = util_open_inherited(path, O_RDWR | O_NONBLOCK, &fd);

        if (r < 0)
                return r;
        /* A passed FIFO keeps the flags iovd opened it with: never block the poller. */
        int flags = fcntl(fd, F_GETFL);
        if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISFIFO(st.st_mode))
                return -EINVAL;
        *ret_fd = TAKE_FD(fd);
        return 0;
}

static int console_create(const void *options, const struct iov_virtio_host *host,
                          struct iov_virtio_dev **ret)
{
        const struct iov_virtio_console_options *o = options;
        _cleanup_close_ int in_fd = -1;
        struct iov_virtio_dev *dev;

        if (o->input[0]) {
                int r = console_open_input(o->input, &in_fd);
                if (r < 0)
                        return r;
        }
        int r = virtio_console_new(host->mem, in_fd, host->console_fd, &dev);
        if (r < 0)
                return r;
        /* From here the device closes the FIFO (console_destroy). */
        struct console *c = dev->priv;
        c->in_fd_owned = in_fd >= 0;
        (void)TAKE_FD(in_fd);
        *ret = dev;
        return 0;
}

/* iovd opens "input" for iovd-vmm and passes it (virtio.h, host_files). */
static const struct iov_virtio_host_file console_host_files[] = {{"input", IOV_VIRTIO_HOST_FIFO},
                                                                 {NULL, 0}};

static const struct iov_virtio_dev_ops console_ops = {
        .name = "virtio-console",
        .device_id = VIRTIO_ID_CONSOLE,
        .num_queues = 2,
        .queue_max_size = 256,
        .config_size = sizeof(struct virtio_console_config),
        .config_read = virtio_dev_read_config,
        .queue_notify = console_queue_notify,
        .backend_ready = console_backend_ready,
        .destroy = console_destroy,
        .options_size = sizeof(struct iov_virtio_console_options),
        .parse_field = console_parse_field,
        .host_files = console_host_files,
        .create = console_create,
};

IOV_VIRTIO_DEVICE(console_ops)

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
        dev->backend_fd[0] = in_fd;
        *ret = dev;
        return 0;
}
