/* SPDX-License-Identifier: MIT */
/* The list of device models, filled by IOV_VMM_DEVICE constructors before main(). */
#include <inttypes.h>
#include <stdio.h>

#include "util/util.h"
#include "vmm/vm.h"

static struct iov_device_type *device_types;

void vmm_device_type_register(struct iov_device_type *type)
{
        /* Keep the list sorted by order, stable for equal orders. */
        struct iov_device_type **p = &device_types;
        while (*p && (*p)->order <= type->order)
                p = &(*p)->next;
        type->next = *p;
        *p = type;
}

const struct iov_device_type *vmm_device_types(void)
{
        return device_types;
}

int vmm_devices_init(struct iov_vm *vm)
{
        for (struct iov_device_type *t = device_types; t; t = t->next) {
                int r = t->init(vm);
                if (r < 0) {
                        /* A model may have written a more precise reason already. */
                        if (!vm->exit_reason[0])
                                snprintf(vm->exit_reason, sizeof(vm->exit_reason),
                                         "device %s failed to initialize: %s", t->name,
                                         strerror(-r));
                        return r;
                }
        }
        return 0;
}

int vmm_vm_add_cleanup(struct iov_vm *vm, void (*fn)(void *data), void *data)
{
        if (vm->n_cleanups == IOV_VM_MAX_CLEANUPS)
                return -ENOSPC;
        vm->cleanups[vm->n_cleanups++] = (struct iov_vm_cleanup){.fn = fn, .data = data};
        return 0;
}
