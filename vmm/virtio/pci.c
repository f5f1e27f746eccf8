/* SPDX-License-Identifier: MIT */
/*
 * The modern virtio-pci transport (virtio 1.2 §4.1) for iovd-vmm: each virtio device is a
 * PCI function with one 32 KiB memory BAR holding the common configuration, the ISR
 * byte, the device configuration, the queue doorbells and the MSI-X table, each located
 * by a vendor capability (§4.1.4).
 *
 * Doorbells are KVM ioeventfds, so a guest notification costs no exit to userspace; the
 * queues are served by one I/O thread per device, never on a vCPU thread. Interrupts go
 * through one GSI and irqfd per MSI-X vector (KVM_SET_GSI_ROUTING + KVM_IRQFD); a masked
 * vector falls back to the pending bit.
 *
 * Only MSI-X: no INTx pin, and no VIRTIO_PCI_CAP_PCI_CFG window (Linux uses neither).
 */
#include <errno.h>
#include <json-c/json.h>
#include <linux/kvm.h>
#include <linux/virtio_config.h>
#include <linux/virtio_pci.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>

#include "util/util.h"
#include "vmm/pci.h"
#include "vmm/virtio/pci.h"

static struct iov_virtio_pci *all_devices; /* one VM per process: for stats */

/* ---- interrupts ------------------------------------------------------------------------ */

static void vpci_signal_vector(struct iov_virtio_pci *p, uint16_t vector)
{
        bool masked;

        if (vector >= p->n_vectors)
                return; /* VIRTIO_MSI_NO_VECTOR: the driver wants none */
        if (vmm_pci_msix_vector(&p->msix, vector, NULL, &masked) < 0)
                return;
        if (!masked && p->irqfd_assigned[vector]) {
                (void)eventfd_write(p->irqfd[vector], 1);
                return;
        }
        /* Masked: the pending bit, delivered on unmask (PCI r3.0 §6.8.2.9). */
        (void)vmm_pci_msix_notify(&p->msix, vector);
}

static void vpci_signal_queue(struct iov_virtio_dev *dev, unsigned q)
{
        struct iov_virtio_pci *p = dev->transport.opaque;
        dev->isr |= 0x1; /* §4.1.4.5: bit 0, queue interrupt */
        vpci_signal_vector(p, p->queue_vector[q]);
}

static void vpci_kick_queue(struct iov_virtio_dev *dev, unsigned q)
{
        struct iov_virtio_pci *p = dev->transport.opaque;
        if (q < dev->num_queues)
                (void)eventfd_write(p->kick_fd[q], 1);
}

static void vpci_signal_config(struct iov_virtio_dev *dev)
{
        struct iov_virtio_pci *p = dev->transport.opaque;
        dev->isr |= VIRTIO_PCI_ISR_CONFIG;
        vpci_signal_vector(p, p->config_vector);
}

/* The guest changed a vector's message or mask: point its GSI at the new message and
 * attach the irqfd once it has a route. Runs on a vCPU thread, PCI device lock held. */
static void vpci_vector_changed(struct iov_pci_msix *msix, uint16_t vector, void *opaque)
{
        struct iov_virtio_pci *p = opaque;

        for (uint16_t v = 0; v < p->n_vectors; v++) {
                struct iov_msi_message msg;
                bool masked;
                if (vector != 0xffff && v != vector)
                        continue;
                if (vmm_pci_msix_vector(msix, v, &msg, &masked) < 0 || masked)
                        continue;
                if (vmm_gsi_route_msi(p->vm, p->gsi[v], &msg) < 0)
                        continue;
                if (!p->irqfd_assigned[v]) {
                        struct kvm_irqfd irqfd = {.fd = (uint32_t)p->irqfd[v], .gsi = p->gsi[v]};
                        p->irqfd_assigned[v] = ioctl(vmm_vm_fd(p->vm), KVM_IRQFD, &irqfd) == 0;
                }
        }
}

