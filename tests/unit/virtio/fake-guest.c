/* SPDX-License-Identifier: MIT */
#include "fake-guest.h"

#include <errno.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <stdlib.h>
#include <string.h>
#include <linux/virtio_config.h>

static void *fake_mem_ptr(void *opaque, uint64_t gpa, uint64_t len)
{
        struct fake_guest *g = opaque;

        if (gpa >= FAKE_RAM_SIZE || len > FAKE_RAM_SIZE - gpa)
                return NULL;
        if (gpa < FAKE_HOLE_END && gpa + len > FAKE_HOLE_START)
                return NULL;
        return g->ram + gpa;
}

int fake_guest_init(struct fake_guest *g)
{
        g->ram = calloc(1, FAKE_RAM_SIZE);
        if (!g->ram)
                return -ENOMEM;
        g->next_buf = FAKE_BUF_BASE;
        g->mem = (struct iov_virtio_mem){.ptr = fake_mem_ptr, .opaque = g};
        return 0;
}

void fake_guest_fini(struct fake_guest *g)
{
        free(g->ram);
        g->ram = NULL;
}

void *fake_guest_ptr(struct fake_guest *g, uint64_t gpa)
{
        return g->ram + gpa;
}

uint64_t fake_guest_alloc(struct fake_guest *g, uint32_t len)
{
        uint64_t gpa = g->next_buf;
        g->next_buf = (g->next_buf + len + 15) & ~15ull;
        return gpa;
}

static struct vring_desc *ring_desc(struct fake_ring *r)
{
        return fake_guest_ptr(r->guest, r->vq->desc_gpa);
}

static struct vring_avail *ring_avail(struct fake_ring *r)
{
        return fake_guest_ptr(r->guest, r->vq->avail_gpa);
}

static struct vring_used *ring_used(struct fake_ring *r)
{
        return fake_guest_ptr(r->guest, r->vq->used_gpa);
}

void fake_ring_init(struct fake_ring *r, struct fake_guest *g, struct iov_virtq *vq, uint16_t size,
                    uint64_t ring_gpa)
{
        *r = (struct fake_ring){.guest = g, .vq = vq, .size = size};
        vq->size = size;
        vq->desc_gpa = ring_gpa;
        vq->avail_gpa = ring_gpa + 16ull * size;
        /* used ring on the next 4 KiB boundary, as legacy drivers lay it out */
        vq->used_gpa = (vq->avail_gpa + 6 + 2ull * size + 4095) & ~4095ull;
}

void fake_ring_set_desc(struct fake_ring *r, uint16_t i, uint64_t addr, uint32_t len,
                        uint16_t flags, uint16_t next)
{
        ring_desc(r)[i] =
                (struct vring_desc){.addr = addr, .len = len, .flags = flags, .next = next};
}

void fake_ring_publish(struct fake_ring *r, uint16_t head, uint16_t advance)
{
        struct vring_avail *a = ring_avail(r);
        a->ring[r->avail_idx % r->size] = head;
        r->avail_idx += advance;
        __atomic_store_n(&a->idx, r->avail_idx, __ATOMIC_RELEASE);
}

uint16_t fake_ring_add(struct fake_ring *r, const struct fake_buf *bufs, unsigned n)
{
        uint16_t head = r->next_desc;
        for (unsigned i = 0; i < n; i++) {
                uint16_t idx = (uint16_t)((head + i) % r->size);
                uint16_t flags = bufs[i].writable ? VRING_DESC_F_WRITE : 0;
                if (i + 1 < n)
                        flags |= VRING_DESC_F_NEXT;
                fake_ring_set_desc(r, idx, bufs[i].gpa, bufs[i].len, flags,
                                   (uint16_t)((idx + 1) % r->size));
        }
        r->next_desc = (uint16_t)((head + n) % r->size);
        fake_ring_publish(r, head, 1);
        return head;
}

uint16_t fake_ring_add_indirect(struct fake_ring *r, uint64_t table_gpa,
                                const struct fake_buf *bufs, unsigned n)
{
        struct vring_desc *table = fake_guest_ptr(r->guest, table_gpa);
        for (unsigned i = 0; i < n; i++) {
                uint16_t flags = bufs[i].writable ? VRING_DESC_F_WRITE : 0;
                if (i + 1 < n)
                        flags |= VRING_DESC_F_NEXT;
                table[i] = (struct vring_desc){.addr = bufs[i].gpa,
                                               .len = bufs[i].len,
                                               .flags = flags,
                                               .next = (uint16_t)(i + 1)};
        }
        uint16_t head = r->next_desc;
        fake_ring_set_desc(r, head, table_gpa, (uint32_t)(n * sizeof(struct vring_desc)),
                           VRING_DESC_F_INDIRECT, 0);
        r->next_desc = (uint16_t)((head + 1) % r->size);
        fake_ring_publish(r, head, 1);
        return head;
}

int fake_ring_get_used(struct fake_ring *r, uint32_t *ret_id, uint32_t *ret_len)
{
        struct vring_used *u = ring_used(r);
        if (__atomic_load_n(&u->idx, __ATOMIC_ACQUIRE) == r->last_used)
                return 0;
        struct vring_used_elem e = u->ring[r->last_used % r->size];
        r->last_used++;
        *ret_id = e.id;
        *ret_len = e.len;
        return 1;
}

void fake_ring_set_used_event(struct fake_ring *r, uint16_t event)
{
        ring_avail(r)->ring[r->size] = event;
}

uint16_t fake_ring_avail_event(struct fake_ring *r)
{
        return *(uint16_t *)&ring_used(r)->ring[r->size];
}

void fake_ring_set_avail_flags(struct fake_ring *r, uint16_t flags)
{
        ring_avail(r)->flags = flags;
}

uint8_t fake_dev_start(struct iov_virtio_dev *dev, struct fake_guest *g, struct fake_ring *rings,
                       uint16_t queue_size)
{
        virtio_dev_set_status(dev, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
        dev->guest_features = dev->host_features;
        virtio_dev_set_status(dev, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
                                           VIRTIO_CONFIG_S_FEATURES_OK);
        for (unsigned q = 0; q < dev->num_queues; q++) {
                fake_ring_init(&rings[q], g, &dev->queues[q], queue_size, 0x1000 + q * 0x10000);
                if (virtq_enable(&dev->queues[q], &g->mem) < 0)
                        return 0;
        }
        virtio_dev_set_status(dev, dev->status | VIRTIO_CONFIG_S_DRIVER_OK);
        return dev->status;
}

int fake_dev_settle(struct iov_virtio_dev *dev, unsigned *ret_rounds)
{
        unsigned rounds = 0;

        for (;;) {
                int r = virtio_dev_complete(dev);
                if (r < 0)
                        return r;
                rounds++;
                if (r == 0)
                        break;
                struct pollfd p = {.fd = dev->completion_fd, .events = POLLIN};
                if (poll(&p, 1, 5000) != 1)
                        return -ETIMEDOUT;
                (void)eventfd_read(dev->completion_fd, &(eventfd_t){0});
        }
        if (ret_rounds)
                *ret_rounds = rounds;
        return 0;
}
