/* SPDX-License-Identifier: MIT */
/*
 * Interrupts: ISA lines of the in-kernel PIC/IOAPIC, and the VM's GSI routing table.
 *
 * KVM_SET_GSI_ROUTING replaces the whole table, so the VMM keeps it: the default entries
 * KVM installs with KVM_CREATE_IRQCHIP (GSI 0-15 to both PICs, GSI 0-23 to IOAPIC pin
 * = GSI; Documentation/virt/kvm/api.rst, KVM_CREATE_IRQCHIP) plus one MSI entry per
 * allocated GSI.
 */
#include <linux/kvm.h>
#include <sys/ioctl.h>

#include "util/util.h"
#include "vmm/vm.h"

#define ISA_GSI_COUNT 24 /* IOAPIC pins */

int vmm_irq_set_level(struct iov_vm *vm, unsigned gsi, bool level)
{
        if (gsi >= ISA_GSI_COUNT)
                return -EINVAL;
        struct kvm_irq_level irq = {.irq = gsi, .level = level};
        if (ioctl(vm->vm_fd, KVM_IRQ_LINE, &irq) < 0)
                return -errno;
        return 0;
}

int vmm_msi_signal(struct iov_vm *vm, const struct iov_msi_message *msg)
{
        struct kvm_msi msi = {
                .address_lo = (uint32_t)msg->address,
                .address_hi = (uint32_t)(msg->address >> 32),
                .data = msg->data,
        };
        /* Returns > 0 when delivered, 0 when the guest blocked it. */
        if (ioctl(vm->vm_fd, KVM_SIGNAL_MSI, &msi) < 0)
                return -errno;
        return 0;
}

static unsigned irq_count_entries(const struct iov_vm *vm)
{
        unsigned n = 16 + ISA_GSI_COUNT;
        for (unsigned gsi = ISA_GSI_COUNT; gsi < vm->gsi_max; gsi++)
                if (vm->gsi[gsi].used && vm->gsi[gsi].is_msi)
                        n++;
        return n;
}

/* Push the whole table; called with gsi_lock held. */
static int irq_commit_routes(struct iov_vm *vm)
{
        unsigned n = irq_count_entries(vm);
        _cleanup_free_ struct kvm_irq_routing *routing =
                calloc(1, sizeof(*routing) + n * sizeof(struct kvm_irq_routing_entry));
        if (!routing)
                return -ENOMEM;

        unsigned i = 0;
        for (unsigned gsi = 0; gsi < 16; gsi++)
                routing->entries[i++] = (struct kvm_irq_routing_entry){
                        .gsi = gsi,
                        .type = KVM_IRQ_ROUTING_IRQCHIP,
                        .u.irqchip = {.irqchip = gsi < 8 ? KVM_IRQCHIP_PIC_MASTER
                                                         : KVM_IRQCHIP_PIC_SLAVE,
                                      .pin = gsi % 8},
                };
        for (unsigned gsi = 0; gsi < ISA_GSI_COUNT; gsi++)
                routing->entries[i++] = (struct kvm_irq_routing_entry){
                        .gsi = gsi,
                        .type = KVM_IRQ_ROUTING_IRQCHIP,
                        .u.irqchip = {.irqchip = KVM_IRQCHIP_IOAPIC, .pin = gsi},
                };
        for (unsigned gsi = ISA_GSI_COUNT; gsi < vm->gsi_max; gsi++) {
                const struct iov_gsi_route *route = &vm->gsi[gsi];
                if (!route->used || !route->is_msi)
                        continue;
                routing->entries[i++] = (struct kvm_irq_routing_entry){
                        .gsi = gsi,
                        .type = KVM_IRQ_ROUTING_MSI,
                        .u.msi = {.address_lo = (uint32_t)route->msi_address,
                                  .address_hi = (uint32_t)(route->msi_address >> 32),
                                  .data = route->msi_data},
                };
        }
        routing->nr = i;
        if (ioctl(vm->vm_fd, KVM_SET_GSI_ROUTING, routing) < 0)
                return -errno;
        return 0;
}

/* The ISA entries are KVM's own already: KVM_CREATE_IRQCHIP routes GSI 0-15 to both PICs
 * and the IOAPIC, 16-23 to the IOAPIC (api.rst, KVM_CREATE_IRQCHIP), the table
 * irq_commit_routes() writes. Pushing it again here cost each VM's build a grace period
 * of the VM's irq SRCU (KVM_SET_GSI_ROUTING waits for one), 2 to 14 ms on a busy host
 * (bench/vms): the table goes to KVM with the first MSI route. */
int vmm_irq_init(struct iov_vm *vm)
{
        pthread_mutex_lock(&vm->gsi_lock);
        for (unsigned gsi = 0; gsi < ISA_GSI_COUNT; gsi++)
                vm->gsi[gsi].used = true;
        pthread_mutex_unlock(&vm->gsi_lock);
        return 0;
}

int vmm_gsi_alloc(struct iov_vm *vm, unsigned *ret_gsi)
{
        int r = -ENOSPC;
        pthread_mutex_lock(&vm->gsi_lock);
        for (unsigned gsi = ISA_GSI_COUNT; gsi < vm->gsi_max; gsi++) {
                if (vm->gsi[gsi].used)
                        continue;
                vm->gsi[gsi] = (struct iov_gsi_route){.used = true};
                *ret_gsi = gsi;
                r = 0;
                break;
        }
        pthread_mutex_unlock(&vm->gsi_lock);
        return r;
}

void vmm_gsi_free(struct iov_vm *vm, unsigned gsi)
{
        if (gsi < ISA_GSI_COUNT || gsi >= vm->gsi_max)
                return;
        pthread_mutex_lock(&vm->gsi_lock);
        bool had_route = vm->gsi[gsi].is_msi;
        vm->gsi[gsi] = (struct iov_gsi_route){.used = false};
        if (had_route)
                (void)irq_commit_routes(vm);
        pthread_mutex_unlock(&vm->gsi_lock);
}

int vmm_gsi_route_msi(struct iov_vm *vm, unsigned gsi, const struct iov_msi_message *msg)
{
        if (gsi < ISA_GSI_COUNT || gsi >= vm->gsi_max)
                return -EINVAL;
        pthread_mutex_lock(&vm->gsi_lock);
        int r = -ENOENT;
        if (vm->gsi[gsi].used) {
                vm->gsi[gsi].is_msi = true;
                vm->gsi[gsi].msi_address = msg->address;
                vm->gsi[gsi].msi_data = msg->data;
                r = irq_commit_routes(vm);
        }
        pthread_mutex_unlock(&vm->gsi_lock);
        return r;
}

unsigned vmm_pci_intx_gsi(unsigned slot, unsigned pin)
{
        if (pin < 1 || pin > 4 || slot > 31)
                return 0;
        return IOV_PCI_INTX_GSI_BASE + (slot + pin - 1) % IOV_PCI_INTX_GSI_COUNT;
}
