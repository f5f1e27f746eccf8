/* SPDX-License-Identifier: MIT */
/*
 * MSI-X and MSI of a passed-through function. The guest programs the emulated
 * capabilities (vmm/pci-msix.c for MSI-X, config.c for MSI) and the MSI-X table; the
 * device's real ones are vfio-pci's, which programs them with host vectors when given one
 * eventfd per vector (VFIO_DEVICE_SET_IRQS with VFIO_PCI_MSIX_IRQ_INDEX or
 * VFIO_PCI_MSI_IRQ_INDEX, vfio.h). Each eventfd is a KVM irqfd on its own GSI whose route
 * is the guest's message (KVM_SET_GSI_ROUTING, KVM_IRQFD: Documentation/virt/kvm/api.rst),
 * so an interrupt goes from the device to the guest without this process.
 *
 * A masked vector (vector mask, function mask, the capability off, or an MSI message
 * with no interrupt address, msi.c) has its irqfd detached: the eventfd keeps counting,
 * and KVM delivers a count it finds when the irqfd is attached again on unmask, which is
 * the pending-bit behaviour of PCI r3.0 §6.8.2.9 and §6.8.1.7 (the pending bits the
 * guest reads stay 0).
 *
 * INTx (vfio.rst; vfio.h, VFIO_DEVICE_SET_IRQS): vfio-pci masks the line when it fires
 * and signals the trigger eventfd; that eventfd is a KVM irqfd with KVM_IRQFD_FLAG_RESAMPLE
 * on the slot's GSI (vmm/irq.c), so KVM asserts the level-triggered IOAPIC pin, and at the
 * guest's EOI de-asserts it and signals the resample eventfd, which vfio-pci takes as the
 * unmask (VFIO_IRQ_SET_ACTION_UNMASK with an eventfd): a still-pending device interrupts
 * again. INTx is on from the start (the guest may never turn MSI on, e.g. pci=nomsi), off
 * before MSI or MSI-X go on (vfio-pci takes one interrupt type at a time, and PCI r3.0
 * §6.8.1.3 and §6.8.2.3 forbid INTx while they are enabled), back on when both are off.
 */
#include <linux/kvm.h>
#include <stdio.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>

#include "util/util.h"
#include "vmm/vfio/vfio.h"

#define IRQ_NONE VFIO_PCI_NUM_IRQS