/* ---- doorbells --------------------------------------------------------------------------- */

static uint64_t vpci_doorbell(struct iov_virtio_pci *p, unsigned q)
{
        return vmm_pci_device_bar_address(&p->pci, 0) + IOV_VPCI_NOTIFY_OFFSET +
               (uint64_t)q * IOV_VPCI_NOTIFY_MULTIPLIER;
}

/* Route the queue's doorbell to its eventfd inside KVM (§4.1.4.4: the driver writes the
 * 16-bit queue index there). Without it the write exits and the BAR handler kicks. */
static void vpci_ioeventfd_assign(struct iov_virtio_pci *p, unsigned q)
{
        struct kvm_ioeventfd io = {.addr = vpci_doorbell(p, q), .len = 2, .fd = p->kick_fd[q]};

        if (p->ioeventfd_addr[q] || io.addr < IOV_VPCI_NOTIFY_OFFSET)
                return;
        if (ioctl(vmm_vm_fd(p->vm), KVM_IOEVENTFD, &io) == 0)
                p->ioeventfd_addr[q] = io.addr;
}

static void vpci_ioeventfd_release(struct iov_virtio_pci *p, unsigned q)
{
        struct kvm_ioeventfd io = {.addr = p->ioeventfd_addr[q],
                                   .len = 2,
                                   .fd = p->kick_fd[q],
                                   .flags = KVM_IOEVENTFD_FLAG_DEASSIGN};
        if (!p->ioeventfd_addr[q])
                return;
        (void)ioctl(vmm_vm_fd(p->vm), KVM_IOEVENTFD, &io);
        p->ioeventfd_addr[q] = 0;
}

/* ---- status and reset ------------------------------------------------------------------- */

static void vpci_reset(struct iov_virtio_pci *p)
{
        /* The rings come back from vhost before they go (§2.4: nothing used after). */
        vpci_vhost_stop(p);
        for (unsigned q = 0; q < p->vdev->num_queues; q++) {
                vpci_ioeventfd_release(p, q);
                p->queue_vector[q] = VIRTIO_MSI_NO_VECTOR;
        }
        p->config_vector = VIRTIO_MSI_NO_VECTOR;
        p->device_feature_select = p->driver_feature_select = 0;
        p->queue_select = 0;
        memset(p->backend_starved, 0, sizeof(p->backend_starved));
        virtio_dev_reset(p->vdev);
}

void vpci_set_status(struct iov_virtio_pci *p, uint8_t status)
{
        if (status == 0) {
                vpci_reset(p);
                return;
        }
        uint8_t old = p->vdev->status;
        virtio_dev_set_status(p->vdev, status);
        /* DRIVER_OK accepted: from here the kernel may serve the queues (vhost.c); if it
         * refuses them, this process does (logged). */
        if ((p->vdev->status & VIRTIO_CONFIG_S_DRIVER_OK) && !(old & VIRTIO_CONFIG_S_DRIVER_OK) &&
            !(p->vdev->status & VIRTIO_CONFIG_S_NEEDS_RESET))
                (void)vpci_vhost_start(p);
}

void vpci_queue_enable(struct iov_virtio_pci *p, unsigned q)
{
        struct iov_virtq *vq = &p->vdev->queues[q];

        if (vq->enabled)
                return;
        /* A size that is not a power of two or rings outside RAM: the device cannot
         * work with this driver until it resets it. */
        if (vq->size > p->vdev->ops->queue_max_size || virtq_enable(vq, p->vdev->mem) < 0) {
                virtio_dev_set_needs_reset(p->vdev);
                return;
        }
        vpci_ioeventfd_assign(p, q);
}

/* ---- the BAR ------------------------------------------------------------------------------ */

