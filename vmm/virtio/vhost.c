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
 * stops each ring and says where vhost stopped.
 */
#include <errno.h>
#include <sys/ioctl.h>
#include <linux/vhost.h>
#include <linux/virtio_pci.h>

#include "util/util.h"
#include "vmm/memory.h"
#include "vmm/virtio/pci.h"

/* Guest RAM, one vhost region per RAM region of the VM. */
static int vhost_set_memory(struct iov_virtio_pci *p)
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
        return ioctl(p->vdev->vhost_fd, VHOST_SET_MEM_TABLE, table) < 0 ? -errno : 0;
}

static int vhost_set_ring(struct iov_virtio_pci *p, unsigned q)
{
        const struct iov_virtq *vq = &p->vdev->queues[q];
        int fd = p->vdev->vhost_fd;
        uint16_t vector = p->queue_vector[q];
        struct vhost_vring_state num = {.index = q, .num = vq->size};
        struct vhost_vring_state base = {.index = q, .num = vq->last_avail};
        struct vhost_vring_addr addr = {
                .index = q,
                .desc_user_addr = (uint64_t)(uintptr_t)vq->desc,
                .avail_user_addr = (uint64_t)(uintptr_t)vq->avail,
                .used_user_addr = (uint64_t)(uintptr_t)vq->used,
        };
        struct vhost_vring_file kick = {.index = q, .fd = p->kick_fd[q]};
        /* VIRTIO_MSI_NO_VECTOR: the driver wants no interrupt for this queue. */
        struct vhost_vring_file call = {.index = q,
                                        .fd = vector < p->n_vectors ? p->irqfd[vector] : -1};

        if (ioctl(fd, VHOST_SET_VRING_NUM, &num) < 0 ||
            ioctl(fd, VHOST_SET_VRING_BASE, &base) < 0 ||
            ioctl(fd, VHOST_SET_VRING_ADDR, &addr) < 0 ||
            ioctl(fd, VHOST_SET_VRING_KICK, &kick) < 0 ||
            ioctl(fd, VHOST_SET_VRING_CALL, &call) < 0)
                return -errno;
        return 0;
}

static int vhost_set_backend(struct iov_virtio_pci *p, int backend_fd)
{
        for (unsigned q = 0; q < p->vdev->num_queues; q++) {
                struct vhost_vring_file b = {.index = q, .fd = backend_fd};
                if (ioctl(p->vdev->vhost_fd, VHOST_NET_SET_BACKEND, &b) < 0)
                        return -errno;
        }
        return 0;
}

int vpci_vhost_start(struct iov_virtio_pci *p)
{
        struct iov_virtio_dev *d = p->vdev;
        /* Ring and virtio features only: device features (offloads, MAC) are the TAP's and
         * the config space's, not vhost's. */
        uint64_t features = d->guest_features & d->vhost_features;
        int r = 0;

        if (d->vhost_fd < 0 || p->vhost_running)
                return 0;
        if (ioctl(d->vhost_fd, VHOST_SET_FEATURES, &features) < 0)
                r = -errno;
        if (r >= 0)
                r = vhost_set_memory(p);
        for (unsigned q = 0; r >= 0 && q < d->num_queues; q++)
                r = d->queues[q].enabled ? vhost_set_ring(p, q) : -ENODEV;
        if (r >= 0)
                r = vhost_set_backend(p, d->vhost_backend_fd);
        if (r < 0) {
                (void)vhost_set_backend(p, -1);
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
        (void)vhost_set_backend(p, -1);
        for (unsigned q = 0; q < d->num_queues; q++) {
                struct vhost_vring_state base = {.index = q};
                /* Stops the ring; num is the next avail entry vhost would have taken. */
                if (ioctl(d->vhost_fd, VHOST_GET_VRING_BASE, &base) == 0)
                        d->queues[q].last_avail = (uint16_t)base.num;
        }
        __atomic_store_n(&p->vhost_running, false, __ATOMIC_RELEASE);
}
