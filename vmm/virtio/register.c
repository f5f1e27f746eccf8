/* SPDX-License-Identifier: MIT */
/*
 * The virtio-pci device model of iovd-vmm: for each virtio entry in the VM's "devices"
 * list (spec.c), create the registered device it names and attach it as a PCI function.
 * What a device needs of the VM (guest memory, the console stream) it gets through
 * struct iov_virtio_host; this file knows no device by name.
 */
#include <errno.h>
#include <json-c/json.h>
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

/* Parse entry i. iovd-vmm has no device model outside virtio, so an entry virtio does
 * not take is one nobody takes: refused like the API refuses it (api/vms.c), with the
 * reason the VM build reports. */
static int entry_parse(struct iov_vm *vm, size_t i, struct iov_virtio_spec *ret)
{
        struct json_object *entry = json_object_array_get_idx(vm->config->devices, i);
        _cleanup_free_ char *error = NULL;

        int r = virtio_spec_parse(entry, ret, &error);
        if (r == 0) {
                struct json_object *type = json_object_object_get(entry, "type");
                snprintf(vm->exit_reason, sizeof(vm->exit_reason),
                         "devices[%zu]: unknown device type \"%.64s\"", i,
                         json_object_get_string(type));
                return -EINVAL;
        }
        if (r < 0)
                snprintf(vm->exit_reason, sizeof(vm->exit_reason), "devices[%zu]: %s", i,
                         error ? error : strerror(-r));
        return r;
}

static int entry_attach(struct iov_vm *vm, size_t i, const struct iov_virtio_host *host)
{
        struct iov_virtio_spec spec;
        struct iov_virtio_dev *dev;

        int r = entry_parse(vm, i, &spec);
        if (r < 0)
                return r;
        r = virtio_spec_create(&spec, host, &dev);
        if (r < 0)
                snprintf(vm->exit_reason, sizeof(vm->exit_reason), "devices[%zu]: %s: %s", i,
                         spec.ops->name, strerror(-r));
        virtio_spec_done(&spec);
        if (r < 0)
                return r;
        return vpci_attach(vm, dev, NULL);
}

static int virtio_pci_init(struct iov_vm *vm)
{
        struct json_object *devices = vm->config->devices;

        if (!devices)
                return 0;
        guest_memory = (struct iov_virtio_mem){.ptr = vm_memory_ptr, .opaque = vm->mem};
        const struct iov_virtio_host host = {.mem = &guest_memory, .console_fd = vm->serial_out_fd};
        for (size_t i = 0; i < json_object_array_length(devices); i++) {
                int r = entry_attach(vm, i, &host);
                if (r < 0)
                        return r;
        }
        return 0;
}

IOV_VMM_DEVICE("virtio-pci", IOV_DEVICE_ORDER_PCI, virtio_pci_init)