static void vpci_isr_access(struct iov_virtio_pci *p, uint8_t *data, uint32_t len, bool is_write)
{
        if (is_write)
                return;
        /* §4.1.4.5.1: reading the ISR status resets it. */
        memset(data, 0, len);
        data[0] = p->vdev->isr;
        p->vdev->isr = 0;
}

static void vpci_device_config_access(struct iov_virtio_pci *p, uint64_t offset, uint8_t *data,
                                      uint32_t len, bool is_write)
{
        const struct iov_virtio_dev_ops *ops = p->vdev->ops;

        if (offset > ops->config_size || len > ops->config_size - offset) {
                if (!is_write)
                        memset(data, 0xff, len);
                return;
        }
        if (!is_write && ops->config_read)
                ops->config_read(p->vdev, offset, data, len);
        else if (is_write && ops->config_write)
                ops->config_write(p->vdev, offset, data, len);
}

static void vpci_notify_access(struct iov_virtio_pci *p, uint64_t offset, bool is_write)
{
        uint64_t q = offset / IOV_VPCI_NOTIFY_MULTIPLIER;

        /* Reached only when the ioeventfd is not (yet) in place. */
        if (is_write && q < p->vdev->num_queues) {
                p->doorbell_exits++;
                (void)eventfd_write(p->kick_fd[q], 1);
        }
}

static void vpci_bar_access(void *opaque, uint64_t offset, uint8_t *data, uint32_t len,
                            bool is_write)
{
        struct iov_virtio_pci *p = opaque;

        if (vmm_pci_msix_bar_access(&p->msix, offset, data, len, is_write))
                return;
        pthread_mutex_lock(&p->lock);
        if (offset < IOV_VPCI_COMMON_SIZE)
                vpci_common_access(p, offset, data, len, is_write);
        else if (offset >= IOV_VPCI_ISR_OFFSET && offset < IOV_VPCI_ISR_OFFSET + 4)
                vpci_isr_access(p, data, len, is_write);
        else if (offset >= IOV_VPCI_DEVICE_OFFSET && offset < IOV_VPCI_NOTIFY_OFFSET)
                vpci_device_config_access(p, offset - IOV_VPCI_DEVICE_OFFSET, data, len, is_write);
        else if (offset >= IOV_VPCI_NOTIFY_OFFSET && offset < IOV_VPCI_MSIX_TABLE_OFFSET)
                vpci_notify_access(p, offset - IOV_VPCI_NOTIFY_OFFSET, is_write);
        else if (!is_write)
                memset(data, 0, len);
        pthread_mutex_unlock(&p->lock);
}

/* ---- PCI function -------------------------------------------------------------------- */

static int vpci_add_cap(struct iov_virtio_pci *p, uint8_t type, uint32_t offset, uint32_t length)
{
        struct virtio_pci_notify_cap cap = {
                .cap = {.cap_vndr = IOV_PCI_CAP_ID_VENDOR,
                        .cfg_type = type,
                        .bar = 0,
                        .offset = offset,
                        .length = length},
                .notify_off_multiplier = IOV_VPCI_NOTIFY_MULTIPLIER,
        };
        uint8_t len = type == VIRTIO_PCI_CAP_NOTIFY_CFG ? sizeof(cap) : sizeof(cap.cap);
        cap.cap.cap_len = len;
        return vmm_pci_device_add_capability(&p->pci, &cap, len, NULL, NULL);
}

/* PCI class per device type (PCI Code and ID Assignment r1.12 §1). */
static uint32_t vpci_class(uint16_t device_id)
{
        switch (device_id) {
        case 1:
                return 0x020000; /* network: Ethernet */
        case 2:
                return 0x010000; /* mass storage: SCSI-like */
        case 3:
                return 0x078000; /* communication: other */
        default:
                return 0xff0000; /* unassigned class */
        }
}

