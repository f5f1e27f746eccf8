/* SPDX-License-Identifier: MIT */
/*
 * Lifecycle benchmark payload: say "up" on COM1, write boot marker 1, then halt with
 * interrupts off until the VMM is told to end. Unlike hello it stays at its marker, so the
 * marker is read from the running VMM and the VM is ended through the API.
 */
#include "guest.inc"
        .globl _start
_start:
        cli
        PUTS msg
        MARKER 1
1:      hlt
        jmp 1b
#include "uart-puts.inc"
msg:    .asciz "up\n"
