/* SPDX-License-Identifier: MIT */
/* A VM without KVM for device-model unit tests: buses, locks and the registered device
 * models, vm_fd = -1 (interrupt injection fails quietly). */
#pragma once

#include <criterion/criterion.h>

#include "util/util.h"
#include "vmm/vm.h"

static inline struct iov_vm *fake_vm_new(void)
{
        struct iov_vm *vm = calloc(1, sizeof(*vm));
        cr_assert_not_null(vm);
        vm->kvm_fd = vm->vm_fd = vm->serial_out_fd = vm->stop_fd = -1;
        vm->n_vcpus = 1;
        pthread_mutex_init(&vm->gsi_lock, NULL);
        pthread_mutex_init(&vm->state_lock, NULL);
        pthread_mutex_init(&vm->marker_lock, NULL);
        pthread_cond_init(&vm->state_cond, NULL);
        cr_assert_eq(vmm_bus_init(&vm->pio, "pio"), 0);
        cr_assert_eq(vmm_bus_init(&vm->mmio, "mmio"), 0);
        return vm;
}

/* Run the init of the registered device model called name. */
static inline void fake_vm_add_device(struct iov_vm *vm, const char *name)
{
        for (const struct iov_device_type *t = vmm_device_types(); t; t = t->next) {
                if (streq(t->name, name)) {
                        int r = t->init(vm);
                        cr_assert_eq(r, 0, "init of %s: %d", name, r);
                        return;
                }
        }
        cr_assert_fail("no device model called %s", name);
}

static inline void fake_vm_free(struct iov_vm *vm)
{
        for (unsigned i = vm->n_cleanups; i > 0; i--)
                vm->cleanups[i - 1].fn(vm->cleanups[i - 1].data);
        vmm_bus_done(&vm->pio);
        vmm_bus_done(&vm->mmio);
        free(vm);
}

static inline uint32_t pio_read(struct iov_vm *vm, uint16_t port, unsigned len)
{
        uint8_t data[4] = {0};
        vmm_bus_access(&vm->pio, port, data, len, false);
        uint32_t v = 0;
        memcpy(&v, data, len);
        return v;
}

static inline void pio_write(struct iov_vm *vm, uint16_t port, uint32_t v, unsigned len)
{
        uint8_t data[4];
        memcpy(data, &v, 4);
        vmm_bus_access(&vm->pio, port, data, len, true);
}
