/* SPDX-License-Identifier: MIT */
/* Print a line on the UART, write boot marker 1, reset through the i8042. */
#include "guest.inc"
        .globl _start
_start:
        PUTS hello
        MARKER 1
        RESET
#include "uart-puts.inc"
hello:  .asciz "hello from the guest\n"
