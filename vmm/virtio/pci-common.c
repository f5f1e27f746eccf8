/* SPDX-License-Identifier: MIT */
/*
 * The common configuration structure of virtio-pci (virtio 1.2 §4.1.4.3): features,
 * device status, and the per-queue registers behind queue_select. Drivers access it with
 * 8-, 16- and 32-bit accesses (64-bit fields as two halves, §4.1.3.1); we keep the
 * structure's bytes as a snapshot, apply the write to it, and take over the fields the
 * write touched, so every width and alignment works the same way.
 */
#include <linux/virtio_config.h>
#include <linux/virtio_pci.h>
#include <stddef.h>
#include <string.h>

#include "vmm/virtio/pci.h"

static struct iov_virtq *selected_queue(struct iov_virtio_pci *p)
{
        if (p->queue_select >= p->vdev->num_queues)
                return NULL;
        return &p->vdev->queues[p->queue_select];
}

static uint32_t feature_word(uint64_t features, uint32_t select)
{
        return select < 2 ? (uint32_t)(features >> (32 * select)) : 0;
}

static void common_snapshot(struct iov_virtio_pci *p, struct virtio_pci_common_cfg *c)
{
        struct iov_virtio_dev *d = p->vdev;
        struct iov_virtq *vq = selected_queue(p);

        *c = (struct virtio_pci_common_cfg){
                .device_feature_select = p->device_feature_select,
                .device_feature = feature_word(d->host_features, p->device_feature_select),
                .guest_feature_select = p->driver_feature_select,
                .guest_feature = feature_word(d->guest_features, p->driver_feature_select),
                .msix_config = p->config_vector,
                .num_queues = (uint16_t)d->num_queues,
                .device_status = d->status,
                .config_generation = (uint8_t)d->config_generation,
                .queue_select = p->queue_select,
                .queue_msix_vector = VIRTIO_MSI_NO_VECTOR,
        };
        if (!vq)
                return; /* queue_size 0: no such queue (§4.1.4.3.1) */
        c->queue_size = vq->size;
        c->queue_msix_vector = p->queue_vector[p->queue_select];
        c->queue_enable = vq->enabled;
        c->queue_notify_off = p->queue_select;
        c->queue_desc_lo = (uint32_t)vq->desc_gpa;
        c->queue_desc_hi = (uint32_t)(vq->desc_gpa >> 32);
        c->queue_avail_lo = (uint32_t)vq->avail_gpa;
        c->queue_avail_hi = (uint32_t)(vq->avail_gpa >> 32);
        c->queue_used_lo = (uint32_t)vq->used_gpa;
        c->queue_used_hi = (uint32_t)(vq->used_gpa >> 32);
}

/* A vector the device does not have reads back as NO_VECTOR (§4.1.5.1.2). */
static uint16_t vector_or_none(struct iov_virtio_pci *p, uint16_t v)
{
        return v < p->n_vectors ? v : VIRTIO_MSI_NO_VECTOR;
}

/* Did the write [offset, offset + len) cover any byte of field? */
#define FIELD_SIZE(field) sizeof(((struct virtio_pci_common_cfg *)0)->field)
#define TOUCHED(field)                                                                             \
        (offset < offsetof(struct virtio_pci_common_cfg, field) + FIELD_SIZE(field) &&             \
         offsetof(struct virtio_pci_common_cfg, field) < offset + len)

static void common_write_device(struct iov_virtio_pci *p, const struct virtio_pci_common_cfg *c,
                                uint64_t offset, uint32_t len)
{
        struct iov_virtio_dev *d = p->vdev;

        if (TOUCHED(device_feature_select))
                p->device_feature_select = c->device_feature_select;
        if (TOUCHED(guest_feature_select))
                p->driver_feature_select = c->guest_feature_select;
        /* Features are fixed once FEATURES_OK is set (§3.1.1). */
        if (TOUCHED(guest_feature) && p->driver_feature_select < 2 &&
            !(d->status & VIRTIO_CONFIG_S_FEATURES_OK)) {
                unsigned shift = 32 * p->driver_feature_select;
                d->guest_features &= ~(0xffffffffull << shift);
                d->guest_features |= (uint64_t)c->guest_feature << shift;
        }
        if (TOUCHED(msix_config))
                p->config_vector = vector_or_none(p, c->msix_config);
        if (TOUCHED(device_status))
                vpci_set_status(p, c->device_status);
        if (TOUCHED(queue_select))
                p->queue_select = c->queue_select;
}

static void common_write_queue(struct iov_virtio_pci *p, const struct virtio_pci_common_cfg *c,
                               uint64_t offset, uint32_t len)
{
        struct iov_virtq *vq = selected_queue(p);

        if (!vq)
                return;
        if (TOUCHED(queue_msix_vector))
                p->queue_vector[p->queue_select] = vector_or_none(p, c->queue_msix_vector);
        /* Size and ring addresses only change while the queue is off (§4.1.4.3.2). */
        if (!vq->enabled) {
                if (TOUCHED(queue_size))
                        vq->size = c->queue_size;
                if (TOUCHED(queue_desc_lo) || TOUCHED(queue_desc_hi))
                        vq->desc_gpa = (uint64_t)c->queue_desc_hi << 32 | c->queue_desc_lo;
                if (TOUCHED(queue_avail_lo) || TOUCHED(queue_avail_hi))
                        vq->avail_gpa = (uint64_t)c->queue_avail_hi << 32 | c->queue_avail_lo;
                if (TOUCHED(queue_used_lo) || TOUCHED(queue_used_hi))
                        vq->used_gpa = (uint64_t)c->queue_used_hi << 32 | c->queue_used_lo;
        }
        /* Writing 0 to queue_enable is not allowed (§4.1.4.3.2); it is ignored. */
        if (TOUCHED(queue_enable) && c->queue_enable == 1)
                vpci_queue_enable(p, p->queue_select);
}

void vpci_common_access(struct iov_virtio_pci *p, uint64_t offset, uint8_t *data, uint32_t len,
                        bool is_write)
{
        struct virtio_pci_common_cfg c;

        common_snapshot(p, &c);
        if (offset >= sizeof(c) || len > sizeof(c) - offset) {
                if (!is_write)
                        memset(data, 0, len);
                return;
        }
        if (!is_write) {
                memcpy(data, (uint8_t *)&c + offset, len);
                return;
        }
        memcpy((uint8_t *)&c + offset, data, len);
        common_write_device(p, &c, offset, len);
        common_write_queue(p, &c, offset, len);
}
