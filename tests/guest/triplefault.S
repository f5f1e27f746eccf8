/* SPDX-License-Identifier: MIT */
/* Print, then fault with no IDT (limit 0): #UD -> #GP -> double fault -> triple fault. */
#include "guest.inc"
        .globl _start
_start:
        PUTS msg
        ud2
#include "uart-puts.inc"
msg:    .asciz "about to triple fault\n"
