/* SPDX-License-Identifier: MIT */
/*
 * The VM inside iovd-vmm: KVM fds, guest memory, the two buses, the PCI host bridge,
 * interrupts (legacy lines, GSI routes for MSI), vCPUs and statistics.
 *
 * This is the interface device models (files in vmm/ and vmm/virtio/) program against:
 *   - IOV_VMM_DEVICE(name, order, init): a device model file registers itself; init runs
 *     once per VM, in order (IOV_DEVICE_ORDER_*), after guest memory and the irqchip exist
 *     and before the kernel is loaded;
 *   - vm->pio / vm->mmio: vmm_bus_register() (vmm/bus.h);
 *   - vm->pci: vmm_pci_register_device() (vmm/pci.h);
 *   - guest memory: vmm_memory_ptr(vm->mem, gpa, len) (vmm/memory.h), never raw offsets;
 *   - interrupts: vmm_irq_set_level() for ISA lines; for MSI/MSI-X vmm_gsi_alloc(),
 *     vmm_gsi_route_msi() (one table for the whole VM, pushed with KVM_SET_GSI_ROUTING),
 *     then KVM_IRQFD on vmm_vm_fd(); or vmm_msi_signal() for a one-off message;
 *   - doorbells: KVM_IOEVENTFD on vmm_vm_fd();
 *   - teardown: vmm_vm_add_cleanup() runs in reverse order when the VM is freed.
 */
#pragma once

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/bus.h"
#include "vmm/contract/vm-contract.h"
#include "vmm/memory.h"
#include "vmm/vmm.h"

struct iov_vm;
struct iov_pci_host;
struct iov_vcpu;
struct iov_uart;
struct iov_i8042;

/* ---- device model registration ---------------------------------------------------------- */

enum {
        IOV_DEVICE_ORDER_CORE = 0,    /* PCI host bridge: others register on it */
        IOV_DEVICE_ORDER_LEGACY = 10, /* UART, i8042, debug port */
        IOV_DEVICE_ORDER_PCI = 20,    /* PCI functions: virtio-pci (vmm/virtio/register.c) */
};

struct iov_device_type {
        const char *name;
        int order;
        /* Returns 0 (also when the VM's configuration does not ask for this device) or a
         * negative errno, which fails the VM build. vm->exit_reason is empty when init is
         * called: a model that can say more than the errno (which entry, which field)
         * writes the reason there, otherwise it becomes "device NAME failed ...: errno". */
        int (*init)(struct iov_vm *vm);
        struct iov_device_type *next;
};

void vmm_device_type_register(struct iov_device_type *type);
/* Run every registered device's init, in order. */
int vmm_devices_init(struct iov_vm *vm);
const struct iov_device_type *vmm_device_types(void);

/* The file's one registration line. The constructor runs at program start; the library is
 * linked whole (vmm/meson.build) so the linker keeps every device file. */