int vfio_interrupts_init(struct iov_vfio_device *d)
{
        unsigned n = d->has_msix ? d->msix_vectors : 0;
        if (d->msi_vectors > n)
                n = d->msi_vectors;
        d->irq_index = IRQ_NONE;
        if (n == 0)
                return 0;
        d->irq_fds = calloc(n, sizeof(*d->irq_fds));
        if (!d->irq_fds)
                return -ENOMEM;
        d->n_irqs = n;
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

/* Hand count eventfds to vfio-pci for index, or (count 0) take that index away. */
static int interrupts_set_device(struct iov_vfio_device *d, unsigned index, unsigned count)
{
        size_t size = sizeof(struct vfio_irq_set) + count * sizeof(int32_t);
        _cleanup_free_ struct vfio_irq_set *set = calloc(1, size);
        if (!set)
                return -ENOMEM;
        *set = (struct vfio_irq_set){
                .argsz = (uint32_t)size,
                .flags = VFIO_IRQ_SET_ACTION_TRIGGER |
                         (count ? VFIO_IRQ_SET_DATA_EVENTFD : VFIO_IRQ_SET_DATA_NONE),
                .index = index,
                .start = 0,
                .count = count,
        };
        memcpy(set->data, d->irq_fds, count * sizeof(int32_t));
        if (ioctl(d->fd, VFIO_DEVICE_SET_IRQS, set) < 0)
                return -errno;
        return 0;
}

/* One INTx action for VFIO: fd >= 0 hands it that eventfd, fd < 0 (trigger) turns INTx off. */
static int intx_set_irqs(struct iov_vfio_device *d, uint32_t action, int fd)
{
        uint32_t count = fd >= 0 ? 1 : 0;
        size_t size = sizeof(struct vfio_irq_set) + count * sizeof(int32_t);
        _cleanup_free_ struct vfio_irq_set *set = calloc(1, size);
        if (!set)
                return -ENOMEM;
        *set = (struct vfio_irq_set){
                .argsz = (uint32_t)size,
                .flags = action | (count ? VFIO_IRQ_SET_DATA_EVENTFD : VFIO_IRQ_SET_DATA_NONE),
                .index = VFIO_PCI_INTX_IRQ_INDEX,
                .start = 0,
                .count = count,
        };
        memcpy(set->data, &fd, count * sizeof(int32_t));
        if (ioctl(d->fd, VFIO_DEVICE_SET_IRQS, set) < 0)
                return -errno;
        return 0;
}

static int intx_set_irqfd(struct iov_vfio_device *d, bool assign)
{
        struct kvm_irqfd irqfd = {
                .fd = (uint32_t)d->intx_fd,
                .gsi = vmm_pci_intx_gsi(d->pci.slot, d->intx_pin),
                .flags = assign ? KVM_IRQFD_FLAG_RESAMPLE : KVM_IRQFD_FLAG_DEASSIGN,
                .resamplefd = assign ? (uint32_t)d->intx_resample_fd : 0,
        };
        if (ioctl(vmm_vm_fd(d->vm), KVM_IRQFD, &irqfd) < 0)
                return -errno;
        return 0;
}

/* KVM first, so a trigger VFIO signals at once is not lost (an irqfd attached to an
 * eventfd that already counts injects it); then VFIO's trigger, then its unmask. */
static int intx_enable(struct iov_vfio_device *d)
{
        if (!d->has_intx || d->intx_on)
                return 0;
        int r = intx_set_irqfd(d, true);
        if (r < 0)
                return r;
        r = intx_set_irqs(d, VFIO_IRQ_SET_ACTION_TRIGGER, d->intx_fd);
        if (r >= 0)
                r = intx_set_irqs(d, VFIO_IRQ_SET_ACTION_UNMASK, d->intx_resample_fd);
        if (r < 0) {
                (void)intx_set_irqs(d, VFIO_IRQ_SET_ACTION_TRIGGER, -1);
                (void)intx_set_irqfd(d, false);
                return r;
        }
        d->intx_on = true;
        return 0;
}

/* VFIO first (no new trigger; its unmask eventfd goes with it), then the irqfd, whose
 * removal de-asserts the line. */
static void intx_disable(struct iov_vfio_device *d)
{
        if (!d->intx_on)
                return;
        int r = intx_set_irqs(d, VFIO_IRQ_SET_ACTION_TRIGGER, -1);
        if (r < 0)
                log_error_errno(r, "%s: turning INTx off: %m", d->name);
        (void)intx_set_irqfd(d, false);
        d->intx_on = false;
}

int vfio_interrupts_intx_start(struct iov_vfio_device *d)
{
        if (!d->has_intx)
                return 0;
        d->intx_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        d->intx_resample_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (d->intx_fd < 0 || d->intx_resample_fd < 0)
                return -errno;
        int r = intx_enable(d);
        if (r < 0)
                log_error_errno(r, "%s: INTx on GSI %u: %m", d->name,
                                vmm_pci_intx_gsi(d->pci.slot, d->intx_pin));
        return r;
}

static void interrupts_message(struct iov_vfio_device *d, unsigned v, struct iov_msi_message *msg,
                               bool *masked)
{
        *masked = true;
        if (d->irq_index == VFIO_PCI_MSIX_IRQ_INDEX)
                (void)vmm_pci_msix_vector(&d->msix, (uint16_t)v, msg, masked);
        else if (d->irq_index == VFIO_PCI_MSI_IRQ_INDEX)
                vfio_msi_vector(d, v, msg, masked);
        *masked = *masked || v >= d->irq_count;
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
static void interrupts_sync_vector(struct iov_vfio_device *d, unsigned v)
{
        struct iov_msi_message msg = {0};
        bool masked;
        interrupts_message(d, v, &msg, &masked);
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

/* Give the device the interrupt type the guest has turned on (MSI-X wins: PCI r3.0
 * §6.8.2 forbids both), after taking away the one it had. */
static void interrupts_switch(struct iov_vfio_device *d)
{
        unsigned index = IRQ_NONE, count = 0;
        if (d->has_msix && vmm_pci_msix_enabled(&d->msix))
                index = VFIO_PCI_MSIX_IRQ_INDEX, count = d->msix_vectors;
        else if ((count = vfio_msi_enabled(d)) > 0)
                index = VFIO_PCI_MSI_IRQ_INDEX;
        if (index == d->irq_index && count == d->irq_count)
                return;
        if (d->irq_index != IRQ_NONE)
                (void)interrupts_set_device(d, d->irq_index, 0);
        d->irq_index = IRQ_NONE;
        d->irq_count = 0;
        if (index != IRQ_NONE)
                intx_disable(d);
        int r = index == IRQ_NONE ? intx_enable(d) : interrupts_set_device(d, index, count);
        if (r < 0)
                log_error_errno(r, "%s: VFIO_DEVICE_SET_IRQS %s x%u: %m", d->name,
                                index == VFIO_PCI_MSI_IRQ_INDEX ? "MSI"
                                : index == IRQ_NONE             ? "INTx"
                                                                : "MSI-X",
                                count);
        else if (index != IRQ_NONE)
                d->irq_index = index, d->irq_count = count;
}

static void interrupts_update(struct iov_vfio_device *d, unsigned vector)
{
        if (!d->irq_fds)
                return;
        interrupts_switch(d);
        for (unsigned v = 0; v < d->n_irqs; v++)
                if (vector == 0xffff || v == vector)
                        interrupts_sync_vector(d, v);
}

void vfio_interrupts_vector_changed(struct iov_pci_msix *msix, uint16_t vector, void *opaque)
{
        (void)msix;
        interrupts_update(opaque, vector);
}

void vfio_interrupts_msi_written(struct iov_vfio_device *d)
{
        interrupts_update(d, 0xffff);
}

static void intx_done(struct iov_vfio_device *d)
{
        intx_disable(d);
        if (d->intx_fd >= 0)
                close(d->intx_fd);
        if (d->intx_resample_fd >= 0)
                close(d->intx_resample_fd);
        d->intx_fd = d->intx_resample_fd = -1;
}

void vfio_interrupts_done(struct iov_vfio_device *d)
{
        intx_done(d);
        if (!d->irq_fds)
                return;
        if (d->irq_index != IRQ_NONE)
                (void)interrupts_set_device(d, d->irq_index, 0);
        d->irq_index = IRQ_NONE;
        for (unsigned v = 0; v < d->n_irqs; v++) {
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
