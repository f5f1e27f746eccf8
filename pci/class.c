/* SPDX-License-Identifier: MIT */
/*
 * PCI class codes iovd makes decisions on: which functions are the platform's own
 * plumbing (bridges, interrupt and DMA controllers, the IOMMU) and never go to a guest,
 * and which are PCI-to-PCI bridges that VFIO leaves on the host while the rest of their
 * group is handed out. Values from the PCI Code and ID Assignment Specification r1.11,
 * chapter 1 (§1.7 base class 06h, §1.9 base class 08h).
 */
#include "pci/pci.h"
#include "util/util.h"

struct class_entry {
        uint16_t class_subclass;
        const char *name;
};

/* Functions that route, translate or steer other devices' traffic: handing one to a
 * guest takes the bus, the legacy I/O or the interrupts below it away from the host. */
static const struct class_entry infrastructure[] = {
        {IOV_PCI_CLASS_BRIDGE_HOST, "host bridge"},
        {IOV_PCI_CLASS_BRIDGE_ISA, "ISA bridge"},
        {IOV_PCI_CLASS_BRIDGE_EISA, "EISA bridge"},
        {IOV_PCI_CLASS_BRIDGE_MCA, "MCA bridge"},
        {IOV_PCI_CLASS_BRIDGE_PCI, "PCI-to-PCI bridge"},
        {IOV_PCI_CLASS_BRIDGE_PCMCIA, "PCMCIA bridge"},
        {IOV_PCI_CLASS_BRIDGE_NUBUS, "NuBus bridge"},
        {IOV_PCI_CLASS_BRIDGE_CARDBUS, "CardBus bridge"},
        {IOV_PCI_CLASS_BRIDGE_RACEWAY, "RACEway bridge"},
        {IOV_PCI_CLASS_BRIDGE_PCI_SEMI, "semi-transparent PCI-to-PCI bridge"},
        {IOV_PCI_CLASS_BRIDGE_INFINIBAND, "InfiniBand-to-PCI host bridge"},
        {IOV_PCI_CLASS_BRIDGE_AS, "Advanced Switching to PCI host bridge"},
        {IOV_PCI_CLASS_SYSTEM_PIC, "interrupt controller"},
        {IOV_PCI_CLASS_SYSTEM_DMA, "DMA controller"},
        {IOV_PCI_CLASS_SYSTEM_TIMER, "system timer"},
        {IOV_PCI_CLASS_SYSTEM_RTC, "real-time clock"},
        {IOV_PCI_CLASS_SYSTEM_HOTPLUG, "PCI hot-plug controller"},
        {IOV_PCI_CLASS_SYSTEM_IOMMU, "IOMMU"},
        {IOV_PCI_CLASS_SYSTEM_RCEC, "root complex event collector"},
};

static uint16_t class_subclass(uint32_t class_code)
{
        return (uint16_t)((class_code >> 8) & 0xffff);
}

const char *pci_class_infrastructure_name(uint32_t class_code)
{
        for (size_t i = 0; i < ARRAY_SIZE(infrastructure); i++)
                if (infrastructure[i].class_subclass == class_subclass(class_code))
                        return infrastructure[i].name;
        return NULL;
}

bool pci_class_is_pci_bridge(uint32_t class_code)
{
        return class_subclass(class_code) == IOV_PCI_CLASS_BRIDGE_PCI;
}

int pci_device_read_class(const char *sysfs_root, const struct iov_pci_address *address,
                          uint32_t *ret)
{
        _cleanup_free_ char *path = pci_device_sysfs_path(sysfs_root, address, "class");
        uint64_t v;
        if (!path)
                return -ENOMEM;
        int r = util_read_u64(path, &v);
        if (r < 0)
                return r;
        if (v > 0xffffff)
                return -EBADMSG;
        *ret = (uint32_t)v;
        return 0;
}