static int vpci_setup_function(struct iov_virtio_pci *p)
{
        const struct iov_virtio_dev_ops *ops = p->vdev->ops;
        int r;

        /* §4.1.2: vendor 0x1af4, device 0x1040 + virtio device id, revision 1 (modern). */
        vmm_pci_device_init(&p->pci, p->name, 0x1af4, (uint16_t)(0x1040 + ops->device_id),
                            vpci_class(ops->device_id), 1);
        vmm_pci_device_set_subsystem(&p->pci, 0x1af4, 0x1100);
        r = vmm_pci_device_set_bar(&p->pci, 0, IOV_PCI_BAR_MEM32, IOV_VPCI_BAR_SIZE, false,
                                   vpci_bar_access, p);
        if (r < 0)
                return r;
        p->msix.vector_changed = vpci_vector_changed;
        p->msix.opaque = p;
        r = vmm_pci_msix_init(&p->pci, &p->msix, (uint16_t)p->n_vectors, 0,
                              IOV_VPCI_MSIX_TABLE_OFFSET, IOV_VPCI_MSIX_PBA_OFFSET);
        if (r >= 0)
                r = vpci_add_cap(p, VIRTIO_PCI_CAP_COMMON_CFG, 0, IOV_VPCI_COMMON_SIZE);
        if (r >= 0)
                r = vpci_add_cap(p, VIRTIO_PCI_CAP_NOTIFY_CFG, IOV_VPCI_NOTIFY_OFFSET,
                                 p->vdev->num_queues * IOV_VPCI_NOTIFY_MULTIPLIER);
        if (r >= 0)
                r = vpci_add_cap(p, VIRTIO_PCI_CAP_ISR_CFG, IOV_VPCI_ISR_OFFSET, 4);
        if (r >= 0 && ops->config_size)
                r = vpci_add_cap(p, VIRTIO_PCI_CAP_DEVICE_CFG, IOV_VPCI_DEVICE_OFFSET,
                                 (uint32_t)ops->config_size);
        return r;
}

static void vpci_free(void *data)
{
        struct iov_virtio_pci *p = data;

        if (!p)
                return;
        vpci_iothread_stop(p);
        if (p->vdev)
                vpci_vhost_stop(p);
        for (unsigned q = 0; q < IOV_VPCI_MAX_QUEUES; q++) {
                if (p->vdev && q < p->vdev->num_queues)
                        vpci_ioeventfd_release(p, q);
                if (p->kick_fd[q] >= 0)
                        close(p->kick_fd[q]);
        }
        /* Closing an irqfd's eventfd also detaches it from KVM. */
        for (unsigned v = 0; v < IOV_VPCI_MAX_QUEUES + 1; v++) {
                if (p->irqfd[v] >= 0)
                        close(p->irqfd[v]);
                if (p->gsi[v])
                        vmm_gsi_free(p->vm, p->gsi[v]);
        }
        for (struct iov_virtio_pci **i = &all_devices; *i; i = &(*i)->next)
                if (*i == p) {
                        *i = p->next;
                        break;
                }
        vmm_pci_msix_done(&p->msix);
        virtio_dev_free(p->vdev);
        pthread_mutex_destroy(&p->lock);
        free(p);
}

