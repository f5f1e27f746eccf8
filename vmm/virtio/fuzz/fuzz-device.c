/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for a device's request parser, one executable per device (built with
 * -DFUZZ_DEVICE_BLK, _NET, _CONSOLE or _RNG). The input is guest RAM: queue q sits at
 * q * 1 KiB with 16 entries, request headers and data anywhere. Byte 0 picks the ring
 * features the driver takes. The device is driven like a driver would (status sequence,
 * queues enabled, DRIVER_OK), then every queue is notified and the backend polled.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/virtio_config.h>

#include "vmm/virtio/fuzz/fuzz-guest.h"

#define QUEUE_SIZE   16
#define QUEUE_STRIDE 1024u
#define DISK_SIZE    (64u << 10)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int backend_a = -1, backend_b = -1;

static void backend_close(void)
{
        if (backend_a >= 0)
                close(backend_a);
        if (backend_b >= 0)
                close(backend_b);
        backend_a = backend_b = -1;
}

static int device_new(struct fuzz_guest *g, const uint8_t *data, size_t size,
                      struct iov_virtio_dev **ret)
{
#if defined(FUZZ_DEVICE_BLK)
        static char path[64];
        static int disk = -1;
        (void)data;
        (void)size;
        if (disk < 0) {
                disk = memfd_create("fuzz-disk", 0);
                if (disk < 0 || ftruncate(disk, DISK_SIZE) < 0)
                        abort();
                snprintf(path, sizeof(path), "/proc/self/fd/%d", disk);
        }
        struct iov_virtio_blk_options opts = {.path = path, .serial = "fuzz"};
        return virtio_blk_new(&g->mem, &opts, ret);
#elif defined(FUZZ_DEVICE_NET)
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0, sv) < 0)
                abort();
        backend_b = sv[1];
        /* Two frames waiting for the receive queue, cut from the input. */
        for (size_t off = 0; off < 2 && size >= 32 + 64; off++)
                (void)send(backend_b, data + off * 32, 12 + data[off] % 52, 0);
        struct iov_virtio_net_options opts = {.tap_fd = sv[0], .mac = {2, 0, 0, 0, 0, 1}};
        return virtio_net_new(&g->mem, &opts, ret);
#elif defined(FUZZ_DEVICE_CONSOLE)
        int in[2];
        if (pipe(in) < 0)
                abort();
        backend_a = in[0];
        backend_b = in[1];
        (void)!write(backend_b, data, size < 64 ? size : 64);
        static int out = -1;
        if (out < 0)
                out = open("/dev/null", O_WRONLY | O_CLOEXEC);
        return virtio_console_new(&g->mem, in[0], out, ret);
#elif defined(FUZZ_DEVICE_RNG)
        (void)data;
        (void)size;
        return virtio_rng_new(&g->mem, ret);
#else
#error "define FUZZ_DEVICE_BLK, _NET, _CONSOLE or _RNG"
#endif
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
        for (unsigned q = 0; q < dev->ops->num_queues; q++) {
                struct iov_virtq *vq = &dev->queues[q];
                vq->size = QUEUE_SIZE;
                vq->desc_gpa = q * QUEUE_STRIDE;
                vq->avail_gpa = vq->desc_gpa + 16 * QUEUE_SIZE;
                vq->used_gpa = vq->avail_gpa + 64;
                (void)virtq_enable(vq, &g->mem);
        }
        virtio_dev_set_status(dev, dev->status | VIRTIO_CONFIG_S_DRIVER_OK);
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
                        for (unsigned q = 0; q < dev->ops->num_queues; q++)
                                (void)virtio_dev_notify(dev, q);
                        (void)virtio_dev_backend_ready(dev);
                }
                virtio_dev_free(dev);
        }
        backend_close();
        fuzz_guest_fini(&g);
        return 0;
}
