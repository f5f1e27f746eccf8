/* SPDX-License-Identifier: MIT */
/*
 * The "vfio" device model: for each {"type": "vfio", "host": ...} entry of the VM, the
 * host function bound to vfio-pci becomes a PCI function of the guest. Steps, in the
 * order the kernel requires (vfio.rst): the host checks (host.c), the container and
 * group with guest RAM mapped (container.c), the device fd, its reset, its regions, the
 * guest's config space (config.c), BARs (bars.c), MSI-X (interrupts.c), registration on
 * the guest's bus, INTx on the slot's GSI (interrupts.c). Everything is opened here, before the
 * sandbox; what the running VM still calls (VFIO_DEVICE_SET_IRQS, KVM slots for BAR moves, the
 * reset and DMA unmap at teardown) is on the seccomp allow-list (vmm/sandbox.c).
 */
#include <json-c/json.h>
#include <stdio.h>
#include <sys/ioctl.h>

#include "util/util.h"
#include "vmm/vfio/vfio.h"
#include "vmm/vm.h"

/* The IOMMU context all of a VM's passed-through functions share (one VM per process). */
static struct iov_vfio_iommu *vm_iommu;

static void iommu_cleanup(void *data)
{
        vfio_iommu_free(data);
        vm_iommu = NULL;
}

static int device_read_sparse(struct iov_vfio_device *d, unsigned index, uint32_t argsz)
{
        _cleanup_free_ uint8_t *buf = calloc(1, argsz);
        if (!buf)
                return -ENOMEM;
        struct vfio_region_info *info = (struct vfio_region_info *)buf;
        *info = (struct vfio_region_info){.argsz = argsz, .index = index};
        if (ioctl(d->fd, VFIO_DEVICE_GET_REGION_INFO, info) < 0)
                return -errno;
        for (uint32_t off = info->cap_offset; off && off + 16 <= argsz;) {
                const struct vfio_info_cap_header *h = (const void *)(buf + off);
                if (h->id == VFIO_REGION_INFO_CAP_SPARSE_MMAP) {
                        const struct vfio_region_info_cap_sparse_mmap *s = (const void *)h;
                        struct iov_vfio_region *region = &d->regions[index];
                        region->n_areas = 0;
                        for (uint32_t i = 0;
                             i < s->nr_areas && i < IOV_VFIO_MAX_AREAS &&
                             off + sizeof(*s) + (i + 1) * sizeof(s->areas[0]) <= argsz;
                             i++)
                                region->areas[region->n_areas++] = (struct iov_vfio_area){
                                        s->areas[i].offset, s->areas[i].size};
                }
                if (h->next <= off)
                        break;
                off = h->next;
        }
        return 0;
}

/* VFIO_DEVICE_GET_REGION_INFO: offset and size in the device fd, and where mmap works
 * (the whole region unless a sparse-mmap capability says otherwise). */
static int device_read_region(struct iov_vfio_device *d, unsigned index)
{
        struct vfio_region_info probe = {.argsz = sizeof(probe), .index = index};
        if (ioctl(d->fd, VFIO_DEVICE_GET_REGION_INFO, &probe) < 0)
                return errno == EINVAL ? 0 : -errno; /* no such region */
        struct iov_vfio_region *region = &d->regions[index];
        *region = (struct iov_vfio_region){
                .offset = probe.offset, .size = probe.size, .flags = probe.flags};
        if (!(probe.flags & VFIO_REGION_INFO_FLAG_MMAP))
                return 0;
        region->areas[0] = (struct iov_vfio_area){0, probe.size};
        region->n_areas = 1;
        if (!(probe.flags & VFIO_REGION_INFO_FLAG_CAPS) || probe.argsz <= sizeof(probe))
                return 0;
        return device_read_sparse(d, index, probe.argsz);
}

static int device_probe(struct iov_vfio_device *d, char *error, size_t error_size)
{
        struct vfio_device_info info = {.argsz = sizeof(info)};
        if (ioctl(d->fd, VFIO_DEVICE_GET_INFO, &info) < 0 ||
            !(info.flags & VFIO_DEVICE_FLAGS_PCI) || info.num_regions < IOV_VFIO_REGIONS) {
                snprintf(error, error_size, "vfio: %s is not a vfio-pci device", d->name);
                return -ENODEV;
        }
        d->can_reset = info.flags & VFIO_DEVICE_FLAGS_RESET;
        /* vfio-pci reports one INTx interrupt for a function with an interrupt pin, none
         * for an SR-IOV VF (VFs have no INTx; their interrupt pin reads 0). */
        struct vfio_irq_info intx = {.argsz = sizeof(intx), .index = VFIO_PCI_INTX_IRQ_INDEX};
        d->has_intx = ioctl(d->fd, VFIO_DEVICE_GET_IRQ_INFO, &intx) == 0 && intx.count == 1 &&
                      (intx.flags & VFIO_IRQ_INFO_EVENTFD);
        /* Start from a known state: a failed reset leaves the device as the last user
         * left it, which the guest must not inherit. */
        if (d->can_reset && ioctl(d->fd, VFIO_DEVICE_RESET) < 0) {
                int r = -errno;
                snprintf(error, error_size, "vfio: VFIO_DEVICE_RESET of %s failed: %s", d->name,
                         strerror(-r));
                return r;
        }
        if (!d->can_reset)
                log_warning("%s: the device has no reset method; it starts as vfio-pci left it",
                            d->name);
        for (unsigned i = 0; i < IOV_VFIO_REGIONS; i++) {
                int r = device_read_region(d, i);
                if (r < 0) {
                        snprintf(error, error_size, "vfio: %s region %u: %s", d->name, i,
                                 strerror(-r));
                        return r;
                }
        }
        return 0;
}

