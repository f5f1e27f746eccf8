/* SPDX-License-Identifier: MIT */
/*
 * A kernel data path for a virtio-pci device (vhost-net; include/uapi/linux/vhost.h,
 * drivers/vhost/net.c): at DRIVER_OK the rings are handed to the vhost device and this
 * process steps out of the data path; at reset they are taken back.
 *
 * Order as the kernel expects it: features, the memory table (guest RAM as this
 * process maps it, so vhost translates ring and buffer addresses itself), then per queue
 * its size, its first avail index, its ring addresses (host addresses of the rings
 * virtq_enable mapped), the kick eventfd (the queue's doorbell, written by KVM through
 * KVM_IOEVENTFD with no exit, Documentation/virt/kvm/api.rst 4.59) and the call eventfd
 * (the irqfd of the queue's MSI-X vector, KVM_IRQFD: vhost's interrupt reaches the guest
 * without us; the vector's route follows the guest's reprogramming in pci.c), and last
 * the backend, the TAP. Handing back: the backend detached, then VHOST_GET_VRING_BASE
 * stops each ring and says where vhost stopped. A multiqueue virtio-net has one vhost
 * device per queue pair (vhost-net serves two rings, VHOST_NET_VQ_MAX), each with its own
 * TAP queue; its control queue stays with the I/O thread.
 */
#include <errno.h>
#include <sys/ioctl.h>
#include <linux/vhost.h>
#include <linux/virtio_pci.h>

#include "util/util.h"
#include "vmm/memory.h"
#include "vmm/virtio/pci.h"

/* Guest RAM, one vhost region per RAM region of the VM. */
static int vhost_set_memory(struct iov_virtio_pci *p, int fd)
{
        const struct iov_guest_memory *mem = p->vm->mem;
        _Alignas(struct vhost_memory)
                uint8_t buf[sizeof(struct vhost_memory) +
                            IOV_MEM_MAX_REGIONS * sizeof(struct vhost_memory_region)] = {0};
        struct vhost_memory *table = (struct vhost_memory *)buf;

        table->nregions =
                mem->n_regions < IOV_MEM_MAX_REGIONS ? mem->n_regions : IOV_MEM_MAX_REGIONS;
        for (unsigned i = 0; i < table->nregions; i++)
                table->regions[i] = (struct vhost_memory_region){
                        .guest_phys_addr = mem->regions[i].gpa,
                        .memory_size = mem->regions[i].size,
                        .userspace_addr = (uint64_t)(uintptr_t)mem->regions[i].host,
                };
        return ioctl(fd, VHOST_SET_MEM_TABLE, table) < 0 ? -errno : 0;
}

/* The queues of vhost device b: backend_queue_stride (a pair) from b * stride. */
static unsigned vhost_queues(const struct iov_virtio_dev *d)
{
        return d->ops->backend_queue_stride ? d->ops->backend_queue_stride : d->num_queues;
}

bool vpci_vhost_owns_queue(const struct iov_virtio_pci *p, unsigned q)
{
        return q < p->vhost_devices * vhost_queues(p->vdev);
}

/* Queue q as ring i of vhost device b. */
static int vhost_set_ring(struct iov_virtio_pci *p, unsigned b, unsigned i)
{
        unsigned q = b * vhost_queues(p->vdev) + i;
        const struct iov_virtq *vq = &p->vdev->queues[q];
        int fd = p->vdev->vhost_fd[b];
        uint16_t vector = p->queue_vector[q];
        struct vhost_vring_state num = {.index = i, .num = vq->size};
        struct vhost_vring_state base = {.index = i, .num = vq->last_avail};
        struct vhost_vring_addr addr = {
                .index = i,
                .desc_user_addr = (uint64_t)(uintptr_t)vq->desc,
                .avail_user_addr = (uint64_t)(uintptr_t)vq->avail,
                .used_user_addr = (uint64_t)(uintptr_t)vq->used,
        };
        struct vhost_vring_file kick = {.index = i, .fd = p->kick_fd[q]};
        /* VIRTIO_MSI_NO_VECTOR: the driver wants no interrupt for this queue. */
        struct vhost_vring_file call = {.index = i,
                                        .fd = vector < p->n_vectors ? p->irqfd[vector] : -1};

        if (ioctl(fd, VHOST_SET_VRING_NUM, &num) < 0 ||
            ioctl(fd, VHOST_SET_VRING_BASE, &base) < 0 ||
            ioctl(fd, VHOST_SET_VRING_ADDR, &addr) < 0 ||
            ioctl(fd, VHOST_SET_VRING_KICK, &kick) < 0 ||
            ioctl(fd, VHOST_SET_VRING_CALL, &call) < 0)
                return -errno;
        return 0;
}

