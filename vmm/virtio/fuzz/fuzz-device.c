/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for a device's request parser, one executable per registered device
 * (built with -DFUZZ_DEVICE="virtio-blk" and so on; the device is looked up in the
 * registry and made by its own create). The input is guest RAM: queue q sits at
 * q * 1 KiB with 16 entries, request headers and data anywhere. Byte 0 picks the ring
 * features the driver takes. The device is driven like a driver would (status sequence,
 * queues enabled, DRIVER_OK), then every queue is notified, the backend polled, and what
 * the device took asynchronously (virtio-blk's io_uring) completed. Byte 1 picks the
 * device's options where they matter (virtio-blk: synchronous or io_uring, one or three
 * queues, read-only). Between rounds the device may be reset with requests in flight.
 */
#include <fcntl.h>
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/virtio_config.h>

#include "util/util.h"
#include "vmm/virtio/fuzz/fuzz-guest.h"

#ifndef FUZZ_DEVICE
#error "define FUZZ_DEVICE as the registered name of the device to fuzz"
#endif

#define QUEUE_SIZE   16
#define QUEUE_STRIDE 1024u
#define DISK_SIZE    (64u << 10)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int backend_a = -1, backend_b = -1;
/* virtio-net with two pairs: both socket pairs, passed as "fd:N" names (the device takes
 * copies). */
static int mq_fds[4] = {-1, -1, -1, -1};

static void backend_close(void)
{
        if (backend_a >= 0)
                close(backend_a);
        if (backend_b >= 0)
                close(backend_b);
        backend_a = backend_b = -1;
        for (size_t i = 0; i < ARRAY_SIZE(mq_fds); i++)
                if (mq_fds[i] >= 0)
                        close(mq_fds[i]);
        for (size_t i = 0; i < ARRAY_SIZE(mq_fds); i++)
                mq_fds[i] = -1;
}

/* The disk: one memory file for the whole run, reached by path like an image. */
static void backend_blk(void *options, const uint8_t *data, size_t size)
{
        struct iov_virtio_blk_options *o = options;
        static int disk = -1;

        if (size > 1) {
                o->no_io_uring = data[1] & 1;
                o->num_queues = data[1] & 2 ? 3 : 1;
                o->read_only = data[1] & 4;
        }
        if (disk < 0) {
                disk = memfd_create("fuzz-disk", 0);
                if (disk < 0 || ftruncate(disk, DISK_SIZE) < 0)
                        abort();
        }
        snprintf(o->path, sizeof(o->path), "/proc/self/fd/%d", disk);
        snprintf(o->serial, sizeof(o->serial), "fuzz");
}

/* A socket pair stands in for the TAP (no CAP_NET_ADMIN here), with two frames waiting
 * for the receive queue, cut from the input (with bit 3 of byte 0, a TAP with offloads and
 * mergeable receive buffers: see below). When bit 2 of byte 0 is set the device is a
 * VM-to-VM link's port instead (net-link.c): its end of a SOCK_SEQPACKET pair is attached
 * once the device exists, with the first frame's source MAC as its client's, so frames
 * from that source pass and others are dropped. With bit 4 (and no link) the device has
 * two queue pairs, each on a socket pair of its own, and a control queue. */
static int link_end = -1;
static uint8_t link_mac[6];

static void backend_net_mq(struct iov_virtio_net_options *o, const int sv[2], const uint8_t *data,
                           size_t size)
{
        int sv2[2];

        if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0, sv2) < 0)
                abort();
        if (size >= 3 * 32 + 64)
                (void)send(sv2[1], data + 64, 12 + data[2] % 52, 0);
        mq_fds[0] = sv[0];
        mq_fds[1] = sv2[0];
        mq_fds[2] = sv2[1];
        o->tap_fd = -1;
        o->queues = 2;
        snprintf(o->tap_queue_fds[0], sizeof(o->tap_queue_fds[0]), "fd:%d", sv[0]);
        snprintf(o->tap_queue_fds[1], sizeof(o->tap_queue_fds[1]), "fd:%d", sv2[0]);
        snprintf(o->tap_name, sizeof(o->tap_name), "%s", o->tap_queue_fds[0]);
}

static void backend_net(void *options, const uint8_t *data, size_t size)
{
        struct iov_virtio_net_options *o = options;
        bool link = data[0] & 4;
        int sv[2];

        if (link_end >= 0) /* the last device was never made */
                close(link_end);
        link_end = -1;
        if (socketpair(AF_UNIX, (link ? SOCK_SEQPACKET : SOCK_DGRAM) | SOCK_NONBLOCK, 0, sv) < 0)
                abort();
        backend_b = sv[1];
        for (size_t off = 0; off < 2 && size >= 32 + 64; off++)
                (void)send(backend_b, data + off * 32, 12 + data[off] % 52, 0);
        /* Bit 3: the TAP's offloads and mergeable receive buffers (the guest takes every
         * feature offered: headers passed through, frames spread over chains). */
        *o = (struct iov_virtio_net_options){.tap_fd = sv[0],
                                             .mac = {2, 0, 0, 0, 0, 1},
                                             .has_mac = true,
                                             .offload_stand_in = data[0] & 8};
        if (!link && (data[0] & 0x10)) {
                backend_net_mq(o, sv, data, size);
                return;
        }
        if (!link)
                return;
        o->tap_fd = -1;
        snprintf(o->port, sizeof(o->port), "fuzz");
        link_end = sv[0];
        if (size >= 12)
                memcpy(link_mac, data + 6, sizeof(link_mac));
}

