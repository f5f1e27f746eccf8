/* SPDX-License-Identifier: MIT */
/*
 * The MSI capability of a passed-through function (PCI r3.0 §6.8.1), emulated: the guest
 * programs this copy in config space, the device's own capability is vfio-pci's, which
 * programs it with host vectors when interrupts.c hands it eventfds. Layout (§6.8.1,
 * Figure 6-9 and 6-10), from the capability's offset:
 *   +2  message control (§6.8.1.3): bit 0 MSI enable, 3:1 multiple message capable (read
 *       only), 6:4 multiple message enable, bit 7 64-bit address capable (read only), bit
 *       8 per-vector masking capable (read only);
 *   +4  message address (§6.8.1.4), bits 1:0 reserved (read as 0);
 *   +8  message upper address, only when 64-bit capable (§6.8.1.5);
 *   +8 or +0xc  message data, 16 bits (§6.8.1.6);
 *   data + 4  mask bits, data + 8  pending bits, only with per-vector masking
 *       (§6.8.1.7, §6.8.1.8): one bit per implemented vector, the rest reserved.
 * Every field is read back as the guest wrote it, in whatever order and width it writes
 * (Linux writes address and data, then sets the enable bit, and rewrites address and
 * data while enabled when it moves the interrupt); what the guest programmed is decoded
 * from these bytes each time, so there is no second copy to get out of step.
 */
#include "util/util.h"
#include "vmm/vfio/vfio.h"

#define MSI_CONTROL_ENABLE     0x0001
#define MSI_CONTROL_MME        0x0070 /* multiple message enable, 6:4 */
#define MSI_CONTROL_64BIT      0x0080
#define MSI_CONTROL_PER_VECTOR 0x0100
#define MSI_MAX_VECTORS        32 /* §6.8.1.3: 101b, the largest encoding */

static uint32_t msi_get(const struct iov_vfio_device *d, unsigned offset, unsigned len)
{
        uint32_t v = 0;
        for (unsigned i = 0; i < len; i++)
                v |= (uint32_t)d->pci.config[offset + i] << (8 * i);
        return v;
}

static void msi_put(uint8_t *p, uint32_t v, unsigned len)
{
        for (unsigned i = 0; i < len; i++)
                p[i] = (uint8_t)(v >> (8 * i));
}

static unsigned msi_data_offset(const struct iov_vfio_device *d)
{
        return d->msi_offset + (d->msi_64bit ? 12u : 8u);
}

unsigned vfio_msi_emulate(struct iov_vfio_device *d, uint8_t offset)
{
        uint8_t *c = d->pci.config, *w = d->pci.wmask;
        uint16_t control = (uint16_t)(c[offset + 2] | c[offset + 3] << 8);
        unsigned mmc = (control >> 1) & 7;
        d->msi_offset = offset;
        d->msi_64bit = control & MSI_CONTROL_64BIT;
        d->msi_per_vector_mask = control & MSI_CONTROL_PER_VECTOR;
        /* 110b and 111b are reserved (§6.8.1.3): take them as the largest defined. */
        d->msi_vectors = (uint8_t)(1u << (mmc > 5 ? 5 : mmc));
        unsigned data_at = msi_data_offset(d);
        unsigned len = data_at + 2 - offset;
        /* After reset: disabled, one message (§6.8.1.3), no address or data. */
        msi_put(&c[offset + 2], control & ~(MSI_CONTROL_ENABLE | MSI_CONTROL_MME), 2);
        memset(&c[offset + 4], 0, data_at + 2 - (offset + 4u));
        msi_put(&w[offset + 2], MSI_CONTROL_ENABLE | MSI_CONTROL_MME, 2);
        msi_put(&w[offset + 4], 0xfffffffc, 4);
        if (d->msi_64bit)
                msi_put(&w[offset + 8], 0xffffffff, 4);
        msi_put(&w[data_at], 0xffff, 2);
        if (d->msi_per_vector_mask) {
                len = data_at + 12 - offset;
                /* Mask bits 0 after reset (§6.8.1.7); only implemented vectors' bits are
                 * writable; pending bits are read only. */
                memset(&c[data_at + 2], 0, 10);
                msi_put(&w[data_at + 4], (uint32_t)((1ULL << d->msi_vectors) - 1), 4);
                msi_put(&w[data_at + 8], 0, 4);
        }
        return len;
}

unsigned vfio_msi_enabled(const struct iov_vfio_device *d)
{
        if (!d->msi_offset)
                return 0;
        uint16_t control = (uint16_t)msi_get(d, d->msi_offset + 2u, 2);
        if (!(control & MSI_CONTROL_ENABLE))
                return 0;
        /* More than the device can do is undefined (§6.8.1.3): give what it can. */
        unsigned n = 1u << ((control & MSI_CONTROL_MME) >> 4);
        if (n > MSI_MAX_VECTORS)
                n = MSI_MAX_VECTORS;
        return n > d->msi_vectors ? d->msi_vectors : n;
}

/* The x86 interrupt window (Intel SDM vol. 3, §11.11.1): a low address 0xFEExxxxx (the
 * upper half may carry extended destination bits, KVM's x2APIC API). Anything else is not
 * an interrupt but a memory write, e.g. the zero message Linux writes while it takes a
 * vector away; it is never routed to KVM. */
static bool msi_address_valid(uint64_t address)
{
        return (address & 0xfff00000u) == 0xfee00000u;
}

void vfio_msi_vector(const struct iov_vfio_device *d, unsigned vector,
                     struct iov_msi_message *ret_msg, bool *ret_masked)
{
        unsigned n = vfio_msi_enabled(d), data_at = msi_data_offset(d);
        struct iov_msi_message msg = {.address = msi_get(d, d->msi_offset + 4u, 4)};
        if (d->msi_64bit)
                msg.address |= (uint64_t)msi_get(d, d->msi_offset + 8u, 4) << 32;
        msg.data = msi_get(d, data_at, 2);
        /* With n messages enabled the device puts the vector in the data's low log2(n)
         * bits (§6.8.1.6). */
        if (n > 1)
                msg.data = (msg.data & ~(n - 1)) | (vector & (n - 1));
        bool masked = vector >= n || !msi_address_valid(msg.address);
        if (d->msi_per_vector_mask && vector < 32)
                masked = masked || (msi_get(d, data_at + 4, 4) >> vector & 1);
        *ret_msg = msg;
        *ret_masked = masked;
}

bool vfio_msi_written(const struct iov_vfio_device *d, uint32_t offset, uint32_t len)
{
        if (!d->msi_offset)
                return false;
        unsigned end = msi_data_offset(d) + (d->msi_per_vector_mask ? 12u : 2u);
        return offset < end && offset + len > d->msi_offset;
}