static int vpci_alloc_fds(struct iov_virtio_pci *p)
{
        for (unsigned q = 0; q < p->vdev->num_queues; q++) {
                p->kick_fd[q] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
                if (p->kick_fd[q] < 0)
                        return -errno;
        }
        for (unsigned v = 0; v < p->n_vectors; v++) {
                p->irqfd[v] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
                if (p->irqfd[v] < 0)
                        return -errno;
                int r = vmm_gsi_alloc(p->vm, &p->gsi[v]);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Wrap a device in a PCI function and put it on the VM's bus. Takes dev over. */
int vpci_attach(struct iov_vm *vm, struct iov_virtio_dev *dev, struct iov_virtio_pci **ret)
{
        static unsigned count;
        struct iov_virtio_pci *p = calloc(1, sizeof(*p));
        int r;

        if (!p) {
                virtio_dev_free(dev);
                return -ENOMEM;
        }
        pthread_mutex_init(&p->lock, NULL);
        p->vm = vm;
        p->vdev = dev;
        p->stop_fd = -1;
        for (unsigned i = 0; i < IOV_VPCI_MAX_QUEUES + 1; i++)
                p->kick_fd[i % IOV_VPCI_MAX_QUEUES] = p->irqfd[i] = -1;
        p->n_vectors = dev->num_queues + 1;
        snprintf(p->name, sizeof(p->name), "%s%u", dev->ops->name, count++);
        dev->transport = (struct iov_virtio_transport){.signal_queue = vpci_signal_queue,
                                                       .signal_config = vpci_signal_config,
                                                       .kick_queue = vpci_kick_queue,
                                                       .opaque = p};
        for (unsigned q = 0; q < IOV_VPCI_MAX_QUEUES; q++)
                p->queue_vector[q] = VIRTIO_MSI_NO_VECTOR;
        p->config_vector = VIRTIO_MSI_NO_VECTOR;

        r = dev->num_queues <= IOV_VPCI_MAX_QUEUES ? vpci_alloc_fds(p) : -EINVAL;
        if (r >= 0)
                r = vpci_setup_function(p);
        if (r >= 0)
                r = vmm_pci_register_device(vm, &p->pci);
        if (r >= 0)
                r = vpci_iothread_start(p);
        if (r >= 0)
                r = vmm_vm_add_cleanup(vm, vpci_free, p);
        if (r < 0) {
                vpci_free(p);
                return r;
        }
        p->next = all_devices;
        all_devices = p;
        if (ret)
                *ret = p;
        return 0;
}

/* Chains served per queue, for the queues the stats count (vhost's are not seen here). */
static struct json_object *vpci_queue_requests_json(const struct iov_virtio_pci *p,
                                                    const struct iov_virtio_stats *s)
{
        struct json_object *a = json_object_new_array();
        unsigned n = p->vdev->num_queues;

        for (unsigned q = 0; q < n && q < IOV_VIRTIO_STATS_QUEUES; q++)
                json_object_array_add(a, json_object_new_int64((int64_t)s->queue_requests[q]));
        return a;
}

struct json_object *virtio_pci_stats_json(struct iov_vm *vm)
{
        struct json_object *a = json_object_new_array();

        (void)vm;
        for (struct iov_virtio_pci *p = all_devices; p; p = p->next) {
                struct json_object *o = json_object_new_object();
                pthread_mutex_lock(&p->lock);
                struct iov_virtio_stats s = p->vdev->stats;
                bool needs_reset = p->vdev->status & VIRTIO_CONFIG_S_NEEDS_RESET;
                bool vhost = p->vdev->n_vhost > 0;
                pthread_mutex_unlock(&p->lock);
                json_object_object_add(o, "type", json_object_new_string(p->vdev->ops->name));
                json_object_object_add(o, "slot", json_object_new_int(p->pci.slot));
#define ADD(field) json_object_object_add(o, #field, json_object_new_int64((int64_t)s.field))
                ADD(requests_read);
                ADD(requests_written);
                ADD(bytes_read);
                ADD(bytes_written);
                ADD(requests_failed);
                ADD(notifications);
                ADD(interrupts);
                ADD(poll_hits);
                ADD(poll_misses);
                ADD(requests_deferred);
#undef ADD
                json_object_object_add(o, "queue_requests", vpci_queue_requests_json(p, &s));
                json_object_object_add(o, "doorbell_exits",
                                       json_object_new_int64((int64_t)p->doorbell_exits));
                json_object_object_add(o, "needs_reset", json_object_new_boolean(needs_reset));
                /* Who moves the frames: the kernel (vhost-net) or this process. */
                json_object_object_add(o, "data_path",
                                       json_object_new_string(vhost ? "vhost" : "userspace"));
                json_object_array_add(a, o);
        }
        return a;
}