#define IOV_VMM_DEVICE(name_, order_, init_)                                                       \
        static struct iov_device_type iov_device_type_##init_ = {                                  \
                .name = (name_), .order = (order_), .init = (init_)};                              \
        __attribute__((constructor)) static void iov_device_register_##init_(void)                 \
        {                                                                                          \
                vmm_device_type_register(&iov_device_type_##init_);                                \
        }

/* ---- exits and statistics --------------------------------------------------------------- */

/* Exit reasons counted per vCPU; index = KVM_EXIT_* when below this bound. */
#define IOV_VM_EXIT_REASONS 64

/* Run states: enum iov_vm_state (vm-contract.h); STOPPED ends with exit status 0,
 * CRASHED with a non-zero one. */

#define IOV_VM_MAX_MARKERS 64

struct iov_boot_marker {
        uint32_t value;
        uint64_t usec; /* since the VMM started */
        uint64_t count;
        uint64_t exits; /* exits of all vCPUs when the marker was first written */
};

/* ---- the VM ----------------------------------------------------------------------------- */

/* IOV_VM_MAX_VCPUS: vm-contract.h */
#define IOV_VM_MAX_GSI      1024
#define IOV_VM_MAX_CLEANUPS 64

struct iov_gsi_route {
        bool used;
        bool is_msi;
        uint64_t msi_address;
        uint32_t msi_data;
};

struct iov_vm_cleanup {
        void (*fn)(void *data);
        void *data;
};

struct iov_vm {
        const struct iov_vmm_config *config;
        uint64_t start_usec; /* CLOCK_MONOTONIC when the VMM started */

        int kvm_fd;
        int vm_fd;
        int vcpu_mmap_size;
        struct iov_guest_memory *mem;
        struct iov_bus pio;
        struct iov_bus mmio;
        struct iov_pci_host *pci;

        /* GSI routing: 0..23 are the IOAPIC pins (0..15 also the PIC), MSI routes above. */
        pthread_mutex_t gsi_lock;
        struct iov_gsi_route gsi[IOV_VM_MAX_GSI];
        unsigned gsi_max; /* KVM_CAP_IRQ_ROUTING */

        unsigned n_vcpus;
        struct iov_vcpu *vcpus[IOV_VM_MAX_VCPUS];
        uint64_t entry_rip; /* from the kernel loader */
        uint64_t boot_params_gpa;

        /* Lifecycle: any thread may request a stop; vCPU threads notice it. */
        pthread_mutex_t state_lock;
        pthread_cond_t state_cond;
        enum iov_vm_state state;
        _Atomic bool attention; /* set with state changes: vCPUs take state_lock only then */
        int exit_status;
        char exit_reason[160];
        /* An eventfd the first stop request writes, so the main thread (which polls it
         * with the control socket and the stop signals) wakes at once; -1: none. */
        int stop_fd;

        /* Boot-progress markers (vmm/debugport.c). */
        pthread_mutex_t marker_lock;
        struct iov_boot_marker markers[IOV_VM_MAX_MARKERS];
        unsigned n_markers;

        /* Console: where the UART's output goes (-1: nowhere), and the UART for input. */
        int serial_out_fd;
        struct iov_uart *uart;
        struct iov_i8042 *i8042;

        struct iov_vm_cleanup cleanups[IOV_VM_MAX_CLEANUPS];
        unsigned n_cleanups;
};

static inline int vmm_vm_fd(const struct iov_vm *vm)
{
        return vm->vm_fd;
}

int vmm_vm_add_cleanup(struct iov_vm *vm, void (*fn)(void *data), void *data);

/* Stop the VM (all vCPUs leave KVM_RUN). status 0 = clean shutdown; the first request
 * wins. crashed marks a guest crash or VMM failure. reason is shown to the user. */
void vmm_vm_request_stop(struct iov_vm *vm, bool crashed, int status, const char *reason);
bool vmm_vm_stopping(struct iov_vm *vm);

/* ---- interrupts (vmm/irq.c) --------------------------------------------------------------- */

struct iov_msi_message {
        uint64_t address;
        uint32_t data;
};

/* Drive an ISA interrupt line (0..23) of the in-kernel PIC/IOAPIC. */
int vmm_irq_set_level(struct iov_vm *vm, unsigned gsi, bool level);
/* Reserve a GSI number for an MSI route; -ENOSPC when none is left. */
int vmm_gsi_alloc(struct iov_vm *vm, unsigned *ret_gsi);
void vmm_gsi_free(struct iov_vm *vm, unsigned gsi);
/* Point gsi at an MSI message and push the VM's whole routing table to KVM. */
int vmm_gsi_route_msi(struct iov_vm *vm, unsigned gsi, const struct iov_msi_message *msg);
/* Inject one MSI without a route (KVM_SIGNAL_MSI). */
int vmm_msi_signal(struct iov_vm *vm, const struct iov_msi_message *msg);
/* Install the default routing table (ISA lines); called once after KVM_CREATE_IRQCHIP. */
int vmm_irq_init(struct iov_vm *vm);

/* PCI INTx (vmm/irq.c): every slot of bus 0 has INTA..INTD wired to IOAPIC pins 16..19,
 * swizzled like the pins behind a PCI-to-PCI bridge (PCI-to-PCI Bridge Architecture r1.2
 * §9.1: pin (slot + pin) mod 4), so neighbouring devices' INTA lines spread over the four
 * pins. Level-triggered and active-low (PCI r3.0 §2.2.6); KVM's IOAPIC takes level 1 as
 * asserted whatever the guest programs as polarity. The ACPI _PRT (vmm/acpi.c) and the
 * MP table (vmm/mptable.c) describe this map to the guest. */
#define IOV_PCI_INTX_GSI_BASE  16
#define IOV_PCI_INTX_GSI_COUNT 4
/* The GSI (= IOAPIC pin) of slot's interrupt pin (1 INTA .. 4 INTD, as the interrupt-pin
 * register says); 0 for pin 0 (no INTx) or out of range. */
unsigned vmm_pci_intx_gsi(unsigned slot, unsigned pin);

/* ---- boot markers (vmm/debugport.c) ------------------------------------------------------ */

#define IOV_DEBUG_PORT 0x510 /* boot-progress port: 1, 2 or 4-byte writes are markers */

void vmm_vm_record_marker(struct iov_vm *vm, uint32_t value);

/* ---- console and shutdown requests (vmm/uart.c, vmm/i8042.c) ------------------------------ */

/* Queue guest input for the UART; returns how many bytes were taken (the rest would
 * overflow its buffer). */
size_t vmm_uart_input(struct iov_vm *vm, const void *data, size_t len);
/* Ask the guest to shut down: Ctrl-Alt-Del through the i8042 keyboard. */
int vmm_i8042_request_shutdown(struct iov_vm *vm);
