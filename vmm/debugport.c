/* SPDX-License-Identifier: MIT */
/*
 * Boot-progress port (IOV_DEBUG_PORT, 0x510): a guest writes a marker value (1, 2 or 4
 * bytes) and the VMM records the microseconds since it started, per marker value, for
 * the stats ("markers") and the exit report. Reads return 0. Port 0x80 is avoided on
 * purpose: Linux writes it as an I/O delay, which would bury the real markers.
 */
#include "util/util.h"
#include "vmm/vm.h"

static void debugport_access(void *opaque, uint64_t offset, uint8_t *data, uint32_t len,
                             bool is_write)
{
        struct iov_vm *vm = opaque;
        (void)offset;
        if (!is_write) {
                memset(data, 0, len);
                return;
        }
        uint32_t value = 0;
        memcpy(&value, data, len < 4 ? len : 4);
        vmm_vm_record_marker(vm, value);
}

static int debugport_init(struct iov_vm *vm)
{
        return vmm_bus_register(&vm->pio, IOV_DEBUG_PORT, 4, debugport_access, vm, "debug-port");
}

IOV_VMM_DEVICE("debug-port", IOV_DEVICE_ORDER_LEGACY, debugport_init)
