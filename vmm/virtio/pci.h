/* SPDX-License-Identifier: MIT */
/*
 * Private to the virtio-pci transport (pci.c, pci-common.c, iothread.c, register.c).
 */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "vmm/pci.h"
#include "vmm/virtio/virtio.h"
#include "vmm/vm.h"

/* BAR 0 layout; each structure is found through its capability (virtio 1.2 §4.1.4). */
#define IOV_VPCI_BAR_SIZE          0x8000u
#define IOV_VPCI_COMMON_SIZE       0x38u /* struct virtio_pci_common_cfg, up to queue_used */
#define IOV_VPCI_ISR_OFFSET        0x1000u
#define IOV_VPCI_DEVICE_OFFSET     0x2000u
#define IOV_VPCI_NOTIFY_OFFSET     0x3000u
#define IOV_VPCI_NOTIFY_MULTIPLIER 4u /* one doorbell address per queue */
#define IOV_VPCI_MSIX_TABLE_OFFSET 0x4000u
#define IOV_VPCI_MSIX_PBA_OFFSET   0x6000u

/* The most any device has: IOV_VIRTIO_BLK_MAX_QUEUES (8), or virtio-net's pairs and its
 * control queue (2 * IOV_VIRTIO_NET_MAX_PAIRS + 1). */
#define IOV_VPCI_MAX_QUEUES (2 * IOV_VIRTIO_NET_MAX_PAIRS + 1)
_Static_assert(IOV_VPCI_MAX_QUEUES >= IOV_VIRTIO_BLK_MAX_QUEUES, "every blk queue has a doorbell");

struct iov_virtio_pci {
        struct iov_vm *vm;
        struct iov_virtio_dev *vdev;
        struct iov_pci_device pci;
        struct iov_pci_msix msix;
        char name[24];
        /* Serializes the device between vCPU threads (register accesses) and the I/O
         * thread (queue service). */
        pthread_mutex_t lock;

        /* common configuration registers the transport keeps */
        uint32_t device_feature_select, driver_feature_select;
        uint16_t queue_select;
        uint16_t config_vector;
        uint16_t queue_vector[IOV_VPCI_MAX_QUEUES];

        /* MSI-X vector v: GSI gsi[v], signalled through irqfd[v] */
        unsigned n_vectors;
        unsigned gsi[IOV_VPCI_MAX_QUEUES + 1];
        int irqfd[IOV_VPCI_MAX_QUEUES + 1];
        bool irqfd_assigned[IOV_VPCI_MAX_QUEUES + 1];

        /* doorbells: queue q kicks kick_fd[q], through KVM when ioeventfd_addr[q] != 0 */
        int kick_fd[IOV_VPCI_MAX_QUEUES];
        uint64_t ioeventfd_addr[IOV_VPCI_MAX_QUEUES];
        uint64_t doorbell_exits;

        /* the I/O thread */
        int stop_fd;
        pthread_t thread;
        bool thread_started;
        bool backend_dead[IOV_VIRTIO_MAX_BACKENDS], backend_starved[IOV_VIRTIO_MAX_BACKENDS];
        /* The rings are vhost's (vhost.c): the I/O thread neither serves the queues nor
         * reads the backend. Written under lock, read by the I/O thread atomically. */
        bool vhost_running;
        unsigned vhost_devices; /* vhost devices given rings: the first n of vdev->n_vhost */

        struct iov_virtio_pci *next;
};

/* pci.c */
int vpci_attach(struct iov_vm *vm, struct iov_virtio_dev *dev, struct iov_virtio_pci **ret);
void vpci_set_status(struct iov_virtio_pci *p, uint8_t status);
void vpci_queue_enable(struct iov_virtio_pci *p, unsigned q);

/* pci-common.c: the common configuration structure (§4.1.4.3), p->lock held. */
void vpci_common_access(struct iov_virtio_pci *p, uint64_t offset, uint8_t *data, uint32_t len,
                        bool is_write);

/* vhost.c, p->lock held: hand the rings to the device's vhost_fd (at DRIVER_OK; 0 and
 * nothing done without one) and take them back (at reset and teardown). */
int vpci_vhost_start(struct iov_virtio_pci *p);
void vpci_vhost_stop(struct iov_virtio_pci *p);
/* Queue q is served by a vhost device (while vhost_running); the others, the control
 * queue, stay the I/O thread's. */
bool vpci_vhost_owns_queue(const struct iov_virtio_pci *p, unsigned q);

/* iothread.c */
int vpci_iothread_start(struct iov_virtio_pci *p);
void vpci_iothread_stop(struct iov_virtio_pci *p);
