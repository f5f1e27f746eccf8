/* SPDX-License-Identifier: MIT */
/*
 * A guest that pokes everything: a read and a write of every I/O port (except the i8042
 * command port, whose 0xfe would end the run early: the reset is tested elsewhere), then a
 * read and a write at every MiB of the 32-bit MMIO hole. The VMM must survive all of it;
 * the payload then prints "survived" and resets.
 */
#include "guest.inc"
        .globl _start
_start:
        xor %edx, %edx
1:      cmp $I8042_COMMAND, %dx
        je 2f
        in (%dx), %al
        mov %dl, %al
        out %al, (%dx)
2:      inc %edx
        cmp $0x10000, %edx
        jb 1b

        mov $0xc0000000, %esi
3:      movl (%rsi), %eax
        movl %esi, (%rsi)
        add $0x100000, %rsi
        mov $0x100000000, %rax
        cmp %rax, %rsi
        jb 3b

        /* The sweep left the UART in loopback with the divisor latch selected. */
        mov $UART + 3, %dx
        mov $0x03, %al
        out %al, (%dx)
        mov $UART + 4, %dx
        out %al, (%dx)
        PUTS msg
        RESET
#include "uart-puts.inc"
msg:    .asciz "\nsurvived\n"
