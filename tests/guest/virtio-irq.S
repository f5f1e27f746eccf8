/* SPDX-License-Identifier: MIT */
/*
 * Guest payload for the virtio interrupt test (tests/unit/virtio/test-guest.c): a
 * virtio-rng request completes with an MSI-X interrupt, delivered by iovd-vmm through a
 * KVM GSI route and an irqfd. Markers:
 *   0x31  the used buffer came with exactly one interrupt (vector 0x40)
 *   0x32  with the MSI-X vector masked, a completion raised none; unmasking delivered
 *         the pending one (PCI r3.0 §6.8.2.9)
 *   0xdead / 0xbad  a failed step / an unexpected exception or interrupt
 * CPL 0 sets up an IDT, the local APIC and masks the 8259s; the test runs at CPL 3 with
 * interrupts on, the handler runs at CPL 0 (emulated, a few instructions).
 */
#include "guest.inc"
#include "virtio-cpl3.inc"
#include "virtio-driver.inc"

        .set IDT, 0x60000
        .set KSTACK, 0x70000
        .set IRQ_COUNT, 0x500000
        .set RING, 0x300000
        .set BUF, 0x310000
        .set VECTOR, 0x40
        .set LAPIC, 0xfee00000
        .set MSIX_TABLE, 0x4000    /* BAR 0 offset (vmm/virtio/pci.h) */

        .globl _start
_start:
        /* Every IDT gate goes to `unexpected`, VECTOR to `irq` (64-bit interrupt gates,
         * selector 0x08, SDM vol. 3 §6.14.1). */
        mov $IDT, %edi
        xor %ecx, %ecx
1:      lea unexpected(%rip), %rax
        cmp $VECTOR, %ecx
        jne 2f
        lea irq(%rip), %rax
2:      mov %eax, %edx
        and $0xffff, %edx
        or $0x80000, %edx          /* selector 0x08 << 16 */
        mov %edx, (%rdi)
        and $0xffff0000, %eax
        or $0x8e00, %eax           /* present, DPL 0, interrupt gate */
        mov %eax, 4(%rdi)
        movq $0, 8(%rdi)
        add $16, %rdi
        inc %ecx
        cmp $256, %ecx
        jne 1b
        lidt idt_desc(%rip)
        movq $KSTACK, CPL3_TSS + 4 /* RSP0 */
        mov $0xff, %al             /* mask both 8259s: only MSIs here */
        out %al, $0x21
        out %al, $0xa1
        mov $LAPIC + 0xf0, %eax    /* spurious vector register: software enable */
        movl $0x1ff, (%rax)
        VIRTIO_CPL3_ENTER user, 0x0202

user:
        mov $0x1044, %edi          /* virtio-rng */
        call vdrv_find
        call vdrv_init
        /* MSI-X: vector 0 -> LAPIC 0, VECTOR, unmasked; enable MSI-X in its capability
         * (the first one, at 0x40, on iovd-vmm's virtio functions). */
        mov %r14, %rbx
        add $MSIX_TABLE, %rbx
        movl $LAPIC, (%rbx)
        movl $0, 4(%rbx)
        movl $VECTOR, 8(%rbx)
        movl $0, 12(%rbx)
        VDRV_CFG_ADDR 0x40
        in (%dx), %eax
        or $0x80000000, %eax       /* message control bit 15: MSI-X enable */
        out %eax, (%dx)
        xor %esi, %esi
        mov $RING, %edi
        call vdrv_queue
        mov %rax, %r15
        movw $0, COMMON_QVEC(%r14) /* requestq -> vector 0 */
        cmpw $0, COMMON_QVEC(%r14)
        jne fail
        call vdrv_driver_ok

        VDRV_DESC RING, 0, BUF, 16, 2, 0
        call rng_request
        mov $1, %r8d
        call wait_irq
        MARKER 0x31

        movl $1, 12(%rbx)          /* mask vector 0 */
        call rng_request
        mov $2000000, %ecx         /* give a wrong interrupt time to arrive */
3:      pause
        dec %ecx
        jnz 3b
        cmpl $1, IRQ_COUNT
        jne fail
        movl $0, 12(%rbx)          /* unmask: the pending message goes out */
        mov $2, %r8d
        call wait_irq
        MARKER 0x32
        jmp done

rng_request:
        mov $RING, %edi
        xor %esi, %esi
        mov %r15, %rdx
        xor %ecx, %ecx
        jmp vdrv_submit

/* wait_irq(r8d = count): spin until IRQ_COUNT reaches it, a bounded time, then check
 * that no extra interrupt came. */
wait_irq:
        mov $100000000, %ecx
1:      cmp IRQ_COUNT, %r8d
        je 2f
        pause
        dec %ecx
        jnz 1b
        jmp fail
2:      mov $1000000, %ecx
3:      pause
        dec %ecx
        jnz 3b
        cmp IRQ_COUNT, %r8d
        jne fail
        ret

fail:
        MARKER 0xdead
done:
        VIRTIO_CPL3_RESET

/* ---- CPL 0 handlers ------------------------------------------------------------------ */
irq:
        push %rax
        incl IRQ_COUNT
        mov $LAPIC + 0xb0, %eax    /* EOI */
        movl $0, (%rax)
        pop %rax
        iretq

unexpected:
        MARKER 0xbad
        mov $0xfe, %al
        out %al, $I8042_COMMAND
1:      hlt
        jmp 1b

        .align 8
idt_desc:
        .word 256 * 16 - 1
        .quad IDT

        VIRTIO_DRIVER_CODE
        VIRTIO_CPL3_GDT
