/* SPDX-License-Identifier: MIT */
/*
 * MSI-X of a passed-through function. The guest programs the emulated capability and
 * table (vmm/pci-msix.c); the device's real table is vfio-pci's, which fills it with host
 * vectors when given one eventfd per vector (VFIO_DEVICE_SET_IRQS, VFIO_PCI_MSIX_IRQ_INDEX,
 * vfio.h). Each eventfd is a KVM irqfd on its own GSI whose route is the guest's message
 * (KVM_SET_GSI_ROUTING, KVM_IRQFD: Documentation/virt/kvm/api.rst), so an interrupt goes
 * from the device to the guest without this process.
 *
 * A masked vector (or function mask, or MSI-X off) has its irqfd detached: the eventfd
 * keeps counting, and KVM delivers a count it finds when the irqfd is attached again on
 * unmask, which is the pending-bit behaviour of PCI r3.0 §6.8.2.9 (the PBA the guest
 * reads stays 0). INTx is never enabled on the device by this model, so there is nothing
 * to disable before MSI-X is turned on; the command register keeps INTx disabled.
 */
#include <linux/kvm.h>
#include <stdio.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>

#include "util/util.h"
#include "vmm/vfio/vfio.h"

int vfio_interrupts_init(struct iov_vfio_device *d)
{
        unsigned n = d->msix_vectors;
        if (!d->has_msix)
                return 0;
        d->irq_fds = calloc(n, sizeof(*d->irq_fds));
        if (!d->irq_fds)
                return -ENOMEM;
        for (unsigned v = 0; v < n; v++)
                d->irq_fds[v] = -1; /* what vfio_interrupts_done() closes */
        d->gsis = calloc(n, sizeof(*d->gsis));
        d->irqfd_assigned = calloc(n, sizeof(*d->irqfd_assigned));
        d->routed = calloc(n, sizeof(*d->routed));
        if (!d->gsis || !d->irqfd_assigned || !d->routed)
                return -ENOMEM;
        for (unsigned v = 0; v < n; v++) {
                d->irq_fds[v] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
                if (d->irq_fds[v] < 0)
                        return -errno;
                int r = vmm_gsi_alloc(d->vm, &d->gsis[v]);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Hand the eventfds to vfio-pci (enable) or take MSI-X away from the device (disable). */
static int interrupts_set_device(struct iov_vfio_device *d, bool enable)
{
        unsigned n = enable ? d->msix_vectors : 0;
        size_t size = sizeof(struct vfio_irq_set) + n * sizeof(int32_t);
        _cleanup_free_ struct vfio_irq_set *set = calloc(1, size);
        if (!set)
                return -ENOMEM;
        *set = (struct vfio_irq_set){
                .argsz = (uint32_t)size,
                .flags = VFIO_IRQ_SET_ACTION_TRIGGER |
                         (enable ? VFIO_IRQ_SET_DATA_EVENTFD : VFIO_IRQ_SET_DATA_NONE),
                .index = VFIO_PCI_MSIX_IRQ_INDEX,
                .start = 0,
                .count = n,
        };
        memcpy(set->data, d->irq_fds, n * sizeof(int32_t));
        if (ioctl(d->fd, VFIO_DEVICE_SET_IRQS, set) < 0)
                return -errno;
        d->msix_on_device = enable;
        return 0;
}

static int interrupts_set_irqfd(struct iov_vfio_device *d, unsigned v, bool assign)
{
        struct kvm_irqfd irqfd = {
                .fd = (uint32_t)d->irq_fds[v],
                .gsi = d->gsis[v],
                .flags = assign ? 0 : KVM_IRQFD_FLAG_DEASSIGN,
        };
        if (ioctl(vmm_vm_fd(d->vm), KVM_IRQFD, &irqfd) < 0)
                return -errno;
        d->irqfd_assigned[v] = assign;
        return 0;
}

/* One vector: route and attach while deliverable, detach while not. */
static void interrupts_sync_vector(struct iov_vfio_device *d, uint16_t v)
{
        struct iov_msi_message msg;
        bool masked;
        if (vmm_pci_msix_vector(&d->msix, v, &msg, &masked) < 0)
                return;
        if (masked) {
                if (d->irqfd_assigned[v])
                        (void)interrupts_set_irqfd(d, v, false);
                return;
        }
        bool moved = msg.address != d->routed[v].address || msg.data != d->routed[v].data;
        if ((moved || !d->irqfd_assigned[v]) && vmm_gsi_route_msi(d->vm, d->gsis[v], &msg) < 0)
                return;
        d->routed[v] = msg;
        if (!d->irqfd_assigned[v] && interrupts_set_irqfd(d, v, true) < 0)
                log_debug("%s: KVM_IRQFD for vector %u: %m", d->name, v);
}

void vfio_interrupts_vector_changed(struct iov_pci_msix *msix, uint16_t vector, void *opaque)
{
        struct iov_vfio_device *d = opaque;
        bool enabled = vmm_pci_msix_enabled(msix);
        if (enabled != d->msix_on_device) {
                int r = interrupts_set_device(d, enabled);
                if (r < 0)
                        log_error_errno(r, "%s: VFIO_DEVICE_SET_IRQS MSI-X %s: %m", d->name,
                                        enabled ? "on" : "off");
        }
        for (uint16_t v = 0; v < d->msix_vectors; v++)
                if (vector == 0xffff || v == vector)
                        interrupts_sync_vector(d, v);
}

void vfio_interrupts_done(struct iov_vfio_device *d)
{
        if (!d->has_msix || !d->irq_fds)
                return;
        if (d->msix_on_device)
                (void)interrupts_set_device(d, false);
        for (unsigned v = 0; v < d->msix_vectors; v++) {
                if (d->irqfd_assigned && d->irqfd_assigned[v])
                        (void)interrupts_set_irqfd(d, v, false);
                if (d->gsis && d->gsis[v])
                        vmm_gsi_free(d->vm, d->gsis[v]);
                if (d->irq_fds[v] >= 0)
                        close(d->irq_fds[v]);
        }
        free(d->irq_fds);
        free(d->gsis);
        free(d->irqfd_assigned);
        free(d->routed);
        d->irq_fds = NULL;
}