static void backend_net_attach(void)
{
        if (link_end >= 0)
                (void)virtio_net_link_attach("fuzz", link_end, link_mac);
        link_end = -1;
}

/* The input FIFO is a pipe, opened again by path as the device does with "input". */
static void backend_console(void *options, const uint8_t *data, size_t size)
{
        struct iov_virtio_console_options *o = options;
        int in[2];

        if (pipe(in) < 0)
                abort();
        backend_a = in[0];
        backend_b = in[1];
        (void)!write(backend_b, data, size < 64 ? size : 64);
        snprintf(o->input, sizeof(o->input), "/proc/self/fd/%d", in[0]);
}

/* What the fuzzer stands in for, for devices whose create would open host resources;
 * a device without an entry is made from zeroed options. */
static const struct {
        const char *device;
        void (*setup)(void *options, const uint8_t *data, size_t size);
        void (*created)(void); /* after create, or NULL */
} backends[] = {
        {"virtio-blk", backend_blk, NULL},
        {"virtio-net", backend_net, backend_net_attach},
        {"virtio-console", backend_console, NULL},
};

static int device_new(struct fuzz_guest *g, const uint8_t *data, size_t size,
                      struct iov_virtio_dev **ret)
{
        static int console_out = -1;
        const struct iov_virtio_dev_ops *ops = virtio_device_find(FUZZ_DEVICE);

        if (!ops || !ops->create) {
                fprintf(stderr, "%s is not a registered virtio device\n", FUZZ_DEVICE);
                abort();
        }
        if (console_out < 0)
                console_out = open("/dev/null", O_WRONLY | O_CLOEXEC);
        _cleanup_free_ void *options = calloc(1, ops->options_size ? ops->options_size : 1);
        if (!options)
                abort();
        for (size_t i = 0; i < ARRAY_SIZE(backends); i++)
                if (streq(backends[i].device, ops->name))
                        backends[i].setup(options, data, size);
        struct iov_virtio_host host = {.mem = &g->mem, .console_fd = console_out};
        int r = ops->create(options, &host, ret);
        for (size_t i = 0; r == 0 && i < ARRAY_SIZE(backends); i++)
                if (streq(backends[i].device, ops->name) && backends[i].created)
                        backends[i].created();
        return r;
}

static void device_start(struct iov_virtio_dev *dev, struct fuzz_guest *g, uint8_t pick)
{
        virtio_dev_set_status(dev, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
        dev->guest_features = 1ull << VIRTIO_F_VERSION_1 | (dev->host_features & 0xffffffffull);
        if (!(pick & 1))
                dev->guest_features &= ~(1ull << VIRTIO_RING_F_EVENT_IDX);
        if (!(pick & 2))
                dev->guest_features &= ~(1ull << VIRTIO_RING_F_INDIRECT_DESC);
        virtio_dev_set_status(dev, dev->status | VIRTIO_CONFIG_S_FEATURES_OK);
        for (unsigned q = 0; q < dev->num_queues; q++) {
                struct iov_virtq *vq = &dev->queues[q];
                vq->size = QUEUE_SIZE;
                vq->desc_gpa = q * QUEUE_STRIDE;
                vq->avail_gpa = vq->desc_gpa + 16 * QUEUE_SIZE;
                vq->used_gpa = vq->avail_gpa + 64;
                (void)virtq_enable(vq, &g->mem);
        }
        virtio_dev_set_status(dev, dev->status | VIRTIO_CONFIG_S_DRIVER_OK);
}

/* What the device took asynchronously, completed (a bounded wait per batch). */
static void device_settle(struct iov_virtio_dev *dev)
{
        for (int i = 0; i < 64 && virtio_dev_complete(dev) > 0; i++) {
                struct pollfd p = {.fd = dev->completion_fd, .events = POLLIN};
                /* Ten seconds without a completion is a lost one (a loaded machine can take
                 * more than one). libFuzzer's -timeout alarm (SIGALRM every few seconds)
                 * interrupts the wait: EINTR is no lost completion, wait again. */
                int r;
                while ((r = poll(&p, 1, 10000)) < 0 && errno == EINTR)
                        ;
                if (r != 1)
                        abort();
                (void)eventfd_read(dev->completion_fd, &(eventfd_t){0});
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct fuzz_guest g;
        struct iov_virtio_dev *dev = NULL;

        if (size < 1 || fuzz_guest_init(&g, data, size) < 0)
                return 0;
        if (device_new(&g, data, size, &dev) == 0) {
                device_start(dev, &g, data[0]);
                for (int round = 0; round < 4; round++) {
                        for (unsigned q = 0; q < dev->num_queues; q++)
                                (void)virtio_dev_notify(dev, q);
                        for (unsigned b = 0; b < IOV_VIRTIO_MAX_BACKENDS; b++)
                                if (dev->backend_fd[b] >= 0)
                                        (void)virtio_dev_backend_ready_at(dev, b);
                        if (round == 2 && size > 2 && data[2] & 1)
                                virtio_dev_reset(dev); /* with requests in flight */
                        else
                                device_settle(dev);
                }
                virtio_dev_free(dev);
        }
        backend_close();
        fuzz_guest_fini(&g);
        return 0;
}