/* Each vhost device's rings to its TAP queue, or detached (on false). */
static int vhost_set_backend(struct iov_virtio_pci *p, bool on)
{
        struct iov_virtio_dev *d = p->vdev;
        int r = 0;

        for (unsigned b = 0; b < p->vhost_devices; b++)
                for (unsigned i = 0; i < vhost_queues(d); i++) {
                        struct vhost_vring_file f = {.index = i,
                                                     .fd = on ? d->vhost_backend_fd[b] : -1};
                        if (ioctl(d->vhost_fd[b], VHOST_NET_SET_BACKEND, &f) < 0 && r == 0)
                                r = -errno;
                }
        return r;
}

/* Vhost device b: features, memory table, its rings. */
static int vhost_start_device(struct iov_virtio_pci *p, unsigned b, uint64_t features)
{
        struct iov_virtio_dev *d = p->vdev;

        if (ioctl(d->vhost_fd[b], VHOST_SET_FEATURES, &features) < 0)
                return -errno;
        int r = vhost_set_memory(p, d->vhost_fd[b]);
        for (unsigned i = 0; r >= 0 && i < vhost_queues(d); i++)
                r = d->queues[b * vhost_queues(d) + i].enabled ? vhost_set_ring(p, b, i) : -ENODEV;
        return r;
}

int vpci_vhost_start(struct iov_virtio_pci *p)
{
        struct iov_virtio_dev *d = p->vdev;
        /* Ring and virtio features only: device features (offloads, MAC) are the TAP's and
         * the config space's, not vhost's. */
        uint64_t features = d->guest_features & d->vhost_features;
        int r = 0;

        if (d->n_vhost == 0 || p->vhost_running)
                return 0;
        /* Pairs whose queues the driver did not enable (no MQ: pair 1 alone, §5.1.2) get
         * no vhost device. */
        p->vhost_devices = 0;
        for (unsigned b = 0; r >= 0 && b < d->n_vhost; b++) {
                if (b > 0 && !d->queues[b * vhost_queues(d)].enabled)
                        break;
                r = vhost_start_device(p, b, features);
                p->vhost_devices++;
        }
        if (r >= 0)
                r = vhost_set_backend(p, true);
        if (r < 0) {
                (void)vhost_set_backend(p, false);
                p->vhost_devices = 0;
                return log_error_errno(r, "%s: vhost-net refused the rings: %m", p->name);
        }
        __atomic_store_n(&p->vhost_running, true, __ATOMIC_RELEASE);
        return 0;
}

void vpci_vhost_stop(struct iov_virtio_pci *p)
{
        struct iov_virtio_dev *d = p->vdev;

        if (!p->vhost_running)
                return;
        (void)vhost_set_backend(p, false);
        for (unsigned b = 0; b < p->vhost_devices; b++)
                for (unsigned i = 0; i < vhost_queues(d); i++) {
                        struct vhost_vring_state base = {.index = i};
                        /* Stops the ring; num is the next avail entry vhost would have taken. */
                        if (ioctl(d->vhost_fd[b], VHOST_GET_VRING_BASE, &base) == 0)
                                d->queues[b * vhost_queues(d) + i].last_avail = (uint16_t)base.num;
                }
        p->vhost_devices = 0;
        __atomic_store_n(&p->vhost_running, false, __ATOMIC_RELEASE);
}
