/* SPDX-License-Identifier: MIT */
/*
 * Memory benchmark payload: touch 64 MiB of guest RAM (one write per 4 KiB page, from
 * 16 MiB up), write marker 1, say "idle" on the UART, then halt with interrupts off
 * until the VMM is told to stop.
 */
#include "guest.inc"
        .globl _start
_start:
        cli
        mov $0x1000000, %rdi
        mov $16384, %ecx
1:      movb $1, (%rdi)
        add $4096, %rdi
        dec %ecx
        jnz 1b
        MARKER 1
        PUTS msg
2:      hlt
        jmp 2b
#include "uart-puts.inc"
msg:    .asciz "idle\n"
