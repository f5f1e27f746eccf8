/* SPDX-License-Identifier: MIT */
/*
 * Benchmark payload: marker 1, then 20000 port writes to the UART's scratch register
 * (one VM exit each), marker 2, reset. The time between the markers is the exit cost.
 */
#include "guest.inc"
        .globl _start
_start:
        MARKER 1
        mov $20000, %ecx
        mov $UART + 7, %dx
1:      out %al, (%dx)
        dec %ecx
        jnz 1b
        MARKER 2
        RESET
