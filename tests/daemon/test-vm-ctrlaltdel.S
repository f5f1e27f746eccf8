/* SPDX-License-Identifier: MIT */
/*
 * A guest that honours a graceful stop: say "ready", write boot marker 1, then poll the
 * i8042 (status port 0x64 bit 0: output buffer full; data port 0x60) until the Del make
 * code (0x53, scan code set 1) of the Ctrl+Alt+Del that iovd-vmm's "stop" types arrives,
 * say "bye" and reset through the i8042. Interrupts stay off: no IDT is needed.
 */
#include "guest.inc"
        .globl _start
_start:
        cli
        PUTS ready
        MARKER 1
1:      in $0x64, %al
        test $1, %al
        jz 1b
        in $0x60, %al
        cmp $0x53, %al
        jne 1b
        PUTS bye
        RESET
#include "uart-puts.inc"
ready:  .asciz "ready\n"
bye:    .asciz "bye\n"
