/* SPDX-License-Identifier: MIT */
/*
 * MSI-X (PCI r3.0 §6.8.2): the capability, the vector table and the pending-bit array in
 * one of the device's BARs. Delivery goes through KVM (KVM_SIGNAL_MSI here; device models
 * that want irqfds route each vector to a GSI from vector_changed).
 */
#include "util/util.h"
#include "vmm/pci-host.h"
#include "vmm/pci.h"

#define MSIX_CONTROL_ENABLE 0x8000
#define MSIX_CONTROL_MASK   0x4000
#define MSIX_ENTRY_SIZE     16
#define MSIX_VECTOR_MASKED  0x1

int vmm_pci_msix_init(struct iov_pci_device *dev, struct iov_pci_msix *msix, uint16_t n_vectors,
                      uint8_t bar, uint32_t table_offset, uint32_t pba_offset)
{
        if (n_vectors == 0 || n_vectors > 2048 || bar >= IOV_PCI_NUM_BARS || (table_offset & 7) ||
            (pba_offset & 7))
                return -EINVAL;

        _cleanup_free_ struct iov_msix_entry *table = calloc(n_vectors, sizeof(*table));
        _cleanup_free_ uint64_t *pba = calloc((n_vectors + 63) / 64, sizeof(uint64_t));
        if (!table || !pba)
                return -ENOMEM;
        /* Every vector starts masked (PCI r3.0 §6.8.2.9). */
        for (unsigned i = 0; i < n_vectors; i++)
                table[i].vector_control = MSIX_VECTOR_MASKED;

        uint16_t control = n_vectors - 1;
        uint8_t cap[12] = {IOV_PCI_CAP_ID_MSIX, 0, (uint8_t)control, (uint8_t)(control >> 8)};
        uint32_t t = table_offset | bar, p = pba_offset | bar;
        memcpy(&cap[4], &t, 4);
        memcpy(&cap[8], &p, 4);
        uint8_t wmask[12] = {0, 0, 0, 0xc0}; /* enable and function mask */
        uint8_t offset;
        int r = vmm_pci_device_add_capability(dev, cap, sizeof(cap), wmask, &offset);
        if (r < 0)
                return r;

        *msix = (struct iov_pci_msix){
                .dev = dev,
                .n_vectors = n_vectors,
                .cap_offset = offset,
                .bar = bar,
                .table_offset = table_offset,
                .pba_offset = pba_offset,
                .table = TAKE_PTR(table),
                .pba = TAKE_PTR(pba),
                .vector_changed = msix->vector_changed,
                .opaque = msix->opaque,
        };
        dev->msix = msix;
        return 0;
}

void vmm_pci_msix_done(struct iov_pci_msix *msix)
{
        if (!msix)
                return;
        free(msix->table);
        free(msix->pba);
        msix->table = NULL;
        msix->pba = NULL;
}

static uint16_t msix_control(const struct iov_pci_msix *msix)
{
        const uint8_t *c = &msix->dev->config[msix->cap_offset + 2];
        return (uint16_t)(c[0] | c[1] << 8);
}

bool vmm_pci_msix_enabled(const struct iov_pci_msix *msix)
{
        return msix_control(msix) & MSIX_CONTROL_ENABLE;
}

/* Called by the config-space core with dev->lock held. */
void vmm_pci_msix_config_written(struct iov_pci_msix *msix, uint32_t offset, uint32_t len)
{
        uint32_t control = msix->cap_offset + 2u;
        if (offset >= control + 2 || offset + len <= control)
                return;
        if (msix->vector_changed)
                msix->vector_changed(msix, 0xffff, msix->opaque);
}

int vmm_pci_msix_vector(const struct iov_pci_msix *msix, uint16_t vector,
                        struct iov_msi_message *ret_msg, bool *ret_masked)
{
        if (vector >= msix->n_vectors)
                return -EINVAL;
        const struct iov_msix_entry *e = &msix->table[vector];
        uint16_t control = msix_control(msix);
        if (ret_msg)
                *ret_msg = (struct iov_msi_message){
                        .address = (uint64_t)e->address_hi << 32 | e->address_lo,
                        .data = e->data,
                };
        if (ret_masked)
                *ret_masked = !(control & MSIX_CONTROL_ENABLE) || (control & MSIX_CONTROL_MASK) ||
                              (e->vector_control & MSIX_VECTOR_MASKED);
        return 0;
}

static void msix_table_access(struct iov_pci_msix *msix, uint64_t offset, uint8_t *data,
                              uint32_t len, bool is_write)
{
        uint64_t vector = offset / MSIX_ENTRY_SIZE;
        unsigned field = (unsigned)(offset % MSIX_ENTRY_SIZE);
        /* Only aligned DWORD or QWORD accesses are defined (PCI r3.0 §6.8.2). */
        if (vector >= msix->n_vectors || (len != 4 && len != 8) || field % len != 0) {
                if (!is_write)
                        memset(data, 0xff, len);
                return;
        }
        uint8_t *entry = (uint8_t *)&msix->table[vector];
        if (!is_write) {
                memcpy(data, entry + field, len);
                return;
        }
        bool was_masked;
        vmm_pci_msix_vector(msix, (uint16_t)vector, NULL, &was_masked);
        memcpy(entry + field, data, len);
        msix->table[vector].vector_control &= MSIX_VECTOR_MASKED;
        if (msix->vector_changed)
                msix->vector_changed(msix, (uint16_t)vector, msix->opaque);

        bool masked;
        vmm_pci_msix_vector(msix, (uint16_t)vector, NULL, &masked);
        uint64_t bit = 1ULL << (vector % 64);
        if (was_masked && !masked && (msix->pba[vector / 64] & bit)) {
                msix->pba[vector / 64] &= ~bit;
                struct iov_msi_message msg;
                vmm_pci_msix_vector(msix, (uint16_t)vector, &msg, NULL);
                vmm_msi_signal(msix->dev->vm, &msg);
        }
}

bool vmm_pci_msix_bar_access(struct iov_pci_msix *msix, uint64_t offset, uint8_t *data,
                             uint32_t len, bool is_write)
{
        uint64_t table_size = (uint64_t)msix->n_vectors * MSIX_ENTRY_SIZE;
        uint64_t pba_size = ((msix->n_vectors + 63) / 64) * 8;

        pthread_mutex_lock(&msix->dev->lock);
        bool handled = true;
        if (offset >= msix->table_offset && offset - msix->table_offset < table_size) {
                msix_table_access(msix, offset - msix->table_offset, data, len, is_write);
        } else if (offset >= msix->pba_offset && offset - msix->pba_offset < pba_size) {
                /* The PBA is read-only; writes are ignored. */
                uint64_t o = offset - msix->pba_offset;
                if (!is_write) {
                        memset(data, 0, len);
                        if (o + len <= pba_size)
                                memcpy(data, (uint8_t *)msix->pba + o, len);
                }
        } else {
                handled = false;
        }
        pthread_mutex_unlock(&msix->dev->lock);
        return handled;
}

int vmm_pci_msix_notify(struct iov_pci_msix *msix, uint16_t vector)
{
        struct iov_msi_message msg;
        bool masked;

        pthread_mutex_lock(&msix->dev->lock);
        int r = vmm_pci_msix_vector(msix, vector, &msg, &masked);
        if (r >= 0 && masked)
                msix->pba[vector / 64] |= 1ULL << (vector % 64);
        pthread_mutex_unlock(&msix->dev->lock);
        if (r < 0 || masked)
                return r;
        return vmm_msi_signal(msix->dev->vm, &msg);
}
