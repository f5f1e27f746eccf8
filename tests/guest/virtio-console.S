/* SPDX-License-Identifier: MIT */
/*
 * Guest payload for the console benchmark: sends N MiB either through the emulated
 * 16550A UART (one OUT per byte, LSR polled per 16-byte FIFO load, like Linux's 8250
 * driver) or through virtio-console's transmitq0 (tests/guest/virtio-driver.inc, no
 * interrupts: it polls the used ring). The kernel command line picks the path and size:
 * "u N" or "v N" (N in MiB). Marker 1 is written before the first byte, marker 2 after
 * the last one was accepted; then reset through the i8042.
 * "e 1" echoes instead: the first input that arrives on virtio-console's receiveq0 is
 * written back on transmitq0 (marker 3), so a test can check both directions. Everything after the first
 * few instructions runs at CPL 3, natively (tests/guest/virtio-cpl3.inc).
 */
#include "guest.inc"
#include "virtio-cpl3.inc"
#include "virtio-driver.inc"

        .set CHUNK, 0x10000        /* bytes per descriptor / per UART loop */
        .set BUF, 0x1000000        /* 16 MiB: the data, one 64 KiB pattern */
        .set RING, 0x200000        /* transmitq0 */
        .set BATCH, 16             /* descriptors per doorbell: 1 MiB */
        .set RX_RING, 0x240000     /* receiveq0 */
        .set RX_BUF, 0x260000

        .globl _start
_start:
        mov 0x228(%rsi), %ebx      /* zero page: cmd_line_ptr */
        VIRTIO_CPL3_ENTER user

user:
        /* Command line "M N": mode byte in r12b, N (MiB, decimal) in r13d. */
        movzbl (%rbx), %r12d
        lea 2(%rbx), %rsi
        xor %r13d, %r13d
2:      movzbl (%rsi), %eax
        sub $'0', %eax
        cmp $9, %eax
        ja 3f
        imul $10, %r13d
        add %eax, %r13d
        inc %rsi
        jmp 2b
3:      test %r13d, %r13d
        jz fail

        /* The pattern: 64-byte lines of '@'..'_' ending in a newline. */
        xor %ecx, %ecx
4:      mov %ecx, %eax
        and $63, %eax
        cmp $63, %eax
        je 5f
        and $31, %eax
        add $0x40, %eax
        jmp 6f
5:      mov $10, %eax
6:      mov %al, BUF(%rcx)
        inc %ecx
        cmp $CHUNK, %ecx
        jne 4b

        cmp $'u', %r12b
        je uart_send
        cmp $'v', %r12b
        je virtio_send
        cmp $'e', %r12b
        je virtio_echo
        jmp fail

/* ---- 16550A: N MiB, 16 bytes per THRE ---------------------------------------------- */
uart_send:
        MARKER 1
        mov %r13d, %r14d
        shl $4, %r14d              /* 64 KiB chunks */
10:     mov $BUF, %esi
        mov $CHUNK / 16, %r15d
11:     mov $UART + 5, %dx         /* LSR */
12:     in (%dx), %al
        test $0x20, %al            /* THRE: the FIFO takes 16 more */
        jz 12b
        mov $UART, %dx
        mov $16, %ecx
13:     lodsb
        out %al, (%dx)
        dec %ecx
        jnz 13b
        dec %r15d
        jnz 11b
        dec %r14d
        jnz 10b
        MARKER 2
        jmp done

/* ---- virtio-console: transmitq0 (queue 1, virtio 1.2 §5.3.2) ----------------------- */
virtio_send:
        mov $0x1043, %edi          /* 0x1040 + console (3) */
        call vdrv_find
        call vdrv_init
        mov $1, %esi
        mov $RING, %edi
        call vdrv_queue
        mov %rax, %r15
        call vdrv_driver_ok

        /* BATCH descriptors, each the whole 64 KiB pattern, device-readable. */
        mov $RING, %edi
        xor %ecx, %ecx
20:     movq $BUF, (%rdi)
        movl $CHUNK, 8(%rdi)
        movl $0, 12(%rdi)
        add $16, %rdi
        inc %ecx
        cmp $BATCH, %ecx
        jne 20b

        MARKER 1
        xor %r9d, %r9d             /* our avail idx */
21:     xor %ecx, %ecx
22:     lea (%r9, %rcx), %eax
        and $VQ_SIZE - 1, %eax
        mov %cx, RING + VQ_AVAIL + 4(, %rax, 2)
        inc %ecx
        cmp $BATCH, %ecx
        jne 22b
        add $BATCH, %r9d
        mov %r9w, RING + VQ_AVAIL + 2  /* x86 keeps stores in order: entries first */
        movw $1, (%r15)            /* one doorbell per batch (§4.1.5.2) */
23:     pause
        movzwl RING + VQ_USED + 2, %eax
        cmp %r9w, %ax
        jne 23b
        dec %r13d
        jnz 21b
        MARKER 2
        jmp done

/* ---- virtio-console echo: one receive buffer, its contents sent back --------------- */
virtio_echo:
        mov $0x1043, %edi
        call vdrv_find
        call vdrv_init
        xor %esi, %esi             /* receiveq0 */
        mov $RX_RING, %edi
        call vdrv_queue
        mov %rax, %r12
        mov $1, %esi               /* transmitq0 */
        mov $RING, %edi
        call vdrv_queue
        mov %rax, %r15
        call vdrv_driver_ok
        VDRV_DESC RX_RING, 0, RX_BUF, 256, 2, 0
        mov $RX_RING, %edi         /* waits until input arrives */
        xor %esi, %esi
        mov %r12, %rdx
        xor %ecx, %ecx
        call vdrv_submit
        test %eax, %eax
        jz fail
        movq $RX_BUF, RING         /* send back what came in: used len bytes */
        mov %eax, RING + 8
        movl $0, RING + 12
        mov $RING, %edi
        xor %esi, %esi
        mov %r15, %rdx
        mov $1, %ecx
        call vdrv_submit
        MARKER 3
        jmp done

fail:
        MARKER 0xdead
done:
        VIRTIO_CPL3_RESET

        VIRTIO_DRIVER_CODE
        VIRTIO_CPL3_GDT