static void device_free(void *data)
{
        struct iov_vfio_device *d = data;
        /* DMA stops before guest RAM leaves the IOMMU (the container's cleanup runs
         * after this one), whether or not the reset below really resets the device. */
        vfio_config_quiesce(d);
        vfio_interrupts_done(d);
        vfio_bars_unmap(d);
        if (d->fd >= 0 && d->can_reset)
                (void)ioctl(d->fd, VFIO_DEVICE_RESET); /* leave nothing of the guest's */
        if (d->fd >= 0)
                close(d->fd);
        vmm_pci_msix_done(d->has_msix ? &d->msix : NULL);
        free(d);
}

/* After any config write: BAR moves and decode changes move the KVM slots with them. */
static void device_config_written(struct iov_pci_device *pci, uint32_t offset, uint32_t len)
{
        (void)offset;
        (void)len;
        vfio_bars_sync(pci->opaque);
}

/* The guest's function from the device: config space, BARs, MSI-X, then the bus. */
static int device_build(struct iov_vfio_device *d, const struct iov_vfio_spec *spec, char *error,
                        size_t error_size)
{
        const struct iov_vfio_region *config = &d->regions[VFIO_PCI_CONFIG_REGION_INDEX];
        _cleanup_free_ uint8_t *phys = calloc(1, IOV_PCI_CONFIG_SIZE);
        if (!phys)
                return -ENOMEM;
        d->config_size =
                config->size > IOV_PCI_CONFIG_SIZE ? IOV_PCI_CONFIG_SIZE : (uint32_t)config->size;
        if (pread(d->fd, phys, d->config_size, (off_t)config->offset) != (ssize_t)d->config_size) {
                snprintf(error, error_size, "vfio: reading the config space of %s failed", d->name);
                return -EIO;
        }
        int r = vfio_config_build(d, phys);
        if (r >= 0)
                r = vfio_bars_declare(d, phys);
        if (r >= 0)
                r = vfio_interrupts_init(d);
        d->pci.config_written = device_config_written;
        d->pci.requested_slot = spec->guest_slot;
        d->pci.requested_function = spec->guest_function;
        if (r >= 0)
                r = vmm_pci_register_device(d->vm, &d->pci);
        if (r >= 0)
                r = vfio_bars_map(d);
        if (r >= 0)
                r = vfio_interrupts_intx_start(d);
        if (r < 0)
                snprintf(error, error_size, "vfio: %s cannot be given to the guest%s: %s", d->name,
                         r == -EADDRINUSE ? " at the requested guest_address"
                         : r == -ENODEV   ? " (its slot has no function 0)"
                                          : "",
                         strerror(-r));
        return r;
}

static int device_add(struct iov_vm *vm, const struct iov_vfio_spec *spec, char *error,
                      size_t error_size)
{
        unsigned group;
        int r = vfio_host_check("/sys", spec->host, &group, error, error_size);
        if (r < 0)
                return r;
        if (!vm_iommu) {
                r = vfio_host_check_memlock(vm->mem->size, error, error_size);
                if (r >= 0)
                        r = vfio_iommu_open(vm->mem, vm->config->vfio_container, &vm_iommu, error,
                                            error_size);
                if (r < 0)
                        return r;
                r = vmm_vm_add_cleanup(vm, iommu_cleanup, vm_iommu);
                if (r < 0) {
                        iommu_cleanup(vm_iommu);
                        return r;
                }
        }
        struct iov_vfio_device *d = calloc(1, sizeof(*d));
        if (!d)
                return -ENOMEM;
        d->vm = vm;
        d->fd = d->intx_fd = d->intx_resample_fd = -1;
        snprintf(d->name, sizeof(d->name), "vfio-%s", spec->host);
        d->present_as = spec->present_as;
        r = vmm_vm_add_cleanup(vm, device_free, d);
        if (r < 0) {
                free(d);
                return r;
        }
        r = vfio_iommu_open_device(vm_iommu, group, spec->vfio_group, spec->host, &d->fd, error,
                                   error_size);
        if (r >= 0)
                r = device_probe(d, error, error_size);
        if (r >= 0)
                r = device_build(d, spec, error, error_size);
        return r;
}

/* The vfio entries of the definition, parsed with it (vmm/contract/vfio-spec.c). */
static int vfio_init(struct iov_vm *vm)
{
        const struct iov_vm_spec *vm_spec = &vm->config->spec;
        for (size_t i = 0; i < vm_spec->n_devices; i++) {
                if (vm_spec->devices[i].kind != IOV_VM_DEVICE_VFIO)
                        continue;
                char error[256] = "";
                int r = device_add(vm, &vm_spec->devices[i].vfio, error, sizeof(error));
                if (r < 0) {
                        snprintf(vm->exit_reason, sizeof(vm->exit_reason), "devices[%zu]: %s", i,
                                 error[0] ? error : strerror(-r));
                        return r;
                }
        }
        return 0;
}

IOV_VMM_DEVICE("vfio", IOV_DEVICE_ORDER_PCI, vfio_init)
