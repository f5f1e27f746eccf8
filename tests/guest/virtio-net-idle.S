/* SPDX-License-Identifier: MIT */
/*
 * Guest payload for the VM-to-VM link tests (tests/daemon/test-vm-links.c): bring
 * virtio-net up (DRIVER_OK, both queues, one receive buffer posted) so that iovd-vmm
 * serves the device's backend, write marker 1, then halt with interrupts off until the
 * VMM is told to stop. A link's carrier is followed by the I/O thread only while the
 * device runs and its receive queue has a buffer (vmm/virtio/iothread.c), which the
 * halting "idle" payload never gives it.
 *
 * It stays at CPL 0 (no virtio-cpl3.inc): it runs a few dozen instructions before it
 * halts, and HLT is a CPL-0 instruction.
 */
#include "guest.inc"
#include "virtio-driver.inc"

        .set RX_RING, 0x300000
        .set TX_RING, 0x340000
        .set RX_BUF, 0x380000

        .globl _start
_start:
        cli
        mov $0x1041, %edi          /* virtio-net */
        call vdrv_find
        call vdrv_init
        xor %esi, %esi             /* receiveq0 */
        mov $RX_RING, %edi
        call vdrv_queue
        mov %rax, %r12
        mov $1, %esi               /* transmitq0 */
        mov $TX_RING, %edi
        call vdrv_queue
        call vdrv_driver_ok

        /* One device-writable buffer on receiveq0 (virtio 1.2 §2.7.13): descriptor 0 in
         * avail slot 0, idx 1, then the doorbell. */
        VDRV_DESC RX_RING, 0, RX_BUF, 1526, 2, 0
        movw $0, RX_RING + VQ_AVAIL + 4
        movw $1, RX_RING + VQ_AVAIL + 2
        movw $0, (%r12)
        MARKER 1
1:      hlt
        jmp 1b

fail:
        MARKER 0xdead
        RESET

        VIRTIO_DRIVER_CODE
