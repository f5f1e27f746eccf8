/* SPDX-License-Identifier: MIT */
/*
 * The virtio-pci device model of iovd-vmm: for each virtio entry of the VM's devices,
 * already parsed with the rest of the definition (vmm/contract/), create the registered
 * device it names and attach it as a PCI function. What a device needs of the VM (guest
 * memory, the console stream) it gets through struct iov_virtio_host; this file knows no
 * device by name.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "util/util.h"
#include "vmm/memory.h"
#include "vmm/virtio/pci.h"

static void *vm_memory_ptr(void *opaque, uint64_t gpa, uint64_t len)
{
        return vmm_memory_ptr(opaque, gpa, len);
}

/* One VM per process; the devices keep a pointer to this. */
static struct iov_virtio_mem guest_memory;

/* Device i of the definition; the spec stays the configuration's (never freed here). */
static int entry_attach(struct iov_vm *vm, size_t i, const struct iov_virtio_spec *spec,
                        const struct iov_virtio_host *host)
{
        struct iov_virtio_dev *dev;

        int r = virtio_spec_create(spec, host, &dev);
        if (r < 0) {
                snprintf(vm->exit_reason, sizeof(vm->exit_reason), "devices[%zu]: %s: %s", i,
                         spec->ops->name, strerror(-r));
                return r;
        }
        return vpci_attach(vm, dev, NULL);
}

/* The contract's parser refused every entry no model serves; the virtio ones are ours. */
static int virtio_pci_init(struct iov_vm *vm)
{
        const struct iov_vm_spec *vm_spec = &vm->config->spec;

        guest_memory = (struct iov_virtio_mem){.ptr = vm_memory_ptr, .opaque = vm->mem};
        const struct iov_virtio_host host = {
                .mem = &guest_memory, .console_fd = vm->serial_out_fd, .vcpus = vm_spec->vcpus};
        for (size_t i = 0; i < vm_spec->n_devices; i++) {
                if (vm_spec->devices[i].kind != IOV_VM_DEVICE_VIRTIO)
                        continue;
                int r = entry_attach(vm, i, &vm_spec->devices[i].virtio, &host);
                if (r < 0)
                        return r;
        }
        return 0;
}

IOV_VMM_DEVICE("virtio-pci", IOV_DEVICE_ORDER_PCI, virtio_pci_init)
